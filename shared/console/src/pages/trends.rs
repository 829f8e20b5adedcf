//! One customer's trends: exceptions opened and resolved per day (a chart),
//! and receipt-to-ERP latency over the last day, week and month.

use std::sync::Arc;

use axum::extract::{Extension, State};
use serde_json::json;

use crate::Console;
use crate::chart::{Group, bars};
use crate::pages::{Answer, Frame, age, customer_of};
use crate::routes::Signed;

/// Days the chart covers.
const DAYS: u32 = 30;

pub async fn page(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
) -> Answer {
    let c = customer_of(&signed)?;
    let t = console.fleet.trends(&c.tenant, DAYS).await?;
    let groups: Vec<Group> = t
        .days
        .iter()
        .map(|d| Group {
            label: d.day.format("%m-%d").to_string(),
            values: vec![d.opened, d.resolved],
        })
        .collect();
    let chart = bars(&groups, "exceptions opened and resolved per day");
    let latency: Vec<_> = t
        .latency
        .iter()
        .map(|l| {
            json!({
                "window": l.window,
                "posted": l.posted,
                "p50": age(l.p50_seconds.min(i64::MAX as u64) as i64),
                "p95": age(l.p95_seconds.min(i64::MAX as u64) as i64),
            })
        })
        .collect();
    let frame = Frame::of(&console, &signed).await;
    Ok(console.views.page(
        "trends.html",
        json!({
            "frame": frame,
            "customer": c,
            "chart": chart,
            "opened": t.days.iter().map(|d| d.opened).sum::<u32>(),
            "resolved": t.days.iter().map(|d| d.resolved).sum::<u32>(),
            "days": DAYS,
            "latency": latency,
        }),
    ))
}

//! Reconciliation per customer and period: the kept runs, one run's
//! measures per currency with every difference drilled down to the
//! exceptions and records that explain it, and finance's sign-off.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use chrono::NaiveDate;
use ferry_core::usecases::reconcile::{Report, Totals};
use serde_json::json;

use crate::Console;
use crate::pages::{Answer, Frame, Refusal, customer_of};
use crate::roles::Need;
use crate::routes::Signed;
use crate::store::SignOff;

/// How many periods the list shows.
const PERIODS: usize = 36;

/// A period named in a path: two days in order.
fn period(from: &str, to: &str) -> Option<(NaiveDate, NaiveDate)> {
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    day(from).zip(day(to)).filter(|(f, t)| f <= t)
}

/// The customer's kept run of the period a path names, with its sign-offs.
async fn run_of(
    console: &Console,
    signed: &Signed,
    (from, to): (&str, &str),
) -> Result<(crate::store::Customer, Report, Vec<SignOff>), Refusal> {
    let c = customer_of(signed)?;
    let (from, to) =
        period(from, to).ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "no such period"))?;
    let report = console
        .fleet
        .report(&c.tenant, from, to)
        .await?
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "no reconciliation of that period"))?;
    let offs = console.store.sign_offs(&c.tenant).await?;
    Ok((c, report, offs))
}

/// What one exception or record explains: its non-zero measures.
fn attribution(a: &ferry_core::usecases::reconcile::Attribution) -> serde_json::Value {
    json!({
        "by": a.by,
        "measures": a.totals.measures().into_iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(m, v)| format!("{} {v}", m.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The sign-off of exactly this run, if any.
fn signed<'a>(offs: &'a [SignOff], r: &Report) -> Option<&'a SignOff> {
    offs.iter().find(|s| s.covers(r.from, r.to, r.generated_at))
}

pub async fn list(
    State(console): State<Arc<Console>>,
    Extension(signed_in): Extension<Signed>,
) -> Answer {
    let c = customer_of(&signed_in)?;
    let runs = console.fleet.reports(&c.tenant, PERIODS).await?;
    let offs = console.store.sign_offs(&c.tenant).await?;
    let rows: Vec<_> = runs
        .iter()
        .map(|r| {
            let off = offs.iter().find(|s| s.covers(r.from, r.to, r.generated_at));
            json!({
                "from": r.from.to_string(),
                "to": r.to.to_string(),
                "generated_at": r.generated_at.to_rfc3339(),
                "clean": r.clean,
                "unexplained": r.unexplained,
                "signed_by": off.map(|s| s.user.clone()),
                "signed_at": off.map(|s| s.at.to_rfc3339()),
            })
        })
        .collect();
    let frame = Frame::of(&console, &signed_in).await;
    Ok(console.views.page(
        "reconciliations.html",
        json!({ "frame": frame, "customer": c, "runs": rows }),
    ))
}

/// Sums per currency of one side, as (measure, value) rows.
fn by_currency(
    r: &Report,
    pick: impl Fn(&ferry_core::usecases::reconcile::Row) -> &Totals,
) -> std::collections::BTreeMap<String, Totals> {
    r.totals_by_currency(pick)
}

pub async fn one(
    State(console): State<Arc<Console>>,
    Extension(signed_in): Extension<Signed>,
    Path((_tenant, from, to)): Path<(String, String, String)>,
) -> Answer {
    let (c, report, offs) = run_of(&console, &signed_in, (&from, &to)).await?;
    let psa = by_currency(&report, |r| &r.psa);
    let erp = by_currency(&report, |r| &r.erp);
    let held = by_currency(&report, |r| &r.held);
    let flight = by_currency(&report, |r| &r.in_flight);
    let mut measures = Vec::new();
    for (currency, p) in &psa {
        let zero = Totals::default();
        let (e, h, f) = (
            erp.get(currency).unwrap_or(&zero),
            held.get(currency).unwrap_or(&zero),
            flight.get(currency).unwrap_or(&zero),
        );
        for (((name, pv), (_, ev)), ((_, hv), (_, fv))) in p
            .measures()
            .into_iter()
            .zip(e.measures())
            .zip(h.measures().into_iter().zip(f.measures()))
        {
            if pv.is_zero() && ev.is_zero() {
                continue;
            }
            measures.push(json!({
                "currency": currency,
                "measure": name,
                "psa": pv.to_string(),
                "erp": ev.to_string(),
                "held": hv.to_string(),
                "in_flight": fv.to_string(),
                "unexplained": (pv - ev - hv - fv).to_string(),
            }));
        }
    }
    // Drill-down: every key where the two sides differ, each measure that
    // differs, and what explains it (exceptions, records in flight).
    let differences: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.psa != r.erp)
        .map(|r| {
            json!({
                "project": r.key.project,
                "period": r.key.period,
                "currency": r.key.currency,
                "differs": r.psa.measures().into_iter().zip(r.erp.measures())
                    .filter(|((_, p), (_, e))| p != e)
                    .map(|((m, p), (_, e))| json!({ "measure": m, "psa": p.to_string(), "erp": e.to_string() }))
                    .collect::<Vec<_>>(),
                "held_by": r.held_by.iter().map(attribution).collect::<Vec<_>>(),
                "in_flight_by": r.in_flight_by.iter().map(attribution).collect::<Vec<_>>(),
                "mismatches": r.mismatches,
            })
        })
        .collect();
    let off = signed(&offs, &report);
    let frame = Frame::of(&console, &signed_in).await;
    Ok(console.views.page(
        "reconciliation.html",
        json!({
            "frame": frame,
            "customer": c,
            "r": {
                "from": report.from.to_string(),
                "to": report.to.to_string(),
                "generated_at": report.generated_at.to_rfc3339(),
                "template_version": report.template_version,
                "clean": report.clean,
                "unexplained": report.unexplained(),
                "records_compared": report.records_compared,
                "missing": report.missing,
                "unaccounted": report.unaccounted,
            },
            "measures": measures,
            "differences": differences,
            "signed_by": off.map(|s| s.user.clone()),
            "signed_at": off.map(|s| s.at.to_rfc3339()),
            "may_sign": signed_in.principal.role.may(Need::SignOff) && report.clean && off.is_none(),
        }),
    ))
}

/// Finance signs off a clean run of a period. A run with unexplained
/// differences cannot be signed off; a later run needs its own sign-off.
pub async fn sign_off(
    State(console): State<Arc<Console>>,
    Extension(signed_in): Extension<Signed>,
    Path((tenant, from, to)): Path<(String, String, String)>,
) -> Answer {
    let (c, report, offs) = run_of(&console, &signed_in, (&from, &to)).await?;
    if !report.clean {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!(
                "{} differences are unexplained: a period is signed off when it reconciles",
                report.unexplained()
            ),
        ));
    }
    let (from, to) = (report.from, report.to);
    if signed(&offs, &report).is_none() {
        let off = SignOff {
            tenant: c.tenant.clone(),
            from,
            to,
            generated_at: report.generated_at,
            user: signed_in.principal.user.clone(),
            at: console.clock.now(),
        };
        console.store.sign_off(&off).await?;
        let target = format!("{from}..{to}");
        let detail = format!("run of {}", report.generated_at.to_rfc3339());
        console
            .record(
                &signed_in.principal,
                Some(&c.tenant),
                "sign_off",
                &target,
                &detail,
            )
            .await?;
    }
    Ok(Redirect::to(&format!("/t/{tenant}/reconciliation/{from}/{to}")).into_response())
}

//! The runtime loops the five function binaries run: build the adapters once
//! per cold start, then answer events until the sandbox is frozen. Every
//! invocation runs in a span carrying the function name and request id.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use ferry_core::ports::QueueName;
use ferry_core::{Deps, Invocation};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tracing::Instrument;

use crate::{Config, FunctionError, Schedule};

/// Reads the config and builds the adapters. A configuration error is logged
/// (naming the variable) and ends the process: Lambda reports an init error.
async fn cold_start(function: &str) -> Result<Arc<Deps>, Error> {
    crate::init_tracing();
    let started = std::time::Instant::now();
    let deps = async { Config::from_env()?.build().await }
        .await
        .inspect_err(|e| tracing::error!(function, error = %e, "cold start failed"))?;
    tracing::info!(
        function,
        ms = started.elapsed().as_millis() as u64,
        "cold start"
    );
    Ok(Arc::new(deps))
}

fn span(function: &str, request_id: &str) -> tracing::Span {
    tracing::info_span!("invocation", function, request_id)
}

/// `transform` and `post`: SQS batches answered with a partial batch response.
pub async fn queue(queue: QueueName) -> Result<(), Error> {
    let function = crate::function_name(queue.as_str());
    let deps = cold_start(&function).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        // Idempotency records and leases taken in this invocation expire with it.
        let call = Invocation::until(crate::deadline(&event.context));
        let span = span(&function, &event.context.request_id);
        let deps = deps.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                crate::handle_sqs(&deps, call, queue, event.payload).await,
            )
        }
        .instrument(span)
    }))
    .await
}

/// What a scheduled `retry` invocation asks for: the rule's constant input
/// (`{"action": ...}`), or a dead-letter sweep for a bare scheduled event.
pub fn retry_input(event: Value) -> Result<Schedule, serde_json::Error> {
    input(event, Schedule::Sweep)
}

/// What a scheduled `reconcile` invocation asks for: the rule's constant input,
/// or the previous calendar month for every tenant.
pub fn reconcile_input(event: Value) -> Result<Schedule, serde_json::Error> {
    input(
        event,
        Schedule::Reconcile {
            tenant: None,
            from: None,
            to: None,
        },
    )
}

fn input(event: Value, default: Schedule) -> Result<Schedule, serde_json::Error> {
    match event.get("action") {
        Some(_) => serde_json::from_value(event),
        None => Ok(default),
    }
}

/// `retry`: the scheduled dead-letter sweep (and replays).
pub async fn retry() -> Result<(), Error> {
    schedule("retry", retry_input).await
}

/// `reconcile`: the scheduled reconciliation.
pub async fn reconcile() -> Result<(), Error> {
    schedule("reconcile", reconcile_input).await
}

async fn schedule(
    default: &str,
    parse: fn(Value) -> Result<Schedule, serde_json::Error>,
) -> Result<(), Error> {
    let function = crate::function_name(default);
    let deps = cold_start(&function).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        let span = span(&function, &event.context.request_id);
        async move {
            let schedule =
                parse(event.payload).map_err(|e| FunctionError::NonRetryable(e.to_string()))?;
            crate::handle_schedule(&deps, schedule).await
        }
        .instrument(span)
    }))
    .await
}

/// `intake`: API Gateway webhooks (through `lambda_http`) and the poll schedule
/// (passed through) on one function.
pub async fn intake() -> Result<(), Error> {
    let function = crate::function_name("intake");
    let deps = cold_start(&function).await?;
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let deps = deps.clone();
        let request_id = lambda_http::RequestExt::lambda_context_ref(&req)
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        let span = span(&function, &request_id);
        async move { crate::handle_intake(&deps, req).await }.instrument(span)
    }))
    .await
}

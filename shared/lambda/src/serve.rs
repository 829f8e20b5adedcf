//! The runtime loops the five function binaries run: build the adapters once
//! per cold start, then answer events until the sandbox is frozen.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use ferry_core::Deps;
use ferry_core::ports::QueueName;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

use crate::{Config, IntakeEvent, Schedule};

async fn cold_start() -> Result<Arc<Deps>, Error> {
    crate::init_tracing();
    Ok(Arc::new(Config::from_env()?.build().await?))
}

/// `transform` and `post`: SQS batches answered with a partial batch response.
pub async fn queue(queue: QueueName) -> Result<(), Error> {
    let deps = cold_start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(crate::handle_sqs(&deps, queue, event.payload).await)
        }
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
    schedule(retry_input).await
}

/// `reconcile`: the scheduled reconciliation.
pub async fn reconcile() -> Result<(), Error> {
    schedule(reconcile_input).await
}

async fn schedule(parse: fn(Value) -> Result<Schedule, serde_json::Error>) -> Result<(), Error> {
    let deps = cold_start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            let schedule = parse(event.payload)?;
            Ok::<Value, Error>(crate::handle_schedule(&deps, schedule).await?)
        }
    }))
    .await
}

/// `intake`: API Gateway webhooks and the poll schedule on one function.
pub async fn intake() -> Result<(), Error> {
    let deps = cold_start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            match crate::classify(event.payload)? {
                IntakeEvent::Http(req) => Ok::<Value, Error>(serde_json::to_value(
                    crate::handle_webhook(&deps, *req).await,
                )?),
                IntakeEvent::Schedule(s) => Ok(crate::handle_schedule(&deps, s).await?),
            }
        }
    }))
    .await
}

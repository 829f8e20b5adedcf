//! The `intake` function: API Gateway HTTP API webhooks (`POST
//! /webhooks/{connector}/{tenant}`) and scheduled polls. Wiring only; the logic
//! is in `ferry_core::usecases::intake`.

use std::sync::Arc;

use ferry_lambda::IntakeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_lambda::init_tracing();
    let deps = Arc::new(ferry_lambda::Config::from_env()?.build().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            match ferry_lambda::classify(event.payload)? {
                IntakeEvent::Http(req) => Ok::<Value, Error>(serde_json::to_value(
                    ferry_lambda::handle_webhook(&deps, *req).await,
                )?),
                IntakeEvent::Schedule(s) => Ok(ferry_lambda::handle_schedule(&deps, s).await?),
            }
        }
    }))
    .await
}

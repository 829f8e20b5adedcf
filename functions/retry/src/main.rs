//! The `retry` function: parks dead letters in the exception store (scheduled sweep).
//! The EventBridge rule may pass a constant input (`{"action": ...}`); a plain
//! scheduled event does the default. Wiring only; the logic is in
//! `ferry_core::usecases`.

use std::sync::Arc;

use ferry_lambda::Schedule;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_lambda::init_tracing();
    let deps = Arc::new(ferry_lambda::Config::from_env()?.build().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            let schedule = match event.payload.get("action") {
                Some(_) => serde_json::from_value(event.payload)?,
                None => Schedule::Sweep,
            };
            Ok::<Value, Error>(ferry_lambda::handle_schedule(&deps, schedule).await?)
        }
    }))
    .await
}

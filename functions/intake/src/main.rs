//! The `intake` function: API Gateway HTTP API webhooks (`POST
//! /webhooks/{connector}/{tenant}`) and scheduled polls. Wiring only; the logic
//! is in `ferry_core::usecases::intake`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry_lambda::serve::intake().await
}

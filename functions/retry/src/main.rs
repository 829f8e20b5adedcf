//! The `retry` function: parks dead letters in the exception store (scheduled sweep).
//! The EventBridge rule may pass a constant input (`{"action": ...}`); a plain
//! scheduled event does the default. Wiring only; the logic is in
//! `ferry_core::usecases`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry_lambda::serve::retry().await
}

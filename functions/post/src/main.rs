//! The `post` function: SQS batches of post commands and summary flushes from transform, answered with a partial
//! batch response (only failed message ids). Wiring only; the logic is in
//! `ferry_core::usecases::post`.

use ferry_core::ports::QueueName;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry_lambda::serve::queue(QueueName::Post).await
}

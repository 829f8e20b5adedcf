//! The `transform` function: SQS batches of change notices from intake, answered with a partial
//! batch response (only failed message ids). Wiring only; the logic is in
//! `ferry_core::usecases::transform`.

use ferry_core::ports::QueueName;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry_lambda::serve::queue(QueueName::Transform).await
}

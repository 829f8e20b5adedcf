//! The `transform` function: SQS batches of change notices from intake, answered with a partial
//! batch response (only failed message ids). Wiring only; the logic is in
//! `ferry_core::usecases::transform`.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use ferry_core::ports::QueueName;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_lambda::init_tracing();
    let deps = Arc::new(ferry_lambda::Config::from_env()?.build().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                ferry_lambda::handle_sqs(&deps, QueueName::Transform, event.payload).await,
            )
        }
    }))
    .await
}

//! Test support: the emulator's SDK config.

/// The SDK config for the emulator `make test` starts. Panics with what to do
/// when `AWS_ENDPOINT_URL` is not set: these tests never talk to real AWS.
pub async fn emulator() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
        "AWS_ENDPOINT_URL must point at the local emulator (got {endpoint:?}); run the tests with `make test`, \
         which starts moto and sets it, or `scripts/with-moto.sh cargo test ...`"
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "emulator",
        ))
        .load()
        .await
}

//! Wiring only: logging, configuration, clients, then the runtime loop.
#![recursion_limit = "256"]

use ecr_policy_provider::ecr::SdkEcr;
use ecr_policy_provider::provider::{Config, Provider};
use ecr_policy_provider::response::Sender;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    ecr_policy_provider::logging::init();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let config = Config::from_env(sdk.region().map(ToString::to_string));
    let provider = Provider::new(SdkEcr::from_sdk_config(&sdk), Sender::new()?, config);
    let provider = &provider;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            provider
                .handle_raw(event.payload.get(), event.context.deadline)
                .await
                .map(|_| ())
                .map_err(lambda_runtime::Diagnostic::from)
        },
    ))
    .await
}

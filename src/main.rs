//! Wiring only: logging, configuration, clients, then the runtime loop.
#![recursion_limit = "256"]

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use ecr_policy_provider::ecr::SdkEcr;
use ecr_policy_provider::lock::{TABLE_VARIABLE, dynamo::DynamoLock};
use ecr_policy_provider::provider::{Config, Invocation, Provider, empty_endpoint_overrides};
use ecr_policy_provider::relay::LambdaRelay;
use ecr_policy_provider::response::Sender;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    drop_empty_endpoint_overrides();
    ecr_policy_provider::logging::init();
    let sdk = sdk_config().await;
    let config = Config::from_env(sdk.region().map(ToString::to_string));
    // The lock table's client is made on its first use: start-up pays nothing for it.
    let lock = std::env::var(TABLE_VARIABLE)
        .ok()
        .filter(|table| !table.is_empty())
        .map(|table| DynamoLock::new(table, &sdk));
    let provider = Provider::new(SdkEcr::from_sdk_config(&sdk), Sender::new(), config)
        .with_lock(lock)
        .with_relay(Arc::new(LambdaRelay::from_sdk_config(&sdk)));
    let provider = &provider;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            let arn = &event.context.invoked_function_arn;
            let invocation = Invocation {
                payload: event.payload.get(),
                deadline_ms: event.context.deadline,
                invocation_id: &event.context.request_id,
                function_arn: Some(arn).filter(|arn| !arn.is_empty()).map(String::as_str),
            };
            provider
                .invoke_as(&invocation)
                .await
                .map(|invoked| invoked.result())
                .map_err(lambda_runtime::Diagnostic::from)
        },
    ))
    .await
}

/// `template.yaml` declares `AWS_ENDPOINT_URL` empty so that `sam local invoke --env-vars`
/// may set it; the SDK would take an empty value for a URL and panic at the first call, so
/// an empty override is dropped.
fn drop_empty_endpoint_overrides() {
    for name in empty_endpoint_overrides(std::env::vars_os()) {
        // SAFETY: called first thing in `main`, on the current-thread runtime, before
        // anything else runs or reads the environment: no other thread exists yet.
        unsafe { std::env::remove_var(name) };
    }
}

/// The SDK's shared configuration. Lambda hands the function its credentials and region in
/// the environment, which the default chains would try first anyway; reading them directly
/// skips building the rest of those chains (profile, web identity, ECS, instance metadata),
/// whose clients load and parse the platform's TLS roots before the first event (5 of the
/// 12.7 ms of start-up in scripts/bench). Without them in the environment (a developer's
/// shell) the default chains apply as before.
async fn sdk_config() -> aws_config::SdkConfig {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if set("AWS_REGION") || set("AWS_DEFAULT_REGION") {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    loader.load().await
}

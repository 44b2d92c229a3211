//! The floor the benchmark measures the provider against: the smallest function the
//! `lambda_runtime` crate can run, an echo on the same current-thread Tokio runtime, built
//! with the same release profile. Bench-only (`--features bench`), never deployed.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}

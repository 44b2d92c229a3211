//! The function invoking itself (CONTRACT 15): work one invocation cannot finish goes on in
//! the next invocation of the same function, started asynchronously (`InvocationType:
//! Event`) with the original event and the progress. Behind a small trait, so that tests
//! hand in a stand-in that runs the next invocation in memory.

use std::future::Future;
use std::pin::Pin;

/// Why the next invocation could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RelayError(pub String);

/// A hand-over under way.
pub type Handing<'a> = Pin<Box<dyn Future<Output = Result<(), RelayError>> + Send + 'a>>;

/// Starts the next invocation of a function.
pub trait Relay: Send + Sync {
    /// Invokes `function_arn` asynchronously with `payload` (a JSON event); done once Lambda
    /// has queued it.
    fn hand_over<'a>(&'a self, function_arn: &'a str, payload: String) -> Handing<'a>;
}

/// Lambda's `Invoke` API over HTTPS, signed with SigV4 by the SDK's own signer, with the
/// function's credentials: a few lines instead of the whole Lambda SDK in the binary.
/// `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL`) points it elsewhere, as for the SDK's
/// clients.
pub struct LambdaRelay {
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    endpoint: Option<String>,
    http: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpConnector>,
}

/// How long Lambda may take to queue an event.
const INVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl LambdaRelay {
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_LAMBDA")
            .ok()
            .filter(|url| !url.is_empty())
            .or_else(|| config.endpoint_url().map(str::to_owned));
        Self {
            credentials: config.credentials_provider(),
            endpoint,
            http: std::sync::OnceLock::new(),
        }
    }

    async fn invoke(&self, function_arn: &str, payload: String) -> Result<(), RelayError> {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        // arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        let parts: Vec<&str> = function_arn.split(':').collect();
        let (partition, region) = match parts.as_slice() {
            ["arn", partition, "lambda", region, _, "function", ..] => (*partition, *region),
            _ => {
                return Err(RelayError(format!(
                    "{function_arn:?} is not a function ARN"
                )));
            }
        };
        let endpoint = match &self.endpoint {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let domain = match partition {
                    "aws-cn" => "amazonaws.com.cn",
                    _ => "amazonaws.com",
                };
                format!("https://lambda.{region}.{domain}")
            }
        };
        let name =
            percent_encoding::utf8_percent_encode(function_arn, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{endpoint}/2015-03-31/functions/{name}/invocations");
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| RelayError("no credentials".into()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| RelayError(format!("no credentials: {e}")))?;
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("lambda")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| RelayError(e.to_string()))?
            .into();
        let headers = [("x-amz-invocation-type", "Event")];
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(payload.as_bytes()),
        )
        .map_err(|e| RelayError(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| RelayError(e.to_string()))?
            .into_parts();
        let http = self.http.get_or_init(|| crate::http::connector(None));
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .chain(instructions.headers())
            .collect();
        // INVOKE_TIMEOUT bounds the whole exchange, the body of a refusal included.
        let exchange = async {
            let response =
                crate::http::call(http, "POST", &url, &headers, payload.into_bytes()).await?;
            let status = response.status().as_u16();
            let body = match status {
                202 => String::new(),
                _ => crate::http::body_text(response).await,
            };
            Ok((status, body))
        };
        let (status, body) = crate::http::within(INVOKE_TIMEOUT, exchange)
            .await
            .map_err(|e| RelayError(e.to_string()))?;
        if status == 202 {
            return Ok(());
        }
        Err(RelayError(format!(
            "Lambda answered HTTP {status}: {}",
            crate::text::shorten(&body, 300)
        )))
    }
}

impl Relay for LambdaRelay {
    fn hand_over<'a>(&'a self, function_arn: &'a str, payload: String) -> Handing<'a> {
        Box::pin(self.invoke(function_arn, payload))
    }
}

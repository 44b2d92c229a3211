//! The provider's own two HTTP calls, the response PUT ([`crate::response`]) and the
//! self-invoke ([`crate::relay`]), made through the AWS SDK's own HTTP connector
//! (`aws-smithy-http-client`: hyper, rustls with aws-lc, the system's root certificates).
//! That code is in the binary for ECR and DynamoDB anyway; a second HTTP client would add its
//! own copy of it. A connector is made on first use: making it reads the root certificates.
//! The SDK loads them once per process, so the first response reuses what the first ECR call
//! loaded.
//!
//! `http://` URLs work too (the tests' loopback servers, a local emulator's endpoint), and the
//! usual `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured. Redirects are
//! not followed: a 3xx is the caller's to judge, like any other status.

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use std::time::Duration;

/// Why a call got no answer. Its text never holds the URL, whose query string may be a
/// credential (a presigned `ResponseURL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("{0}")]
    Failed(String),
}

/// A connector for one kind of call: `connect_timeout` bounds the TCP connection and the TLS
/// handshake; `None` leaves them to the call's own timeout.
pub fn connector(connect_timeout: Option<Duration>) -> SharedHttpConnector {
    use aws_smithy_http_client::{Connector, proxy::ProxyConfig, tls};
    let mut settings = HttpConnectorSettings::builder();
    settings.set_connect_timeout(connect_timeout);
    let connector = Connector::builder()
        .connector_settings(settings.build())
        .proxy_config(ProxyConfig::from_env())
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build();
    SharedHttpConnector::new(connector)
}

/// Sends one request; the answer is its status and headers, the body is read by
/// [`body_text`]. Bounded by the caller, with [`within`].
pub async fn call(
    connector: &SharedHttpConnector,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    let mut request = HttpRequest::new(SdkBody::from(body));
    request
        .set_method(method)
        .map_err(|e| CallError::Failed(crate::text::error_chain(&e)))?;
    // The URL is not quoted: its query string may be a credential.
    request
        .set_uri(url)
        .map_err(|_| CallError::Failed("the URL is not a valid HTTP URI".into()))?;
    for (name, value) in headers {
        request
            .headers_mut()
            .try_insert(name.to_string(), value.to_string())
            .map_err(|e| CallError::Failed(crate::text::error_chain(&e)))?;
    }
    connector
        .call(request)
        .await
        .map_err(|e| CallError::Failed(crate::text::error_chain(&e)))
}

/// `exchange`, given up after `timeout`.
pub async fn within<T>(
    timeout: Duration,
    exchange: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(CallError::TimedOut(timeout)))
}

/// The response's body as text (lossy), or the empty string when it cannot be read.
pub async fn body_text(response: HttpResponse) -> String {
    match ByteStream::new(response.into_body()).collect().await {
        Ok(bytes) => String::from_utf8_lossy(&bytes.into_bytes()).into_owned(),
        Err(_) => String::new(),
    }
}

//! The answer to CloudFormation (CONTRACT 6): the body, its 4,096-byte limit, the
//! `ResponseURL` allow-list, and the PUT with retries.

use crate::http;
use crate::identity::{Target, repository_arn, valid_region};
use crate::retry::{self, Attempt, Backoff};
use aws_smithy_runtime_api::client::http::SharedHttpConnector;
use serde::Serialize;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// How long connecting to the response URL (TCP and TLS) may take, per attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest body CloudFormation accepts.
pub const MAX_BODY_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

/// The response document.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: Status,
    /// Why it failed; shortened from its end when the body would be too large.
    pub reason: Option<String>,
    /// Appended to the reason and never shortened: where the logs are.
    pub reason_tail: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: Data,
}

/// The response's `Data` (CONTRACT 6): what a stack reads with `!GetAtt`. Empty for a
/// Delete and for FAILED.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Data {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A statement resource's Sids, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sids: Option<String>,
    /// `"true"` or `"false"`: CloudFormation reads every attribute as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    /// The compact policy as written; the first thing dropped when the body is too large.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_arn: Option<String>,
    /// Who the resource's statements let in (CONTRACT 12), e.g. `accounts:111122223333`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// How many repositories hold a prefix statement's statements now (CONTRACT 15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<String>,
    /// The prefixes of the repository creation templates that hold a prefix statement's
    /// statements, `,`-joined (CONTRACT 15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    /// What the provider noticed but did not refuse, `"; "`-joined (CONTRACT 12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<String>,
}

impl Data {
    /// The data of a whole policy on `target`, owned by `account`.
    pub fn policy(
        target: &Target,
        account: &str,
        partition: &str,
        adopted: bool,
        policy_text: &str,
    ) -> Self {
        let (repository_name, repository_arn) = match target {
            Target::Registry { .. } | Target::Template { .. } => (None, None),
            Target::Repository { region, name } => (
                Some(name.clone()),
                Some(repository_arn(partition, region, account, name)),
            ),
        };
        Self {
            registry_id: Some(account.to_owned()),
            region: Some(target.region().to_owned()),
            sids: None,
            adopted: Some(adopted.to_string()),
            policy_text: Some(policy_text.to_owned()),
            repository_name,
            repository_arn,
            access: None,
            repositories: None,
            templates: None,
            warnings: None,
        }
    }

    /// The data of some statements, by Sid, in `target`'s policy (CONTRACT 9).
    pub fn statements(
        target: &Target,
        account: &str,
        partition: &str,
        adopted: bool,
        sids: &[String],
    ) -> Self {
        Self {
            sids: Some(sids.join(",")),
            policy_text: None,
            ..Self::policy(target, account, partition, adopted, "")
        }
    }
}

/// The JSON CloudFormation reads.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Wire<'a> {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    physical_resource_id: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
    data: &'a Data,
}

impl Response {
    /// The body to PUT: at most [`MAX_BODY_BYTES`] whenever the ids allow it. First
    /// `Data.PolicyText` goes, then `Data.Warnings` and `Data.Access`, then `Reason` is shortened from its end, on a character
    /// boundary.
    pub fn to_body(&self) -> Vec<u8> {
        let full = self.reason.as_ref().map(String::len);
        let body = self.wire(&self.data, full);
        if body.len() <= MAX_BODY_BYTES {
            return body;
        }
        let mut data = Data {
            policy_text: None,
            ..self.data.clone()
        };
        let mut body = self.wire(&data, full);
        if body.len() > MAX_BODY_BYTES {
            // Then the warnings and the access summary, which the log line also carries.
            data.warnings = None;
            data.access = None;
            body = self.wire(&data, full);
        }
        let Some(reason) = self
            .reason
            .as_deref()
            .filter(|_| body.len() > MAX_BODY_BYTES)
        else {
            return body;
        };
        // The longest prefix of the reason that fits, by bisection over char boundaries.
        let boundaries: Vec<usize> = reason.char_indices().map(|(i, _)| i).collect();
        let (mut low, mut high) = (0, boundaries.len().saturating_sub(1));
        let mut best = self.wire(&data, Some(0));
        while low < high {
            let mid = (low + high).div_ceil(2);
            let candidate = self.wire(&data, Some(boundaries[mid]));
            if candidate.len() <= MAX_BODY_BYTES {
                best = candidate;
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        best
    }

    /// Serialises with the reason cut at byte `reason_end` (a char boundary).
    fn wire(&self, data: &Data, reason_end: Option<usize>) -> Vec<u8> {
        let reason = self.reason.as_deref().map(|reason| {
            let end = reason_end.unwrap_or(reason.len());
            let cut = if end < reason.len() {
                " [truncated]"
            } else {
                ""
            };
            format!("{}{cut}{}", &reason[..end], self.reason_tail)
        });
        let wire = Wire {
            status: self.status,
            reason,
            physical_resource_id: &self.physical_resource_id,
            stack_id: &self.stack_id,
            request_id: &self.request_id,
            logical_resource_id: &self.logical_resource_id,
            data,
        };
        // A struct of strings and a JSON map always serialises.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// Why a `ResponseURL` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the event has no ResponseURL")]
    Missing,
    #[error("ResponseURL is not a URL: {0}")]
    Invalid(String),
    #[error(
        "ResponseURL host {} is not an Amazon S3 endpoint; add it to \
         RESPONSE_URL_ALLOWED_HOSTS only if it is a local emulator you trust",
        crate::text::quote(.0)
    )]
    HostNotAllowed(String),
    #[error("ResponseURL must use https on the default port, got {0}")]
    NotHttps(String),
    #[error("ResponseURL must not carry a user name or password")]
    UserInfo,
}

/// Which `ResponseURL`s may be answered: Amazon S3 endpoints over https, plus the hosts
/// named in `RESPONSE_URL_ALLOWED_HOSTS`.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// `(host, port)`; a `None` port means the scheme's default.
    extra: Vec<(String, Option<u16>)>,
}

impl UrlPolicy {
    /// Parses `RESPONSE_URL_ALLOWED_HOSTS`: comma-separated `host` or `host:port`.
    pub fn from_allowed_hosts(list: &str) -> Self {
        let extra = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let entry = entry.to_ascii_lowercase();
                match entry.rsplit_once(':') {
                    Some((host, port)) if !host.ends_with(':') => match port.parse() {
                        Ok(port) => (host.trim_matches(['[', ']']).to_owned(), Some(port)),
                        Err(_) => (entry, None),
                    },
                    _ => (entry, None),
                }
            })
            .collect();
        Self { extra }
    }

    pub fn check(&self, raw: Option<&str>) -> Result<Url, UrlRefused> {
        let raw = raw.ok_or(UrlRefused::Missing)?;
        let url = Url::parse(raw).map_err(|e| UrlRefused::Invalid(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefused::UserInfo);
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(UrlRefused::HostNotAllowed(String::new())),
        };
        let port = url.port();
        let listed = self.extra.iter().any(|(h, p)| *h == host && *p == port);
        if listed && matches!(url.scheme(), "http" | "https") {
            return Ok(url);
        }
        if !is_s3_host(&host) {
            return Err(UrlRefused::HostNotAllowed(host));
        }
        if url.scheme() != "https" || port.is_some() {
            return Err(UrlRefused::NotHttps(redact(&url)));
        }
        Ok(url)
    }
}

/// `[<bucket>.]s3[.dualstack][.<region>|-<region>].amazonaws.com[.cn]`
fn is_s3_host(host: &str) -> bool {
    let Some(rest) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let region = |l: &str| valid_region(l);
    // Where the S3 endpoint starts, counted in labels from the left.
    let endpoint_start = match labels.as_slice() {
        [.., "s3", "dualstack", r] if region(r) => labels.len() - 3,
        [.., "s3", r] if region(r) => labels.len() - 2,
        [.., "s3"] => labels.len() - 1,
        [.., last] if last.strip_prefix("s3-").is_some_and(region) => labels.len() - 1,
        _ => return false,
    };
    labels[..endpoint_start].iter().all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The URL without its query string, which is a credential: the only form that may be
/// logged.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Why the PUT did not get through.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the response URL answered HTTP {0}; not retried")]
    Refused(u16),
    #[error("no time left to answer after {attempts} attempt(s); last error: {last}")]
    OutOfTime { attempts: u32, last: String },
}

/// Sends responses. Built once per process; its HTTP connector is made on the first send and
/// reused: making it loads the platform's TLS roots, which would otherwise cost every cold
/// start several milliseconds before the first event even arrives.
#[derive(Debug)]
pub struct Sender {
    connector: OnceLock<SharedHttpConnector>,
    base_pause: Duration,
    /// Where a capturing sender keeps what it would have sent, instead of sending it.
    #[cfg(feature = "test-util")]
    capture: Option<Capture>,
}

/// What a capturing sender was given: each response URL with its body, in order.
#[cfg(feature = "test-util")]
#[derive(Debug, Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<Captured>>>);

/// One response a capturing sender kept: the URL and the body.
#[cfg(feature = "test-util")]
pub type Captured = (String, Vec<u8>);

#[cfg(feature = "test-util")]
impl Capture {
    /// Every response given so far, as (URL, body), in the order they were given.
    pub fn sent(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}

impl Sender {
    pub fn new() -> Self {
        Self {
            connector: OnceLock::new(),
            base_pause: Duration::from_millis(200),
            #[cfg(feature = "test-util")]
            capture: None,
        }
    }

    /// A sender that keeps each response instead of sending it, for a simulation whose
    /// clock is paused (real sockets would let tokio's paused clock jump while they wait).
    #[cfg(feature = "test-util")]
    pub fn capturing() -> (Self, Capture) {
        let capture = Capture::default();
        let sender = Self {
            capture: Some(capture.clone()),
            ..Self::new()
        };
        (sender, capture)
    }

    fn connector(&self) -> &SharedHttpConnector {
        self.connector
            .get_or_init(|| http::connector(Some(CONNECT_TIMEOUT)))
    }

    /// A shorter first pause between attempts, for tests.
    #[cfg(any(test, feature = "test-util"))]
    pub fn with_base_pause(mut self, pause: Duration) -> Self {
        self.base_pause = pause;
        self
    }

    /// PUTs the body, retrying network errors and 5xx (any status but 2xx and 4xx: redirects
    /// are not followed) with exponential backoff and jitter until `deadline`. Returns the
    /// number of attempts.
    pub async fn send(
        &self,
        url: &Url,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<u32, SendError> {
        #[cfg(feature = "test-util")]
        if let Some(capture) = &self.capture {
            capture
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((url.to_string(), body));
            return Ok(1);
        }
        let connector = self.connector();
        let backoff = Backoff {
            first: self.base_pause,
            max: Duration::from_secs(5),
            jitter: 0.5..1.5,
        };
        // What the last attempt that ran failed with: the message names it, not the
        // deadline that stopped the next one.
        let failed_with = std::sync::Mutex::new(String::from("deadline reached"));
        let failed_with = &failed_with;
        let put = |attempt: u32| {
            let body = body.clone();
            async move {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let last = failed_with
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    return Attempt::Stop(SendError::OutOfTime {
                        attempts: attempt - 1,
                        last,
                    });
                }
                // CloudFormation's presigned URLs are signed for an empty content type.
                let headers = [("content-type", "")];
                let put = http::call(connector, "PUT", url.as_str(), &headers, body);
                let sent = http::within(left, put).await;
                // A transport error's text never holds the URL, whose query is a credential.
                let last = match sent {
                    Ok(response) if response.status().is_success() => {
                        return Attempt::Done(attempt);
                    }
                    Ok(response) if response.status().is_client_error() => {
                        return Attempt::Stop(SendError::Refused(response.status().as_u16()));
                    }
                    Ok(response) => format!("HTTP {}", response.status().as_u16()),
                    Err(e) => e.to_string(),
                };
                last.clone_into(
                    &mut failed_with
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                Attempt::Retry(SendError::OutOfTime {
                    attempts: attempt,
                    last,
                })
            }
        };
        let retried = |error: &SendError, attempt: u32| {
            if let SendError::OutOfTime { last, .. } = error {
                tracing::warn!(attempt, error = %last, "response PUT failed; retrying");
            }
        };
        retry::until(&backoff, deadline, put, retried)
            .await
            .map_err(|gave_up| gave_up.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn response(reason: Option<String>, policy: String) -> Response {
        let data = Data {
            policy_text: Some(policy),
            region: Some("us-east-1".into()),
            ..Data::default()
        };
        Response {
            status: Status::Failed,
            reason,
            reason_tail: " (logs: group g, stream s)".into(),
            physical_resource_id: "failed-create:r".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1".into(),
            request_id: "r".into(),
            logical_resource_id: "Policy".into(),
            data,
        }
    }

    #[test]
    fn a_small_body_is_sent_whole() {
        let body = response(Some("why".into()), "{}".into()).to_body();
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["Data"]["PolicyText"], "{}");
        assert_eq!(v["Reason"], "why (logs: group g, stream s)");
        assert_eq!(v["Status"], "FAILED");
    }

    #[test]
    fn policy_text_goes_first_then_the_reason_shrinks_on_a_char_boundary() {
        let body = response(Some("why".into()), "x".repeat(9000)).to_body();
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["Data"].get("PolicyText").is_none());
        assert_eq!(v["Reason"], "why (logs: group g, stream s)");

        let long = "é\"ß".repeat(3000);
        let body = response(Some(long.clone()), "x".repeat(9000)).to_body();
        assert!(body.len() <= MAX_BODY_BYTES, "{}", body.len());
        assert!(body.len() > MAX_BODY_BYTES - 16, "kept as much as fits");
        let v: Value = serde_json::from_slice(&body).expect("json");
        let reason = v["Reason"].as_str().expect("reason");
        let kept = reason
            .strip_suffix(" [truncated] (logs: group g, stream s)")
            .expect("marked, with the log location kept");
        assert!(long.starts_with(kept));
    }

    #[test]
    fn only_s3_endpoints_are_allowed() {
        let policy = UrlPolicy::default();
        for ok in [
            "https://cloudformation-custom-resource-response-uswest2.s3.us-west-2.amazonaws.com/a?sig=1",
            "https://s3.amazonaws.com/bucket/key",
            "https://bucket.s3-eu-west-1.amazonaws.com/k",
            "https://my.bucket.s3.dualstack.us-east-1.amazonaws.com/k",
            "https://s3.cn-north-1.amazonaws.com.cn/k",
            "https://S3.AMAZONAWS.COM/k",
            "https://s3.amazonaws.com:443/k",
        ] {
            assert!(policy.check(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://s3.amazonaws.com/k",
            "https://s3.amazonaws.com:8443/k",
            "https://s3.amazonaws.com.attacker.example/k",
            "https://attacker.example/s3.amazonaws.com",
            "https://s3.amazonaws.com@attacker.example/k",
            "https://user:pw@s3.amazonaws.com/k",
            "https://abc.execute-api.us-east-1.amazonaws.com/k",
            "https://s3.amazonaws.com./k",
            "https://52.216.1.1/k",
            "https://[::1]/k",
            "https://s3.evil.amazonaws.com/k",
            "https://-s3.amazonaws.com/k",
            "ftp://s3.amazonaws.com/k",
            "not a url",
        ] {
            assert!(policy.check(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(policy.check(None), Err(UrlRefused::Missing));
    }

    #[test]
    fn allowed_hosts_admit_local_emulators_on_their_port_only() {
        let policy = UrlPolicy::from_allowed_hosts("127.0.0.1:5000, localhost");
        assert!(policy.check(Some("http://127.0.0.1:5000/b/k?x=1")).is_ok());
        assert!(policy.check(Some("http://localhost/b/k")).is_ok());
        assert!(policy.check(Some("http://127.0.0.1:5001/b/k")).is_err());
        assert!(policy.check(Some("http://localhost:81/b/k")).is_err());
    }

    #[test]
    fn redaction_drops_the_query_string() {
        let url = Url::parse("https://s3.amazonaws.com/b/k?X-Amz-Signature=secret#f").expect("url");
        assert_eq!(redact(&url), "https://s3.amazonaws.com/b/k");
    }
}

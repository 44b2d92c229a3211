//! ECR behind a narrow trait that speaks the project's own types, and the real adapter over
//! the AWS SDK. SDK errors are mapped once, in [`map_sdk_error`].

use crate::identity::Target;
use crate::text::{error_chain, quote, shorten};
use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An in-memory ECR with fault switches, for tests and benchmarks.
#[cfg(feature = "test-util")]
pub mod memory;

/// Attempts per ECR operation: the SDK's standard retry mode, which retries throttling,
/// 5xx and attempts that time out (CONTRACT 7).
pub const SDK_MAX_ATTEMPTS: u32 = 3;
/// How long one attempt may take before the SDK abandons and retries it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest part of ECR's own message a Reason quotes.
const MAX_ECR_MESSAGE: usize = 300;

/// A policy as ECR holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePolicy {
    /// The account that owns the registry.
    pub registry_id: String,
    pub text: String,
}

/// A registry's policy scope (CONTRACT 10): under V1 a registry policy may grant only the
/// replication and pull-through-cache actions; under V2 any ECR action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyScope {
    V1,
    V2,
}

/// The account setting that holds the registry policy scope.
pub const POLICY_SCOPE_SETTING: &str = "REGISTRY_POLICY_SCOPE";

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    /// The policy, or the repository, was already gone.
    AlreadyGone,
}

/// ECR's answers that the lifecycle must act on, in a CloudFormation user's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcrError {
    #[error("ECR rejected the policy: {}", shorten(.message, MAX_ECR_MESSAGE))]
    InvalidPolicy { message: String },
    #[error("ECR refused {operation}: {}", shorten(.message, MAX_ECR_MESSAGE))]
    InvalidParameter {
        operation: &'static str,
        message: String,
    },
    #[error(
        "repository {} does not exist in {region}; create it first (an AWS::ECR::Repository \
         in the same stack, passed with !Ref, is created before the policy)",
        quote(.name)
    )]
    RepositoryNotFound { name: String, region: String },
    #[error(
        "repository creation template {} does not exist in {region} (it was deleted meanwhile)",
        quote(.prefix)
    )]
    TemplateNotFound { prefix: String, region: String },
    #[error(
        "ECR denied {operation}: {}; the function's execution role needs \
         ecr:{operation} (see IAM permissions in the README)",
        shorten(.message, MAX_ECR_MESSAGE)
    )]
    AccessDenied {
        operation: &'static str,
        message: String,
    },
    #[error(
        "ECR {operation} failed after retries: {detail}; this is usually temporary, so retry \
         the stack operation"
    )]
    Unavailable {
        operation: &'static str,
        detail: String,
    },
    /// Throttling that outlasted the SDK's retries (and a prefix statement's backoff); it
    /// reads as [`EcrError::Unavailable`] does.
    #[error(
        "ECR {operation} failed after retries: {detail}; this is usually temporary, so retry \
         the stack operation"
    )]
    Throttled {
        operation: &'static str,
        detail: String,
    },
    #[error("ECR {operation} failed with {}: {}", quote(.code), shorten(.message, MAX_ECR_MESSAGE))]
    Other {
        operation: &'static str,
        code: String,
        message: String,
    },
}

impl EcrError {
    /// The repository, or the creation template, is gone: it holds no policy any more.
    pub fn target_gone(&self) -> bool {
        matches!(
            self,
            EcrError::RepositoryNotFound { .. } | EcrError::TemplateNotFound { .. }
        )
    }

    /// ECR answered "too many requests" (after the SDK's own retries): worth another try
    /// after a pause.
    pub fn throttled(&self) -> bool {
        matches!(self, EcrError::Throttled { .. })
    }

    /// No answer came that says what became of the call (a 5xx, a timeout, throttling after
    /// an earlier attempt timed out): a write may still have landed.
    pub fn unanswered(&self) -> bool {
        matches!(
            self,
            EcrError::Unavailable { .. } | EcrError::Throttled { .. }
        )
    }

    /// ECR's answers to a valid policy whose principals IAM does not know yet (CONTRACT 7).
    pub fn may_be_iam_propagation(&self) -> bool {
        match self {
            EcrError::InvalidPolicy { message } => {
                let m = message.to_ascii_lowercase();
                (m.contains("invalid") && m.contains("policy provided"))
                    || m.contains("principal not found")
                    || m.contains("invalid principal")
            }
            _ => false,
        }
    }
}

/// The ECR operations the lifecycle needs, one target at a time.
pub trait PolicyStore: Send + Sync {
    /// The live policy, or `None` when there is none.
    fn get(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Option<LivePolicy>, EcrError>> + Send;

    /// Writes `policy_text` and returns the registry id it was written to.
    fn put(
        &self,
        target: &Target,
        policy_text: &str,
        force: bool,
    ) -> impl Future<Output = Result<String, EcrError>> + Send;

    /// Deletes the policy. `registry_id` pins repository deletes to the account named in the
    /// PhysicalResourceId.
    fn delete(
        &self,
        target: &Target,
        registry_id: Option<&str>,
    ) -> impl Future<Output = Result<Deleted, EcrError>> + Send;

    /// The registry's policy scope in `region` (`GetAccountSetting`).
    fn policy_scope(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<PolicyScope, EcrError>> + Send;

    /// The names of every repository in `region` (`DescribeRepositories`, every page).
    fn repositories(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<Vec<String>, EcrError>> + Send;

    /// The prefixes of every repository creation template in `region`
    /// (`DescribeRepositoryCreationTemplates`, every page), as ECR lists them.
    fn templates(&self, region: &str)
    -> impl Future<Output = Result<Vec<String>, EcrError>> + Send;
}

impl<T: PolicyStore> PolicyStore for Arc<T> {
    fn get(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Option<LivePolicy>, EcrError>> + Send {
        (**self).get(target)
    }
    fn put(
        &self,
        target: &Target,
        policy_text: &str,
        force: bool,
    ) -> impl Future<Output = Result<String, EcrError>> + Send {
        (**self).put(target, policy_text, force)
    }
    fn delete(
        &self,
        target: &Target,
        registry_id: Option<&str>,
    ) -> impl Future<Output = Result<Deleted, EcrError>> + Send {
        (**self).delete(target, registry_id)
    }
    fn policy_scope(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<PolicyScope, EcrError>> + Send {
        (**self).policy_scope(region)
    }
    fn repositories(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<Vec<String>, EcrError>> + Send {
        (**self).repositories(region)
    }
    fn templates(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<Vec<String>, EcrError>> + Send {
        (**self).templates(region)
    }
}

type ClientFactory = Box<dyn Fn(&str) -> Client + Send + Sync>;

/// The real adapter: one SDK client per region, built on first use and reused across
/// invocations.
pub struct SdkEcr {
    factory: ClientFactory,
    clients: Mutex<HashMap<String, Client>>,
}

impl SdkEcr {
    /// Clients built from the shared SDK configuration (credentials, retry mode, the
    /// `AWS_ENDPOINT_URL*` overrides), with the region replaced.
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        let config = config.clone();
        Self::new(move |region| {
            let conf = aws_sdk_ecr::config::Builder::from(&config)
                .region(aws_sdk_ecr::config::Region::new(region.to_owned()))
                .retry_config(
                    aws_sdk_ecr::config::retry::RetryConfig::standard()
                        .with_max_attempts(SDK_MAX_ATTEMPTS),
                )
                // A stuck attempt is abandoned and retried by the SDK's standard retry
                // mode; the deadline guard still bounds the whole request.
                .timeout_config(
                    aws_sdk_ecr::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(CONNECT_TIMEOUT)
                        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                        .build(),
                )
                .build();
            Client::from_conf(conf)
        })
    }

    /// Clients from any factory (tests hand in a mocked client).
    pub fn new(factory: impl Fn(&str) -> Client + Send + Sync + 'static) -> Self {
        Self {
            factory: Box::new(factory),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: &str) -> Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.to_owned())
            .or_insert_with(|| (self.factory)(region))
            .clone()
    }
}

/// How one SDK error reads to the lifecycle.
#[derive(Debug)]
enum Fault {
    PolicyNotFound,
    RepositoryNotFound,
    TemplateNotFound,
    Error(EcrError),
}

/// What an SDK error says, read once: ECR's error code, its message, the HTTP status.
struct Answer {
    code: String,
    message: String,
    status: Option<u16>,
    /// Whether ECR answered (a service error), rather than the call failing on the way.
    service: bool,
}

fn map_sdk_error<E>(
    operation: &'static str,
    err: SdkError<E, aws_sdk_ecr::config::http::HttpResponse>,
) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = match &err {
        SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
        SdkError::ResponseError(response) => Some(response.raw().status().as_u16()),
        _ => None,
    };
    let answer = Answer {
        code: err.code().unwrap_or_default().to_owned(),
        message: err
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| error_chain(&err)),
        status,
        service: matches!(err, SdkError::ServiceError(_)),
    };
    classify(operation, answer, || error_chain(&err))
}

/// How ECR's answer reads to the lifecycle; `chain` describes a failure with no status.
fn classify(operation: &'static str, answer: Answer, chain: impl FnOnce() -> String) -> Fault {
    let Answer {
        code,
        message,
        status,
        service,
    } = answer;
    let write = operation.starts_with("Put")
        || operation.starts_with("Set")
        || operation == UPDATE_TEMPLATE;
    match code.as_str() {
        "RegistryPolicyNotFoundException" | "RepositoryPolicyNotFoundException" => {
            Fault::PolicyNotFound
        }
        "RepositoryNotFoundException" => Fault::RepositoryNotFound,
        "TemplateNotFoundException" => Fault::TemplateNotFound,
        "InvalidParameterException" | "ValidationException" if write => {
            Fault::Error(EcrError::InvalidPolicy { message })
        }
        "InvalidParameterException" | "ValidationException" => {
            Fault::Error(EcrError::InvalidParameter { operation, message })
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException" => {
            Fault::Error(EcrError::AccessDenied { operation, message })
        }
        _ if is_throttle(&code) => Fault::Error(EcrError::Throttled {
            operation,
            detail: match status {
                Some(status) => format!("HTTP {status}: {message}"),
                None => chain(),
            },
        }),
        _ if service && status.is_some_and(|s| s < 500) => Fault::Error(EcrError::Other {
            operation,
            code,
            message,
        }),
        _ => Fault::Error(EcrError::Unavailable {
            operation,
            detail: match status {
                Some(status) => format!("HTTP {status}: {message}"),
                None => chain(),
            },
        }),
    }
}

fn is_throttle(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "LimitExceededException"
    )
}

fn unexpected(operation: &'static str, fault: Fault) -> EcrError {
    match fault {
        Fault::Error(e) => e,
        Fault::PolicyNotFound | Fault::RepositoryNotFound | Fault::TemplateNotFound => {
            EcrError::Other {
                operation,
                code: "NotFound".into(),
                message: "ECR answered not found where it should not".into(),
            }
        }
    }
}

impl PolicyStore for SdkEcr {
    async fn get(&self, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        let client = self.client(target.region());
        match target {
            Target::Registry { .. } => {
                const OP: &str = "GetRegistryPolicy";
                match client.get_registry_policy().send().await {
                    Ok(out) => Ok(out.policy_text.map(|text| LivePolicy {
                        registry_id: out.registry_id.unwrap_or_default(),
                        text,
                    })),
                    Err(e) => match map_sdk_error(OP, e) {
                        Fault::PolicyNotFound => Ok(None),
                        other => Err(unexpected(OP, other)),
                    },
                }
            }
            Target::Repository { region, name } => {
                const OP: &str = "GetRepositoryPolicy";
                match client
                    .get_repository_policy()
                    .repository_name(name)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.policy_text.map(|text| LivePolicy {
                        registry_id: out.registry_id.unwrap_or_default(),
                        text,
                    })),
                    Err(e) => match map_sdk_error(OP, e) {
                        Fault::PolicyNotFound => Ok(None),
                        Fault::RepositoryNotFound => Err(EcrError::RepositoryNotFound {
                            name: name.clone(),
                            region: region.clone(),
                        }),
                        other => Err(unexpected(OP, other)),
                    },
                }
            }
            Target::Template { region, prefix } => {
                let (registry_id, text) = read_template(&client, region, prefix).await?;
                Ok(text.map(|text| LivePolicy { registry_id, text }))
            }
        }
    }

    async fn put(
        &self,
        target: &Target,
        policy_text: &str,
        force: bool,
    ) -> Result<String, EcrError> {
        let client = self.client(target.region());
        match target {
            Target::Registry { .. } => {
                const OP: &str = "PutRegistryPolicy";
                client
                    .put_registry_policy()
                    .policy_text(policy_text)
                    .send()
                    .await
                    .map(|out| out.registry_id.unwrap_or_default())
                    .map_err(|e| unexpected(OP, map_sdk_error(OP, e)))
            }
            Target::Repository { region, name } => {
                const OP: &str = "SetRepositoryPolicy";
                match client
                    .set_repository_policy()
                    .repository_name(name)
                    .policy_text(policy_text)
                    .force(force)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.registry_id.unwrap_or_default()),
                    Err(e) => Err(match map_sdk_error(OP, e) {
                        Fault::RepositoryNotFound => EcrError::RepositoryNotFound {
                            name: name.clone(),
                            region: region.clone(),
                        },
                        other => unexpected(OP, other),
                    }),
                }
            }
            Target::Template { region, prefix } => {
                update_template(&client, region, prefix, policy_text).await
            }
        }
    }

    async fn delete(
        &self,
        target: &Target,
        registry_id: Option<&str>,
    ) -> Result<Deleted, EcrError> {
        let client = self.client(target.region());
        let result = match target {
            Target::Registry { .. } => client
                .delete_registry_policy()
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_sdk_error("DeleteRegistryPolicy", e)),
            Target::Repository { name, .. } => client
                .delete_repository_policy()
                .repository_name(name)
                .set_registry_id(registry_id.map(str::to_owned))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_sdk_error("DeleteRepositoryPolicy", e)),
            // A template keeps its other settings: its policy is emptied, as ECR allows
            // (`repositoryPolicy` is 0 to 10,240 characters).
            Target::Template { region, prefix } => {
                return match update_template(&client, region, prefix, "").await {
                    Ok(_) => Ok(Deleted::Removed),
                    Err(EcrError::TemplateNotFound { .. }) => Ok(Deleted::AlreadyGone),
                    Err(e) => Err(e),
                };
            }
        };
        match result {
            Ok(()) => Ok(Deleted::Removed),
            Err(Fault::PolicyNotFound | Fault::RepositoryNotFound | Fault::TemplateNotFound) => {
                Ok(Deleted::AlreadyGone)
            }
            Err(Fault::Error(e)) => Err(e),
        }
    }

    async fn policy_scope(&self, region: &str) -> Result<PolicyScope, EcrError> {
        const OP: &str = "GetAccountSetting";
        // One short attempt: an unreadable setting only means the IAM retry runs, and the
        // SDK's retries of it would eat into that retry's time.
        let once = aws_sdk_ecr::config::Builder::default()
            .retry_config(aws_sdk_ecr::config::retry::RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                aws_sdk_ecr::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .build(),
            );
        let out = self
            .client(region)
            .get_account_setting()
            .name(POLICY_SCOPE_SETTING)
            .customize()
            .config_override(once)
            .send()
            .await
            .map_err(|e| unexpected(OP, map_sdk_error(OP, e)))?;
        match out.value() {
            Some("V1") => Ok(PolicyScope::V1),
            Some("V2") => Ok(PolicyScope::V2),
            other => Err(EcrError::Other {
                operation: OP,
                code: "UnexpectedValue".into(),
                message: format!("{POLICY_SCOPE_SETTING} is {other:?}, not V1 or V2"),
            }),
        }
    }

    async fn repositories(&self, region: &str) -> Result<Vec<String>, EcrError> {
        const OP: &str = "DescribeRepositories";
        let client = self.client(region);
        every_page(|token| async {
            let out = client
                .describe_repositories()
                .max_results(DESCRIBE_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| unexpected(OP, map_sdk_error(OP, e)))?;
            let names = out
                .repositories()
                .iter()
                .filter_map(|r| r.repository_name().map(str::to_owned))
                .collect();
            Ok((names, out.next_token))
        })
        .await
    }

    async fn templates(&self, region: &str) -> Result<Vec<String>, EcrError> {
        const OP: &str = DESCRIBE_TEMPLATES;
        let client = self.client(region);
        every_page(|token| async {
            let out = client
                .describe_repository_creation_templates()
                .max_results(DESCRIBE_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| unexpected(OP, map_sdk_error(OP, e)))?;
            let prefixes = out
                .repository_creation_templates()
                .iter()
                .filter_map(|t| t.prefix().map(str::to_owned))
                .collect();
            Ok((prefixes, out.next_token))
        })
        .await
    }
}

/// Every page of a listing: `page` is asked with the token the previous page gave (none
/// first) and answers its items and the next token.
async fn every_page<F, Fut>(mut page: F) -> Result<Vec<String>, EcrError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, Option<String>), EcrError>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (more, next) = page(token).await?;
        items.extend(more);
        // A token that does not move on would page forever.
        match next {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(items),
        }
    }
}

/// Repositories (and creation templates) asked for per page: the most ECR gives.
const DESCRIBE_PAGE: i32 = 1000;

const UPDATE_TEMPLATE: &str = "UpdateRepositoryCreationTemplate";
const DESCRIBE_TEMPLATES: &str = "DescribeRepositoryCreationTemplates";

fn template_not_found(region: &str, prefix: &str) -> EcrError {
    EcrError::TemplateNotFound {
        prefix: prefix.to_owned(),
        region: region.to_owned(),
    }
}

/// A creation template's registry id and `repositoryPolicy` (`None` when it has none, or an
/// empty one).
async fn read_template(
    client: &Client,
    region: &str,
    prefix: &str,
) -> Result<(String, Option<String>), EcrError> {
    let out = match client
        .describe_repository_creation_templates()
        .prefixes(prefix)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return Err(match map_sdk_error(DESCRIBE_TEMPLATES, e) {
                Fault::TemplateNotFound => template_not_found(region, prefix),
                other => unexpected(DESCRIBE_TEMPLATES, other),
            });
        }
    };
    let template = out
        .repository_creation_templates()
        .iter()
        .find(|t| t.prefix() == Some(prefix))
        .ok_or_else(|| template_not_found(region, prefix))?;
    let text = template
        .repository_policy()
        .filter(|text| !text.trim().is_empty())
        .map(str::to_owned);
    Ok((out.registry_id.unwrap_or_default(), text))
}

/// Sets a creation template's `repositoryPolicy` and nothing else: ECR's update changes only
/// the fields it is given, so the template's other settings (and its `customRoleArn`, which
/// would need `iam:PassRole` to be sent again) stay as they are. The registry id.
async fn update_template(
    client: &Client,
    region: &str,
    prefix: &str,
    policy_text: &str,
) -> Result<String, EcrError> {
    match client
        .update_repository_creation_template()
        .prefix(prefix)
        .repository_policy(policy_text)
        .send()
        .await
    {
        Ok(out) => Ok(out.registry_id.unwrap_or_default()),
        Err(e) => Err(match map_sdk_error(UPDATE_TEMPLATE, e) {
            Fault::TemplateNotFound => template_not_found(region, prefix),
            other => unexpected(UPDATE_TEMPLATE, other),
        }),
    }
}

/// What one request asked of ECR: calls by kind and the time spent waiting on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub reads: u32,
    pub writes: u32,
    pub deletes: u32,
    pub waited: Duration,
}

/// Counts and times the calls made through it, for the logs and the benchmark.
pub struct Metered<'a, S> {
    inner: &'a S,
    stats: Mutex<CallStats>,
}

impl<'a, S: PolicyStore> Metered<'a, S> {
    pub fn new(inner: &'a S) -> Self {
        Self {
            inner,
            stats: Mutex::new(CallStats::default()),
        }
    }

    pub fn stats(&self) -> CallStats {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallStats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn timed<T>(&self, count: fn(&mut CallStats), call: impl Future<Output = T>) -> T {
        // Counted before the call, so that a call abandoned at the deadline counts too.
        count(&mut self.lock());
        let started = std::time::Instant::now();
        let result = call.await;
        self.lock().waited += started.elapsed();
        result
    }
}

impl<S: PolicyStore> PolicyStore for Metered<'_, S> {
    async fn get(&self, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        self.timed(|s| s.reads += 1, self.inner.get(target)).await
    }

    async fn put(
        &self,
        target: &Target,
        policy_text: &str,
        force: bool,
    ) -> Result<String, EcrError> {
        self.timed(
            |s| s.writes += 1,
            self.inner.put(target, policy_text, force),
        )
        .await
    }

    async fn delete(
        &self,
        target: &Target,
        registry_id: Option<&str>,
    ) -> Result<Deleted, EcrError> {
        self.timed(|s| s.deletes += 1, self.inner.delete(target, registry_id))
            .await
    }

    async fn policy_scope(&self, region: &str) -> Result<PolicyScope, EcrError> {
        self.timed(|s| s.reads += 1, self.inner.policy_scope(region))
            .await
    }

    /// Counted as one read, whatever its pages.
    async fn repositories(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.timed(|s| s.reads += 1, self.inner.repositories(region))
            .await
    }

    /// Counted as one read, whatever its pages.
    async fn templates(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.timed(|s| s.reads += 1, self.inner.templates(region))
            .await
    }
}

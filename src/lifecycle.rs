//! Create, Update and Delete (CONTRACT 4): decisions as plain functions of the request and
//! the live policy, then a thin layer that carries them out against a [`PolicyStore`].

use crate::ecr::{Deleted, EcrError, LivePolicy, PolicyStore};
use crate::error::{Failure, Undo, V1_REGISTRY_ACTIONS};
use crate::event::{Desired, PropertyError, Request, Target};
use crate::policy::Policy;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::time::Instant;

/// The prefix of the PhysicalResourceId a failed Create answers with.
pub const FAILED_CREATE_PREFIX: &str = "failed-create:";
const REGISTRY_PREFIX: &str = "registry-policy:";

/// What a PhysicalResourceId names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// A resource this provider created, with the account that owns it.
    Managed { target: Target, account: String },
    /// The id of a failed Create.
    FailedCreate,
    /// Not an id this provider issues.
    Foreign,
}

/// Reads a PhysicalResourceId back into the target it names.
pub fn parse_physical_id(id: &str) -> Issued {
    if id.starts_with(FAILED_CREATE_PREFIX) {
        return Issued::FailedCreate;
    }
    let account_ok = |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = id.strip_prefix(REGISTRY_PREFIX) {
        if let Some((region, account)) = rest.split_once(':') {
            if account_ok(account) && crate::event::valid_region(region) {
                return Issued::Managed {
                    target: Target::Registry {
                        region: region.to_owned(),
                    },
                    account: account.to_owned(),
                };
            }
        }
        return Issued::Foreign;
    }
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    if let ["arn", partition, "ecr", region, account, resource] = parts.as_slice() {
        if let Some(name) = resource.strip_prefix("repository/") {
            if partition.starts_with("aws")
                && crate::event::valid_region(region)
                && account_ok(account)
                && crate::event::valid_repository_name(name)
            {
                return Issued::Managed {
                    target: Target::Repository {
                        region: (*region).to_owned(),
                        name: name.to_owned(),
                    },
                    account: (*account).to_owned(),
                };
            }
        }
    }
    Issued::Foreign
}

/// The PhysicalResourceId of a managed target.
pub fn physical_id(target: &Target, account: &str, partition: &str) -> String {
    match target {
        Target::Registry { region } => format!("{REGISTRY_PREFIX}{region}:{account}"),
        Target::Repository { region, name } => repository_arn(partition, region, account, name),
    }
}

fn repository_arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:ecr:{region}:{account}:repository/{name}")
}

/// The partition of the stack's ARN, else the one the region belongs to.
pub fn partition(stack_id: &str, region: &str) -> String {
    match stack_id.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, ..] if partition.starts_with("aws") => (*partition).to_owned(),
        _ if region.starts_with("cn-") => "aws-cn".to_owned(),
        _ if region.starts_with("us-gov-") => "aws-us-gov".to_owned(),
        _ => "aws".to_owned(),
    }
}

/// What to do with a target, given its live policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Write the desired policy.
    Write { adopted: bool },
    /// The live policy already grants the same thing: no write.
    Keep { adopted: bool },
    /// A different policy is there and `Adopt` is not set.
    Refuse,
}

/// Create on a target (also an Update that moves to a new target).
pub fn plan_create(desired: &Desired, live: Option<&LivePolicy>) -> Plan {
    match live {
        None => Plan::Write { adopted: false },
        Some(live) if equivalent(&desired.policy, live) => Plan::Keep {
            adopted: desired.adopt,
        },
        Some(_) if desired.adopt => Plan::Write { adopted: true },
        Some(_) => Plan::Refuse,
    }
}

/// Update on the target the resource already manages.
pub fn plan_update(desired: &Desired, live: Option<&LivePolicy>) -> Plan {
    match live {
        Some(live) if equivalent(&desired.policy, live) => Plan::Keep { adopted: false },
        _ => Plan::Write { adopted: false },
    }
}

fn equivalent(desired: &Policy, live: &LivePolicy) -> bool {
    Policy::from_live(&live.text).is_some_and(|live| desired.equivalent(&live))
}

/// What a Delete acts on: only its PhysicalResourceId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletePlan {
    /// A failed-create id or an id this provider never issues: touch nothing.
    Nothing,
    Delete {
        target: Target,
        account: String,
    },
}

pub fn plan_delete(physical_id: &str) -> DeletePlan {
    match parse_physical_id(physical_id) {
        Issued::Managed { target, account } => DeletePlan::Delete { target, account },
        Issued::FailedCreate | Issued::Foreign => DeletePlan::Nothing,
    }
}

/// Settings the lifecycle needs from the function's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_region: Option<String>,
    pub iam_propagation_timeout: Duration,
    /// First pause between IAM-propagation retries; it doubles up to 16 times this.
    pub iam_retry_base: Duration,
}

/// A request carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub physical_id: String,
    /// The response's `Data`.
    pub data: Map<String, Value>,
    /// Whether ECR was written to (a write or a delete).
    pub changed: bool,
}

/// Carries out one decoded request. `deadline` bounds the IAM-propagation retry.
pub async fn execute<S: PolicyStore>(
    store: &S,
    request: &Request,
    stack_id: &str,
    settings: &Settings,
    deadline: Instant,
) -> Result<Applied, Failure> {
    let cx = Context {
        stack_id,
        settings,
        deadline,
    };
    match request {
        Request::Create {
            resource_type,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, settings)?;
            create(store, &desired, &cx).await
        }
        Request::Update {
            resource_type,
            physical_id,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, settings)?;
            match parse_physical_id(physical_id) {
                Issued::Managed { target, .. } if target == desired.target => {
                    let live = store.get(&desired.target).await?;
                    let plan = plan_update(&desired, live.as_ref());
                    let applied = carry_out(store, &desired, live, plan, Write::Plain, &cx).await?;
                    Ok(Applied {
                        // The id does not change while the target stays.
                        physical_id: physical_id.clone(),
                        ..applied
                    })
                }
                Issued::Managed { .. } => create(store, &desired, &cx).await,
                Issued::FailedCreate => Err(Failure::UpdateOfFailedCreate(physical_id.clone())),
                Issued::Foreign => Err(Failure::ForeignPhysicalId(physical_id.clone())),
            }
        }
        Request::Delete { physical_id } => match plan_delete(physical_id) {
            DeletePlan::Nothing => Ok(Applied {
                physical_id: physical_id.clone(),
                data: Map::new(),
                changed: false,
            }),
            DeletePlan::Delete { target, account } => {
                let registry_id = matches!(target, Target::Repository { .. }).then_some(account);
                let deleted = store.delete(&target, registry_id.as_deref()).await?;
                Ok(Applied {
                    physical_id: physical_id.clone(),
                    data: Map::new(),
                    changed: deleted == Deleted::Removed,
                })
            }
        },
    }
}

fn desired_state(
    resource_type: &str,
    properties: &Value,
    settings: &Settings,
) -> Result<Desired, PropertyError> {
    crate::event::desired_state(
        resource_type,
        properties,
        settings.default_region.as_deref(),
    )
}

/// What every step of one request needs.
struct Context<'a> {
    stack_id: &'a str,
    settings: &'a Settings,
    /// When the work must be done (the guard's); bounds the retries and the undo.
    deadline: Instant,
}

async fn create<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    cx: &Context<'_>,
) -> Result<Applied, Failure> {
    let live = store.get(&desired.target).await?;
    let plan = plan_create(desired, live.as_ref());
    carry_out(store, desired, live, plan, Write::OrUndo, cx).await
}

/// How a write is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// An Update of the target the resource already manages: a failure is followed by
    /// CloudFormation's rollback, which writes the old policy again.
    Plain,
    /// A Create (or the Create half of a replacement): if it fails, ECR must be left as it
    /// was found, so a write whose outcome is unclear is undone.
    OrUndo,
}

async fn carry_out<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    live: Option<LivePolicy>,
    plan: Plan,
    write: Write,
    cx: &Context<'_>,
) -> Result<Applied, Failure> {
    let (registry_id, adopted, changed) = match plan {
        Plan::Refuse => {
            return Err(Failure::AlreadyHasPolicy {
                target: desired.target.describe(),
            });
        }
        Plan::Keep { adopted } => (
            live.map(|l| l.registry_id).unwrap_or_default(),
            adopted,
            false,
        ),
        Plan::Write { adopted } => {
            let registry_id = match write {
                Write::Plain => {
                    write_with_propagation_retry(store, desired, cx.settings, cx.deadline).await?
                }
                Write::OrUndo => {
                    write_or_undo(store, desired, live.as_ref(), cx.settings, cx.deadline).await?
                }
            };
            (registry_id, adopted, true)
        }
    };
    let region = desired.target.region();
    let partition = partition(cx.stack_id, region);
    let account = if registry_id.is_empty() {
        account_of_stack(cx.stack_id)
    } else {
        registry_id
    };
    let mut data = Map::new();
    data.insert("RegistryId".into(), account.clone().into());
    data.insert("Region".into(), region.into());
    data.insert("Adopted".into(), adopted.to_string().into());
    data.insert("PolicyText".into(), desired.policy.compact().into());
    if let Target::Repository { region, name } = &desired.target {
        data.insert("RepositoryName".into(), name.clone().into());
        data.insert(
            "RepositoryArn".into(),
            repository_arn(&partition, region, &account, name).into(),
        );
    }
    Ok(Applied {
        physical_id: physical_id(&desired.target, &account, &partition),
        data,
        changed,
    })
}

/// The least and most time kept back from a Create's write to undo it.
const UNDO_RESERVE_MIN: Duration = Duration::from_millis(250);
const UNDO_RESERVE_MAX: Duration = Duration::from_secs(5);

/// Writes for a Create. A write that ECR refused changed nothing; one whose outcome is
/// unclear (ECR unreachable or failing, or no answer in the time allowed) may have landed,
/// so the time kept back puts back what was there before.
async fn write_or_undo<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    before: Option<&LivePolicy>,
    settings: &Settings,
    deadline: Instant,
) -> Result<String, Failure> {
    let now = Instant::now();
    let reserve =
        (deadline.saturating_duration_since(now) / 4).clamp(UNDO_RESERVE_MIN, UNDO_RESERVE_MAX);
    let write_until = deadline.checked_sub(reserve).unwrap_or(now).max(now);
    let writing = write_with_propagation_retry(store, desired, settings, write_until);
    let failure = match tokio::time::timeout_at(write_until, writing).await {
        Ok(Ok(registry_id)) => return Ok(registry_id),
        Ok(Err(failure @ Failure::Ecr(EcrError::Unavailable { .. }))) => failure,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => Failure::TimedOut(write_until - now),
    };
    tracing::warn!(error = %failure, "the write's outcome is unclear; undoing it");
    let undo = undo_write(store, desired, before).await;
    Err(Failure::Undone {
        failure: Box::new(failure),
        undo,
    })
}

/// Puts the target back as it was before a Create's write, if that write landed.
async fn undo_write<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    before: Option<&LivePolicy>,
) -> Undo {
    let landed = match store.get(&desired.target).await {
        Ok(Some(now)) => equivalent(&desired.policy, &now),
        Ok(None) => false,
        Err(e) => return Undo::Unknown(e.to_string()),
    };
    if !landed {
        return Undo::NothingLanded;
    }
    let result = match before {
        None => store
            .delete(&desired.target, None)
            .await
            .map(|_| Undo::Removed),
        Some(previous) => store
            .put(&desired.target, &previous.text, desired.force)
            .await
            .map(|_| Undo::Restored),
    };
    result.unwrap_or_else(|e| Undo::Unknown(e.to_string()))
}

fn account_of_stack(stack_id: &str) -> String {
    stack_id.split(':').nth(4).unwrap_or_default().to_owned()
}

/// Writes the policy, retrying ECR's rejections that IAM's eventual consistency can cause
/// until `IAM_PROPAGATION_TIMEOUT_SECONDS` or the deadline, whichever comes first.
async fn write_with_propagation_retry<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    settings: &Settings,
    deadline: Instant,
) -> Result<String, Failure> {
    let started = Instant::now();
    let give_up = deadline.min(started + settings.iam_propagation_timeout);
    let mut pause = settings.iam_retry_base;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match store
            .put(&desired.target, desired.policy.compact(), desired.force)
            .await
        {
            Ok(registry_id) => return Ok(registry_id),
            Err(error) => error,
        };
        let retryable = error.may_be_iam_propagation();
        let jittered = pause + pause.mul_f64(fastrand::f64() * 0.5);
        if retryable && Instant::now() + jittered < give_up {
            tracing::warn!(attempt = attempts, error = %error, "ECR rejected the policy; retrying in case IAM has not propagated a principal yet");
            tokio::time::sleep(jittered).await;
            pause = (pause * 2).min(settings.iam_retry_base * 16);
            continue;
        }
        return Err(rejection(desired, error, attempts, started.elapsed()));
    }
}

fn rejection(desired: &Desired, error: EcrError, attempts: u32, waited: Duration) -> Failure {
    if !matches!(error, EcrError::InvalidPolicy { .. }) {
        return Failure::Ecr(error);
    }
    let v1_actions = match desired.target {
        Target::Registry { .. } => {
            let mut outside: Vec<String> = desired
                .policy
                .actions()
                .into_iter()
                .filter(|a| !V1_REGISTRY_ACTIONS.contains(a))
                .map(str::to_owned)
                .collect();
            outside.dedup();
            outside
        }
        Target::Repository { .. } => Vec::new(),
    };
    Failure::PolicyRejected {
        error,
        attempts,
        waited,
        v1_actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCOUNT: &str = "123456789012";

    fn desired(target: Target, adopt: bool) -> Desired {
        Desired {
            target,
            policy: Policy::from_property(&json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":["ecr:ReplicateImage","ecr:CreateRepository"]}]}))
                .expect("valid"),
            adopt,
            force: false,
        }
    }

    fn live(text: &str) -> LivePolicy {
        LivePolicy {
            registry_id: ACCOUNT.into(),
            text: text.into(),
        }
    }

    fn registry() -> Target {
        Target::Registry {
            region: "us-west-2".into(),
        }
    }

    const REORDERED: &str = r#"{"Statement":[{"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:root"]},"Effect":"Allow"}],"Version":"2012-10-17"}"#;
    const OTHER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage"}]}"#;

    #[test]
    fn create_writes_when_nothing_is_live() {
        assert_eq!(
            plan_create(&desired(registry(), false), None),
            Plan::Write { adopted: false }
        );
    }

    #[test]
    fn create_keeps_an_equivalent_live_policy() {
        assert_eq!(
            plan_create(&desired(registry(), false), Some(&live(REORDERED))),
            Plan::Keep { adopted: false }
        );
    }

    #[test]
    fn create_refuses_a_different_policy_without_adopt_and_takes_it_with_adopt() {
        assert_eq!(
            plan_create(&desired(registry(), false), Some(&live(OTHER))),
            Plan::Refuse
        );
        assert_eq!(
            plan_create(&desired(registry(), true), Some(&live(OTHER))),
            Plan::Write { adopted: true }
        );
    }

    #[test]
    fn update_writes_unless_equivalent_and_rewrites_a_deleted_policy() {
        let d = desired(registry(), false);
        assert_eq!(
            plan_update(&d, Some(&live(REORDERED))),
            Plan::Keep { adopted: false }
        );
        assert_eq!(
            plan_update(&d, Some(&live(OTHER))),
            Plan::Write { adopted: false }
        );
        assert_eq!(plan_update(&d, None), Plan::Write { adopted: false });
    }

    #[test]
    fn live_text_that_is_not_json_is_never_equivalent() {
        assert_eq!(
            plan_update(&desired(registry(), false), Some(&live("garbage"))),
            Plan::Write { adopted: false }
        );
    }

    #[test]
    fn physical_ids_round_trip() {
        let repo = Target::Repository {
            region: "eu-central-1".into(),
            name: "team/app".into(),
        };
        for target in [registry(), repo] {
            let id = physical_id(&target, ACCOUNT, "aws");
            assert!(id.len() <= 1024);
            assert_eq!(
                parse_physical_id(&id),
                Issued::Managed {
                    target,
                    account: ACCOUNT.into()
                }
            );
        }
        assert_eq!(
            physical_id(&registry(), ACCOUNT, "aws"),
            "registry-policy:us-west-2:123456789012"
        );
    }

    #[test]
    fn delete_touches_nothing_for_ids_it_did_not_issue() {
        for id in [
            "failed-create:5f0c",
            "",
            "registry-policy:nowhere:1",
            "arn:aws:s3:::bucket",
            "arn:aws:ecr:us-east-1:123456789012:repository/UPPER",
            "my-policy",
        ] {
            assert_eq!(plan_delete(id), DeletePlan::Nothing, "{id}");
        }
    }

    #[test]
    fn partition_comes_from_the_stack_or_the_region() {
        assert_eq!(
            partition(
                "arn:aws-cn:cloudformation:cn-north-1:1:stack/s/x",
                "cn-north-1"
            ),
            "aws-cn"
        );
        assert_eq!(partition("", "us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("", "us-east-1"), "aws");
    }
}

//! The Create/Update/Delete decisions (CONTRACT 4), as plain functions of the request and the
//! live policy: no I/O here. [`crate::lifecycle`] carries them out.

use crate::ecr::LivePolicy;
use crate::error::Failure;
use crate::event::Desired;
use crate::identity::{PhysicalId, Target};
use crate::policy::Policy;

/// How a request treats its target, decided from the event alone, before ECR is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approach {
    /// A Create, or the Create half of a replacement (an Update onto another target):
    /// `Adopt` rules apply, and a failure must leave ECR as it was found.
    Create,
    /// An Update of the target the resource already manages: the PhysicalResourceId is
    /// kept, and a failure is followed by CloudFormation's rollback.
    UpdateInPlace,
}

/// An Update: the same target (in place), another one (a replacement, acted on as a
/// Create), or an id it cannot update.
pub fn approach_update(physical_id: &str, desired: &Desired) -> Result<Approach, Failure> {
    match PhysicalId::parse(physical_id) {
        PhysicalId::Policy { target, .. } if target == desired.target => {
            Ok(Approach::UpdateInPlace)
        }
        PhysicalId::Policy { .. } => Ok(Approach::Create),
        PhysicalId::FailedCreate => Err(Failure::UpdateOfFailedCreate(physical_id.to_owned())),
        PhysicalId::Statements { .. } | PhysicalId::Foreign => {
            Err(Failure::ForeignPhysicalId(physical_id.to_owned()))
        }
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

/// The plan for a target, by approach.
pub fn plan(approach: Approach, desired: &Desired, live: Option<&LivePolicy>) -> Plan {
    match approach {
        Approach::Create => plan_create(desired, live),
        Approach::UpdateInPlace => plan_update(desired, live),
    }
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

/// Update on the target the resource already manages: a policy deleted out of band is
/// written again.
pub fn plan_update(desired: &Desired, live: Option<&LivePolicy>) -> Plan {
    match live {
        Some(live) if equivalent(&desired.policy, live) => Plan::Keep { adopted: false },
        _ => Plan::Write { adopted: false },
    }
}

/// Whether the live policy grants what `desired` does; live text that is not a JSON object
/// never does.
pub fn equivalent(desired: &Policy, live: &LivePolicy) -> bool {
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
    match PhysicalId::parse(physical_id) {
        PhysicalId::Policy { target, account } => DeletePlan::Delete { target, account },
        PhysicalId::Statements { .. } | PhysicalId::FailedCreate | PhysicalId::Foreign => {
            DeletePlan::Nothing
        }
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
    fn an_update_stays_in_place_on_its_target_and_replaces_onto_another() {
        let d = desired(registry(), true);
        assert_eq!(
            approach_update("registry-policy:us-west-2:123456789012", &d).ok(),
            Some(Approach::UpdateInPlace)
        );
        assert_eq!(
            approach_update("registry-policy:eu-west-1:123456789012", &d).ok(),
            Some(Approach::Create)
        );
        // The replacement is a Create: Adopt applies to what is live there.
        assert_eq!(
            plan(Approach::Create, &d, Some(&live(OTHER))),
            Plan::Write { adopted: true }
        );
        assert_eq!(
            plan(Approach::UpdateInPlace, &d, Some(&live(OTHER))),
            Plan::Write { adopted: false }
        );
    }

    #[test]
    fn an_update_of_a_failed_create_or_a_foreign_id_is_refused() {
        let d = desired(registry(), false);
        let failed = approach_update("failed-create:r1", &d).expect_err("failed create");
        assert!(
            matches!(failed, Failure::UpdateOfFailedCreate(_)),
            "{failed}"
        );
        for id in ["my-policy", "arn:aws:s3:::bucket"] {
            let foreign = approach_update(id, &d).expect_err("foreign");
            assert!(
                matches!(foreign, Failure::ForeignPhysicalId(_)),
                "{foreign}"
            );
        }
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
        assert_eq!(
            plan_delete("registry-policy:us-west-2:123456789012"),
            DeletePlan::Delete {
                target: registry(),
                account: ACCOUNT.into()
            }
        );
    }
}

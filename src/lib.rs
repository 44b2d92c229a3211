//! A CloudFormation custom-resource provider for Amazon ECR registry permission policies and
//! repository policies.
//!
//! The modules, from the bottom layer up; each uses only the layers below it
//! (docs/development.md, "The layers"):
//!
//! 1. [`identity`]: targets, ECR's naming rules, ARNs and PhysicalResourceIds;
//!    [`retry`]: the one backoff-until-a-deadline; [`guard`]: deadline and panic safety;
//!    [`logging`]: JSON log lines; [`text`]: values quoted in a `Reason`, shortened;
//!    [`http`]: the provider's own HTTP calls, through the AWS SDK's connector.
//! 2. [`policy`]: policy documents, limits and equivalence; [`diagnosis`]: the checks that
//!    refuse a policy that can never work, who gets in (public access), and the ECR action
//!    catalog; [`ecr`]: ECR behind a
//!    narrow trait, and the SDK adapter; [`lock`]: the per-policy lease and record, and the
//!    DynamoDB adapter; [`response`]: the response body and `Data`, the `ResponseURL`
//!    allow-list and the PUT; [`relay`]: the function invoking itself to continue.
//! 3. [`event`]: the request, resource types and properties.
//! 4. [`error`]: why a request failed, in the user's words.
//! 5. [`plan`]: the decisions for every resource type, as plain functions.
//! 6. [`lifecycle`]: carries the decisions out against ECR, under the lease.
//!    [`drift`]: out-of-band changes to what the record holds, reported or undone.
//! 7. [`provider`]: one event in: exactly one response out for a custom-resource request,
//!    a drift check for ECR's policy calls and the scheduled sweep.
//!
//! Test support (the in-memory ECR, the fuzz entry points) is compiled only with the
//! `test-util` feature, never into the function.

pub mod diagnosis;
pub mod drift;
pub mod ecr;
pub mod error;
pub mod event;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod http;
pub mod identity;
pub mod lifecycle;
pub mod lock;
pub mod logging;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod relay;
pub mod response;
pub mod retry;
pub mod text;

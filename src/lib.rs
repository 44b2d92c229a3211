//! A CloudFormation custom-resource provider for Amazon ECR registry permission policies and
//! repository policies.
//!
//! - [`event`]: the request, resource types and properties;
//! - [`policy`]: policy documents, limits and equivalence;
//! - [`lifecycle`]: the Create/Update/Delete decisions and their execution;
//! - [`ecr`]: ECR behind a narrow trait, the SDK adapter and an in-memory ECR;
//! - [`response`]: the response body, the `ResponseURL` allow-list and the PUT;
//! - [`guard`]: deadline and panic safety;
//! - [`provider`]: one event in, exactly one response out.

pub mod ecr;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod lifecycle;
pub mod logging;
pub mod policy;
pub mod provider;
pub mod response;

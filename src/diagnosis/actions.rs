//! The catalog of Amazon ECR actions, the one table the action checks read (CONTRACT 10), and
//! what is judged by it: an `ecr:` action that names no ECR action, and the actions of a
//! registry policy that reach beyond a V1 policy scope.

use super::strings;
use crate::policy::statements_of;
use crate::text::{quote, wildcard_match};
use serde_json::{Map, Value};

/// The actions a registry policy may grant while the registry's policy scope is V1
/// (ECR user guide, "Private registry permissions").
pub const V1_REGISTRY_ACTIONS: [&str; 3] = [
    "ecr:ReplicateImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
];

/// Every action of the `ecr:` service prefix.
///
/// Source: the Service Authorization Reference, "Actions, resources, and condition keys for
/// Amazon Elastic Container Registry",
/// <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html>.
/// Read on 2026-11-23 without internet access, so through copies of it:
/// - the page's own opening (stored search copy): the prefix `ecr` and its table layout;
/// - a public repository's constants generated from the reference's programmatic form
///   (`servicereference.us-east-1.amazonaws.com/v1/ecr/ecr.json`): 60 actions, every one
///   below except the five noted;
/// - `cloudtools/awacs`, `awacs/ecr.py` as of commit bd46f9d ("Action Update 2025-50",
///   2025-12-08), also generated from the reference: the same 60 plus
///   `ecr:DescribeRepositoryCreationTemplate`, kept because a policy granting it must never
///   be refused by us (ECR remains the judge of it);
/// - the operations of `aws-sdk-ecr` 1.138 (this project's SDK): every operation is one of
///   the 60 except `ListImageReferrers` (authorised by `ecr:BatchGetImage`, as its API
///   reference says, so not an action) and the four replication-backfill operations, newer
///   than both copies above, listed here as actions of the same names
///   (`ecr:DescribeReplicationBackfillResults`, `ecr:ListReplicationBackfills`,
///   `ecr:StartReplicationBackfill`, `ecr:StopReplicationBackfill`) so that granting them
///   is never refused.
///
/// When a stack names an action that is missing here it is refused with "not an ECR action":
/// add the action, with its source and date, rather than loosening the check.
pub const ECR_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchDeleteImage",
    "ecr:BatchGetImage",
    "ecr:BatchGetRepositoryScanningConfiguration",
    "ecr:BatchImportUpstreamImage",
    "ecr:CompleteLayerUpload",
    "ecr:CreatePullThroughCacheRule",
    "ecr:CreateRepository",
    "ecr:CreateRepositoryCreationTemplate",
    "ecr:DeleteLifecyclePolicy",
    "ecr:DeletePullThroughCacheRule",
    "ecr:DeleteRegistryPolicy",
    "ecr:DeleteRepository",
    "ecr:DeleteRepositoryCreationTemplate",
    "ecr:DeleteRepositoryPolicy",
    "ecr:DeleteSigningConfiguration",
    "ecr:DeregisterPullTimeUpdateExclusion",
    "ecr:DescribeImageReplicationStatus",
    "ecr:DescribeImageScanFindings",
    "ecr:DescribeImageSigningStatus",
    "ecr:DescribeImages",
    "ecr:DescribePullThroughCacheRules",
    "ecr:DescribeRegistry",
    "ecr:DescribeReplicationBackfillResults",
    "ecr:DescribeRepositories",
    "ecr:DescribeRepositoryCreationTemplate",
    "ecr:DescribeRepositoryCreationTemplates",
    "ecr:GetAccountSetting",
    "ecr:GetAuthorizationToken",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetImageCopyStatus",
    "ecr:GetLifecyclePolicy",
    "ecr:GetLifecyclePolicyPreview",
    "ecr:GetRegistryPolicy",
    "ecr:GetRegistryScanningConfiguration",
    "ecr:GetRepositoryPolicy",
    "ecr:GetSigningConfiguration",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:ListPullTimeUpdateExclusions",
    "ecr:ListReplicationBackfills",
    "ecr:ListTagsForResource",
    "ecr:PutAccountSetting",
    "ecr:PutImage",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:PutLifecyclePolicy",
    "ecr:PutRegistryPolicy",
    "ecr:PutRegistryScanningConfiguration",
    "ecr:PutReplicationConfiguration",
    "ecr:PutSigningConfiguration",
    "ecr:RegisterPullTimeUpdateExclusion",
    "ecr:ReplicateImage",
    "ecr:SetRepositoryPolicy",
    "ecr:StartImageScan",
    "ecr:StartLifecyclePolicyPreview",
    "ecr:StartReplicationBackfill",
    "ecr:StopReplicationBackfill",
    "ecr:TagResource",
    "ecr:UntagResource",
    "ecr:UpdateImageStorageClass",
    "ecr:UpdatePullThroughCacheRule",
    "ecr:UpdateRepositoryCreationTemplate",
    "ecr:UploadLayerPart",
    "ecr:ValidatePullThroughCacheRule",
];

/// True when `action` carries the `ecr:` service prefix, in any case (`ECR:PutImage` too).
pub fn has_ecr_prefix(action: &str) -> bool {
    action
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("ecr:"))
}

/// The catalog actions that an action pattern names, compared case-insensitively as IAM
/// does; `*` and `?` are wildcards (`ecr:Batch*`, `ecr:*`, `ecr:Put?mage`).
pub fn matching(pattern: &str) -> Vec<&'static str> {
    let pattern = pattern.to_ascii_lowercase();
    ECR_ACTIONS
        .iter()
        .copied()
        .filter(|action| wildcard_match(&pattern, &action.to_ascii_lowercase()))
        .collect()
}

/// True when the pattern names at least one catalog action.
pub fn is_known(pattern: &str) -> bool {
    !matching(pattern).is_empty()
}

/// The catalog action closest to a misspelt `action`, when it is close enough to be what the
/// author meant: at most three edits (insertions, deletions, substitutions, swaps of
/// neighbours), and at most one for every five characters of the suggestion, so that
/// `ecr:BatchGetImages` gives `ecr:BatchGetImage` but `ecr:GetImage` suggests nothing (the
/// nearest, `ecr:PutImage`, is a different grant, not a typo). `None` for a wildcard
/// pattern and for an action that is in the catalog.
pub fn closest(action: &str) -> Option<&'static str> {
    if action.contains(['*', '?']) || !has_ecr_prefix(action) {
        return None;
    }
    let names = ECR_ACTIONS.iter().map(|a| &a[4..]);
    match crate::text::closest(&action[4..], names) {
        // The action itself: nothing to suggest.
        Some((_, 0)) | None => None,
        Some((name, _)) => ECR_ACTIONS.iter().copied().find(|a| &a[4..] == name),
    }
}

/// The problems with a statement's `Action` and `NotAction`: each `ecr:` entry (or wildcard)
/// that names no ECR action, in the order written. Other services' actions are not judged.
pub(super) fn unknown_actions(statement: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["Action", "NotAction"] {
        for entry in statement.get(key).map(strings).into_iter().flatten() {
            problems.extend(unknown_action(key, entry));
        }
    }
    problems
}

fn unknown_action(key: &str, action: &str) -> Option<String> {
    if !has_ecr_prefix(action) || is_known(action) {
        return None;
    }
    let quoted = quote(action);
    Some(if action.contains(['*', '?']) {
        format!(
            "has {key} {quoted}, which matches no ECR action; correct the pattern, or list the \
             actions (the Service Authorization Reference for Amazon ECR names them all)"
        )
    } else if let Some(meant) = closest(action) {
        format!("has {key} {quoted}, which is not an ECR action; did you mean {meant:?}?")
    } else {
        format!(
            "has {key} {quoted}, which is not an ECR action; use one the Service \
             Authorization Reference for Amazon ECR names, such as \"ecr:BatchGetImage\""
        )
    })
}

/// The `Action` entries, as written, of a registry policy that reach beyond what a V1 policy
/// scope allows ([`V1_REGISTRY_ACTIONS`]): an `ecr:` wildcard counts when one of the catalog
/// actions it matches is beyond V1 (`ecr:*` is, `ecr:Replicate*` is not); any other service's
/// action, and `*`, are beyond V1. A `NotAction` statement grants everything it does not
/// list, so it is reported as `everything but <its entries> (NotAction)` unless it lists
/// `*`. Entries appear once, in document order.
pub fn actions_beyond_v1(document: &Map<String, Value>) -> Vec<String> {
    statements_beyond_v1(statements_of(document))
}

/// [`actions_beyond_v1`] for a list of statements.
pub fn statements_beyond_v1(statements: &[Value]) -> Vec<String> {
    let mut beyond: Vec<String> = Vec::new();
    let mut push = |entry: String| {
        if !beyond.contains(&entry) {
            beyond.push(entry);
        }
    };
    for map in statements.iter().filter_map(Value::as_object) {
        if let Some(listed) = map.get("Action") {
            for entry in strings(listed) {
                if action_beyond_v1(entry) {
                    push(entry.to_owned());
                }
            }
        }
        if let Some(excluded) = map.get("NotAction") {
            let entries: Vec<&str> = strings(excluded).collect();
            if !entries.contains(&"*") {
                push(format!("everything but {} (NotAction)", entries.join(", ")));
            }
        }
    }
    beyond
}

fn action_beyond_v1(entry: &str) -> bool {
    if !has_ecr_prefix(entry) {
        return true;
    }
    matching(entry)
        .iter()
        .any(|action| !V1_REGISTRY_ACTIONS.contains(action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::testing::{REGISTRY, REPOSITORY, accepted, refused};
    use serde_json::json;

    /// The actions CONTRACT 10's issue lists as a minimum.
    const REQUIRED: &[&str] = &[
        "BatchCheckLayerAvailability",
        "BatchDeleteImage",
        "BatchGetImage",
        "BatchGetRepositoryScanningConfiguration",
        "BatchImportUpstreamImage",
        "CompleteLayerUpload",
        "CreatePullThroughCacheRule",
        "CreateRepository",
        "CreateRepositoryCreationTemplate",
        "DeleteLifecyclePolicy",
        "DeletePullThroughCacheRule",
        "DeleteRegistryPolicy",
        "DeleteRepository",
        "DeleteRepositoryCreationTemplate",
        "DeleteRepositoryPolicy",
        "DescribeImageReplicationStatus",
        "DescribeImageScanFindings",
        "DescribeImages",
        "DescribePullThroughCacheRules",
        "DescribeRegistry",
        "DescribeRepositories",
        "DescribeRepositoryCreationTemplates",
        "GetAccountSetting",
        "GetAuthorizationToken",
        "GetDownloadUrlForLayer",
        "GetLifecyclePolicy",
        "GetLifecyclePolicyPreview",
        "GetRegistryPolicy",
        "GetRegistryScanningConfiguration",
        "GetRepositoryPolicy",
        "InitiateLayerUpload",
        "ListImages",
        "ListTagsForResource",
        "PutAccountSetting",
        "PutImage",
        "PutImageScanningConfiguration",
        "PutImageTagMutability",
        "PutLifecyclePolicy",
        "PutRegistryPolicy",
        "PutRegistryScanningConfiguration",
        "PutReplicationConfiguration",
        "ReplicateImage",
        "SetRepositoryPolicy",
        "StartImageScan",
        "StartLifecyclePolicyPreview",
        "TagResource",
        "UntagResource",
        "UpdatePullThroughCacheRule",
        "UpdateRepositoryCreationTemplate",
        "UploadLayerPart",
        "ValidatePullThroughCacheRule",
        // Newer: managed signing, pull-time exclusions, archival storage, copy status.
        "DescribeImageSigningStatus",
        "GetSigningConfiguration",
        "PutSigningConfiguration",
        "DeleteSigningConfiguration",
        "RegisterPullTimeUpdateExclusion",
        "DeregisterPullTimeUpdateExclusion",
        "ListPullTimeUpdateExclusions",
        "UpdateImageStorageClass",
        "GetImageCopyStatus",
    ];

    #[test]
    fn the_catalog_holds_every_required_action_once_sorted_and_well_formed() {
        for name in REQUIRED {
            let action = format!("ecr:{name}");
            assert!(ECR_ACTIONS.contains(&action.as_str()), "{action}");
        }
        let mut sorted = ECR_ACTIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, ECR_ACTIONS, "sorted, no duplicates");
        for action in ECR_ACTIONS {
            let name = action.strip_prefix("ecr:").expect("ecr: prefix");
            assert!(
                name.starts_with(|c: char| c.is_ascii_uppercase())
                    && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{action}"
            );
        }
    }

    #[test]
    fn matching_ignores_case_and_expands_wildcards() {
        assert_eq!(matching("ecr:BatchGetImage"), ["ecr:BatchGetImage"]);
        assert_eq!(matching("ECR:batchgetimage"), ["ecr:BatchGetImage"]);
        assert_eq!(matching("ecr:*").len(), ECR_ACTIONS.len());
        assert_eq!(matching("ecr:*"), ECR_ACTIONS);
        let batch = matching("ecr:Batch*");
        assert!(batch.len() >= 5 && batch.iter().all(|a| a.starts_with("ecr:Batch")));
        assert_eq!(matching("ecr:Put?mage"), ["ecr:PutImage"]);
        assert_eq!(matching("ecr:Replicate*"), ["ecr:ReplicateImage"]);
        assert!(matching("ecr:Bacth*").is_empty());
        assert!(matching("ecr:").is_empty());
        assert!(matching("ecr:BatchGetImages").is_empty());
        assert!(!is_known("ecr:*Images?"));
        assert!(is_known("ecr:*Images"));
    }

    #[test]
    fn the_prefix_is_recognised_in_any_case_and_only_as_a_prefix() {
        assert!(has_ecr_prefix("ecr:PutImage"));
        assert!(has_ecr_prefix("ECR:PutImage"));
        assert!(has_ecr_prefix("Ecr:*"));
        assert!(!has_ecr_prefix("ecr-public:PutImage"));
        assert!(!has_ecr_prefix("*"));
        assert!(!has_ecr_prefix("ecr"));
        assert!(!has_ecr_prefix(" ecr:PutImage"));
        assert!(!has_ecr_prefix("é:x"));
    }

    #[test]
    fn typos_get_the_nearest_action() {
        for (typo, meant) in [
            ("ecr:BatchGetImages", "ecr:BatchGetImage"),
            ("ecr:batchgetimages", "ecr:BatchGetImage"),
            ("ecr:BatchGetImgae", "ecr:BatchGetImage"),
            ("ecr:PutImages", "ecr:PutImage"),
            ("ecr:GetDownloadURLForLayers", "ecr:GetDownloadUrlForLayer"),
            ("ecr:DescribeRepository", "ecr:DescribeRepositories"),
            ("ecr:InitiateLayerUploads", "ecr:InitiateLayerUpload"),
            ("ecr:ReplicateImages", "ecr:ReplicateImage"),
        ] {
            assert_eq!(closest(typo), Some(meant), "{typo}");
        }
    }

    #[test]
    fn nothing_is_suggested_when_nothing_is_close() {
        for action in [
            "ecr:GetImage",
            "ecr:Foo",
            "ecr:DoEverything",
            "ecr:Batch*s",
            "ecr:BatchGetImage",
            "s3:GetObject",
            // A wildcard one edit from an action, and a typo under another prefix.
            "ecr:BatchGetImage?",
            "ecr:PutImage*",
            "xyz:BatchGetImages",
            "ecr",
        ] {
            assert_eq!(closest(action), None, "{action}");
        }
        let long = format!("ecr:{}", "x".repeat(12_000));
        assert_eq!(closest(&long), None);
    }

    #[test]
    fn a_misspelt_action_is_refused_with_the_nearest_real_one() {
        refused(
            &REPOSITORY,
            json!({"Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImages"]}),
            "has Action \"ecr:BatchGetImages\", which is not an ECR action; did you mean \"ecr:BatchGetImage\"?",
        );
        refused(
            &REGISTRY,
            json!({"NotAction": "ecr:ReplicateImages"}),
            "has NotAction \"ecr:ReplicateImages\", which is not an ECR action; did you mean \"ecr:ReplicateImage\"?",
        );
        refused(
            &REPOSITORY,
            json!({"Action": "ecr:DoEverything"}),
            "which is not an ECR action; use one the Service Authorization Reference",
        );
        refused(
            &REPOSITORY,
            json!({"Action": "ECR:Bacth*"}),
            "has Action \"ECR:Bacth*\", which matches no ECR action",
        );
        // The nearest valid forms.
        accepted(&REPOSITORY, json!({"Action": ["ecr:BatchGetImage"]}));
        accepted(&REGISTRY, json!({"NotAction": "ecr:ReplicateImage"}));
        accepted(&REPOSITORY, json!({"Action": "ECR:batchgetimage"}));
        accepted(
            &REPOSITORY,
            json!({"Action": ["ecr:Batch*", "ecr:*", "ecr:Put?mage"]}),
        );
    }

    #[test]
    fn other_services_actions_are_not_judged() {
        accepted(
            &REPOSITORY,
            json!({"Action": ["s3:GetObjectz", "*", "ecr-public:Nothing", "sts:AssumeRole", " ecr:x"]}),
        );
    }

    #[test]
    fn actions_beyond_v1_expand_wildcards_against_the_catalog() {
        let document = json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["ecr:ReplicateImage", "ECR:createrepository", "ecr:Replicate*", "ecr:BatchImportUpstreamImage"]},
            {"Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:*", "ecr:Create*", "s3:GetObject", "*", "ecr:BatchGetImage"]},
            {"Effect": "Allow", "Principal": "*", "NotAction": ["ecr:PutImage", "ecr:DeleteRepository"]},
            {"Effect": "Deny", "Principal": "*", "NotAction": "*"},
        ]});
        assert_eq!(
            actions_beyond_v1(document.as_object().expect("object")),
            [
                "ecr:BatchGetImage",
                "ecr:*",
                "ecr:Create*",
                "s3:GetObject",
                "*",
                "everything but ecr:PutImage, ecr:DeleteRepository (NotAction)",
            ]
        );
        let v1 = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": V1_REGISTRY_ACTIONS}});
        assert!(actions_beyond_v1(v1.as_object().expect("object")).is_empty());
    }
}

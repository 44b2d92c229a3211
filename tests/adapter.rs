//! The real ECR adapter against canned HTTP answers (aws-smithy-mocks): proves that each
//! error ECR sends is mapped to what the lifecycle expects.

mod support;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::operation::get_account_setting::GetAccountSettingOutput;
use aws_sdk_ecr::operation::get_registry_policy::GetRegistryPolicyOutput;
use aws_sdk_ecr::operation::set_repository_policy::SetRepositoryPolicyOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use ecr_policy_provider::ecr::{Deleted, EcrError, LivePolicy, PolicyScope, PolicyStore, SdkEcr};
use support::{registry, repo};

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    response
}

fn adapter(rules: &[&Rule]) -> SdkEcr {
    let client: Client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, rules);
    SdkEcr::new(move |_region| client.clone())
}

#[tokio::test]
async fn registry_policy_not_found_reads_as_no_policy_and_deletes_as_gone() {
    let get = mock!(Client::get_registry_policy).then_http_response(|| {
        error(
            400,
            "RegistryPolicyNotFoundException",
            "Registry policy does not exist in the registry with id '123456789012'",
        )
    });
    let delete = mock!(Client::delete_registry_policy)
        .then_http_response(|| error(400, "RegistryPolicyNotFoundException", "no policy"));
    let ecr = adapter(&[&get, &delete]);
    assert_eq!(ecr.get(&registry()).await, Ok(None));
    assert_eq!(
        ecr.delete(&registry(), None).await,
        Ok(Deleted::AlreadyGone)
    );
}

#[tokio::test]
async fn a_live_registry_policy_is_returned_with_its_registry() {
    let get = mock!(Client::get_registry_policy).then_output(|| {
        GetRegistryPolicyOutput::builder()
            .registry_id("123456789012")
            .policy_text("{\"Statement\":[]}")
            .build()
    });
    let ecr = adapter(&[&get]);
    assert_eq!(
        ecr.get(&registry()).await,
        Ok(Some(LivePolicy {
            registry_id: "123456789012".into(),
            text: "{\"Statement\":[]}".into()
        }))
    );
}

#[tokio::test]
async fn repository_policy_not_found_and_repository_not_found_are_told_apart() {
    let no_policy = mock!(Client::get_repository_policy)
        .match_requests(|r| r.repository_name() == Some("app"))
        .then_http_response(|| error(400, "RepositoryPolicyNotFoundException", "no policy"));
    let ecr = adapter(&[&no_policy]);
    assert_eq!(ecr.get(&repo("app")).await, Ok(None));

    let no_repo = mock!(Client::get_repository_policy).then_http_response(|| {
        error(
            400,
            "RepositoryNotFoundException",
            "The repository with name 'app' does not exist",
        )
    });
    let ecr = adapter(&[&no_repo]);
    let err = ecr.get(&repo("app")).await.expect_err("no repository");
    assert_eq!(
        err,
        EcrError::RepositoryNotFound {
            name: "app".into(),
            region: "us-east-1".into()
        }
    );
    assert!(err.to_string().contains("create it first"));
}

#[tokio::test]
async fn deleting_from_a_deleted_repository_is_gone_and_pins_the_registry() {
    let delete = mock!(Client::delete_repository_policy)
        .match_requests(|r| r.registry_id() == Some("123456789012"))
        .then_http_response(|| error(400, "RepositoryNotFoundException", "gone"));
    let ecr = adapter(&[&delete]);
    assert_eq!(
        ecr.delete(&repo("app"), Some("123456789012")).await,
        Ok(Deleted::AlreadyGone)
    );
}

#[tokio::test]
async fn invalid_parameter_on_a_write_is_a_rejected_policy_that_may_be_iam_propagation() {
    let set = mock!(Client::set_repository_policy).then_http_response(|| {
        error(
            400,
            "InvalidParameterException",
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'",
        )
    });
    let ecr = adapter(&[&set]);
    let err = ecr
        .put(&repo("app"), "{}", false)
        .await
        .expect_err("rejected");
    assert!(matches!(err, EcrError::InvalidPolicy { .. }), "{err:?}");
    assert!(err.may_be_iam_propagation());
    assert!(
        err.to_string()
            .contains("Invalid repository policy provided")
    );
}

#[tokio::test]
async fn access_denied_names_the_operation_and_the_permission() {
    let put = mock!(Client::put_registry_policy).then_http_response(|| {
        error(
            400,
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: ecr:PutRegistryPolicy",
        )
    });
    let ecr = adapter(&[&put]);
    let err = ecr.put(&registry(), "{}", false).await.expect_err("denied");
    assert!(
        matches!(
            err,
            EcrError::AccessDenied {
                operation: "PutRegistryPolicy",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("needs ecr:PutRegistryPolicy"));
    assert!(!err.may_be_iam_propagation());
}

#[tokio::test]
async fn a_5xx_that_outlasts_the_sdk_retries_is_unavailable() {
    let get = mock!(Client::get_registry_policy)
        .sequence()
        .http_response(|| error(500, "ServerException", "internal failure"))
        .repeatedly()
        .build();
    let ecr = adapter(&[&get]);
    let err = ecr.get(&registry()).await.expect_err("5xx");
    assert!(
        matches!(
            err,
            EcrError::Unavailable {
                operation: "GetRegistryPolicy",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert!(
        get.num_calls() >= 2,
        "the SDK retried a 5xx: {}",
        get.num_calls()
    );
}

#[tokio::test]
async fn a_5xx_then_success_is_retried_by_the_sdk() {
    let set = mock!(Client::set_repository_policy)
        .sequence()
        .http_response(|| error(503, "ServerException", "busy"))
        .output(|| {
            SetRepositoryPolicyOutput::builder()
                .registry_id("123456789012")
                .build()
        })
        .build();
    let ecr = adapter(&[&set]);
    assert_eq!(
        ecr.put(&repo("app"), "{}", true).await,
        Ok("123456789012".into())
    );
    assert_eq!(set.num_calls(), 2);
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_throttled() {
    let put = mock!(Client::put_registry_policy)
        .sequence()
        .http_response(|| error(400, "ThrottlingException", "Rate exceeded"))
        .repeatedly()
        .build();
    let ecr = adapter(&[&put]);
    let err = ecr
        .put(&registry(), "{}", false)
        .await
        .expect_err("throttled");
    assert!(
        matches!(
            err,
            EcrError::Throttled {
                operation: "PutRegistryPolicy",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.throttled() && err.unanswered());
    assert!(err.to_string().contains("HTTP 400: Rate exceeded"), "{err}");
    assert!(put.num_calls() >= 2, "the SDK retried: {}", put.num_calls());
}

fn setting(value: &'static str) -> Rule {
    mock!(Client::get_account_setting)
        .match_requests(|r| r.name() == Some("REGISTRY_POLICY_SCOPE"))
        .then_output(move || {
            GetAccountSettingOutput::builder()
                .name("REGISTRY_POLICY_SCOPE")
                .value(value)
                .build()
        })
}

#[tokio::test]
async fn the_registry_policy_scope_is_read_from_the_account_setting() {
    for (value, scope) in [("V1", PolicyScope::V1), ("V2", PolicyScope::V2)] {
        let rule = setting(value);
        assert_eq!(adapter(&[&rule]).policy_scope("us-east-1").await, Ok(scope));
    }
    let odd = setting("V3");
    let err = adapter(&[&odd])
        .policy_scope("us-east-1")
        .await
        .expect_err("not a scope");
    assert!(err.to_string().contains("not V1 or V2"), "{err}");
}

#[tokio::test]
async fn an_unreadable_policy_scope_is_an_error_not_a_scope() {
    let denied = mock!(Client::get_account_setting).then_http_response(|| {
        error(
            400,
            "AccessDeniedException",
            "User is not authorized to perform: ecr:GetAccountSetting",
        )
    });
    let err = adapter(&[&denied])
        .policy_scope("us-east-1")
        .await
        .expect_err("denied");
    assert!(
        matches!(
            err,
            EcrError::AccessDenied {
                operation: "GetAccountSetting",
                ..
            }
        ),
        "{err:?}"
    );
    // An emulator without the operation (moto) answers as for an unknown action.
    let unknown = mock!(Client::get_account_setting)
        .then_http_response(|| error(400, "UnknownOperationException", ""));
    let err = adapter(&[&unknown])
        .policy_scope("us-east-1")
        .await
        .expect_err("unknown operation");
    assert!(
        matches!(err, EcrError::Other { operation: "GetAccountSetting", ref code, .. } if code == "UnknownOperationException"),
        "{err:?}"
    );
}

/// An unreadable scope only means the IAM retry runs: one attempt, not the SDK's three, so
/// that its retries do not eat into that retry's time.
#[tokio::test]
async fn a_failing_policy_scope_read_is_not_retried() {
    let failing = mock!(Client::get_account_setting)
        .then_http_response(|| error(500, "InternalFailure", "unknown operation"));
    let err = adapter(&[&failing])
        .policy_scope("us-east-1")
        .await
        .expect_err("a 500");
    assert!(matches!(err, EcrError::Unavailable { .. }), "{err:?}");
    assert_eq!(failing.num_calls(), 1);
}

#[tokio::test]
async fn repositories_are_listed_over_every_page() {
    use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput;
    use aws_sdk_ecr::types::Repository;
    let page = |names: &[&str], next: Option<&str>| {
        let repositories = names
            .iter()
            .map(|n| Repository::builder().repository_name(*n).build())
            .collect();
        DescribeRepositoriesOutput::builder()
            .set_repositories(Some(repositories))
            .set_next_token(next.map(str::to_owned))
            .build()
    };
    let first = mock!(Client::describe_repositories)
        .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(1000))
        .then_output(move || page(&["team/app", "other"], Some("page-2")));
    let second = mock!(Client::describe_repositories)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(move || page(&["team/a/b"], None));
    let ecr = adapter(&[&first, &second]);
    assert_eq!(
        ecr.repositories("us-east-1").await,
        Ok(vec!["team/app".into(), "other".into(), "team/a/b".into()])
    );
    assert_eq!(first.num_calls(), 1);
    assert_eq!(second.num_calls(), 1);
}

#[tokio::test]
async fn a_denied_listing_names_the_permission_it_needs() {
    let denied = mock!(Client::describe_repositories).then_http_response(|| {
        error(
            400,
            "AccessDeniedException",
            "not authorized to perform: ecr:DescribeRepositories",
        )
    });
    let ecr = adapter(&[&denied]);
    let err = ecr.repositories("us-east-1").await.expect_err("denied");
    assert!(
        matches!(
            err,
            EcrError::AccessDenied {
                operation: "DescribeRepositories",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("needs ecr:DescribeRepositories"),
        "{err}"
    );
}

fn template(prefix: &str) -> ecr_policy_provider::identity::Target {
    ecr_policy_provider::identity::Target::Template {
        region: "us-east-1".into(),
        prefix: prefix.into(),
    }
}

fn creation_template(
    prefix: &str,
    policy: Option<&str>,
) -> aws_sdk_ecr::types::RepositoryCreationTemplate {
    aws_sdk_ecr::types::RepositoryCreationTemplate::builder()
        .prefix(prefix)
        .set_repository_policy(policy.map(str::to_owned))
        .description("kept as it is")
        .build()
}

#[tokio::test]
async fn creation_templates_are_listed_over_every_page() {
    use aws_sdk_ecr::operation::describe_repository_creation_templates::DescribeRepositoryCreationTemplatesOutput as Out;
    let page = |prefixes: &[&str], next: Option<&str>| {
        let templates = prefixes
            .iter()
            .map(|p| creation_template(p, None))
            .collect();
        Out::builder()
            .set_repository_creation_templates(Some(templates))
            .set_next_token(next.map(str::to_owned))
            .build()
    };
    let first = mock!(Client::describe_repository_creation_templates)
        .match_requests(|r| {
            r.next_token().is_none() && r.max_results() == Some(1000) && r.prefixes().is_empty()
        })
        .then_output(move || page(&["ROOT", "team/"], Some("page-2")));
    let second = mock!(Client::describe_repository_creation_templates)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(move || page(&["team/a"], None));
    let ecr = adapter(&[&first, &second]);
    assert_eq!(
        ecr.templates("us-east-1").await,
        Ok(vec!["ROOT".into(), "team/".into(), "team/a".into()])
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_templates_policy_is_read_by_its_prefix_and_an_empty_one_is_none() {
    use aws_sdk_ecr::operation::describe_repository_creation_templates::DescribeRepositoryCreationTemplatesOutput as Out;
    let with_policy = mock!(Client::describe_repository_creation_templates)
        .match_requests(|r| r.prefixes() == ["team/"])
        .then_output(|| {
            Out::builder()
                .registry_id("123456789012")
                .repository_creation_templates(creation_template(
                    "team/",
                    Some("{\"Statement\":[]}"),
                ))
                .build()
        });
    let empty = mock!(Client::describe_repository_creation_templates)
        .match_requests(|r| r.prefixes() == ["empty"])
        .then_output(|| {
            Out::builder()
                .repository_creation_templates(creation_template("empty", Some("")))
                .build()
        });
    let none = mock!(Client::describe_repository_creation_templates)
        .match_requests(|r| r.prefixes() == ["gone"])
        .then_output(|| Out::builder().build());
    let not_found = mock!(Client::describe_repository_creation_templates)
        .match_requests(|r| r.prefixes() == ["missing"])
        .then_http_response(|| error(400, "TemplateNotFoundException", "no template"));
    let ecr = adapter(&[&with_policy, &empty, &none, &not_found]);
    assert_eq!(
        ecr.get(&template("team/")).await,
        Ok(Some(LivePolicy {
            registry_id: "123456789012".into(),
            text: "{\"Statement\":[]}".into()
        }))
    );
    assert_eq!(ecr.get(&template("empty")).await, Ok(None));
    for prefix in ["gone", "missing"] {
        let err = ecr.get(&template(prefix)).await.expect_err("no template");
        assert!(err.target_gone(), "{prefix}: {err:?}");
        assert_eq!(
            err,
            EcrError::TemplateNotFound {
                prefix: prefix.into(),
                region: "us-east-1".into()
            }
        );
    }
}

#[tokio::test]
async fn a_templates_policy_is_written_alone_and_deleted_as_an_empty_one() {
    use aws_sdk_ecr::operation::update_repository_creation_template::UpdateRepositoryCreationTemplateOutput as Out;
    // Only the prefix and the policy are sent: ECR keeps every field it is not given (the
    // customRoleArn too, which would need iam:PassRole to be sent again).
    let only_the_policy = |r: &aws_sdk_ecr::operation::update_repository_creation_template::UpdateRepositoryCreationTemplateInput| {
        r.description().is_none()
            && r.applied_for().is_empty()
            && r.custom_role_arn().is_none()
            && r.image_tag_mutability().is_none()
            && r.lifecycle_policy().is_none()
            && r.encryption_configuration().is_none()
            && r.resource_tags().is_empty()
    };
    let write = mock!(Client::update_repository_creation_template)
        .match_requests(move |r| {
            only_the_policy(r)
                && r.prefix() == Some("team/")
                && r.repository_policy() == Some("{\"Statement\":[]}")
        })
        .then_output(|| Out::builder().registry_id("123456789012").build());
    let empty = mock!(Client::update_repository_creation_template)
        .match_requests(move |r| {
            only_the_policy(r) && r.prefix() == Some("team/") && r.repository_policy() == Some("")
        })
        .then_output(|| Out::builder().registry_id("123456789012").build());
    let gone = mock!(Client::update_repository_creation_template)
        .match_requests(|r| r.prefix() == Some("gone"))
        .then_http_response(|| error(400, "TemplateNotFoundException", "no template"));
    let refused = mock!(Client::update_repository_creation_template)
        .match_requests(|r| r.prefix() == Some("bad"))
        .then_http_response(|| {
            error(
                400,
                "InvalidParameterException",
                "Invalid repository policy provided",
            )
        });
    let ecr = adapter(&[&write, &empty, &gone, &refused]);
    assert_eq!(
        ecr.put(&template("team/"), "{\"Statement\":[]}", false)
            .await,
        Ok("123456789012".into())
    );
    assert_eq!(
        ecr.delete(&template("team/"), None).await,
        Ok(Deleted::Removed)
    );
    assert_eq!(
        ecr.delete(&template("gone"), None).await,
        Ok(Deleted::AlreadyGone)
    );
    assert!(
        ecr.put(&template("gone"), "{}", false)
            .await
            .expect_err("gone")
            .target_gone()
    );
    let err = ecr
        .put(&template("bad"), "{}", false)
        .await
        .expect_err("refused");
    assert!(matches!(err, EcrError::InvalidPolicy { .. }), "{err:?}");
    assert_eq!((write.num_calls(), empty.num_calls()), (1, 1));
}

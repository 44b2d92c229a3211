"""End to end, through real parts: the provider's binary behind `cargo lambda watch` (a Lambda
Runtime API), ECR and S3 from moto's server, responses PUT to presigned S3 URLs and read back.
GIVEN a state of ECR, WHEN CloudFormation sends an event from events/, THEN exactly one
response arrives (checked by the `provider` fixture) and ECR holds what CONTRACT 4 says."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from rig.asserts import assert_ecr_calls, assert_failed, assert_success
from rig.constants import (
    EXISTING_REGISTRY_POLICY,
    EXISTING_REPOSITORY_POLICY,
    REGISTRY_ID,
    failed_create_id,
    repository_arn,
)
from rig.events import expected_data, follow_up, load_event, policy_of, rollback_of
from rig.policies import compact, rewritten

APP = repository_arn("app")
APP_V2 = repository_arn("app-v2")


@pytest.fixture
def provider(watched, show_log):
    """The session's provider (`cargo lambda watch`) in a clean account with repositories
    `app` and `app-v2`; after the test, exactly one response per event with a usable
    ResponseURL, and no signed URL in the provider's logs."""
    watched.cloud.prepare(repositories=("app", "app-v2"))
    log_offset = watched.log.size()
    show_log(watched.log, log_offset)
    yield watched
    problems = watched.cloud.unexpected_responses()
    assert not problems, "responses in the bucket:\n" + "\n".join(problems)
    leaked = [
        line
        for line in watched.log.since(log_offset).splitlines()
        if line.startswith("{") and "X-Amz-Signature" in line
    ]
    assert not leaked, f"the provider logged a signed ResponseURL: {leaked[0]}"


@pytest.fixture
def cloud(provider):
    """ECR's side of the session (moto, read directly)."""
    return provider.cloud


def reformatted(policy: dict) -> str:
    """An equivalent policy written the way ECR hands policies back: indented, and the same
    grant written another way (rig.policies.rewritten), its statements a list."""
    return json.dumps(rewritten(policy, statement_list=True), indent=2)


def test_registry_policy_whole_life(cloud, provider):
    create = load_event("registry-create.json")
    created = provider.send(create)
    assert_success(created, REGISTRY_ID, expected_data(create))
    policy = policy_of(create["ResourceProperties"])
    assert cloud.registry_policy() == compact(policy)

    # A duplicate delivery, while ECR holds an equivalent policy written differently: no
    # write, so the live text stays as it is.
    live = reformatted(policy)
    cloud.ecr.put_registry_policy(policyText=live)
    again = provider.send(create)
    assert_success(again, REGISTRY_ID, expected_data(create))
    assert_ecr_calls(again, writes=0)
    assert cloud.registry_policy() == live

    update = load_event("registry-update.json")
    updated = provider.send(update)
    assert_success(updated, REGISTRY_ID, expected_data(update))
    assert cloud.registry_policy() == compact(policy_of(update["ResourceProperties"]))

    rollback = rollback_of(update)
    rolled_back = provider.send(rollback)
    assert_success(rolled_back, REGISTRY_ID, expected_data(rollback))
    assert cloud.registry_policy() == compact(policy)

    delete = load_event("registry-delete.json")
    deleted = provider.send(delete)
    assert_success(deleted, REGISTRY_ID, data={})
    assert_ecr_calls(deleted, writes=0, deletes=1)
    assert cloud.registry_policy() is None

    # Deleting what is already gone succeeds.
    gone = follow_up(delete, "Delete", physical_id=REGISTRY_ID)
    assert_success(provider.send(gone), REGISTRY_ID, data={})
    assert cloud.registry_policy() is None


def test_repository_policy_whole_life_with_a_replacement(cloud, provider):
    create = load_event("repository-create.json")  # PolicyText as a JSON string
    first = policy_of(create["ResourceProperties"])
    assert_success(provider.send(create), APP, expected_data(create))
    assert cloud.repository_policy("app") == compact(first)

    live = reformatted(first)
    cloud.ecr.set_repository_policy(repositoryName="app", policyText=live)
    again = provider.send(create)
    assert_success(again, APP, expected_data(create))
    assert_ecr_calls(again, writes=0)
    assert cloud.repository_policy("app") == live

    update = load_event("repository-update.json")
    second = policy_of(update["ResourceProperties"])
    assert_success(provider.send(update), APP, expected_data(update))
    assert cloud.repository_policy("app") == compact(second)

    rollback = rollback_of(update)
    assert_success(provider.send(rollback), APP, expected_data(rollback))
    assert cloud.repository_policy("app") == compact(first)

    # Renaming the repository replaces the resource: a Create on the new target with a new
    # PhysicalResourceId; the old policy stays until CloudFormation's cleanup Delete.
    renamed = dict(update["ResourceProperties"], RepositoryName="app-v2")
    replace = follow_up(rollback, "Update", physical_id=APP, properties=renamed)
    replaced = provider.send(replace)
    assert_success(replaced, APP_V2, expected_data(replace))
    assert replaced.data["RepositoryName"] == "app-v2"
    assert cloud.repository_policy("app-v2") == compact(second)
    assert cloud.repository_policy("app") == compact(first)

    # The cleanup Delete names the old id (its properties do not matter).
    cleanup = load_event("repository-delete.json")
    assert cleanup["PhysicalResourceId"] == APP
    assert_success(provider.send(cleanup), APP, data={})
    assert cloud.repository_policy("app") is None
    assert cloud.repository_policy("app-v2") == compact(second)

    delete = follow_up(replace, "Delete", physical_id=APP_V2)
    assert_success(provider.send(delete), APP_V2, data={})
    assert cloud.repository_policy("app-v2") is None


def test_a_rolled_back_replacement_returns_to_the_old_repository(cloud, provider):
    create = load_event("repository-create.json")
    first = policy_of(create["ResourceProperties"])
    assert_success(provider.send(create), APP, expected_data(create))

    update = load_event("repository-update.json")
    renamed = dict(update["ResourceProperties"], RepositoryName="app-v2")
    replace = follow_up(create, "Update", physical_id=APP, properties=renamed)
    assert_success(provider.send(replace), APP_V2, expected_data(replace))
    assert cloud.repository_policy("app-v2") == compact(policy_of(renamed))

    # The stack update fails later: CloudFormation sends the old properties to the new
    # resource. The old repository still holds its policy, so nothing is written there and
    # the old id comes back; the cleanup then deletes the new resource.
    rollback = dict(rollback_of(replace), PhysicalResourceId=APP_V2)
    rolled_back = provider.send(rollback)
    assert_success(rolled_back, APP, expected_data(rollback))
    assert_ecr_calls(rolled_back, writes=0)
    assert cloud.repository_policy("app") == compact(first)

    cleanup = follow_up(replace, "Delete", physical_id=APP_V2)
    assert_success(provider.send(cleanup), APP_V2, data={})
    assert cloud.repository_policy("app-v2") is None
    assert cloud.repository_policy("app") == compact(first)


def _failed_create_cases():
    return [
        (
            "repository",
            "repository-create.json",
            lambda c: c.ecr.set_repository_policy(
                repositoryName="app", policyText=EXISTING_REPOSITORY_POLICY
            ),
            lambda c: c.repository_policy("app"),
            EXISTING_REPOSITORY_POLICY,
            'repository "app" in us-east-1 already has a policy',
        ),
        (
            "registry",
            "registry-create.json",
            lambda c: c.ecr.put_registry_policy(policyText=EXISTING_REGISTRY_POLICY),
            lambda c: c.registry_policy(),
            EXISTING_REGISTRY_POLICY,
            "the registry in us-east-1 already has a policy",
        ),
    ]


@pytest.mark.parametrize(
    "failed_create_case", _failed_create_cases(), ids=["repository", "registry"]
)
def test_failed_create_and_its_delete_leave_an_existing_policy_alone(cloud, provider, failed_create_case):
    _, name, put_existing, live, existing, says = failed_create_case
    put_existing(cloud)
    create = load_event(name)
    failed_id = failed_create_id(create)
    failed = provider.send(create)
    assert_failed(failed, failed_id, says, "Adopt: true")
    assert_ecr_calls(failed, writes=0, deletes=0)
    assert live(cloud) == existing

    # CloudFormation follows a failed Create with a Delete of the id it answered with.
    delete = follow_up(create, "Delete", physical_id=failed_id)
    deleted = provider.send(delete)
    assert_success(deleted, failed_id, data={})
    assert_ecr_calls(deleted, reads=0, writes=0, deletes=0)
    assert live(cloud) == existing


def test_adopt_takes_over_an_existing_policy(cloud, provider):
    cloud.ecr.set_repository_policy(
        repositoryName="app", policyText=EXISTING_REPOSITORY_POLICY
    )
    adopt = load_event("repository-adopt.json")
    adopted = provider.send(adopt)
    assert_success(adopted, APP, expected_data(adopt, adopted="true"))
    assert adopted.data["Adopted"] == "true"
    assert cloud.repository_policy("app") == compact(policy_of(adopt["ResourceProperties"]))

    # Adopted, it is deleted with the stack.
    assert_success(provider.send(follow_up(adopt, "Delete", physical_id=APP)), APP, data={})
    assert cloud.repository_policy("app") is None


def test_bad_input_fails_naming_the_property_and_writes_nothing(cloud, provider):
    bad = load_event("bad-input.json")
    sent = provider.send(bad)
    assert_failed(sent, failed_create_id(bad), '"RepositoryNmae"', "did you mean RepositoryName?")
    assert_ecr_calls(sent, reads=0, writes=0, deletes=0)
    assert cloud.repository_policy("app") is None
    assert cloud.registry_policy() is None


def test_a_registry_policy_refused_when_the_scope_cannot_be_read_gets_the_bounded_retry(
    cloud, provider
):
    # moto validates registry policies as under V1 and has no GetAccountSetting: the scope
    # cannot be read, so the refusal may still be IAM's and is retried, with the V1 hint.
    create = load_event("registry-create.json")
    create["RequestId"] = str(uuid.uuid4())
    statement = create["ResourceProperties"]["PolicyText"]["Statement"][0]
    statement["Action"].append("ecr:BatchGetImage")
    log_offset = provider.log.size()

    sent = provider.send(create)
    reason = assert_failed(
        sent,
        failed_create_id(create),
        "ECR rejected the policy",
        "Invalid registry policy provided",  # ECR's own words
        "REGISTRY_POLICY_SCOPE",
        '"ecr:BatchGetImage"',
        "IAM_PROPAGATION_TIMEOUT_SECONDS",
        "ecr:GetAccountSetting",
    )
    tries = re.search(r"tried (\d+) times?", reason)
    assert tries and int(tries.group(1)) >= 2, reason
    assert_ecr_calls(sent, writes=int(tries.group(1)))
    # IAM_PROPAGATION_TIMEOUT_SECONDS=2 bounds the retry; the first pause is at least 1 s.
    assert 1.0 <= sent.seconds <= 10, sent.seconds
    assert "IAM has not propagated" in provider.log.since(log_offset)
    assert cloud.registry_policy() is None


def test_a_response_url_outside_the_allow_list_gets_nothing_and_ecr_is_not_called(cloud, provider):
    create = load_event("repository-create.json")
    sent = provider.send(create, response_host=f"localhost:{cloud.moto.port}")
    assert not sent.ok
    assert "is not an Amazon S3 endpoint" in sent.error_message
    assert sent.response is None
    assert not any(line.get("message") == "response sent" for line in sent.log)
    assert cloud.repository_policy("app") is None

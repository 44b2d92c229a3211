"""End to end, through real parts: the provider's binary behind `cargo lambda watch` (a Lambda
Runtime API), ECR and S3 from moto's server, responses PUT to presigned S3 URLs and read back.
GIVEN a state of ECR, WHEN CloudFormation sends an event from events/, THEN exactly one
response arrives (checked by the `stack` fixture) and ECR holds what CONTRACT 4 says."""

from __future__ import annotations

import json
import re
import uuid

import pytest

import harness as h

APP = h.repository_arn("app")
APP_V2 = h.repository_arn("app-v2")
LOG_TAIL = f" (logs: CloudWatch log group {h.LOG_GROUP}, stream {h.LOG_STREAM})"

# Someone else's policies, there before the stack.
EXISTING_REPOSITORY_POLICY = (
    '{"Version":"2008-10-17","Statement":[{"Sid":"Legacy","Effect":"Allow",'
    '"Principal":"*","Action":"ecr:BatchGetImage"}]}'
)
EXISTING_REGISTRY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Legacy",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
                "Action": ["ecr:ReplicateImage"],
                "Resource": [f"arn:aws:ecr:{h.REGION}:{h.ACCOUNT}:repository/*"],
            }
        ],
    }
)


def reformatted(policy: dict) -> str:
    """An equivalent policy written the way ECR hands policies back: indented, keys and
    list members reordered, a single principal turned into a one-element list."""

    def walk(value, key=None):
        if isinstance(value, dict):
            return {k: walk(value[k], k) for k in reversed(list(value))}
        if key == "AWS" and isinstance(value, str):
            return [value]
        if isinstance(value, list):
            items = [walk(v) for v in value]
            return list(reversed(items)) if key in ("Action", "AWS", "Resource") else items
        return value

    text = json.dumps(walk(policy), indent=2)
    assert text != h.compact(policy)
    return text


def expected_data(event: dict, adopted: str = "false") -> dict:
    properties = event["ResourceProperties"]
    data = {
        "RegistryId": h.ACCOUNT,
        "Region": h.REGION,
        "Adopted": adopted,
        "PolicyText": h.compact(h.policy_of(properties)),
    }
    if "RepositoryName" in properties:
        data["RepositoryName"] = properties["RepositoryName"]
        data["RepositoryArn"] = h.repository_arn(properties["RepositoryName"])
    return data


def assert_answered(sent: h.Sent) -> dict:
    assert sent.invocation.ok, f"the invocation failed: {sent.invocation}"
    response = sent.response
    assert response is not None, "no response was stored"
    for field in ("StackId", "RequestId", "LogicalResourceId"):
        assert response[field] == sent.event[field], field
    return response


def assert_success(sent: h.Sent, physical_id: str, data: dict | None = None) -> None:
    response = assert_answered(sent)
    assert response["Status"] == "SUCCESS", response.get("Reason")
    assert "Reason" not in response
    assert response["PhysicalResourceId"] == physical_id
    assert response["Data"] == (data if data is not None else {})


def assert_failed(sent: h.Sent, physical_id: str, *fragments: str) -> str:
    response = assert_answered(sent)
    assert response["Status"] == "FAILED", response
    assert response["PhysicalResourceId"] == physical_id
    assert response["Data"] == {}
    reason = response["Reason"]
    for fragment in fragments:
        assert fragment in reason, f"{fragment!r} not in Reason {reason!r}"
    assert reason.endswith(LOG_TAIL), reason
    return reason


def assert_ecr_calls(sent: h.Sent, **expected: int) -> None:
    """What the provider's own meter says it asked of ECR for this event."""
    calls = sent.ecr_calls
    assert calls is not None, "no metered 'response sent' line in the provider's log"
    for kind, count in expected.items():
        assert calls[kind] == count, f"ECR {kind}: {calls}"


def test_registry_policy_whole_life(stack):
    create = h.load_event("registry-create.json")
    created = stack.send(create)
    assert_success(created, h.REGISTRY_ID, expected_data(create))
    policy = h.policy_of(create["ResourceProperties"])
    assert stack.registry_policy() == h.compact(policy)

    # A duplicate delivery, while ECR holds an equivalent policy written differently: no
    # write, so the live text stays as it is.
    live = reformatted(policy)
    stack.ecr.put_registry_policy(policyText=live)
    again = stack.send(create)
    assert_success(again, h.REGISTRY_ID, expected_data(create))
    assert_ecr_calls(again, writes=0)
    assert stack.registry_policy() == live

    update = h.load_event("registry-update.json")
    updated = stack.send(update)
    assert_success(updated, h.REGISTRY_ID, expected_data(update))
    assert stack.registry_policy() == h.compact(h.policy_of(update["ResourceProperties"]))

    rollback = h.rollback_of(update)
    rolled_back = stack.send(rollback)
    assert_success(rolled_back, h.REGISTRY_ID, expected_data(rollback))
    assert stack.registry_policy() == h.compact(policy)

    delete = h.load_event("registry-delete.json")
    deleted = stack.send(delete)
    assert_success(deleted, h.REGISTRY_ID)
    assert_ecr_calls(deleted, writes=0, deletes=1)
    assert stack.registry_policy() is None

    # Deleting what is already gone succeeds.
    gone = h.follow_up(delete, "Delete", physical_id=h.REGISTRY_ID)
    assert_success(stack.send(gone), h.REGISTRY_ID)
    assert stack.registry_policy() is None


def test_repository_policy_whole_life_with_a_replacement(stack):
    create = h.load_event("repository-create.json")  # PolicyText as a JSON string
    first = h.policy_of(create["ResourceProperties"])
    assert_success(stack.send(create), APP, expected_data(create))
    assert stack.repository_policy("app") == h.compact(first)

    live = reformatted(first)
    stack.ecr.set_repository_policy(repositoryName="app", policyText=live)
    again = stack.send(create)
    assert_success(again, APP, expected_data(create))
    assert_ecr_calls(again, writes=0)
    assert stack.repository_policy("app") == live

    update = h.load_event("repository-update.json")
    second = h.policy_of(update["ResourceProperties"])
    assert_success(stack.send(update), APP, expected_data(update))
    assert stack.repository_policy("app") == h.compact(second)

    rollback = h.rollback_of(update)
    assert_success(stack.send(rollback), APP, expected_data(rollback))
    assert stack.repository_policy("app") == h.compact(first)

    # Renaming the repository replaces the resource: a Create on the new target with a new
    # PhysicalResourceId; the old policy stays until CloudFormation's cleanup Delete.
    renamed = dict(update["ResourceProperties"], RepositoryName="app-v2")
    replace = h.follow_up(rollback, "Update", physical_id=APP, properties=renamed)
    replaced = stack.send(replace)
    assert_success(replaced, APP_V2, expected_data(replace))
    assert replaced.data["RepositoryName"] == "app-v2"
    assert stack.repository_policy("app-v2") == h.compact(second)
    assert stack.repository_policy("app") == h.compact(first)

    # The cleanup Delete names the old id (its properties do not matter).
    cleanup = h.load_event("repository-delete.json")
    assert cleanup["PhysicalResourceId"] == APP
    assert_success(stack.send(cleanup), APP)
    assert stack.repository_policy("app") is None
    assert stack.repository_policy("app-v2") == h.compact(second)

    delete = h.follow_up(replace, "Delete", physical_id=APP_V2)
    assert_success(stack.send(delete), APP_V2)
    assert stack.repository_policy("app-v2") is None


def test_a_rolled_back_replacement_returns_to_the_old_repository(stack):
    create = h.load_event("repository-create.json")
    first = h.policy_of(create["ResourceProperties"])
    assert_success(stack.send(create), APP, expected_data(create))

    update = h.load_event("repository-update.json")
    renamed = dict(update["ResourceProperties"], RepositoryName="app-v2")
    replace = h.follow_up(create, "Update", physical_id=APP, properties=renamed)
    assert_success(stack.send(replace), APP_V2, expected_data(replace))
    assert stack.repository_policy("app-v2") == h.compact(h.policy_of(renamed))

    # The stack update fails later: CloudFormation sends the old properties to the new
    # resource. The old repository still holds its policy, so nothing is written there and
    # the old id comes back; the cleanup then deletes the new resource.
    rollback = dict(h.rollback_of(replace), PhysicalResourceId=APP_V2)
    rolled_back = stack.send(rollback)
    assert_success(rolled_back, APP, expected_data(rollback))
    assert_ecr_calls(rolled_back, writes=0)
    assert stack.repository_policy("app") == h.compact(first)

    cleanup = h.follow_up(replace, "Delete", physical_id=APP_V2)
    assert_success(stack.send(cleanup), APP_V2)
    assert stack.repository_policy("app-v2") is None
    assert stack.repository_policy("app") == h.compact(first)


def _failed_create_cases():
    return [
        (
            "repository",
            "repository-create.json",
            lambda s: s.ecr.set_repository_policy(
                repositoryName="app", policyText=EXISTING_REPOSITORY_POLICY
            ),
            lambda s: s.repository_policy("app"),
            EXISTING_REPOSITORY_POLICY,
            'repository "app" in us-east-1 already has a policy',
        ),
        (
            "registry",
            "registry-create.json",
            lambda s: s.ecr.put_registry_policy(policyText=EXISTING_REGISTRY_POLICY),
            lambda s: s.registry_policy(),
            EXISTING_REGISTRY_POLICY,
            "the registry in us-east-1 already has a policy",
        ),
    ]


@pytest.mark.parametrize(
    "failed_create_case", _failed_create_cases(), ids=["repository", "registry"]
)
def test_failed_create_and_its_delete_leave_an_existing_policy_alone(stack, failed_create_case):
    _, name, put_existing, live, existing, says = failed_create_case
    put_existing(stack)
    create = h.load_event(name)
    failed_id = "failed-create:" + create["RequestId"]
    failed = stack.send(create)
    assert_failed(failed, failed_id, says, "Adopt: true")
    assert_ecr_calls(failed, writes=0, deletes=0)
    assert live(stack) == existing

    # CloudFormation follows a failed Create with a Delete of the id it answered with.
    delete = h.follow_up(create, "Delete", physical_id=failed_id)
    deleted = stack.send(delete)
    assert_success(deleted, failed_id)
    assert_ecr_calls(deleted, reads=0, writes=0, deletes=0)
    assert live(stack) == existing


def test_adopt_takes_over_an_existing_policy(stack):
    stack.ecr.set_repository_policy(
        repositoryName="app", policyText=EXISTING_REPOSITORY_POLICY
    )
    adopt = h.load_event("repository-adopt.json")
    adopted = stack.send(adopt)
    assert_success(adopted, APP, expected_data(adopt, adopted="true"))
    assert adopted.data["Adopted"] == "true"
    assert stack.repository_policy("app") == h.compact(h.policy_of(adopt["ResourceProperties"]))

    # Adopted, it is deleted with the stack.
    assert_success(stack.send(h.follow_up(adopt, "Delete", physical_id=APP)), APP)
    assert stack.repository_policy("app") is None


def test_bad_input_fails_naming_the_property_and_writes_nothing(stack):
    bad = h.load_event("bad-input.json")
    sent = stack.send(bad)
    assert_failed(
        sent,
        "failed-create:" + bad["RequestId"],
        '"RepositoryNmae"',
        "did you mean RepositoryName?",
    )
    assert_ecr_calls(sent, reads=0, writes=0, deletes=0)
    assert stack.repository_policy("app") is None
    assert stack.registry_policy() is None


def test_a_registry_policy_refused_when_the_scope_cannot_be_read_gets_the_bounded_retry(stack):
    # moto validates registry policies as under V1 and has no GetAccountSetting: the scope
    # cannot be read, so the refusal may still be IAM's and is retried, with the V1 hint.
    create = h.load_event("registry-create.json")
    create["RequestId"] = str(uuid.uuid4())
    statement = create["ResourceProperties"]["PolicyText"]["Statement"][0]
    statement["Action"].append("ecr:BatchGetImage")
    log_offset = stack.provider_log_size()

    sent = stack.send(create)
    reason = assert_failed(
        sent,
        "failed-create:" + create["RequestId"],
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
    assert 1.0 <= sent.invocation.seconds <= 10, sent.invocation.seconds
    assert "IAM has not propagated" in stack.provider_log_since(log_offset)
    assert stack.registry_policy() is None


def test_a_response_url_outside_the_allow_list_gets_nothing_and_ecr_is_not_called(stack):
    create = h.load_event("repository-create.json")
    sent = stack.send(create, response_host=f"localhost:{stack.moto.port}")
    assert not sent.invocation.ok
    assert "is not an Amazon S3 endpoint" in sent.invocation.error_message
    assert sent.response is None
    assert not any(line.get("message") == "response sent" for line in sent.log)
    assert stack.repository_policy("app") is None

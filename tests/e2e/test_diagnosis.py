"""Diagnosis, end to end (CONTRACT 10, issue 9): the real binary behind the Runtime API
emulator, ECR and S3 from moto behind the fault proxy, IAM_PROPAGATION_TIMEOUT_SECONDS=60 as a
deployed function might have it. A policy that can never work is answered FAILED in under two
seconds, naming the defect, with nothing written; a registry on the V1 scope (the setting
served by the proxy: moto has no GetAccountSetting) fails at once; a well-formed policy that
ECR refuses twice and then accepts still succeeds."""

from __future__ import annotations

import copy
import json

import pytest

from rig.asserts import assert_failed, assert_success
from rig.constants import REGISTRY_ID, failed_create_id, repository_arn
from rig.events import desired, registry_create, repository_create
from rig.faultproxy import Fault

IAM_TIMEOUT = "60"
# The goal the issue sets for a doomed policy: answered in under this, whatever the timeout.
DOOMED_SECONDS = 2.0


@pytest.fixture
def provider(start):
    return start(IAM_PROPAGATION_TIMEOUT_SECONDS=IAM_TIMEOUT)


def with_statement(event: dict, **changes) -> dict:
    """The event with its first statement changed (PolicyText as an object or a string)."""
    event = copy.deepcopy(event)
    properties = event["ResourceProperties"]
    text = properties["PolicyText"]
    policy = json.loads(text) if isinstance(text, str) else text
    policy["Statement"][0].update(changes)
    properties["PolicyText"] = json.dumps(policy) if isinstance(text, str) else policy
    return event


DOOMED = [
    (
        "misspelt repository action",
        lambda: with_statement(
            repository_create(),
            Action=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImages"],
        ),
        'has Action "ecr:BatchGetImages", which is not an ECR action; '
        'did you mean "ecr:BatchGetImage"?',
    ),
    (
        "registry principal with an 11-digit account",
        lambda: with_statement(
            registry_create(), Principal={"AWS": "arn:aws:iam::11112222333:root"}
        ),
        'has AWS principal "arn:aws:iam::11112222333:root", which cannot exist',
    ),
    (
        "Resource in a repository policy",
        lambda: with_statement(repository_create(), Resource="*"),
        "ECR refuses Resource in it: remove Resource",
    ),
    (
        "registry Resource without ecr",
        lambda: with_statement(
            registry_create(), Resource="arn:aws:us-east-1:123456789012:repository/*"
        ),
        "which is not a repository of this registry",
    ),
]


@pytest.mark.parametrize("case", DOOMED, ids=[c[0] for c in DOOMED])
def test_a_policy_that_can_never_work_is_refused_in_seconds_with_nothing_written(
    cloud, provider, case
):
    _, make, fragment = case
    event = make()
    out = provider.send(event, deadline_in=180.0)
    assert_failed(out, failed_create_id(event), fragment)
    assert out.seconds < DOOMED_SECONDS, out.describe()
    written = out.calls("PutRegistryPolicy") + out.calls("SetRepositoryPolicy")
    assert written == 0, out.describe()
    assert cloud.registry_policy() is None
    assert cloud.repository_policy("app") is None


def test_a_registry_on_the_v1_scope_fails_at_once_naming_actions_and_command(cloud, provider):
    # moto validates registry policies as under V1 and refuses ecr:BatchGetImage; the proxy
    # answers GetAccountSetting as a V1 registry's ECR would.
    cloud.proxy.set_rule(
        "GetAccountSetting",
        Fault.answer({"name": "REGISTRY_POLICY_SCOPE", "value": "V1"}),
    )
    event = registry_create()
    statement = event["ResourceProperties"]["PolicyText"]["Statement"][0]
    statement["Action"] = ["ecr:ReplicateImage", "ecr:BatchGetImage"]
    out = provider.send(event, deadline_in=180.0)
    assert_failed(
        out,
        failed_create_id(event),
        "the registry's policy scope is V1",
        '"ecr:BatchGetImage"',
        "aws ecr put-account-setting --name REGISTRY_POLICY_SCOPE --value V2",
    )
    assert out.seconds < DOOMED_SECONDS, out.describe()
    assert out.calls("PutRegistryPolicy") == 1, out.describe()
    assert out.calls("GetAccountSetting") == 1, out.describe()
    assert cloud.registry_policy() is None


def test_a_well_formed_policy_refused_twice_then_accepted_succeeds(cloud, provider):
    # As ECR answers while IAM has not yet propagated a principal created moments ago.
    cloud.proxy.set_rule("SetRepositoryPolicy", Fault.invalid_policy(), times=2)
    event = repository_create()
    out = provider.send(event, deadline_in=180.0)
    assert_success(out, repository_arn("app"))
    assert out.calls("SetRepositoryPolicy") == 3, out.describe()
    assert cloud.repository_policy("app") == desired(event)
    assert any("IAM has not propagated" in line.get("message", "") for line in out.log)


def test_a_registry_policy_within_v1_is_retried_without_asking_the_scope(cloud, provider):
    # Only V1's actions: the scope cannot explain a refusal, so it is not read; a principal
    # can, so the refusal is retried.
    cloud.proxy.set_rule("PutRegistryPolicy", Fault.invalid_policy(), times=1)
    event = registry_create()
    out = provider.send(event, deadline_in=180.0)
    assert_success(out, REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == 2, out.describe()
    assert out.calls("GetAccountSetting") == 0, out.describe()

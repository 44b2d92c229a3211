"""Fault injection, end to end: the provider's real binary behind a Lambda Runtime API
emulator that sets each invocation's deadline (runtime_api.py), ECR and S3 from moto, and a
fault-injecting proxy between them (faultproxy.py) that answers chosen ECR calls or response
PUTs with errors, hangs or resets.

For every fault: exactly one response reaches the bucket when one can be sent, before the
invocation's deadline (CONTRACT 7); ECR holds what CONTRACT 4 says (read from moto directly,
not through the proxy); and the same process, still alive, then answers a normal event with
SUCCESS. docs/faults.md is the table of these cases.
"""

from __future__ import annotations

import re
import time

import pytest

import harness as h
from faultproxy import ECR_ANY, RESPONSE, Fault
from faultrig import (
    Rig,
    assert_failed,
    assert_no_response,
    assert_serves_next_event,
    assert_success,
    desired,
    fallback_logged,
    registry_create,
    registry_delete,
    repository_create,
)

# The AWS SDK's standard retry mode: 3 attempts per operation (src/ecr.rs).
SDK_ATTEMPTS = 3
# Longer than this module takes; moto, the proxy and the function end by themselves after it.
MODULE_LIFETIME_SECONDS = 600

EXISTING_REGISTRY_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Sid":"Legacy","Effect":"Allow",'
    '"Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":["ecr:ReplicateImage"],'
    '"Resource":["arn:aws:ecr:us-east-1:123456789012:repository/*"]}]}'
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    try:
        running = Rig(tmp_path_factory.mktemp("faults"), lifetime=MODULE_LIFETIME_SECONDS)
    except AssertionError as e:  # a missing part: a failure, never a skip
        pytest.fail(str(e), pytrace=False)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def provider(rig, request):
    """A clean account and a fresh provider process for the test; afterwards no response in
    the bucket that no event of the test asked for."""
    rig.prepare()
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    function = rig.start_function(name)
    # conftest.py's report hook appends the provider's output to a failed test's report.
    request.node.e2e_log = (function, 0)
    try:
        yield function
    finally:
        function.stop()
    stray = rig.stray_responses()
    assert not stray, f"responses no event asked for: {stray}"


def failed_create_id(event):
    return "failed-create:" + event["RequestId"]


# --- ECR: errors the SDK retries ------------------------------------------------------------


def test_ecr_500s_that_end_within_the_sdk_retries_succeed(rig, provider):
    rig.proxy.set_rule("PutRegistryPolicy", Fault.http(500), times=SDK_ATTEMPTS - 1)
    create = registry_create()
    out = provider.send(create)
    assert_success(out, h.REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_ecr_500s_that_outlast_the_sdk_retries_fail_and_write_nothing(rig, provider):
    rig.proxy.set_rule("PutRegistryPolicy", Fault.http(500), times=SDK_ATTEMPTS)
    create = registry_create()
    out = provider.send(create)
    assert_failed(
        out, failed_create_id(create), "ECR PutRegistryPolicy failed after retries", "HTTP 500"
    )
    assert out.calls("PutRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert rig.registry_policy() is None
    assert_serves_next_event(rig, provider)


def test_a_short_throttling_burst_is_retried_to_success(rig, provider):
    rig.proxy.set_rule("GetRegistryPolicy", Fault.throttle(), times=SDK_ATTEMPTS - 1)
    create = registry_create()
    out = provider.send(create)
    assert_success(out, h.REGISTRY_ID)
    assert out.calls("GetRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert out.calls("PutRegistryPolicy") == 1
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_a_long_throttling_burst_fails_after_retries_and_writes_nothing(rig, provider):
    rig.proxy.set_rule("PutRegistryPolicy", Fault.throttle(), times=SDK_ATTEMPTS)
    create = registry_create()
    out = provider.send(create)
    assert_failed(
        out,
        failed_create_id(create),
        "ECR PutRegistryPolicy failed after retries",
        "Rate exceeded",
    )
    assert out.calls("PutRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert rig.registry_policy() is None
    assert_serves_next_event(rig, provider)


def test_a_reset_connection_is_retried_to_success(rig, provider):
    rig.proxy.set_rule("PutRegistryPolicy", Fault.reset(), times=1)
    create = registry_create()
    out = provider.send(create)
    assert_success(out, h.REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == 2, out.describe()
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_a_write_whose_answer_is_lost_is_retried_safely(rig, provider):
    # The write reaches ECR, then the connection is reset before its answer: the SDK writes
    # again, which ECR takes as the same policy.
    rig.proxy.set_rule("PutRegistryPolicy", Fault.reset(after_forward=True), times=1)
    create = registry_create()
    out = provider.send(create)
    assert_success(out, h.REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == 2, out.describe()
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_connections_reset_on_every_attempt_fail_after_retries(rig, provider):
    rig.proxy.set_rule("GetRegistryPolicy", Fault.reset(), times=SDK_ATTEMPTS)
    create = registry_create()
    out = provider.send(create)
    assert_failed(out, failed_create_id(create), "ECR GetRegistryPolicy failed after retries")
    assert out.calls("GetRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert out.calls("PutRegistryPolicy") == 0
    assert rig.registry_policy() is None
    assert_serves_next_event(rig, provider)


# --- ECR: a call that never answers ---------------------------------------------------------


def test_an_ecr_write_that_hangs_past_the_deadline_fails_before_it(rig, provider):
    rig.proxy.set_rule("PutRegistryPolicy", Fault.hang(30), times=1)
    create = registry_create()
    out = provider.send(create, deadline_in=5.0, timeout=20)
    assert_failed(out, failed_create_id(create), "did not finish", "had not landed")
    # The write is abandoned with time kept back to check it and undo it, then FAILED is
    # sent: not early, not late.
    assert 2.0 <= out.seconds <= 5.0, out.describe()
    assert out.calls("PutRegistryPolicy") == 1
    assert rig.registry_policy() is None  # the hung write never reached ECR
    assert_serves_next_event(rig, provider)


def test_a_create_whose_write_lands_but_never_answers_is_undone(rig, provider):
    # The write reaches ECR, then its answer never comes: the provider stops waiting in time
    # to undo it, so the failed Create leaves ECR as it found it (CONTRACT 4).
    rig.proxy.set_rule("PutRegistryPolicy", Fault.hang(30, after_forward=True), times=1)
    create = registry_create()
    out = provider.send(create, deadline_in=5.0, timeout=20)
    assert_failed(out, failed_create_id(create), "did not finish", "removed again")
    assert out.seconds <= 5.0, out.describe()
    assert rig.registry_policy() is None
    assert_serves_next_event(rig, provider)


def test_an_adopt_whose_write_lands_but_never_answers_puts_the_old_policy_back(rig, provider):
    rig.ecr.put_registry_policy(policyText=EXISTING_REGISTRY_POLICY)
    rig.proxy.set_rule("PutRegistryPolicy", Fault.hang(30, after_forward=True), times=1)
    create = registry_create()
    create["ResourceProperties"]["Adopt"] = "true"
    out = provider.send(create, deadline_in=5.0, timeout=20)
    assert_failed(out, failed_create_id(create), "did not finish", "previous one was put back")
    assert out.seconds <= 5.0, out.describe()
    assert rig.registry_policy() == EXISTING_REGISTRY_POLICY
    assert_serves_next_event(rig, provider)


# --- ECR: errors that are not retried -------------------------------------------------------


def test_access_denied_on_the_write_fails_naming_the_permission(rig, provider):
    rig.proxy.set_rule("SetRepositoryPolicy", Fault.access_denied(), times=1)
    create = repository_create("app")
    out = provider.send(create)
    assert_failed(
        out,
        failed_create_id(create),
        "ECR denied SetRepositoryPolicy",
        "needs ecr:SetRepositoryPolicy",
        "is not authorized to perform: ecr:SetRepositoryPolicy",  # ECR's own words
    )
    assert out.calls("SetRepositoryPolicy") == 1, "an access denial must not be retried"
    assert rig.repository_policy("app") is None
    assert_serves_next_event(rig, provider)


def test_access_denied_on_the_delete_fails_and_keeps_the_policy(rig, provider):
    create = registry_create()
    assert_success(provider.send(create), h.REGISTRY_ID)
    rig.proxy.set_rule("DeleteRegistryPolicy", Fault.access_denied(), times=1)
    delete = registry_delete()
    out = provider.send(delete)
    assert_failed(
        out, h.REGISTRY_ID, "ECR denied DeleteRegistryPolicy", "needs ecr:DeleteRegistryPolicy"
    )
    assert out.calls("DeleteRegistryPolicy") == 1
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


# --- the response PUT -----------------------------------------------------------------------


def test_response_put_503_twice_then_delivered_once(rig, provider):
    rig.proxy.set_rule(RESPONSE, Fault.http(503), times=2)
    create = registry_create()
    out = provider.send(create)
    assert_success(out, h.REGISTRY_ID)
    assert out.calls(RESPONSE) == 3, out.describe()
    assert out.calls("PutRegistryPolicy") == 1, "ECR must be written once, not per PUT attempt"
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_response_put_403_is_not_retried_and_the_invocation_ends_in_error(rig, provider):
    rig.proxy.set_rule(RESPONSE, Fault.http(403), times=1)
    create = registry_create()
    out = provider.send(create)
    assert_no_response(out, "ResponseNotDelivered")
    assert "HTTP 403" in out.error.get("errorMessage", ""), out.describe()
    assert out.calls(RESPONSE) == 1, "a 4xx must not be retried"
    # The work was done before the answer was refused.
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_a_hanging_response_put_is_given_up_before_the_deadline(rig, provider):
    rig.proxy.set_rule(RESPONSE, Fault.hang(30), times=1)
    create = registry_create()
    out = provider.send(create, deadline_in=6.0, timeout=20)
    assert_no_response(out, "ResponseNotDelivered")
    assert out.seconds >= 4.0, f"gave up on the PUT too early\n{out.describe()}"
    assert out.calls(RESPONSE) >= 1
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


# --- deadlines ------------------------------------------------------------------------------


def test_a_deadline_shorter_than_the_work_gets_failed_in_time(rig, provider):
    rig.proxy.set_rule("GetRegistryPolicy", Fault.hang(30), times=1)
    create = registry_create()
    out = provider.send(create, deadline_in=3.0, timeout=15)
    assert_failed(out, failed_create_id(create), "did not finish")
    assert out.seconds < 3.0, out.describe()
    assert out.calls("PutRegistryPolicy") == 0
    assert rig.registry_policy() is None
    assert_serves_next_event(rig, provider)


def test_a_missing_deadline_falls_back_to_the_default_budget(rig, provider):
    create = registry_create()
    out = provider.send(create, deadline_ms=0)
    assert_success(out, h.REGISTRY_ID)
    assert fallback_logged(out), "no 'event received' line with deadline_fallback=true"
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_a_deadline_already_past_falls_back_to_the_default_budget(rig, provider):
    create = registry_create()
    out = provider.send(create, deadline_ms=int((time.time() - 5) * 1000))
    assert_success(out, h.REGISTRY_ID)
    assert fallback_logged(out), "no 'event received' line with deadline_fallback=true"
    assert rig.registry_policy() == desired(create)
    assert_serves_next_event(rig, provider)


def test_a_hang_without_a_deadline_is_failed_within_the_default_budget(rig, provider):
    # The one slow test (about 50 s): every attempt hangs; each is cut by the SDK's 20 s
    # attempt timeout and retried, until the guard gives up at 60 s - 10 s margin - 0.1 s.
    rig.proxy.set_rule("GetRegistryPolicy", Fault.hang(70), times=SDK_ATTEMPTS)
    create = registry_create()
    out = provider.send(create, deadline_ms=0, timeout=75)
    assert_failed(out, failed_create_id(create), "did not finish")
    assert fallback_logged(out)
    assert 45.0 <= out.seconds < 60.0, out.describe()
    assert out.calls("GetRegistryPolicy") >= 2, "the SDK's attempt timeout did not retry"
    assert out.calls("PutRegistryPolicy") == 0
    assert rig.registry_policy() is None
    assert_serves_next_event(rig, provider)


# --- a failed Create, then its Delete -------------------------------------------------------


def test_the_delete_after_a_failed_create_touches_nothing_even_under_faults(rig, provider):
    rig.ecr.put_registry_policy(policyText=EXISTING_REGISTRY_POLICY)
    create = registry_create()
    failed = provider.send(create)
    assert_failed(
        failed, failed_create_id(create), "the registry in us-east-1 already has a policy",
        "Adopt: true",
    )
    assert failed.calls("PutRegistryPolicy") == 0
    assert rig.registry_policy() == EXISTING_REGISTRY_POLICY

    # Every ECR call on the Delete's path would fail; none may be made.
    rig.proxy.set_rule(ECR_ANY, Fault.http(500), times=100)
    rig.proxy.set_rule("DeleteRegistryPolicy", Fault.access_denied(), times=100)
    delete = h.follow_up(create, "Delete", physical_id=failed_create_id(create))
    out = provider.send(delete)
    assert_success(out, failed_create_id(create))
    assert out.ecr_calls == 0, out.describe()
    assert rig.registry_policy() == EXISTING_REGISTRY_POLICY
    assert_serves_next_event(rig, provider)

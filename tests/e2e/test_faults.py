"""Fault injection, end to end: the provider's real binary behind a Lambda Runtime API
emulator that sets each invocation's deadline (rig.runtime_api), ECR and S3 from moto, and a
fault-injecting proxy between them (rig.faultproxy) that answers chosen ECR calls or response
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

from rig.asserts import assert_failed, assert_no_response, assert_success
from rig.cloud import Cloud, Function
from rig.constants import (
    EXISTING_REGISTRY_POLICY,
    REGISTRY_ID,
    failed_create_id,
    repository_arn,
)
from rig.events import desired, follow_up, registry_create, registry_delete, repository_create
from rig.faultproxy import ECR_ANY, RESPONSE, Fault
from rig.interface import INTERFACE
from rig.outcome import Outcome

# The AWS SDK's standard retry mode: attempts per operation.
SDK_ATTEMPTS = INTERFACE.sdk_max_attempts
PROBE_REPOSITORY = "probe"


@pytest.fixture
def provider(cloud, request, show_log):
    """A clean account (repositories `app` and `probe`) and a fresh provider process for the
    test, as verbose as it gets; afterwards no response in the bucket that no event of the
    test asked for."""
    cloud.prepare(repositories=("app", PROBE_REPOSITORY))
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    function = cloud.start_emulator(name, RUST_LOG="debug")
    show_log(function.log)
    try:
        yield function
    finally:
        function.stop()
    stray = cloud.stray_responses()
    assert not stray, f"responses no event asked for: {stray}"


def assert_serves_next_event(cloud: Cloud, function: Function) -> Outcome:
    """The same process, still alive, answers a normal event with SUCCESS: a repository
    policy on ``probe``, with no fault in the way."""
    assert function.alive(), "the provider process died\n" + function.log.tail()
    pid = function.runtime.pid
    cloud.proxy.clear_rules()
    event = repository_create(PROBE_REPOSITORY, "ProbePolicy")
    outcome = function.send(event, "next event", deadline_in=30.0)
    assert_success(outcome, repository_arn(PROBE_REPOSITORY))
    assert cloud.repository_policy(PROBE_REPOSITORY) == desired(event)
    assert function.alive(), "the provider process died after the next event"
    assert function.runtime.pid == pid
    return outcome


def create_under(
    cloud: Cloud, provider: Function, kind: str, fault: Fault, times: int = 1, **send: float
) -> tuple[dict, Outcome]:
    """A registry-policy Create, sent while the first ``times`` requests of ``kind`` meet
    ``fault``; the event and what came of it (``send`` goes to Function.send)."""
    cloud.proxy.set_rule(kind, fault, times=times)
    create = registry_create()
    return create, provider.send(create, **send)


def assert_left(cloud: Cloud, provider: Function, policy: str | None) -> None:
    """ECR holds ``policy`` as the registry policy (None: none), and the same process, still
    alive, then serves a normal event."""
    assert cloud.registry_policy() == policy
    assert_serves_next_event(cloud, provider)


def fallback_logged(outcome: Outcome) -> bool:
    return any(
        line.get("message") == "event received" and line.get("deadline_fallback") is True
        for line in outcome.log
    )


# --- ECR: errors the SDK retries ------------------------------------------------------------


def test_ecr_500s_that_end_within_the_sdk_retries_succeed(cloud, provider):
    create, out = create_under(
        cloud, provider, "PutRegistryPolicy", Fault.http(500), times=SDK_ATTEMPTS - 1
    )
    assert_success(out, REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert_left(cloud, provider, desired(create))


def test_ecr_500s_that_outlast_the_sdk_retries_fail_and_write_nothing(cloud, provider):
    create, out = create_under(
        cloud, provider, "PutRegistryPolicy", Fault.http(500), times=SDK_ATTEMPTS
    )
    assert_failed(
        out, failed_create_id(create), "ECR PutRegistryPolicy failed after retries", "HTTP 500"
    )
    assert out.calls("PutRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert_left(cloud, provider, None)


def test_a_short_throttling_burst_is_retried_to_success(cloud, provider):
    create, out = create_under(
        cloud, provider, "GetRegistryPolicy", Fault.throttle(), times=SDK_ATTEMPTS - 1
    )
    assert_success(out, REGISTRY_ID)
    assert out.calls("GetRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert out.calls("PutRegistryPolicy") == 1
    assert_left(cloud, provider, desired(create))


def test_a_long_throttling_burst_fails_after_retries_and_writes_nothing(cloud, provider):
    create, out = create_under(
        cloud, provider, "PutRegistryPolicy", Fault.throttle(), times=SDK_ATTEMPTS
    )
    assert_failed(
        out,
        failed_create_id(create),
        "ECR PutRegistryPolicy failed after retries",
        "Rate exceeded",
    )
    assert out.calls("PutRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert_left(cloud, provider, None)


def test_a_reset_connection_is_retried_to_success(cloud, provider):
    create, out = create_under(cloud, provider, "PutRegistryPolicy", Fault.reset())
    assert_success(out, REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == 2, out.describe()
    assert_left(cloud, provider, desired(create))


def test_a_write_whose_answer_is_lost_is_retried_safely(cloud, provider):
    # The write reaches ECR, then the connection is reset before its answer: the SDK writes
    # again, which ECR takes as the same policy.
    create, out = create_under(
        cloud, provider, "PutRegistryPolicy", Fault.reset(after_forward=True)
    )
    assert_success(out, REGISTRY_ID)
    assert out.calls("PutRegistryPolicy") == 2, out.describe()
    assert_left(cloud, provider, desired(create))


def test_connections_reset_on_every_attempt_fail_after_retries(cloud, provider):
    create, out = create_under(
        cloud, provider, "GetRegistryPolicy", Fault.reset(), times=SDK_ATTEMPTS
    )
    assert_failed(out, failed_create_id(create), "ECR GetRegistryPolicy failed after retries")
    assert out.calls("GetRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert out.calls("PutRegistryPolicy") == 0
    assert_left(cloud, provider, None)


# --- ECR: a call that never answers ---------------------------------------------------------


def test_an_ecr_write_that_hangs_past_the_deadline_fails_before_it(cloud, provider):
    create, out = create_under(
        cloud, provider, "PutRegistryPolicy", Fault.hang(30), deadline_in=5.0, timeout=20
    )
    # A read that does not show the write cannot tell that it never landed (ECR's reads may
    # lag): the outcome is called unknown, never "as it was" (CONTRACT 11).
    reason = assert_failed(out, failed_create_id(create), "did not finish", "could not be checked")
    assert "as it was" not in reason, reason
    # The write is abandoned with time kept back to check it and undo it, then FAILED is
    # sent: not early, not late.
    assert 2.0 <= out.seconds <= 5.0, out.describe()
    assert out.calls("PutRegistryPolicy") == 1
    assert_left(cloud, provider, None)  # the hung write never reached ECR


def test_a_create_whose_write_lands_but_never_answers_is_undone(cloud, provider):
    # The write reaches ECR, then its answer never comes: the provider stops waiting in time
    # to undo it, so the failed Create leaves ECR as it found it (CONTRACT 4).
    create, out = create_under(
        cloud, provider, "PutRegistryPolicy", Fault.hang(30, after_forward=True), deadline_in=5.0, timeout=20
    )
    assert_failed(out, failed_create_id(create), "did not finish", "removed again")
    assert out.seconds <= 5.0, out.describe()
    assert_left(cloud, provider, None)


def test_an_adopt_whose_write_lands_but_never_answers_puts_the_old_policy_back(cloud, provider):
    cloud.ecr.put_registry_policy(policyText=EXISTING_REGISTRY_POLICY)
    cloud.proxy.set_rule("PutRegistryPolicy", Fault.hang(30, after_forward=True), times=1)
    create = registry_create()
    create["ResourceProperties"]["Adopt"] = "true"
    out = provider.send(create, deadline_in=5.0, timeout=20)
    assert_failed(out, failed_create_id(create), "did not finish", "previous one was put back")
    assert out.seconds <= 5.0, out.describe()
    assert_left(cloud, provider, EXISTING_REGISTRY_POLICY)


# --- ECR: errors that are not retried -------------------------------------------------------


def test_access_denied_on_the_write_fails_naming_the_permission(cloud, provider):
    cloud.proxy.set_rule("SetRepositoryPolicy", Fault.access_denied(), times=1)
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
    assert cloud.repository_policy("app") is None
    assert_serves_next_event(cloud, provider)


def test_access_denied_on_the_delete_fails_and_keeps_the_policy(cloud, provider):
    create = registry_create()
    assert_success(provider.send(create), REGISTRY_ID)
    cloud.proxy.set_rule("DeleteRegistryPolicy", Fault.access_denied(), times=1)
    delete = registry_delete()
    out = provider.send(delete)
    assert_failed(
        out, REGISTRY_ID, "ECR denied DeleteRegistryPolicy", "needs ecr:DeleteRegistryPolicy"
    )
    assert out.calls("DeleteRegistryPolicy") == 1
    assert_left(cloud, provider, desired(create))


# --- the response PUT -----------------------------------------------------------------------


def test_response_put_503_twice_then_delivered_once(cloud, provider):
    create, out = create_under(cloud, provider, RESPONSE, Fault.http(503), times=2)
    assert_success(out, REGISTRY_ID)
    assert out.calls(RESPONSE) == 3, out.describe()
    assert out.calls("PutRegistryPolicy") == 1, "ECR must be written once, not per PUT attempt"
    assert_left(cloud, provider, desired(create))


def test_response_put_403_is_not_retried_and_the_invocation_ends_in_error(cloud, provider):
    create, out = create_under(cloud, provider, RESPONSE, Fault.http(403))
    assert_no_response(out, "ResponseNotDelivered")
    assert "HTTP 403" in out.error.get("errorMessage", ""), out.describe()
    assert out.calls(RESPONSE) == 1, "a 4xx must not be retried"
    # The work was done before the answer was refused.
    assert_left(cloud, provider, desired(create))


def test_a_hanging_response_put_is_given_up_before_the_deadline(cloud, provider):
    create, out = create_under(
        cloud, provider, RESPONSE, Fault.hang(30), deadline_in=6.0, timeout=20
    )
    assert_no_response(out, "ResponseNotDelivered")
    assert out.seconds >= 4.0, f"gave up on the PUT too early\n{out.describe()}"
    # The PUT is given all the time left, so the hung one is the only one: a second attempt
    # would have been let through and stored.
    assert out.calls(RESPONSE) == 1, out.describe()
    assert_left(cloud, provider, desired(create))


# --- deadlines ------------------------------------------------------------------------------


def test_a_deadline_shorter_than_the_work_gets_failed_in_time(cloud, provider):
    create, out = create_under(
        cloud, provider, "GetRegistryPolicy", Fault.hang(30), deadline_in=3.0, timeout=15
    )
    assert_failed(out, failed_create_id(create), "did not finish")
    assert out.seconds < 3.0, out.describe()
    assert out.calls("PutRegistryPolicy") == 0
    assert_left(cloud, provider, None)


def test_a_missing_deadline_falls_back_to_the_default_budget(cloud, provider):
    create = registry_create()
    out = provider.send(create, deadline_ms=0)
    assert_success(out, REGISTRY_ID)
    assert fallback_logged(out), "no 'event received' line with deadline_fallback=true"
    assert_left(cloud, provider, desired(create))


def test_a_deadline_already_past_falls_back_to_the_default_budget(cloud, provider):
    create = registry_create()
    out = provider.send(create, deadline_ms=int((time.time() - 5) * 1000))
    assert_success(out, REGISTRY_ID)
    assert fallback_logged(out), "no 'event received' line with deadline_fallback=true"
    assert_left(cloud, provider, desired(create))


def test_a_hang_without_a_deadline_is_failed_within_the_default_budget(cloud, provider):
    # The one slow test (about 50 s): every attempt hangs; each is cut by the SDK's 20 s
    # attempt timeout and retried, until the guard gives up at 60 s - 10 s margin - 0.1 s.
    # All three attempts start before that (at 0 s, about 20 s and about 40 s, the SDK's
    # backoff being at most a few seconds).
    assert (SDK_ATTEMPTS - 1) * INTERFACE.ecr_attempt_timeout_seconds < 45.0, "premise"
    create, out = create_under(
        cloud, provider, "GetRegistryPolicy", Fault.hang(70), times=SDK_ATTEMPTS, deadline_ms=0, timeout=75
    )
    assert_failed(out, failed_create_id(create), "did not finish")
    assert fallback_logged(out)
    assert 45.0 <= out.seconds < INTERFACE.default_budget_seconds, out.describe()
    assert out.calls("GetRegistryPolicy") == SDK_ATTEMPTS, out.describe()
    assert out.calls("PutRegistryPolicy") == 0
    assert_left(cloud, provider, None)


# --- a failed Create, then its Delete -------------------------------------------------------


def test_the_delete_after_a_failed_create_touches_nothing_even_under_faults(cloud, provider):
    cloud.ecr.put_registry_policy(policyText=EXISTING_REGISTRY_POLICY)
    create = registry_create()
    failed = provider.send(create)
    assert_failed(
        failed, failed_create_id(create), "the registry in us-east-1 already has a policy",
        "Adopt: true",
    )
    assert failed.calls("PutRegistryPolicy") == 0
    assert cloud.registry_policy() == EXISTING_REGISTRY_POLICY

    # Every ECR call on the Delete's path would fail; none may be made.
    cloud.proxy.set_rule(ECR_ANY, Fault.http(500), times=100)
    cloud.proxy.set_rule("DeleteRegistryPolicy", Fault.access_denied(), times=100)
    delete = follow_up(create, "Delete", physical_id=failed_create_id(create))
    out = provider.send(delete)
    assert_success(out, failed_create_id(create))
    assert out.calls(ECR_ANY) == 0, out.describe()
    assert_left(cloud, provider, EXISTING_REGISTRY_POLICY)

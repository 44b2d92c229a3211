"""Two stacks, one target (issue 12): whole-policy resources take the lock too, so a SUCCESS
is never silently overwritten. Two provider processes behind one Runtime API (two concurrent
invocations, as Lambda runs them), ECR, S3 and the lock table from moto, DynamoDB's calls
passed to moto one at a time by the fault proxy (DynamoDB's conditional writes are atomic,
moto's are not). With the provider's lock table unset, the first pair of each test already
gets two SUCCESSes while ECR holds only one of the two policies (tried while writing this).
"""

from __future__ import annotations

import json
import time

import pytest

from rig.asserts import assert_failed, assert_statements, assert_success
from rig.constants import REGISTRY_ID, failed_create_id, repository_arn
from rig.events import (
    desired,
    expected_data,
    follow_up,
    in_stack,
    stack_statement,
    statement_create,
    statements_data,
    statements_id,
    whole_create,
    with_policy,
)
from rig.faultproxy import Fault

APP = "app"  # the start fixture creates it
ROUNDS = 5
RACE_ROUNDS = 4
DEADLINE_SECONDS = 30
# How long the first of a racing pair holds the lock with its read hanging; the SDK then
# reads again.
HOLD_SECONDS = 1.5


def created_id(target: str) -> str:
    return REGISTRY_ID if target == "registry" else repository_arn(target)


@pytest.mark.parametrize("target", ["registry", APP])
def test_of_two_concurrent_whole_policy_creates_exactly_one_succeeds(cloud, start, target):
    provider = start(processes=2)
    for round in range(ROUNDS):
        cloud.prepare(repositories=(APP,))
        pair = [whole_create(target, "stack-one", 1), whole_create(target, "stack-two", 2)]
        if round % 2:
            pair.reverse()
        outcomes = provider.send_all(pair, deadline_in=DEADLINE_SECONDS)
        statuses = [out.status for out in outcomes]
        assert sorted(statuses) == ["FAILED", "SUCCESS"], f"round {round + 1}: {statuses}"
        won = statuses.index("SUCCESS")
        winner, loser = pair[won], pair[1 - won]
        assert_success(outcomes[won], created_id(target), expected_data(winner))
        assert_failed(
            outcomes[1 - won], failed_create_id(loser), "already has a policy that differs",
            "Adopt: true",
        )
        assert cloud.policy(target) == desired(winner), f"round {round + 1}"
        assert not cloud.unexpected_responses()


@pytest.mark.parametrize("target", ["registry", APP])
def test_a_whole_policy_update_racing_a_statement_create_ends_as_a_serial_order_would(
    cloud, start, target
):
    provider = start(processes=2)
    read = "GetRegistryPolicy" if target == "registry" else "GetRepositoryPolicy"
    for round in range(RACE_ROUNDS):
        cloud.prepare(repositories=(APP,))
        create = whole_create(target, "stack-one", 1)
        assert_success(provider.send(create), created_id(target))
        changed = with_policy(create, [stack_statement(target, "Stack1", 3)])
        update = follow_up(
            create, "Update", physical_id=created_id(target),
            properties=changed["ResourceProperties"],
        )
        added = stack_statement(target, "StackTwoGrant", 2)
        # One target, two kinds (CONTRACT 11): a statement joins a policy a whole-policy
        # resource owns only with Adopt, which ends that ownership.
        statement = in_stack(
            statement_create(target, [added], adopt="true"), "stack-two", "StackTwoGrant"
        )
        pair = {"update": update, "statement": statement}
        # Each order in turn, made certain: the first one's read of the policy (under the
        # lock) hangs for a moment, and the second is handed over only then, so it finds
        # the lock held and waits for it.
        first, second = ("update", "statement") if round % 2 == 0 else ("statement", "update")
        cloud.proxy.set_rule(read, Fault.hang(HOLD_SECONDS), times=1)
        reads = cloud.proxy.count(read)
        held = provider.submit(pair[first], deadline_in=DEADLINE_SECONDS)
        waited = time.monotonic() + DEADLINE_SECONDS
        while cloud.proxy.count(read) == reads:
            assert time.monotonic() < waited, f"round {round + 1}: {first} never read ECR"
            time.sleep(0.05)
        waiting = provider.submit(pair[second], deadline_in=DEADLINE_SECONDS)
        outcomes = {first: held.outcome(), second: waiting.outcome()}

        # The second waited for the first's lock and answered after it.
        assert_success(outcomes["statement"], statements_id(statement))
        assert any(
            "holds the target's lock" in line.get("message", "") for line in outcomes[second].log
        ), f"round {round + 1}: the {second} did not wait for the lock"
        assert outcomes[first].answered < outcomes[second].answered, f"round {round + 1}"
        # The end state is the one this serial order gives: the Update then the statement
        # (the statement merged into the updated policy, which it takes over), or the
        # statement then the Update (whose resource no longer owns the policy: it writes
        # nothing, and says who took it over).
        if first == "update":
            assert_success(outcomes["update"], created_id(target), expected_data(update))
            kept = json.loads(desired(update))
        else:
            response = assert_success(outcomes["update"], created_id(target))
            assert "StackTwoGrant" in response["Data"].get("Warnings", ""), response
            kept = json.loads(desired(create))
        assert_statements(cloud, target, kept["Statement"], [added])
        assert json.loads(cloud.policy(target))["Version"] == kept["Version"]
        item = cloud.lock_item(target)
        assert item["lease_owner"] is None and item["holders"] == {
            "StackTwoGrant": statement["RequestId"]
        }, item
        assert not cloud.unexpected_responses()

"""Statement resources (CONTRACT 9), end to end: the provider's real binary behind the Runtime
API emulator, one process or several polling one API (concurrent invocations, as Lambda runs
them), ECR, S3 and the lock table from moto, the lock table created as template.yaml declares
it, and the fault proxy between them (DynamoDB's calls passed on one at a time, as DynamoDB's
conditional writes are atomic and moto's are not).

Others' statements are in the policies first: one added in the console and, on the
repository, the grant Lambda adds for the functions that pull from it. Every step leaves them
exactly as they were (same content, same order); a statement resource changes only its own
Sids. ECR and the lock table are read from moto directly, never through the proxy.
"""

from __future__ import annotations

import time

import pytest

from rig import template
from rig.asserts import assert_failed, assert_statements, assert_success
from rig.cloud import Cloud, Pending
from rig.constants import REGISTRY_ID, failed_create_id
from rig.events import (
    desired,
    follow_up,
    registry_create,
    stack_statement,
    statement_create,
    statements_data,
    statements_id,
)
from rig.faultproxy import DYNAMODB, ECR_ANY, Fault
from rig.interface import INTERFACE

APP = "app"  # the start fixture creates it
TARGETS = ("registry", APP)
PROCESSES = 6
# Every concurrent event gets this long from the moment all are handed to the emulator.
CONCURRENT_DEADLINE_SECONDS = 60
# The lease of a killed invocation: its deadline, this far ahead.
KILLED_DEADLINE_SECONDS = 4.0
# How long the rig waits for a killed invocation's first ECR read.
KILL_WAIT_SECONDS = 10.0
# The provider's longest pause between two tries for a busy lock (1 s, jittered up to 1.5x),
# and time for the rest of the work.
LOCK_RETRY_SECONDS = 1.5
WORK_SECONDS = 2.0


def test_the_lock_table_is_created_as_the_template_declares_it(cloud, start):
    (table,) = template.function_settings().tables
    assert table.variable == INTERFACE.lock_table_variable
    described = cloud.dynamodb.describe_table(TableName=table.logical_id)["Table"]
    assert described["KeySchema"] == table.properties["KeySchema"]
    assert described["KeySchema"] == [
        {"AttributeName": INTERFACE.lock_attributes["key"], "KeyType": "HASH"}
    ]
    ttl = cloud.dynamodb.describe_time_to_live(TableName=table.logical_id)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == (
        table.properties["TimeToLiveSpecification"]["AttributeName"]
    )
    assert cloud.provider_env()[table.variable] == table.logical_id


# --- a stack's life -------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_a_statement_resource_through_a_whole_stack_life_leaves_others_as_they_are(
    cloud, start, target
):
    others = cloud.seed_others(target)
    provider = start()

    first = stack_statement(target, "TeamPull", 1)
    created = statement_create(target, [first], "TeamGrant")
    out = provider.send(created)
    physical_id = statements_id(created)
    assert_success(out, physical_id, statements_data(created))
    assert out.ecr_calls == {"reads": 1, "writes": 1, "deletes": 0}
    assert_statements(cloud, target, others, [first])
    assert cloud.holders(target) == {"TeamPull": created["RequestId"]}

    # A duplicate delivery of the Create: nothing to write.
    again = provider.send(created)
    assert_success(again, physical_id, statements_data(created))
    assert again.ecr_calls == {"reads": 1, "writes": 0, "deletes": 0}

    # Update in place: the same Sid, another principal; the id is kept.
    changed = stack_statement(target, "TeamPull", 2)
    update = follow_up(
        created, "Update", physical_id=physical_id,
        properties={**created["ResourceProperties"], "Statement": [changed]},
    )
    assert_success(provider.send(update), physical_id, statements_data(update))
    assert_statements(cloud, target, others, [changed])

    # A Sid rename: a replacement (a Create under a new id) ...
    renamed = {**changed, "Sid": "TeamPullRenamed"}
    rename = follow_up(
        update, "Update", physical_id=physical_id,
        properties={**update["ResourceProperties"], "Statement": [renamed]},
    )
    new_id = statements_id(rename)
    assert new_id != physical_id
    assert_success(provider.send(rename), new_id, statements_data(rename))
    assert_statements(cloud, target, others, [changed, renamed])
    # ... and CloudFormation's cleanup Delete of the old id removes the old Sid only.
    cleanup = follow_up(update, "Delete", physical_id=physical_id)
    assert_success(provider.send(cleanup), physical_id, {})
    assert_statements(cloud, target, others, [renamed])
    assert cloud.holders(target) == {"TeamPullRenamed": rename["RequestId"]}

    # The stack's Delete: the others' statements stay, as they were.
    delete = follow_up(rename, "Delete", physical_id=new_id)
    assert_success(provider.send(delete), new_id, {})
    assert_statements(cloud, target, others, [])
    assert cloud.holders(target) == {}


@pytest.mark.parametrize("target", TARGETS)
def test_the_last_statement_out_deletes_the_policy(cloud, start, target):
    provider = start()
    statements = [stack_statement(target, f"Stack{n}", n) for n in (1, 2)]
    creates = [statement_create(target, [s], f"Grant{n}") for n, s in enumerate(statements)]
    for event in creates:
        assert_success(provider.send(event), statements_id(event))
    live = cloud.policy(target)
    assert live is not None and '"Version":"2012-10-17"' in live, live
    assert_statements(cloud, target, [], statements)

    first = provider.send(follow_up(creates[0], "Delete", physical_id=statements_id(creates[0])))
    assert_success(first, statements_id(creates[0]), {})
    assert_statements(cloud, target, [], statements[1:])
    last = provider.send(follow_up(creates[1], "Delete", physical_id=statements_id(creates[1])))
    assert_success(last, statements_id(creates[1]), {})
    assert last.ecr_calls == {"reads": 1, "writes": 0, "deletes": 1}
    assert cloud.policy(target) is None
    item = cloud.lock_item(target)
    assert item["holders"] == {} and item["owner"] is None, item
    assert set(item["removed"]) == {s["Sid"] for s in statements[:2]}, item


# --- a Sid someone else has -----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_a_conflicting_sid_fails_without_adopt_and_is_taken_over_with_it(cloud, start, target):
    others = cloud.seed_others(target)
    before = cloud.policy(target)
    provider = start()
    theirs = others[0]  # the console's
    mine = stack_statement(target, theirs["Sid"], 3)

    refused = statement_create(target, [mine], "Conflict")
    out = provider.send(refused)
    assert_failed(
        out, failed_create_id(refused), "already has statements with Sid", theirs["Sid"],
        "Adopt: true",
    )
    assert out.calls("PutRegistryPolicy") + out.calls("SetRepositoryPolicy") == 0
    assert cloud.policy(target) == before

    # CloudFormation's Delete after the failed Create touches nothing: it finds nothing held
    # under that request in the record (CONTRACT 11), so no ECR call and no record change.
    record = cloud.lock_item(target)
    cleanup = provider.send(follow_up(refused, "Delete", physical_id=failed_create_id(refused)))
    assert_success(cleanup, failed_create_id(refused), {})
    assert cleanup.calls(ECR_ANY) == 0, cleanup.describe()
    lease_times = ("lease_until_ms", "expires_at")
    assert {k: v for k, v in cloud.lock_item(target).items() if k not in lease_times} == {
        k: v for k, v in record.items() if k not in lease_times
    }
    assert cloud.policy(target) == before

    # With Adopt, the statement is taken over where it stands; the rest stay as they were.
    adopt = statement_create(target, [mine], "Conflict", adopt="true")
    out = provider.send(adopt)
    assert_success(out, statements_id(adopt), statements_data(adopt, adopted="true"))
    assert cloud.statements(target) == [mine, *others[1:]]
    # Now this stack's: its Delete removes it, and only it.
    delete = provider.send(follow_up(adopt, "Delete", physical_id=statements_id(adopt)))
    assert_success(delete, statements_id(adopt), {})
    assert_statements(cloud, target, others[1:], [])


def test_without_the_lock_table_a_statement_resource_says_what_to_set(cloud, start):
    others = cloud.seed_others("registry")
    before = cloud.policy("registry")
    provider = start(**{INTERFACE.lock_table_variable: None})
    refused = statement_create("registry", [stack_statement("registry", "TeamPull")])
    out = provider.send(refused)
    assert_failed(out, failed_create_id(refused), INTERFACE.lock_table_variable)
    assert out.calls(ECR_ANY) == 0 and out.calls(DYNAMODB + "UpdateItem") == 0
    assert cloud.policy("registry") == before
    # A whole-policy resource still works without it (Adopt: the console's statement is there).
    whole = registry_create()
    whole["ResourceProperties"]["Adopt"] = "true"
    out = provider.send(whole)
    assert_success(out, REGISTRY_ID)
    assert out.calls(DYNAMODB + "UpdateItem") == 0
    assert cloud.policy("registry") == desired(whole) != before


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("target,writers", [("registry", 24), (APP, 16)])
def test_concurrent_statement_creates_then_deletes_lose_nothing(cloud, start, target, writers):
    others = cloud.seed_others(target)
    provider = start(processes=PROCESSES)
    own = [stack_statement(target, f"Writer{n:02d}", n) for n in range(writers)]
    creates = [statement_create(target, [s], f"Writer{n:02d}") for n, s in enumerate(own)]

    handed = time.monotonic()
    outcomes = provider.send_all(creates, deadline_in=CONCURRENT_DEADLINE_SECONDS)
    took = time.monotonic() - handed
    for event, out in zip(creates, outcomes):
        assert_success(out, statements_id(event), statements_data(event))
    assert_statements(cloud, target, others, own)
    assert cloud.holders(target) == {s["Sid"]: e["RequestId"] for s, e in zip(own, creates)}
    # They did run at once: some waited for the lock (more than one try to take it).
    assert any(out.metered[0].lock_calls > 2 for out in outcomes), "no event waited"

    deletes = [follow_up(e, "Delete", physical_id=statements_id(e)) for e in creates]
    outcomes = provider.send_all(deletes, deadline_in=CONCURRENT_DEADLINE_SECONDS)
    for event, out in zip(deletes, outcomes):
        assert_success(out, event["PhysicalResourceId"], {})
    assert_statements(cloud, target, others, [])
    assert cloud.holders(target) == {}
    assert took < CONCURRENT_DEADLINE_SECONDS, took


# --- ECR's reads lag its writes -------------------------------------------------------------


def test_a_read_that_lags_the_last_write_loses_no_statement(cloud, start):
    others = cloud.seed_others("registry")
    provider = start()
    a, b, c = (stack_statement("registry", f"Team{x}", n) for n, x in enumerate("ABC", 1))
    event = statement_create("registry", [a], "GrantTeamA")
    assert_success(provider.send(event), statements_id(event))
    # B's write lands, but the next two reads still return the policy before it.
    cloud.proxy.set_rule("PutRegistryPolicy", Fault.lagging_reads(2), times=1)
    event = statement_create("registry", [b], "GrantTeamB")
    assert_success(provider.send(event), statements_id(event))
    assert_statements(cloud, "registry", others, [a, b])

    # C's read misses B's write, made less than a minute ago: it is read again until it
    # shows it (CONTRACT 11), and the merge takes B from the record, so B is not lost.
    event = statement_create("registry", [c], "GrantTeamC")
    out = provider.send(event)
    assert_success(out, statements_id(event))
    stale = cloud.proxy.injected("GetRegistryPolicy")
    assert stale >= 1
    assert out.ecr_calls == {"reads": stale + 1, "writes": 1, "deletes": 0}
    assert_statements(cloud, "registry", others, [a, b, c])


def test_a_delete_after_a_lagging_write_brings_nothing_back(cloud, start):
    others = cloud.seed_others(APP)
    provider = start()
    a, b = stack_statement(APP, "TeamA", 1), stack_statement(APP, "TeamB", 2)
    creates = [statement_create(APP, [s], f"Grant{s['Sid']}") for s in (a, b)]
    for event in creates:
        assert_success(provider.send(event), statements_id(event))

    # A's Delete lands, but the next two reads still show A.
    cloud.proxy.set_rule("SetRepositoryPolicy", Fault.lagging_reads(2), times=1)
    first = follow_up(creates[0], "Delete", physical_id=statements_id(creates[0]))
    assert_success(provider.send(first), first["PhysicalResourceId"], {})
    assert_statements(cloud, APP, others, [b])

    # B's Delete reads a policy that still has A, removed less than a minute ago: it is
    # read again, and the record says A was removed, so A does not come back.
    second = follow_up(creates[1], "Delete", physical_id=statements_id(creates[1]))
    out = provider.send(second)
    assert_success(out, second["PhysicalResourceId"], {})
    stale = cloud.proxy.injected("GetRepositoryPolicy")
    assert stale >= 1
    assert out.ecr_calls == {"reads": stale + 1, "writes": 1, "deletes": 0}
    assert_statements(cloud, APP, others, [])


# --- an invocation killed while it holds the lock -------------------------------------------


def kill_while_holding_the_lock(cloud: Cloud, start, target: str) -> tuple[Pending, dict]:
    """Starts a statement Create whose ECR read hangs once it holds the target's lease
    (KILLED_DEADLINE_SECONDS long), kills its process with SIGKILL, and returns it and the
    lock item it left."""
    killed = start(suffix="-killed")
    cloud.proxy.set_rule("GetRegistryPolicy", Fault.hang(30), times=1)
    event = statement_create(target, [stack_statement(target, "Killed", 9)], "Killed")
    pending = killed.submit_and_kill(
        event, "GetRegistryPolicy", KILL_WAIT_SECONDS,
        deadline_in=KILLED_DEADLINE_SECONDS, timeout=1,
    )
    item = cloud.lock_item(target)
    # The lease's owner names the request and the invocation (CONTRACT 11).
    assert item is not None and item["lease_owner"].startswith(event["RequestId"] + "/"), item
    return pending, item


def test_a_lease_left_by_a_killed_invocation_is_taken_once_it_ends(cloud, start):
    others = cloud.seed_others("registry")
    killed, item = kill_while_holding_the_lock(cloud, start, "registry")
    lease_end = item["lease_until_ms"] / 1000
    # It lasts the invocation's time and the margin for a write still in flight.
    assert lease_end <= time.time() + KILLED_DEADLINE_SECONDS + INTERFACE.lock_margin_seconds, item

    provider = start(suffix="-next")
    mine = stack_statement("registry", "Next", 1)
    event = statement_create("registry", [mine], "Next")
    out = provider.send(event, deadline_in=60)
    assert_success(out, statements_id(event))
    early = lease_end - out.answered
    assert early <= 0, f"answered {early:.2f}s before the lease ended"
    assert out.answered < lease_end + LOCK_RETRY_SECONDS + WORK_SECONDS, out.describe()
    assert any("holds the target's lock" in line.get("message", "") for line in out.log)
    assert_statements(cloud, "registry", others, [mine])
    assert cloud.holders("registry") == {"Next": event["RequestId"]}
    assert cloud.bucket.read(killed.key)[0] is None, "the killed invocation answered"


def test_a_lease_that_outlasts_the_deadline_gets_failed_in_time(cloud, start):
    cloud.seed_others("registry")
    before = cloud.policy("registry")
    kill_while_holding_the_lock(cloud, start, "registry")
    provider = start(suffix="-next")
    event = statement_create("registry", [stack_statement("registry", "Next", 1)], "Next")
    out = provider.send(event, deadline_in=2.0, timeout=10)
    assert_failed(out, failed_create_id(event), "held its lock", "Retry the stack operation")
    assert out.calls("PutRegistryPolicy") == 0
    assert cloud.policy("registry") == before


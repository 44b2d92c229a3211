"""The record (CONTRACT 11, issue 15), end to end: the nine sequences of issue 15, and a process
killed mid-request, against the provider's real binary behind the Runtime API emulator, ECR,
S3 and the lock table from moto, and the fault proxy between them (rig.faultproxy): lagging
reads, lost answers, writes that land after their caller gave up, lock writes that fail after
an ECR write. DynamoDB's calls go through the proxy one at a time (moto's conditional writes
are not atomic). Sequences that need two provider processes start two.

The lock item's lease ends 20 s (ECR's attempt timeout) after the deadline of the invocation
that took it, so an event whose lease is left behind gets a short deadline, and the next
request on its target one long enough to wait the lease out: four tests wait out such a
lease (20 to 26 s each), the rest take a few seconds. Test names start with the number of
the sequence they cover.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rig.asserts import assert_failed, assert_statements, assert_success
from rig.cloud import Cloud, Function
from rig.constants import REGISTRY_ID, failed_create_id
from rig.events import (
    desired,
    expected_data,
    follow_up,
    in_stack,
    pull_statement,
    stack_name,
    stack_statement,
    statement_create,
    statements_data,
    statements_id,
    whole_create,
)
from rig.faultproxy import DYNAMODB, ECR_WRITES, Fault
from rig.interface import INTERFACE
from rig.outcome import Outcome

APP = "app"  # the start fixture creates it
UPDATE_ITEM = DYNAMODB + "UpdateItem"
# An event whose lease is left behind (cut off, killed): its deadline, from the moment it is
# handed over. Its lease lasts until that deadline plus a margin for a write still in flight
# (ECR's attempt timeout).
SHORT_DEADLINE_SECONDS = 2.5
assert INTERFACE.lock_margin_seconds >= INTERFACE.ecr_attempt_timeout_seconds
LEASE_SECONDS = SHORT_DEADLINE_SECONDS + INTERFACE.lock_margin_seconds
# The next request on that target: time to wait the lease out, then do its work.
WAITING_DEADLINE_SECONDS = LEASE_SECONDS + 12
# The provider's longest pause between two tries for a busy lock (1 s, jittered up to 1.5x).
LOCK_POLL_SECONDS = 1.5
# That pause and time for the rest of the work.
AFTER_LEASE_SECONDS = LOCK_POLL_SECONDS + 2.0
# What the provider logs when a read lacks the write its record announced (CONTRACT 11).
LAGGING = "the read lacks what this provider wrote"
# Lock writes failed in a row: more than the SDK's attempts at one.
LOCK_WRITE_FAILURES = 10
# An event whose lock writes fail: time for the SDK's attempts at one (backoffs of up to
# 1 s, then 2 s) and the rest of its work.
LOCK_FAILURE_DEADLINE_SECONDS = 6.0
# A write the proxy holds back reaches ECR this long after it was sent, within its attempt
# timeout (unless the test releases it earlier).
LATE_WRITE_SECONDS = INTERFACE.ecr_attempt_timeout_seconds - 5


def naming(relation: str, event: dict[str, Any]) -> tuple[str, str, str]:
    """What a refusal says to name the resource of ``event`` as the holder of a Sid
    ("held by") or the owner of a policy ("managed by"): the relation, the resource's
    logical id and its stack's name."""
    return relation, event["LogicalResourceId"], stack_name(event)


def with_statements(event: dict[str, Any], statements: list[dict[str, Any]]) -> dict[str, Any]:
    """A statement resource's properties with these statements instead."""
    return {**event["ResourceProperties"], "Statement": statements}


def created(
    provider: Function, target: str, sid: str, n: int, **invoke: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A statement resource (logical id: its Sid, then Grant) with statement ``sid``
    (rig.events.stack_statement), created on ``target`` with SUCCESS: its statement, its
    Create."""
    statement = stack_statement(target, sid, n)
    event = statement_create(target, [statement], f"{sid}Grant")
    assert_success(provider.send(event, **invoke), statements_id(event), statements_data(event))
    return statement, event


def assert_lease_left(cloud: Cloud, target: str, handed: float) -> float:
    """The lease on ``target`` is held until the deadline of the invocation handed at
    ``handed`` (SHORT_DEADLINE_SECONDS) plus ECR's attempt timeout; returns its end."""
    item = cloud.lock_item(target)
    assert item is not None and item["lease_owner"] is not None, f"no lease is held: {item}"
    lease_end = item["lease_until_ms"] / 1000
    expected = handed + LEASE_SECONDS
    assert abs(lease_end - expected) < 1.0, (
        f"the lease ends {lease_end - handed:.1f}s after the event was handed over, not "
        f"{LEASE_SECONDS:g}s (its deadline plus the ECR attempt timeout): {item}"
    )
    return lease_end


# --- 1 and 2: ownership moves only by Adopt -------------------------------------------------


def test_seq1_an_identical_statement_of_another_stack_is_refused_without_adopt(cloud, start):
    others = cloud.seed_others("registry")
    provider = start()
    mine = stack_statement("registry", "SharedPull", 1)
    first = in_stack(statement_create("registry", [mine], "TeamGrant"), "stack-one")
    assert_success(provider.send(first), statements_id(first))

    second = in_stack(statement_create("registry", [mine], "SameGrant"), "stack-two")
    out = provider.send(second)
    assert_failed(out, failed_create_id(second), *naming("held by", first), "Adopt: true")
    # CloudFormation's Delete of the failed Create leaves the Sid to its holder ...
    cleanup = follow_up(second, "Delete", physical_id=failed_create_id(second))
    assert_success(provider.send(cleanup), failed_create_id(second), {})
    assert_statements(cloud, "registry", others, [mine])
    assert cloud.holders("registry") == {"SharedPull": first["RequestId"]}
    # ... which still updates it.
    changed = stack_statement("registry", "SharedPull", 2)
    update = follow_up(
        first, "Update", physical_id=statements_id(first),
        properties=with_statements(first, [changed]),
    )
    assert_success(provider.send(update), statements_id(first), statements_data(update))
    assert_statements(cloud, "registry", others, [changed])


def test_seq1_a_logical_id_renamed_in_its_stack_takes_its_statement_over(cloud, start):
    # The one exception: CloudFormation creates the renamed resource, then deletes the old.
    others = cloud.seed_others(APP)
    provider = start()
    mine, old = created(provider, APP, "TeamPull", 1)
    renamed = statement_create(APP, [mine], "TeamPullRenamed")
    assert_success(provider.send(renamed), statements_id(renamed), statements_data(renamed))
    delete = follow_up(old, "Delete", physical_id=statements_id(old))
    # The old resource holds nothing any more: it writes nothing and names the new holder
    # (CONTRACT 11).
    response = assert_success(provider.send(delete), statements_id(old))
    assert "TeamPullRenamed" in response["Data"]["Warnings"], response
    assert_statements(cloud, APP, others, [mine])
    assert cloud.holders(APP) == {"TeamPull": renamed["RequestId"]}


def test_seq2_an_identical_whole_policy_of_another_stack_is_refused_without_adopt(cloud, start):
    provider = start()
    one = whole_create("registry", "stack-one", 1)
    two = whole_create("registry", "stack-two", 1)
    assert desired(one) == desired(two), "premise: the same PolicyText"
    assert_success(provider.send(one), REGISTRY_ID, expected_data(one))

    out = provider.send(two)
    assert_failed(out, failed_create_id(two), *naming("managed by", one), "Adopt: true")
    cleanup = follow_up(two, "Delete", physical_id=failed_create_id(two))
    assert_success(provider.send(cleanup), failed_create_id(two), {})
    assert cloud.policy("registry") == desired(one)
    # The owner's Delete removes it.
    delete = follow_up(one, "Delete", physical_id=REGISTRY_ID)
    assert_success(provider.send(delete), REGISTRY_ID, {})
    assert cloud.policy("registry") is None


# --- 3: a move is a Create there ------------------------------------------------------------


def test_seq3_a_statement_moved_to_another_repository_does_not_overwrite_its_sid(cloud, start):
    for name in ("repo-a", "repo-b"):
        cloud.create_repository(name)
    theirs = pull_statement("AllowPull", "111122229999")
    before = cloud.set_policy("repo-b", {"Version": "2008-10-17", "Statement": [theirs]})
    provider = start()
    mine = stack_statement("repo-a", "AllowPull", 1)
    assert mine != theirs, "premise: other principals"
    create = statement_create("repo-a", [mine], "PullGrant")
    assert_success(provider.send(create), statements_id(create))

    move = follow_up(
        create, "Update", physical_id=statements_id(create),
        properties={**create["ResourceProperties"], "RepositoryName": "repo-b"},
    )
    out = provider.send(move)
    assert_failed(out, statements_id(create), "Sid", "AllowPull", "differ", "Adopt: true")
    assert out.calls("SetRepositoryPolicy") == 0, out.describe()
    assert cloud.policy("repo-b") == before
    assert_statements(cloud, "repo-a", [], [mine])


# --- 4: lagging reads -----------------------------------------------------------------------


def test_seq4_reads_lagging_past_the_reread_window_lose_nothing_and_bring_nothing_back(
    cloud, start
):
    others = cloud.seed_others("registry")
    provider = start()
    # Every read returns the policy as it was 6 s ago: B's sees the policy before A.
    cloud.proxy.set_rule("GetRegistryPolicy", Fault.stale(6), times=1000)
    a, create_a = created(provider, "registry", "TeamA", 1)
    b, _ = created(provider, "registry", "TeamB", 2)
    assert cloud.proxy.injected("GetRegistryPolicy") >= 1, "premise: a read lagged"
    assert_statements(cloud, "registry", others, [a, b])

    # A's Delete lands, and the next 20 reads (longer than any re-read) still show A.
    cloud.proxy.clear_rules()
    cloud.proxy.set_rule("PutRegistryPolicy", Fault.lagging_reads(20), times=1)
    delete = follow_up(create_a, "Delete", physical_id=statements_id(create_a))
    assert_success(provider.send(delete), statements_id(create_a), {})
    assert_statements(cloud, "registry", others, [b])
    c, _ = created(provider, "registry", "TeamC", 3)
    assert_statements(cloud, "registry", others, [b, c])


# --- 5: the record is written before ECR ----------------------------------------------------


def test_seq5_a_record_that_cannot_be_stored_fails_the_request_before_ecr(cloud, start):
    others = cloud.seed_others(APP)
    before = cloud.policy(APP)
    provider = start()
    # The lease is taken; every lock write after it fails.
    cloud.proxy.set_rule(
        UPDATE_ITEM, Fault.http(500), times=LOCK_WRITE_FAILURES, after=UPDATE_ITEM
    )
    create = statement_create(APP, [stack_statement(APP, "TeamPull", 1)], "TeamGrant")
    out = provider.send(create, deadline_in=LOCK_FAILURE_DEADLINE_SECONDS)
    assert_failed(out, failed_create_id(create))
    assert out.calls("SetRepositoryPolicy") == 0, out.describe()
    assert cloud.policy(APP) == before
    assert cloud.statements(APP) == others


def test_seq5_a_lock_write_failing_after_the_ecr_write_costs_the_replacement_nothing(
    cloud, start
):
    others = cloud.seed_others(APP)
    provider = start()
    a, create = created(provider, APP, "TeamA", 1)
    b = stack_statement(APP, "TeamB", 2)

    # A replacement (another set of Sids) keeps A and adds B; the lock writes after its ECR
    # write fail.
    cloud.proxy.set_rule(
        UPDATE_ITEM, Fault.http(500), times=LOCK_WRITE_FAILURES, after=ECR_WRITES
    )
    replace = follow_up(
        create, "Update", physical_id=statements_id(create),
        properties=with_statements(create, [a, b]),
    )
    out = provider.send(replace, deadline_in=LOCK_FAILURE_DEADLINE_SECONDS)
    assert_success(out, statements_id(replace), statements_data(replace))
    assert cloud.proxy.injected(UPDATE_ITEM) >= 1, "premise: a lock write failed"
    assert_statements(cloud, APP, others, [a, b])
    cloud.proxy.clear_rules()

    # CloudFormation's cleanup Delete of the old id: A is the replacement's now.
    cleanup = follow_up(create, "Delete", physical_id=statements_id(create))
    out = provider.send(cleanup, deadline_in=WAITING_DEADLINE_SECONDS)
    assert_success(out, statements_id(create), {})
    assert_statements(cloud, APP, others, [a, b])
    assert cloud.holders(APP) == {"TeamA": replace["RequestId"], "TeamB": replace["RequestId"]}


# --- 6 and 7: the lease ---------------------------------------------------------------------


def test_seq6_an_acquire_whose_answer_is_lost_takes_its_own_lease(cloud, start):
    others = cloud.seed_others("registry")
    provider = start()
    # The first lock write (taking the lease) lands; its answer is lost.
    cloud.proxy.set_rule(UPDATE_ITEM, Fault.reset(after_forward=True), times=1)
    a, _ = created(provider, "registry", "TeamA", 1, deadline_in=4.0, timeout=15)
    assert cloud.proxy.injected(UPDATE_ITEM) == 1, "premise: an answer was lost"

    # The next request on the target finds no lease in its way.
    b = stack_statement("registry", "TeamB", 2)
    event = statement_create("registry", [b], "TeamBGrant")
    out = provider.send(event, deadline_in=4.0, timeout=15)
    assert_success(out, statements_id(event))
    waited = [line for line in out.log if "holds the target's lock" in line.get("message", "")]
    assert not waited, waited
    assert_statements(cloud, "registry", others, [a, b])


def test_seq7_an_item_past_its_ttl_keeps_no_ttl_while_leased(cloud, start):
    provider = start()
    # An item that holds nothing (a statement created, then deleted) whose TTL has passed.
    _, old = created(provider, APP, "Gone", 1)
    delete = follow_up(old, "Delete", physical_id=statements_id(old))
    assert_success(provider.send(delete), statements_id(old), {})
    cloud.set_lock_expiry(APP, int(time.time()) - 60)

    # The ECR read waits while the lease is held: the item must not be due for deletion then.
    cloud.proxy.set_rule("GetRepositoryPolicy", Fault.delay(5), times=1)
    reads = cloud.proxy.count("GetRepositoryPolicy")
    event = statement_create(APP, [stack_statement(APP, "TeamPull", 2)], "TeamGrant")
    pending = provider.submit(event, deadline_in=15)
    try:
        cloud.proxy.wait_for("GetRepositoryPolicy", reads + 1)
        item = cloud.lock_item(APP)
        expiry = cloud.lock_expiry(APP)
    finally:
        cloud.proxy.release()
    out = pending.outcome()
    assert item is not None and item["lease_owner"] is not None, f"premise: leased: {item}"
    assert expiry is None, f"leased while DynamoDB may delete the item (TTL {expiry}): {item}"
    assert_success(out, statements_id(event))
    assert cloud.lock_expiry(APP) is None, "an item that holds a Sid must never expire"


# --- 8 and 9: writes that land after their caller gave up -----------------------------------


def test_seq8_a_write_still_in_flight_keeps_the_lease_from_the_next_request(cloud, start):
    others = cloud.seed_others("registry")
    cut_off = start(suffix="-cut-off")
    waiting = start(suffix="-waiting")
    x, y = stack_statement("registry", "CutOff", 1), stack_statement("registry", "Waiting", 2)
    # X's write is held back past X's deadline; it lands within its attempt timeout.
    cloud.proxy.set_rule("PutRegistryPolicy", Fault.late(LATE_WRITE_SECONDS), times=1)
    first = statement_create("registry", [x], "CutOffGrant")
    pending_x = cut_off.submit(first, deadline_in=SHORT_DEADLINE_SECONDS, timeout=15)
    cloud.proxy.wait_for("PutRegistryPolicy")
    second = statement_create("registry", [y], "WaitingGrant")
    pending_y = waiting.submit(second, deadline_in=WAITING_DEADLINE_SECONDS, timeout=60)

    assert_failed(pending_x.outcome(), failed_create_id(first), "did not finish")
    out = pending_y.outcome()
    assert_success(out, statements_id(second))
    # Whatever is still held lands now, after the answer to Y.
    cloud.proxy.release()
    cloud.proxy.wait_delivered("PutRegistryPolicy", timeout=LATE_WRITE_SECONDS + 5)
    live = {s["Sid"] for s in cloud.statements("registry")}
    assert "Waiting" in live, f"the statement answered SUCCESS is gone: {sorted(live)}"
    assert_statements(cloud, "registry", others, [s for s in (x, y) if s["Sid"] in live])


def test_seq9_the_delete_of_a_cut_off_create_removes_its_late_write(cloud, start):
    others = cloud.seed_others(APP)
    provider = start()
    kept, keeper = created(provider, APP, "Kept", 1)

    cloud.proxy.set_rule("SetRepositoryPolicy", Fault.late(), times=1)  # until released
    create = statement_create(APP, [stack_statement(APP, "CutOff", 2)], "CutOffGrant")
    out = provider.send(create, deadline_in=SHORT_DEADLINE_SECONDS, timeout=15)
    assert_failed(out, failed_create_id(create), "did not finish")
    cloud.proxy.release()
    cloud.proxy.wait_delivered("SetRepositoryPolicy")
    assert "CutOff" in {s["Sid"] for s in cloud.statements(APP)}, "premise: the write landed"

    cleanup = follow_up(create, "Delete", physical_id=failed_create_id(create))
    out = provider.send(cleanup, deadline_in=WAITING_DEADLINE_SECONDS, timeout=60)
    assert_success(out, failed_create_id(create), {})
    assert_statements(cloud, APP, others, [kept])
    assert cloud.holders(APP) == {"Kept": keeper["RequestId"]}


# --- a process killed mid-request, and the same event again ---------------------------------


@dataclass
class Killed:
    """A statement Create whose process was killed at its ECR write, on a target where
    another statement resource's statement was already."""

    target: str
    others: list[dict[str, Any]]
    kept: dict[str, Any]
    keeper: dict[str, Any]
    statement: dict[str, Any]
    event: dict[str, Any]
    lease_end: float
    lands: bool


def kill_at_the_write(cloud: Cloud, start, target: str, lands: bool) -> Killed:
    """A statement Create on ``target`` whose process is killed at its ECR write, which
    ``lands`` in ECR (its answer lost) or never reaches it. The record held the statement
    before the write, and the lease lasts the deadline plus the ECR attempt timeout."""
    others = cloud.seed_others(target)
    kept, keeper = created(start(suffix=f"-{target}-first"), target, "Kept", 1)
    write = "PutRegistryPolicy" if target == "registry" else "SetRepositoryPolicy"
    cloud.proxy.set_rule(write, Fault.hang(60, after_forward=lands), times=1)
    mine = stack_statement(target, "Killed", 2)
    event = statement_create(target, [mine], "KilledGrant")
    handed = time.time()
    start(suffix=f"-{target}-killed").submit_and_kill(
        event, write, deadline_in=SHORT_DEADLINE_SECONDS, timeout=1
    )
    if lands:
        cloud.proxy.wait_delivered(write)
    assert_statements(cloud, target, others, [kept, mine] if lands else [kept])
    held = cloud.lock_item(target)["holders"]
    assert held.get("Killed") == event["RequestId"], (
        f"{target}: the record did not hold the statement before ECR was written: {held}"
    )
    lease_end = assert_lease_left(cloud, target, handed)
    return Killed(target, others, kept, keeper, mine, event, lease_end, lands)


def lag_wait(k: Killed, out: Outcome) -> float:
    """How long the retry of ``k`` may read again after its lease ended. A write that never
    reached ECR looks, to the next request, like one a lagging read does not show yet: the
    record announced it less than a minute ago. That request reads again (CONTRACT 11) until
    the read shows it or half the time it has left (at most 10 s off its deadline) is spent,
    then the record wins. A write that landed is in the first read: no waiting."""
    rereads = [line for line in out.log if line.get("message", "").startswith(LAGGING)]
    if k.lands:
        assert not rereads, f"{k.target}: read again though the write landed: {rereads}"
        return 0.0
    assert rereads, f"{k.target}: the write never landed, yet the read was taken as it is"
    assert out.deadline is not None, "the Runtime API emulator sends a deadline"
    first_read = k.lease_end + LOCK_POLL_SECONDS
    return max(0.0, out.deadline - min((out.deadline - first_read) / 2, 10.0) - k.lease_end)


def test_processes_killed_before_and_after_their_ecr_write_then_the_same_events_again(
    cloud, start
):
    # On the registry the process dies after the record, before ECR (the write never
    # reaches it); on the repository after ECR, before the answer (the write lands).
    killed = [kill_at_the_write(cloud, start, "registry", False)]
    killed.append(kill_at_the_write(cloud, start, APP, True))

    # Both events again, as Lambda retries them, to two other processes at once: each
    # waits out its lease, no longer, and is answered SUCCESS; nothing is lost.
    again = start(processes=2, suffix="-again").send_all(
        [k.event for k in killed], deadline_in=WAITING_DEADLINE_SECONDS, timeout=60
    )
    for k, out in zip(killed, again):
        assert_success(out, statements_id(k.event), statements_data(k.event))
        early = k.lease_end - out.answered
        assert early <= 0, f"{k.target}: answered {early:.2f}s before the lease ended"
        assert out.answered < k.lease_end + AFTER_LEASE_SECONDS + lag_wait(k, out), (
            out.describe()
        )
        assert_statements(cloud, k.target, k.others, [k.kept, k.statement])
        assert cloud.holders(k.target) == {
            "Kept": k.keeper["RequestId"], "Killed": k.event["RequestId"]
        }

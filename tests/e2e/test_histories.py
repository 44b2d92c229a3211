"""The sequences of issue 23 (CONTRACT 11 as amended), end to end: the handler-level tests of
tests/histories.rs (s01 to s15, and four more: a whole policy from before the lock table
updated, a displaced resource that says Adopt, a whole policy handed back, a Delete after
its repository is gone), each against the provider's real binary behind the Runtime API
emulator, ECR, S3 and the lock table from moto, and the fault proxy between them
(rig.faultproxy). Each test is named as its handler test is, and fails on the code before
the fixes (37beb19), the way issue 23 says, except the Delete after its repository is gone,
which guards against what the first version of the fixes broke. Two stacks act on
repository `app`: `platform` (A) and `team-b` (B), told apart by their StackIds. ECR's true
state and the record are read from moto directly, never through the proxy; the start
fixture checks that every event got exactly one response.

- One target, two kinds (s01 to s06), the rollbacks (s14, s15) and the four more need no
  fault, only the order of the events. s05 and the update of a whole policy from before the
  lock table create it with a second provider started without the lock table.
- Reads that lag the provider's own writes (s07 to s13): ``Fault.stale(LAG_SECONDS)`` on
  `GetRepositoryPolicy` answers every read with the policy as it was 6 s before (writes made
  before the rule was set do not lag), longer than a request whose deadline is
  LAGGING_DEADLINE_SECONDS away may read again, so the record must decide, not a read that
  caught up. Each such step checks that its reads did lag.
- s13 adds lost answers: every attempt of the Create's write lands in moto and its answer is
  reset (``Fault.reset(after_forward=True)``, as many times as the SDK tries); the stale rule
  covers those writes too, so the read that should tell whether the write landed lags it.

The proxy stages every one of the sequences 1 to 15. (16 and 17, drift during deployments,
are not part of this module.)
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from rig.asserts import assert_failed, assert_success
from rig.cloud import Cloud, Function
from rig.constants import failed_create_id, repository_arn
from rig.events import (
    follow_up,
    in_stack,
    new_id,
    policy_of,
    repository_create,
    rollback_of,
    stack_statement,
    statement_create,
    statements_id,
    with_policy,
)
from rig.faultproxy import Fault
from rig.interface import INTERFACE
from rig.outcome import Outcome

APP = "app"  # the start fixture creates it
ARN = repository_arn(APP)
PLATFORM = "platform"  # stack A
TEAM_B = "team-b"  # stack B
READ = "GetRepositoryPolicy"
WRITE = "SetRepositoryPolicy"
# How far ECR's reads lag its writes while a test says so: more than a request under
# LAGGING_DEADLINE_SECONDS may spend reading again (until half its time is left).
LAG_SECONDS = 6.0
LAGGING_DEADLINE_SECONDS = 3.0
# A Create whose write's answers are all lost: time for the SDK's attempts (backoffs of 1 to
# 3 s in all) and the check after them.
LOST_ANSWERS_DEADLINE_SECONDS = 8.0


# --- the events of two stacks on one repository ---------------------------------------------


def grant(sid: str, n: int) -> dict[str, Any]:
    """A pull grant under ``sid``; ``n`` tells the accounts apart."""
    return stack_statement(APP, sid, n)


def whole(
    stack: str, logical_id: str, statements: list[dict[str, Any]], adopt: bool = False
) -> dict[str, Any]:
    """A whole-policy Create of `app` from ``stack``."""
    event = with_policy(in_stack(repository_create(APP, logical_id), stack), statements)
    if adopt:
        event["ResourceProperties"]["Adopt"] = "true"
    return event


def some(
    stack: str, logical_id: str, statements: list[dict[str, Any]], adopt: bool = False
) -> dict[str, Any]:
    """A statement resource's Create on `app` from ``stack``."""
    event = statement_create(APP, statements, logical_id, adopt="true" if adopt else None)
    return in_stack(event, stack)


def recreated(event: dict[str, Any]) -> dict[str, Any]:
    """The same Create from its stack deleted and created again under its name: another
    StackId, the same stack name."""
    event = new_id(event)
    prefix, _, _ = event["StackId"].rpartition("/")
    event["StackId"] = f"{prefix}/{uuid.uuid4()}"
    return event


def physical(event: dict[str, Any]) -> str:
    """The PhysicalResourceId a successful answer to ``event`` carries."""
    if "PhysicalResourceId" in event:
        return event["PhysicalResourceId"]
    if event["ResourceType"].endswith("Statement"):
        return statements_id(event)
    return ARN


def changed(event: dict[str, Any], statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An in-place Update of the resource ``event`` created (or last updated) to these
    statements."""
    properties = copy.deepcopy(event["ResourceProperties"])
    if "PolicyText" in properties:
        properties["PolicyText"] = {**policy_of(properties), "Statement": statements}
    else:
        properties["Statement"] = statements
    return follow_up(event, "Update", physical_id=physical(event), properties=properties)


def delete_of(event: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's Delete of the resource ``event`` created (or last updated)."""
    return follow_up(event, "Delete", physical_id=physical(event))


# --- sending them, and what came of it ------------------------------------------------------


def succeeds(provider: Function, event: dict[str, Any], **invoke: Any) -> Outcome:
    """Sends ``event``; SUCCESS with its PhysicalResourceId."""
    out = provider.send(event, **invoke)
    assert_success(out, physical(event))
    return out


def refused(provider: Function, create: dict[str, Any], *fragments: str) -> None:
    """Sends ``create``: FAILED with a Reason holding every fragment; then CloudFormation's
    Delete of the failed Create, which succeeds."""
    assert_failed(provider.send(create), failed_create_id(create), *fragments, "Adopt: true")
    cleanup = follow_up(create, "Delete", physical_id=failed_create_id(create))
    assert_success(provider.send(cleanup), failed_create_id(create), {})


def warnings(out: Outcome) -> str:
    return str(out.data.get("Warnings", ""))


def lag(cloud: Cloud) -> None:
    """From now on, every read of `app`'s policy shows it as it was LAG_SECONDS ago."""
    assert cloud.proxy is not None
    cloud.proxy.set_rule(READ, Fault.stale(LAG_SECONDS), times=10_000)


def lagging_after(cloud: Cloud, start: Any, create: dict[str, Any]) -> Function:
    """A provider that has created ``create`` (SUCCESS) before reads began to lag."""
    provider = start()
    succeeds(provider, create)
    lag(cloud)
    return provider


def deleted_as_reads_lag(cloud: Cloud, start: Any, sid: str) -> tuple[Function, dict[str, Any]]:
    """Stack A's whole policy (one statement, ``sid``) created, then deleted once reads
    lag: the provider, and A's Create."""
    a = whole(PLATFORM, "RepositoryPolicy", [grant(sid, 1)])
    provider = lagging_after(cloud, start, a)
    lagging(provider, delete_of(a))
    return provider, a


def lagging(provider: Function, event: dict[str, Any], read_lags: bool = False) -> Outcome:
    """Sends ``event`` while reads lag, with LAGGING_DEADLINE_SECONDS: SUCCESS; with
    ``read_lags``, the premise that one of its reads was answered from the past."""
    out = succeeds(provider, event, deadline_in=LAGGING_DEADLINE_SECONDS)
    if read_lags:
        lagged(out)
    return out


def lagged(out: Outcome) -> None:
    """Premise: a read of this event was answered from the past."""
    stale = [r for r in out.requests if r.kind == READ and r.note.startswith("served")]
    assert stale, f"premise: no read of this event lagged\n{out.describe()}"


def live(cloud: Cloud) -> list[dict[str, Any]]:
    """`app`'s statements in ECR, as they are (moto, not a lagging read)."""
    return cloud.statements(APP)


def sids(cloud: Cloud) -> list[str]:
    return sorted(s["Sid"] for s in live(cloud))


# --- one target, two kinds (sequences 1 to 6) -----------------------------------------------


def test_s01_a_statement_whose_sid_a_whole_policy_adopted_is_not_removed_by_its_delete(
    cloud, start
):
    provider = start()
    b = some(TEAM_B, "SharedGrant", [grant("Shared", 1)])
    succeeds(provider, b)
    a_policy = [grant("Shared", 2), grant("Own", 3)]
    succeeds(provider, whole(PLATFORM, "RepositoryPolicy", a_policy, adopt=True))

    out = succeeds(provider, delete_of(b))
    assert live(cloud) == a_policy
    assert "RepositoryPolicy" in warnings(out), out.describe()


def test_s02_a_whole_policy_equal_to_the_live_one_is_refused_while_a_sid_is_held(cloud, start):
    provider = start()
    shared = grant("Shared", 1)
    b = some(TEAM_B, "SharedGrant", [shared])
    succeeds(provider, b)
    a = whole(PLATFORM, "RepositoryPolicy", [shared])
    assert live(cloud) == policy_of(a["ResourceProperties"])["Statement"], "premise: equal"

    refused(provider, a, '"Shared"', "SharedGrant", TEAM_B)
    # B's Delete then removes what B holds, nothing A was never given.
    succeeds(provider, delete_of(b))
    assert cloud.policy(APP) is None, live(cloud)


def test_s03_a_statement_create_on_an_owned_policy_is_refused_and_with_adopt_hands_back(
    cloud, start
):
    provider = start()
    a_policy = [grant("S1", 1), grant("S2", 2)]
    succeeds(provider, whole(PLATFORM, "RepositoryPolicy", a_policy))
    # The same content as A's S1: refused all the same, naming the owner.
    refused(provider, some(TEAM_B, "SharedGrant", [grant("S1", 1)]), "RepositoryPolicy", PLATFORM)
    assert live(cloud) == a_policy

    # With Adopt it takes S1; its Delete (A still exists) hands S1 back as A declares it.
    taker = some(TEAM_B, "SharedGrant", [grant("S1", 7)], adopt=True)
    succeeds(provider, taker)
    assert grant("S1", 7) in live(cloud), "premise: taken over"
    succeeds(provider, delete_of(taker))
    assert live(cloud) == a_policy


def test_s04_a_statement_added_to_an_owned_policy_survives_the_owners_update(cloud, start):
    provider = start()
    a = whole(PLATFORM, "RepositoryPolicy", [grant("S1", 1)])
    succeeds(provider, a)
    refused(provider, some(TEAM_B, "SharedGrant", [grant("S9", 2)]), "RepositoryPolicy")
    # With Adopt the target moves to statements: A's next Update writes nothing.
    succeeds(provider, some(TEAM_B, "SharedGrant", [grant("S9", 2)], adopt=True))

    out = succeeds(provider, changed(a, [grant("S1", 3)]))
    assert sids(cloud) == ["S1", "S9"]
    assert grant("S1", 1) in live(cloud), live(cloud)
    assert "SharedGrant" in warnings(out), out.describe()


def test_s05_a_whole_policy_from_before_the_lock_table_leaves_a_statement_added_since(
    cloud, start
):
    without_lock = start(suffix="-without-lock", **{INTERFACE.lock_table_variable: None})
    a = whole(PLATFORM, "RepositoryPolicy", [grant("Legacy", 1)])
    succeeds(without_lock, a)
    assert cloud.lock_item(APP) is None, "premise: no record of the whole policy"

    provider = start()
    succeeds(provider, some(TEAM_B, "AddedGrant", [grant("Added", 2)]))
    succeeds(provider, delete_of(a))
    assert live(cloud) == [grant("Added", 2)]


def test_an_update_of_a_whole_policy_from_before_the_lock_table_keeps_the_statements_added_since(
    cloud, start
):
    without_lock = start(suffix="-without-lock", **{INTERFACE.lock_table_variable: None})
    a = whole(PLATFORM, "RepositoryPolicy", [grant("Legacy", 1)])
    succeeds(without_lock, a)
    provider = start()
    succeeds(provider, some(TEAM_B, "AddedGrant", [grant("Added", 2)]))

    update = changed(a, [grant("Legacy", 3)])
    out = succeeds(provider, update)
    assert live(cloud) == [grant("Legacy", 3), grant("Added", 2)]
    assert '"Added"' in warnings(out), out.describe()
    # Its rollback completes too.
    succeeds(provider, rollback_of(update))
    assert sids(cloud) == ["Added", "Legacy"]


def test_s06_one_stack_update_moves_a_target_between_the_kinds_and_its_cleanup_keeps_it(
    cloud, start
):
    provider = start()
    s1, s2 = grant("S1", 1), grant("S2", 2)
    a = whole(PLATFORM, "RepositoryPolicy", [s1, s2])
    succeeds(provider, a)
    # Without Adopt: refused, naming the whole policy's resource.
    refused(provider, some(PLATFORM, "GrantOne", [s1]), "RepositoryPolicy")

    # The stack update: two statement resources adopt, then the old resource's cleanup
    # Delete leaves what it no longer holds.
    g1 = some(PLATFORM, "GrantOne", [s1], adopt=True)
    g2 = some(PLATFORM, "GrantTwo", [s2], adopt=True)
    succeeds(provider, g1)
    succeeds(provider, g2)
    succeeds(provider, delete_of(a))
    assert live(cloud) == [s1, s2]

    # And back: a whole policy adopts both; the statement resources' Deletes leave it.
    back = whole(PLATFORM, "PolicyAgain", [s1, s2], adopt=True)
    succeeds(provider, back)
    succeeds(provider, delete_of(g1))
    succeeds(provider, delete_of(g2))
    assert live(cloud) == [s1, s2]
    # Its owner's Delete removes it.
    succeeds(provider, delete_of(back))
    assert cloud.policy(APP) is None, live(cloud)


# --- reads that lag the provider's own deletes (sequences 7 to 9) ---------------------------


def test_s07_a_deleted_whole_policys_statements_do_not_come_back_beside_a_new_statement(
    cloud, start
):
    provider, _ = deleted_as_reads_lag(cloud, start, "Old")

    lagging(provider, some(TEAM_B, "SharedGrant", [grant("New", 2)]), read_lags=True)
    assert sids(cloud) == ["New"]


def test_s08_a_stale_read_after_a_whole_policys_delete_is_no_reason_to_refuse_a_create(
    cloud, start
):
    provider, _ = deleted_as_reads_lag(cloud, start, "Old")
    again = recreated(whole(PLATFORM, "RepositoryPolicy", [grant("New", 2)]))
    lagging(provider, again, read_lags=True)
    assert sids(cloud) == ["New"]


def test_s08_a_stale_read_after_the_last_statements_delete_is_no_reason_to_refuse_a_create(
    cloud, start
):
    b = some(TEAM_B, "LastGrant", [grant("Last", 1)])
    provider = lagging_after(cloud, start, b)
    lagging(provider, delete_of(b))
    lagging(provider, whole(PLATFORM, "RepositoryPolicy", [grant("Third", 2)]), read_lags=True)
    assert sids(cloud) == ["Third"]


def test_s09_no_version_of_a_deleted_statement_comes_back_on_the_next_merge(cloud, start):
    b = some(TEAM_B, "SharedGrant", [grant("S", 1)])
    provider = lagging_after(cloud, start, b)
    update = changed(b, [grant("S", 2)])
    lagging(provider, update)
    lagging(provider, delete_of(update))

    lagging(provider, some(PLATFORM, "OtherGrant", [grant("T", 3)]), read_lags=True)
    assert sids(cloud) == ["T"]


# --- deciding against the record, not a read (sequences 10 to 13) ---------------------------


def test_s10_a_rollback_whose_lagging_read_shows_the_old_statement_still_writes_it(
    cloud, start
):
    b = some(TEAM_B, "SharedGrant", [grant("S", 1)])
    provider = lagging_after(cloud, start, b)
    update = changed(b, [grant("S", 2)])
    lagging(provider, update)
    assert live(cloud) == [grant("S", 2)], "premise: updated"

    # The rollback: an Update back to the first statement while reads still show it.
    lagging(provider, rollback_of(update), read_lags=True)
    assert live(cloud) == [grant("S", 1)]


def test_s11_a_delete_whose_lagging_read_shows_no_policy_still_removes_its_statement(
    cloud, start
):
    provider = start()
    lag(cloud)
    b = some(TEAM_B, "SharedGrant", [grant("S", 1)])
    lagging(provider, b)
    assert sids(cloud) == ["S"], "premise: created"

    lagging(provider, delete_of(b), read_lags=True)
    assert cloud.policy(APP) is None, live(cloud)


def test_s12_a_stack_recreated_under_its_name_writes_its_policy_whatever_a_stale_read_shows(
    cloud, start
):
    provider, a = deleted_as_reads_lag(cloud, start, "S")

    lagging(provider, recreated(a), read_lags=True)
    assert sids(cloud) == ["S"]


def test_s13_a_write_whose_answer_was_lost_is_unknown_and_its_failed_create_delete_removes_it(
    cloud, start
):
    provider = start()
    assert cloud.proxy is not None
    lag(cloud)
    # Every attempt of the write lands; every answer is lost.
    attempts = INTERFACE.sdk_max_attempts
    cloud.proxy.set_rule(WRITE, Fault.reset(after_forward=True), times=attempts)
    b = some(TEAM_B, "SharedGrant", [grant("S", 1)])
    out = provider.send(b, deadline_in=LOST_ANSWERS_DEADLINE_SECONDS)
    why = assert_failed(out, failed_create_id(b), "could not be checked")
    assert "as it was" not in why, why
    assert cloud.proxy.injected(WRITE) == attempts, "premise: every attempt's answer was lost"
    lagged(out)
    assert sids(cloud) == ["S"], "premise: the write landed"
    # The record still announces it, so the failed Create's Delete takes it out.
    item = cloud.lock_item(APP)
    assert item is not None and "S" in item["statements"], item

    cleanup = follow_up(b, "Delete", physical_id=failed_create_id(b))
    out = provider.send(cleanup, deadline_in=LAGGING_DEADLINE_SECONDS)
    assert_success(out, failed_create_id(b), {})
    lagged(out)
    assert cloud.policy(APP) is None, live(cloud)
    assert cloud.holders(APP) == {}


# --- rollbacks that must complete (sequences 14 and 15) -------------------------------------


def test_s14_a_displaced_holders_update_and_its_rollback_both_complete(cloud, start):
    provider = start()
    a = some(PLATFORM, "Grant", [grant("S", 1)])
    succeeds(provider, a)
    succeeds(provider, some(TEAM_B, "SharedGrant", [grant("S", 2)], adopt=True))

    update = changed(a, [grant("S", 3)])
    out = succeeds(provider, update)
    assert "SharedGrant" in warnings(out), out.describe()
    out = succeeds(provider, rollback_of(update))
    assert "SharedGrant" in warnings(out), out.describe()
    assert live(cloud) == [grant("S", 2)]


def test_a_displaced_resource_that_says_adopt_takes_nothing_back_on_its_update(cloud, start):
    provider = start()
    a = some(PLATFORM, "Grant", [grant("S", 1)], adopt=True)
    succeeds(provider, a)
    succeeds(provider, some(TEAM_B, "SharedGrant", [grant("S", 2)], adopt=True))

    out = succeeds(provider, changed(a, [grant("S", 3)]))
    assert live(cloud) == [grant("S", 2)]
    assert "SharedGrant" in warnings(out), out.describe()


def test_s15_a_renamed_resource_rolled_back_hands_its_sid_back_to_the_old_one(cloud, start):
    provider = start()
    statement = grant("S", 1)
    old = some(PLATFORM, "OldName", [statement])
    new = some(PLATFORM, "NewName", [statement])
    succeeds(provider, old)
    succeeds(provider, new)
    assert cloud.holders(APP) == {"S": new["RequestId"]}, "premise: the rename took it over"

    # The stack update fails elsewhere: CloudFormation deletes the new resource.
    succeeds(provider, delete_of(new))
    assert live(cloud) == [statement]
    assert cloud.holders(APP) == {"S": old["RequestId"]}
    # The old resource still holds it: its own Delete removes it.
    succeeds(provider, delete_of(old))
    assert cloud.policy(APP) is None, live(cloud)


def test_a_whole_policy_taker_deleted_first_hands_the_policy_back(cloud, start):
    provider = start()
    a_policy = [grant("A", 1)]
    a = whole(PLATFORM, "RepositoryPolicy", a_policy)
    succeeds(provider, a)
    taker = whole(TEAM_B, "TakesOver", [grant("B", 2)], adopt=True)
    succeeds(provider, taker)
    assert live(cloud) == [grant("B", 2)], "premise: taken over"

    succeeds(provider, delete_of(taker))
    assert live(cloud) == a_policy
    item = cloud.lock_item(APP)
    assert item is not None and item["owner"] is not None, item
    assert item["owner"]["logical"] == "RepositoryPolicy", item
    # A owns it again: its Delete removes it.
    succeeds(provider, delete_of(a))
    assert cloud.policy(APP) is None, live(cloud)


# --- a repository deleted under its statements ----------------------------------------------


def test_a_delete_after_the_repository_is_gone_succeeds_whoever_else_held_statements(
    cloud, start
):
    provider = start()
    mine = some(TEAM_B, "SharedGrant", [grant("Mine", 1)])
    succeeds(provider, mine)
    succeeds(provider, some(PLATFORM, "OtherGrant", [grant("Theirs", 2)]))
    cloud.ecr.delete_repository(repositoryName=APP, force=True)

    out = succeeds(provider, delete_of(mine))
    assert out.calls(WRITE) == 0 and out.calls("DeleteRepositoryPolicy") == 0, out.describe()
    item = cloud.lock_item(APP)
    assert item is not None and "Mine" not in item["statements"], item

"""Prefix statements (CONTRACT 15), end to end: the provider's real binary behind the Runtime
API emulator, ECR (DescribeRepositories included) and the lock table from moto, the fault
proxy between them. Twenty repositories under `team/`, two beside it; the console's and
Lambda's statements on some of them. Every step leaves those as they were, and the
repositories beside the prefix untouched. ECR and the lock table are read from moto directly.
"""

from __future__ import annotations

from rig.asserts import assert_failed, assert_statements, assert_success
from rig.constants import failed_create_id
from rig.events import follow_up, prefix_create, prefix_data, prefix_id, stack_statement

UNDER = [f"team/svc-{n:02d}" for n in range(18)] + ["team/a/b", "team/web"]
BESIDE = ["team-x", "other/team"]
# The console's statement and Lambda's grant are on these before any stack.
SHARED = ["team/svc-00", "team/a/b", "team-x"]
CONFLICTING = "team/svc-07"


def _prepare(cloud) -> dict[str, list]:
    for name in UNDER + BESIDE:
        cloud.create_repository(name)
    return {name: cloud.seed_others(name) for name in SHARED}


def test_a_prefix_statement_over_twenty_repositories_through_its_life(cloud, start):
    others = _prepare(cloud)
    provider = start()
    mine = stack_statement("team/svc-00", "TeamPull", 1)

    # A Sid that another grant has in one repository, with other content: the Create fails
    # naming it, and every repository is left as it was.
    theirs = {**stack_statement(CONFLICTING, "TeamPull", 9)}
    cloud.set_policy(CONFLICTING, {"Version": "2012-10-17", "Statement": [theirs]})
    before = {name: cloud.repository_policy(name) for name in UNDER + BESIDE}
    refused = prefix_create("team", [mine], "TeamPull")
    out = provider.send(refused)
    assert_failed(
        out, failed_create_id(refused), f'repository "{CONFLICTING}"', 'prefix "team"',
        "taken out again",
    )
    assert {name: cloud.repository_policy(name) for name in UNDER + BESIDE} == before
    cleanup = provider.send(follow_up(refused, "Delete", physical_id=failed_create_id(refused)))
    assert_success(cleanup, failed_create_id(refused), {})
    assert {name: cloud.repository_policy(name) for name in UNDER + BESIDE} == before

    # Without the conflict: every repository under the prefix holds the statement, each a
    # target of its own in the lock table; nothing beside the prefix changes.
    cloud.forget(CONFLICTING)
    created = prefix_create("team/", [mine], "TeamPull")
    out = provider.send(created)
    physical_id = prefix_id(created)
    assert_success(out, physical_id, prefix_data(created, len(UNDER)))
    assert out.calls("SetRepositoryPolicy") == len(UNDER), out.describe()
    for name in UNDER:
        assert_statements(cloud, name, others.get(name, []), [mine])
        assert cloud.holders(name) == {"TeamPull": created["RequestId"]}, name
    assert_statements(cloud, "team-x", others["team-x"], [])
    assert cloud.policy("other/team") is None

    # An Update in place reaches a repository created since, and keeps the others'.
    cloud.create_repository("team/new")
    changed = stack_statement("team/svc-00", "TeamPull", 2)
    update = follow_up(
        created, "Update", physical_id=physical_id,
        properties={**created["ResourceProperties"], "Statement": [changed]},
    )
    assert_success(provider.send(update), physical_id, prefix_data(update, len(UNDER) + 1))
    for name in [*UNDER, "team/new"]:
        assert_statements(cloud, name, others.get(name, []), [changed])
    assert cloud.holders("team/new") == {"TeamPull": created["RequestId"]}

    # The stack's Delete: out of every repository it held, the others' statements stay.
    delete = provider.send(follow_up(update, "Delete", physical_id=physical_id))
    assert_success(delete, physical_id, {})
    for name in [*UNDER, "team/new"]:
        assert_statements(cloud, name, others.get(name, []), [])
        assert cloud.holders(name) == {}, name
    assert_statements(cloud, "team-x", others["team-x"], [])

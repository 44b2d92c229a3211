"""Prefix statements and the targets that appear after them (CONTRACT 15), end to end: the
provider's real binary behind the Runtime API emulator, ECR and the lock table from moto (the
creation templates from the stand-in, rig.moto_templates), the fault proxy between them. A
prefix statement is created through CloudFormation's event; then a repository (or a template)
is created in moto and ECR's `CreateRepository` (`CreateRepositoryCreationTemplate`), as
CloudTrail records it (events/drift/), is handed to the same function as EventBridge would:
the statement is live there, under the Create's holder, and its Delete takes it out again.
"""

from __future__ import annotations

import copy
from typing import Any

from rig.asserts import assert_statements, assert_success
from rig.events import follow_up, load_event, prefix_create, prefix_data, prefix_id, stack_statement
from rig.faultproxy import Fault
from rig.interface import TEMPLATE, message

UNDER = ["team/app", "team/web"]


def created_repository(name: str) -> dict[str, Any]:
    """ECR's CreateRepository of ``name`` as CloudTrail records it."""
    event = copy.deepcopy(load_event("drift/create-repository.json"))
    event["detail"]["requestParameters"]["repositoryName"] = name
    event["detail"]["responseElements"]["repository"]["repositoryName"] = name
    return event


def created_template(prefix: str) -> dict[str, Any]:
    """ECR's CreateRepositoryCreationTemplate of ``prefix`` as CloudTrail records it."""
    event = copy.deepcopy(load_event("drift/create-repository-creation-template.json"))
    event["detail"]["requestParameters"]["prefix"] = prefix
    event["detail"]["responseElements"]["repositoryCreationTemplate"]["prefix"] = prefix
    return event


def deliver(function, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hands an EventBridge event to the function: its result and its log lines."""
    invocation, lines = function.invoke_event(event)
    assert invocation.error is None, invocation.error
    return invocation.result, lines


def applied(lines: list[dict[str, Any]]) -> list[str]:
    applied = message("arrival_applied")
    return [line["target_key"] for line in lines if line.get("message") == applied]


def test_new_repositories_and_templates_get_the_prefix_statement_by_their_events(cloud, start):
    function = start()
    for name in UNDER:
        cloud.create_repository(name)
    mine = stack_statement("team/app", "TeamPull", 1)
    created = prefix_create("team/", [mine], "TeamPull")
    physical_id = prefix_id(created)
    assert_success(function.send(created), physical_id, prefix_data(created, len(UNDER)))

    # A repository created after the stack: its first read answers RepositoryNotFound (ECR's
    # reads lag its writes), the next one finds it.
    cloud.create_repository("team/new")
    cloud.proxy.set_rule("GetRepositoryPolicy", Fault.not_found(), times=1)
    result, lines = deliver(function, created_repository("team/new"))
    assert cloud.proxy.injected("GetRepositoryPolicy") == 1
    assert result == {"targets": 1, "drifted": 0, "restored": 0}, result
    assert applied(lines) == ["repository/us-east-1/team/new"], lines
    assert_statements(cloud, "team/new", [], [mine])
    assert cloud.holders("team/new") == {"TeamPull": created["RequestId"]}

    # Beside the prefix: untouched, no ECR write.
    writes = cloud.proxy.count("SetRepositoryPolicy")
    for name in ["team-x", "other/team/app"]:
        cloud.create_repository(name)
        result, lines = deliver(function, created_repository(name))
        assert result == {"targets": 0, "drifted": 0, "restored": 0}, (name, result)
        assert cloud.policy(name) is None, name
    assert cloud.proxy.count("SetRepositoryPolicy") == writes

    # A creation template under the prefix: its repositoryPolicy holds the statement.
    template = cloud.create_template("team/a/")
    result, lines = deliver(function, created_template("team/a/"))
    assert applied(lines) == ["template/us-east-1/team/a/"], lines
    assert_statements(cloud, template, [], [mine])
    assert cloud.template("team/a/")["appliedFor"] == ["PULL_THROUGH_CACHE"]

    # Missed by its event: the sweep applies it, under Report.
    cloud.create_repository("team/missed")
    invocation, lines = function.invoke_event(load_event("drift/sweep.json"))
    assert invocation.error is None, invocation.error
    assert invocation.result["drifted"] == 0, (invocation.result, lines)
    assert applied(lines) == ["repository/us-east-1/team/missed"], lines
    assert_statements(cloud, "team/missed", [], [mine])

    # The stack's Delete reaches every one: they were written under its holder.
    assert_success(function.send(follow_up(created, "Delete", physical_id=physical_id)), physical_id, {})
    for name in [*UNDER, "team/new", "team/missed", TEMPLATE + "team/a/"]:
        assert [s["Sid"] for s in cloud.statements(name)] == [], name
    cloud.create_repository("team/after")
    result, _ = deliver(function, created_repository("team/after"))
    assert result == {"targets": 0, "drifted": 0, "restored": 0}
    assert cloud.policy("team/after") is None


def test_a_repository_deleted_before_its_event_is_skipped(cloud, start):
    function = start()
    cloud.create_repository("team/app")
    mine = stack_statement("team/app", "TeamPull", 1)
    created = prefix_create("team", [mine], "TeamPull")
    assert_success(function.send(created), prefix_id(created), prefix_data(created, 1))
    # Created and deleted again before the event came: it never shows.
    result, lines = deliver(function, created_repository("team/gone"))
    assert result == {"targets": 1, "drifted": 0, "restored": 0}, result
    assert applied(lines) == []
    assert any(line.get("message") == "the new target is gone; skipped" for line in lines), lines
    assert cloud.lock_item("team/gone") is None or cloud.holders("team/gone") == {}

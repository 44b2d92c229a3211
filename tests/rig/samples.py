"""The sample events of events/, run the way `sam local invoke -e events/<file>` runs them,
against a local account: what each needs there first, the outcome each is meant to have, and
the PhysicalResourceIds of a sequence kept as CloudFormation would keep them.

A new sample event slots in with no change here when it needs nothing but the repository it
names: every event is meant to succeed unless its file name starts with ``bad-``; only
other preconditions, and the Reason of a bad one, go in the two tables below.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

from rig.asserts import assert_failed, assert_success
from rig.cloud import Cloud
from rig.constants import EXISTING_REPOSITORY_POLICY, failed_create_id
from rig.events import (
    created_id,
    desired,
    expected_data,
    is_prefix,
    load_event,
    prefix_data,
    prefix_id,
    sample_events,
    statements_data,
    statements_id,
    statements_of,
    target_of,
    under_prefix,
)
from rig.outcome import Outcome
from rig.template import FunctionSettings


def _policy_to_adopt(cloud: Cloud, event: dict[str, Any]) -> str | None:
    name = event["ResourceProperties"]["RepositoryName"]
    if cloud.repository_policy(name) is not None:
        return None
    cloud.ecr.set_repository_policy(repositoryName=name, policyText=EXISTING_REPOSITORY_POLICY)
    return f"a policy set by hand on repository {name!r}, to adopt"


# What an event needs in the account before it runs, beyond the repositories it names (those
# are always created): a function of the cloud and the event that says what it did, if
# anything.
PRECONDITIONS: dict[str, Callable[[Cloud, dict[str, Any]], str | None]] = {
    "repository-adopt.json": _policy_to_adopt,
}

# What the Reason of an event meant to fail says.
REASONS: dict[str, tuple[str, ...]] = {
    "bad-input.json": ('"RepositoryNmae"', "did you mean RepositoryName?"),
}


def meant_to_fail(name: str) -> bool:
    return Path(name).name.startswith("bad-")


def lives() -> list[list[Path]]:
    """The sample events of each resource (one stack and logical id) that are meant to
    succeed, in the order CloudFormation would send them: Create, Update, Delete."""
    order = {"Create": 0, "Update": 1, "Delete": 2}
    resources: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for path in sample_events():
        if meant_to_fail(path.name):
            continue
        event = load_event(path.name)
        key = (event.get("StackId", ""), event.get("LogicalResourceId", ""))
        resources.setdefault(key, []).append((order.get(event.get("RequestType"), 3), path))
    return [[path for _, path in sorted(events)] for events in resources.values()]


def function_env(settings: FunctionSettings) -> dict[str, str]:
    """The function's environment as the template declares it (`sam local invoke` resolves
    it the same way); the tables it names are the account's (rig.cloud creates them as the
    template declares them). A variable the template declares empty (AWS_ENDPOINT_URL,
    RESPONSE_URL_ALLOWED_HOSTS) is unset for the function: the rig's own local values stand
    in for it, as local/env.json's do under `sam local invoke --env-vars`."""
    return {name: value for name, value in settings.variables.items() if value != ""}


def _prefix_neighbours(prefix: str) -> list[str]:
    """Repositories a prefix statement's sample needs: two under the prefix, and one beside it
    that must stay untouched (none beside ROOT, which matches all)."""
    if prefix == "ROOT":
        return ["root-sample/app", "root-sample/a/b"]
    stem = prefix.rstrip("/")
    return [f"{stem}/app", f"{stem}/a/b", f"{stem}-x"]


def seed(cloud: Cloud, name: str, event: dict[str, Any]) -> list[str]:
    """Makes the account ready for the event; says what it added."""
    done = []
    if is_prefix(event):
        for repository in _prefix_neighbours(event["ResourceProperties"]["RepositoryPrefix"]):
            if repository not in _repositories(cloud):
                cloud.create_repository(repository)
                done.append(f"repository {repository!r}")
    for properties in (event.get("ResourceProperties"), event.get("OldResourceProperties")):
        repository = (properties or {}).get("RepositoryName")
        if isinstance(repository, str) and repository not in _repositories(cloud):
            cloud.create_repository(repository)
            done.append(f"repository {repository!r}")
    precondition = PRECONDITIONS.get(Path(name).name)
    if precondition is not None:
        added = precondition(cloud, event)
        if added:
            done.append(added)
    return done


def _repositories(cloud: Cloud) -> set[str]:
    pages = cloud.ecr.get_paginator("describe_repositories").paginate()
    return {r["repositoryName"] for page in pages for r in page["repositories"]}


def is_statements(event: dict[str, Any]) -> bool:
    """Whether the event is a statement resource's (its properties name a Statement)."""
    return "Statement" in (event.get("ResourceProperties") or {})


def policy_target(event: dict[str, Any]) -> str | None:
    """The policy the event acts on, whole or some statements of it: "registry", a
    repository's name, or None for any other kind of resource."""
    if is_statements(event):
        return event["ResourceProperties"].get("RepositoryName") or "registry"
    return target_of(event)


def live_policy(cloud: Cloud, event: dict[str, Any]) -> str | None:
    """The live policy of the event's target; for a prefix statement, every repository's
    policy (JSON: name to policy text or null), those beside the prefix included."""
    if is_prefix(event):
        return json.dumps(
            {name: cloud.repository_policy(name) for name in sorted(_repositories(cloud))},
            sort_keys=True,
        )
    target = policy_target(event)
    if target is None:
        return None
    if target == "registry":
        return cloud.registry_policy()
    return cloud.repository_policy(target) if target in _repositories(cloud) else None


class Sequence:
    """Events run in order against one account, as one stack would send them: an Update or a
    Delete of a resource the sequence created carries the PhysicalResourceId its Create (or
    last Update) was answered with."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}

    def next(self, event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The event to send, and a note when its PhysicalResourceId was changed."""
        key = (event.get("StackId", ""), event.get("LogicalResourceId", ""))
        known = self.ids.get(key)
        if event.get("RequestType") == "Create" or known is None:
            return event, None
        if event.get("PhysicalResourceId") == known:
            return event, None
        event = copy.deepcopy(event)
        event["PhysicalResourceId"] = known
        return event, f"PhysicalResourceId set to {known}, as answered earlier in this run"

    def answered(self, event: dict[str, Any], outcome: Outcome) -> None:
        key = (event.get("StackId", ""), event.get("LogicalResourceId", ""))
        if outcome.physical_id and event.get("RequestType") != "Delete":
            self.ids[key] = outcome.physical_id
        elif event.get("RequestType") == "Delete" and outcome.status == "SUCCESS":
            self.ids.pop(key, None)


def check(
    cloud: Cloud, name: str, event: dict[str, Any], before: str | None, outcome: Outcome
) -> None:
    """Asserts that the event ended as its sample is meant to, given the live policy of its
    target ``before`` it ran: one well-formed response in time (rig.asserts); a bad sample
    FAILED with its Reason and ECR untouched; any other SUCCESS with the expected
    PhysicalResourceId and Data, and the live policy as the request leaves it. Every
    expected value comes from the event and ``before``, never from the outcome."""
    kind = event["RequestType"]
    if meant_to_fail(name):
        expected_id = failed_create_id(event) if kind == "Create" else event["PhysicalResourceId"]
        assert_failed(outcome, expected_id, *REASONS.get(Path(name).name, ()))
        assert live_policy(cloud, event) == before, "a failed request changed ECR"
        return
    if is_prefix(event):
        _check_prefix(cloud, event, before, outcome)
        return
    assert policy_target(event) is not None, (
        f"{name}: neither a policy nor a statement resource; teach rig.samples its checks"
    )
    if kind != "Create":
        expected_id = event["PhysicalResourceId"]
    elif is_statements(event):
        expected_id = statements_id(event)
    else:
        expected_id = created_id(event) or ""
    assert 0 < len(expected_id.encode()) <= 1024, f"PhysicalResourceId {expected_id!r}"
    if is_statements(event):
        _check_statements(cloud, event, expected_id, before, outcome)
        return
    if kind == "Delete":
        assert_success(outcome, expected_id, data={})
        assert live_policy(cloud, event) is None, "the policy is still there after a Delete"
        return
    adopting = kind == "Create" and before is not None and before != desired(event)
    assert_success(outcome, expected_id, expected_data(event, "true" if adopting else "false"))
    live = live_policy(cloud, event)
    assert live == desired(event), f"live policy {live!r}, expected {desired(event)!r}"
    if before == desired(event):
        assert outcome.ecr_calls["writes"] == 0, "the same policy was written again"


def _check_statements(
    cloud: Cloud, event: dict[str, Any], expected_id: str, before: str | None, outcome: Outcome
) -> None:
    """A statement resource's event: SUCCESS with its id and Data; after a Create or an
    Update its statements are live, each once and as written; after a Delete none of its
    Sids is; every other statement is left as it was."""
    target = policy_target(event)
    assert target is not None
    own = statements_of(event["ResourceProperties"])
    own_sids = {s["Sid"] for s in own}
    others = [s for s in _statements(before) if s["Sid"] not in own_sids]
    live = _statements(live_policy(cloud, event))
    assert [s for s in live if s["Sid"] not in own_sids] == others, (
        f"{target}: others' statements changed: {live}"
    )
    if event["RequestType"] == "Delete":
        assert_success(outcome, expected_id, data={})
        assert not own_sids & {s["Sid"] for s in live}, f"{target}: its Sids are still live: {live}"
        return
    taken = event["RequestType"] == "Create" and any(
        s["Sid"] in own_sids and s not in own for s in _statements(before)
    )
    assert_success(outcome, expected_id, statements_data(event, "true" if taken else "false"))
    mine = [s for s in live if s["Sid"] in own_sids]
    assert sorted(mine, key=lambda s: s["Sid"]) == sorted(own, key=lambda s: s["Sid"]), (
        f"{target}: live statements {live}, expected its own {own}"
    )


def _check_prefix(
    cloud: Cloud, event: dict[str, Any], before: str | None, outcome: Outcome
) -> None:
    """A prefix statement's event (a Create: the samples hold no other): SUCCESS with its id
    and Data; each repository under the prefix holds its statements, each once, with every
    other statement as it was; a repository beside the prefix is untouched."""
    assert event["RequestType"] == "Create", "teach rig.samples a prefix Update or Delete"
    prefix = event["ResourceProperties"]["RepositoryPrefix"]
    own = statements_of(event["ResourceProperties"])
    own_sids = {s["Sid"] for s in own}
    policies_before = json.loads(before or "{}")
    under = [name for name in policies_before if under_prefix(prefix, name)]
    assert under, f"no repository under {prefix!r}: the seed should have made some"
    assert_success(outcome, prefix_id(event), prefix_data(event, len(under)))
    for name, policy in policies_before.items():
        live = cloud.repository_policy(name)
        if name not in under:
            assert live == policy, f"{name} is beside {prefix!r} and changed: {live}"
            continue
        others = [s for s in _statements(policy) if s["Sid"] not in own_sids]
        statements = _statements(live)
        assert [s for s in statements if s["Sid"] not in own_sids] == others, name
        mine = [s for s in statements if s["Sid"] in own_sids]
        assert sorted(mine, key=lambda s: s["Sid"]) == sorted(own, key=lambda s: s["Sid"]), name


def _statements(policy: str | None) -> list[dict[str, Any]]:
    """The statements of a policy's text, in order; none without a policy."""
    if policy is None:
        return []
    statements = json.loads(policy)["Statement"]
    return statements if isinstance(statements, list) else [statements]

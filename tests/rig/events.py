"""CloudFormation's side of a conversation: the sample events of events/ (the ones
`sam local invoke -e` takes), the events that follow them, and what the provider should
write and answer for them."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from rig.constants import ACCOUNT, EVENTS, REGION, REGISTRY_ID, repository_arn


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, as CloudFormation would send it."""
    with open(EVENTS / name, encoding="utf-8") as f:
        return json.load(f)


def sample_events() -> list[Path]:
    """Every sample event file, by name."""
    return sorted(EVENTS.glob("*.json"))


def new_id(event: dict[str, Any]) -> dict[str, Any]:
    """The same event with a RequestId of its own."""
    event = copy.deepcopy(event)
    event["RequestId"] = str(uuid.uuid4())
    return event


def registry_create() -> dict[str, Any]:
    return new_id(load_event("registry-create.json"))


def registry_delete() -> dict[str, Any]:
    return new_id(load_event("registry-delete.json"))


def repository_create(name: str = "app", logical_id: str = "AppRepositoryPolicy") -> dict[str, Any]:
    event = new_id(load_event("repository-create.json"))
    event["ResourceProperties"]["RepositoryName"] = name
    event["LogicalResourceId"] = logical_id
    return event


def follow_up(
    previous: dict[str, Any],
    request_type: str,
    *,
    physical_id: str,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The next event CloudFormation sends for the same resource: a new RequestId, the
    resource's PhysicalResourceId and, for an Update, the previous properties as
    OldResourceProperties."""
    event = copy.deepcopy(previous)
    event["RequestType"] = request_type
    event["RequestId"] = str(uuid.uuid4())
    event["PhysicalResourceId"] = physical_id
    old = copy.deepcopy(previous["ResourceProperties"])
    event["ResourceProperties"] = copy.deepcopy(properties) if properties else old
    event.pop("OldResourceProperties", None)
    if request_type == "Update":
        event["OldResourceProperties"] = old
    return event


def rollback_of(update: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's rollback of an Update: the same resource, old and new swapped."""
    event = copy.deepcopy(update)
    event["RequestId"] = str(uuid.uuid4())
    event["ResourceProperties"], event["OldResourceProperties"] = (
        copy.deepcopy(update["OldResourceProperties"]),
        copy.deepcopy(update["ResourceProperties"]),
    )
    return event


def policy_of(properties: dict[str, Any]) -> dict[str, Any]:
    """The PolicyText property as a document (it may arrive as a JSON string)."""
    text = properties["PolicyText"]
    return json.loads(text) if isinstance(text, str) else text


def compact(policy: dict[str, Any] | str) -> str:
    """The compact form the provider sends to ECR: key order kept, no white space."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=False)


def desired(event: dict[str, Any]) -> str:
    """The compact policy the provider writes for this event."""
    return compact(policy_of(event["ResourceProperties"]))


def target_of(event: dict[str, Any]) -> str | None:
    """What a whole-policy event acts on: "registry", a repository name, or None for any
    other kind of resource."""
    kind = event.get("ResourceType", "")
    properties = event.get("ResourceProperties") or {}
    if kind.endswith("RepositoryPolicy") or (
        kind == "AWS::CloudFormation::CustomResource" and "RepositoryName" in properties
    ):
        return properties.get("RepositoryName")
    if kind.endswith("RegistryPolicy") or kind == "AWS::CloudFormation::CustomResource":
        return "registry"
    return None


def created_id(event: dict[str, Any]) -> str | None:
    """The PhysicalResourceId a successful Create of a whole-policy event returns."""
    target = target_of(event)
    if target is None:
        return None
    return REGISTRY_ID if target == "registry" else repository_arn(target)


def expected_data(event: dict[str, Any], adopted: str = "false") -> dict[str, Any]:
    """The Data of a successful Create or Update of a whole-policy resource."""
    properties = event["ResourceProperties"]
    data = {
        "RegistryId": ACCOUNT,
        "Region": REGION,
        "Adopted": adopted,
        "PolicyText": desired(event),
    }
    if "RepositoryName" in properties:
        data["RepositoryName"] = properties["RepositoryName"]
        data["RepositoryArn"] = repository_arn(properties["RepositoryName"])
    return data

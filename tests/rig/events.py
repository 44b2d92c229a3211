"""CloudFormation's side of a conversation: the sample events of events/ (the ones
`sam local invoke -e` takes), the events that follow them, and what the provider should
write and answer for them."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rig.constants import ACCOUNT, EVENTS, REGION, REGISTRY_ID, repository_arn
from rig.interface import physical_id
from rig.policies import compact


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, as CloudFormation would send it."""
    with open(EVENTS / name, encoding="utf-8") as f:
        return json.load(f)


def made_now(event: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail record from events/drift/ dated now, as CloudTrail dates a call it
    delivers (``eventTime``, to the second): the provider compares it with its own last write."""
    event["detail"]["eventTime"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def sample_events() -> list[Path]:
    """Every sample event file, by name."""
    return sorted(EVENTS.glob("*.json"))


def drift_samples() -> list[Path]:
    """The drift samples (CONTRACT 13): ECR's policy calls as CloudTrail records them, and
    the scheduled sweep, by name (``drift/<file>``)."""
    return sorted((EVENTS / "drift").glob("*.json"))


def is_drift_event(event: dict[str, Any]) -> bool:
    """An EventBridge event (CloudTrail's, the schedule's), not a custom-resource request."""
    return "detail-type" in event and "RequestType" not in event and "ResponseURL" not in event


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


def in_stack(event: dict[str, Any], stack: str, logical_id: str | None = None) -> dict[str, Any]:
    """The same event from another stack (its StackId names ``stack``), optionally under
    another logical id."""
    event = copy.deepcopy(event)
    prefix, _, _ = event["StackId"].partition(":stack/")
    event["StackId"] = f"{prefix}:stack/{stack}/{uuid.uuid5(uuid.NAMESPACE_URL, stack)}"
    if logical_id:
        event["LogicalResourceId"] = logical_id
    return event


def with_policy(
    event: dict[str, Any], statements: list[dict[str, Any]], version: str = "2012-10-17"
) -> dict[str, Any]:
    """A whole-policy event whose PolicyText holds these statements."""
    event = copy.deepcopy(event)
    event["ResourceProperties"]["PolicyText"] = {"Version": version, "Statement": statements}
    return event


def stack_name(event: dict[str, Any]) -> str:
    """The name of the stack an event comes from (its StackId's)."""
    return event["StackId"].partition(":stack/")[2].split("/", 1)[0]


def whole_create(target: str, stack: str, n: int) -> dict[str, Any]:
    """A whole-policy Create of ``target`` from stack ``stack`` (logical id: the stack's name
    in title case, then Policy), its policy one statement of its own (``n`` tells the
    policies apart)."""
    event = registry_create() if target == "registry" else repository_create(target)
    event = in_stack(event, stack, f"{stack.title().replace('-', '')}Policy")
    return with_policy(event, [stack_statement(target, f"Stack{n}", n)])


def statement_create(
    target: str,
    statements: list[dict[str, Any]] | dict[str, Any],
    logical_id: str | None = None,
    *,
    adopt: Any = None,
) -> dict[str, Any]:
    """A Create of a statement resource (CONTRACT 9) on ``target``'s policy ("registry", or a
    repository's name), from the sample events, with these statements."""
    repository = None if target == "registry" else target
    sample = "repository" if repository else "registry"
    event = new_id(load_event(f"{sample}-statement-create.json"))
    properties = event["ResourceProperties"]
    properties["Statement"] = copy.deepcopy(statements)
    if repository:
        properties["RepositoryName"] = repository
    if logical_id:
        event["LogicalResourceId"] = logical_id
    if adopt is not None:
        properties["Adopt"] = adopt
    return event


def prefix_create(
    prefix: str,
    statements: list[dict[str, Any]] | dict[str, Any] | None = None,
    logical_id: str | None = None,
    *,
    adopt: Any = None,
) -> dict[str, Any]:
    """A Create of a prefix statement (CONTRACT 15) over the repositories under ``prefix``,
    from the sample event, with these statements (the sample's when None)."""
    event = new_id(load_event("repository-prefix-statement-create.json"))
    properties = event["ResourceProperties"]
    properties["RepositoryPrefix"] = prefix
    if statements is not None:
        properties["Statement"] = copy.deepcopy(statements)
    if logical_id:
        event["LogicalResourceId"] = logical_id
    if adopt is not None:
        properties["Adopt"] = adopt
    return event


def is_prefix(event: dict[str, Any]) -> bool:
    """Whether the event is a prefix statement's (its properties name a RepositoryPrefix)."""
    return "RepositoryPrefix" in (event.get("ResourceProperties") or {})


def under_prefix(prefix: str, name: str) -> bool:
    """Whether repository ``name`` is under ``prefix``, as creation templates read it: a
    ``/`` assumed after the prefix; ROOT matches every repository."""
    if prefix == "ROOT":
        return True
    return name.startswith(prefix.rstrip("/") + "/") and len(name) > len(prefix.rstrip("/")) + 1


def prefix_id(event: dict[str, Any]) -> str:
    """The PhysicalResourceId a prefix statement's Create answers with."""
    properties = event["ResourceProperties"]
    sids = ",".join(_encoded_sid(s["Sid"]) for s in statements_of(properties))
    target_id = physical_id(
        "prefix", region=REGION, account=ACCOUNT, prefix=properties["RepositoryPrefix"]
    )
    return physical_id("statements", tag=event["RequestId"], sids=sids, target_id=target_id)


def prefix_data(
    event: dict[str, Any], repositories: int, adopted: str = "false", templates: str = ""
) -> dict[str, Any]:
    """The Data of a prefix statement's successful Create or Update: a statement resource's,
    with how many repositories hold the statements and the prefixes of the creation templates
    that do (comma-separated)."""
    properties = event["ResourceProperties"]
    return {
        "RegistryId": ACCOUNT,
        "Region": REGION,
        "Sids": ",".join(s["Sid"] for s in statements_of(properties)),
        "Adopted": adopted,
        "Access": access_of(statements_of(properties)),
        "Repositories": str(repositories),
        "Templates": templates,
    }


def replication_statement(sid: str, account: str, prefix: str) -> dict[str, Any]:
    """A registry statement letting ``account`` replicate into repositories under
    ``prefix/`` (the actions moto accepts in a registry policy)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{prefix}/*",
    }


def pull_statement(sid: str, account: str) -> dict[str, Any]:
    """A repository statement letting ``account`` pull."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                   "ecr:GetDownloadUrlForLayer"],
    }


def stack_statement(target: str, sid: str, n: int = 1) -> dict[str, Any]:
    """A statement a stack adds to ``target``'s policy: a replication source on the
    registry, a pull grant on a repository; ``n`` tells apart their accounts (and the
    registry's repository prefixes)."""
    account = f"{111122220000 + n:012d}"
    if target == "registry":
        return replication_statement(sid, account, f"team-{n:02d}")
    return pull_statement(sid, account)


def statements_of(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A statement resource's Statement property as a list (it may be one object, or a JSON
    string holding either)."""
    value = properties["Statement"]
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, list) else [value]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def access_of(statements: list[dict[str, Any]]) -> str:
    """Data.Access (CONTRACT 12) for the rig's own events: the accounts of their AWS
    principals (the registry's own left out) and their services. Conditions are not read, so
    a statement open to everyone is refused here rather than judged: tests of public access
    state the Access they expect."""
    accounts: set[str] = set()
    services: set[str] = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if "NotPrincipal" in statement or not isinstance(principal, dict):
            raise ValueError(f"access_of reads named principals only: {statement}")
        aws = principal.get("AWS", [])
        for entry in aws if isinstance(aws, list) else [aws]:
            fields = str(entry).split(":")
            account = fields[4] if len(fields) > 4 else str(entry)
            if account == "*":
                raise ValueError(f"access_of reads named principals only: {statement}")
            if account != ACCOUNT:
                accounts.add(account)
        service = principal.get("Service", [])
        services.update(service if isinstance(service, list) else [service])
    terms = [f"{name}:{','.join(sorted(found))}" for name, found in
             (("accounts", accounts), ("services", services)) if found]
    return ";".join(terms) or "account"


def _encoded_sid(sid: str) -> str:
    """A Sid as a PhysicalResourceId writes it: bytes outside [A-Za-z0-9._-] as %XX."""
    return "".join(
        chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._-") else f"%{b:02X}"
        for b in sid.encode()
    )


def statements_target_id(properties: dict[str, Any]) -> str:
    """The whole-policy id of a statement resource's target."""
    name = properties.get("RepositoryName")
    return repository_arn(name) if name else REGISTRY_ID


def statements_id(event: dict[str, Any]) -> str:
    """The PhysicalResourceId a statement resource's Create (or replacing Update) answers
    with: its target, its Sids, and a tag from the request's RequestId."""
    properties = event["ResourceProperties"]
    sids = ",".join(_encoded_sid(s["Sid"]) for s in statements_of(properties))
    return physical_id(
        "statements",
        tag=event["RequestId"],
        sids=sids,
        target_id=statements_target_id(properties),
    )


def statements_data(event: dict[str, Any], adopted: str = "false") -> dict[str, Any]:
    """The Data of a successful Create or Update of a statement resource."""
    properties = event["ResourceProperties"]
    data = {
        "RegistryId": ACCOUNT,
        "Region": REGION,
        "Sids": ",".join(s["Sid"] for s in statements_of(properties)),
        "Adopted": adopted,
        "Access": access_of(statements_of(properties)),
    }
    if properties.get("RepositoryName"):
        data["RepositoryName"] = properties["RepositoryName"]
        data["RepositoryArn"] = repository_arn(properties["RepositoryName"])
    return data


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
        "Access": access_of(_listed(policy_of(properties)["Statement"])),
    }
    if "RepositoryName" in properties:
        data["RepositoryName"] = properties["RepositoryName"]
        data["RepositoryArn"] = repository_arn(properties["RepositoryName"])
    return data

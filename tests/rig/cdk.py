"""CloudFormation's side of a CDK app: the CDK constructs' sample app (cdk/test/apps) synthesized
into cdk.out, and its custom resources turned into the events CloudFormation sends for a
stack's create, an update to another synthesis, and the stack's delete.

CloudFormation resolves the intrinsic functions of a resource's properties before the provider
sees them, and sends every scalar as a string (`true` arrives as "true"); `properties()` does
both, for the functions a construct writes into the provider's properties (Fn::Join and the
pseudo parameters), and fails on any other, so that a construct that starts writing one shows
up here first."""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.constants import ACCOUNT, PARTITION, REGION, ROOT
from rig.events import load_event

SAMPLE_APP = ROOT / "cdk" / "test-out" / "apps" / "sample-app.js"
PROVIDER_TYPES = (
    "Custom::ECRRegistryPolicy",
    "Custom::ECRRepositoryPolicy",
    "Custom::ECRRegistryPolicyStatement",
    "Custom::ECRRepositoryPolicyStatement",
)
PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
STACK = "Sample"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/{uuid.uuid5(uuid.NAMESPACE_URL, STACK)}"


def build() -> None:
    """The constructs and the test apps, built when their sources changed (scripts/cdk)."""
    subprocess.run([str(ROOT / "scripts" / "cdk"), "build"], cwd=ROOT, check=True)


def synth(outdir: Path, version: str) -> dict[str, Any]:
    """The sample app's template, as `cdk synth` writes it to cdk.out."""
    subprocess.run(["node", str(SAMPLE_APP), str(outdir), version], cwd=ROOT, check=True)
    with open(outdir / f"{STACK}.template.json", encoding="utf-8") as f:
        return json.load(f)


def resolve(value: Any) -> Any:
    """``value`` as CloudFormation hands it to a custom resource: intrinsics resolved, every
    scalar a string."""
    return stringified(_intrinsics(value))


def _intrinsics(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in PSEUDO:
            return PSEUDO[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(_intrinsics(p) for p in parts)
        functions = [k for k in value if k == "Ref" or k.startswith("Fn::")]
        if functions:
            raise ValueError(f"the rig cannot resolve {json.dumps(value)}")
        return {k: _intrinsics(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_intrinsics(v) for v in value]
    return value


def stringified(value: Any) -> Any:
    """Every scalar as the string CloudFormation passes on (true is "true", 30 is "30")."""
    if isinstance(value, dict):
        return {k: stringified(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringified(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]  # as the provider receives them


def custom_resources(template: dict[str, Any]) -> dict[str, Resource]:
    """The provider's resources of a template, by logical id; any other custom resource is an
    error (the sample app has none)."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            if kind not in PROVIDER_TYPES:
                raise ValueError(f"{logical_id}: {kind} is not one of the provider's types")
            found[logical_id] = Resource(logical_id, kind, resolve(resource["Properties"]))
    return found


def event(resource: Resource, request_type: str, *, physical_id: str | None = None,
          old: Resource | None = None) -> dict[str, Any]:
    """The event CloudFormation sends for ``resource`` (a Create, or an Update from ``old``, or
    a Delete)."""
    out = copy.deepcopy(load_event("repository-statement-create.json"))
    out.update(
        RequestType=request_type,
        RequestId=str(uuid.uuid4()),
        StackId=STACK_ID,
        LogicalResourceId=resource.logical_id,
        ResourceType=resource.type,
        ServiceToken=resource.properties["ServiceToken"],
        ResourceProperties=copy.deepcopy(resource.properties),
    )
    if physical_id is not None:
        out["PhysicalResourceId"] = physical_id
    if old is not None:
        out["OldResourceProperties"] = copy.deepcopy(old.properties)
    return out


@dataclass
class Change:
    """What a stack update does, in CloudFormation's order: creates and updates first, then,
    in the cleanup phase, the deletes of resources the new template no longer has."""

    creates: list[Resource]
    updates: list[tuple[Resource, Resource]]  # (old, new)
    deletes: list[Resource]


def change(before: dict[str, Resource], after: dict[str, Resource]) -> Change:
    return Change(
        creates=[r for k, r in after.items() if k not in before],
        updates=[(before[k], r) for k, r in after.items() if k in before and before[k] != r],
        deletes=[r for k, r in before.items() if k not in after],
    )


def statements(resource: Resource) -> list[dict[str, Any]]:
    """What a resource declares: a statement resource's statements, a whole policy's."""
    if "Statement" in resource.properties:
        return resource.properties["Statement"]
    return resource.properties["PolicyText"]["Statement"]


def get_att(template: dict[str, Any], output: str) -> tuple[str, str]:
    """(logical id, attribute) of an output that is an Fn::GetAtt."""
    value = template["Outputs"][output]["Value"]
    logical_id, attribute = value["Fn::GetAtt"]
    return logical_id, attribute

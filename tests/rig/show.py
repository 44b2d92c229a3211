"""Events, responses and live policies printed for people (the demo and scripts/invoke)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from rig.events import policy_of
from rig.outcome import Outcome


def indent(text: str, by: int = 4) -> str:
    return textwrap.indent(text, " " * by)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def pretty_policy(text: str | None) -> str:
    if text is None:
        return "(no policy)"
    try:
        return pretty(json.loads(text))
    except ValueError:
        return text


def summary(properties: dict[str, Any]) -> str:
    """A policy (PolicyText) or a statement resource's Statement in one line: the statements
    by Sid, effect and principal."""
    try:
        if "PolicyText" in properties:
            statements = policy_of(properties).get("Statement", [])
        else:
            statements = properties["Statement"]
            if isinstance(statements, str):
                statements = json.loads(statements)
    except (ValueError, KeyError, AttributeError):
        return repr(properties.get("PolicyText", properties.get("Statement")))
    if isinstance(statements, dict):
        statements = [statements]
    parts = []
    for s in statements:
        principal = s.get("Principal", "?")
        if isinstance(principal, dict):
            principal = ", ".join(
                v if isinstance(v, str) else ", ".join(v) for v in principal.values()
            )
        actions = s.get("Action", s.get("NotAction", []))
        count = 1 if isinstance(actions, str) else len(actions)
        parts.append(f"{s.get('Sid', '-')}: {s.get('Effect')} {count} action(s) to {principal}")
    return f"{len(statements)} statement(s): " + "; ".join(parts)


def stack_name(event: dict[str, Any]) -> str:
    """The stack's name, from its StackId (arn:...:stack/<name>/<uuid>)."""
    return event.get("StackId", "").partition(":stack/")[2].split("/")[0] or "?"


def request(event: dict[str, Any]) -> None:
    """The request in a few lines: type, resource, ids and the properties that matter."""
    print(
        f"  Request: {event['RequestType']} {event['ResourceType']}"
        f" (stack {stack_name(event)}, logical id {event['LogicalResourceId']})"
    )
    if event.get("PhysicalResourceId"):
        print(f"    PhysicalResourceId: {event['PhysicalResourceId']}")
    properties = event.get("ResourceProperties") or {}
    for name, value in properties.items():
        if name not in ("ServiceToken", "PolicyText", "Statement"):
            print(f"    {name}: {json.dumps(value)}")
    old = event.get("OldResourceProperties") or {}
    if "RepositoryName" in old and old.get("RepositoryName") != properties.get("RepositoryName"):
        print(f"    (was RepositoryName: {json.dumps(old['RepositoryName'])})")
    for name in ("PolicyText", "Statement"):
        if event["RequestType"] != "Delete" and name in properties:
            print(f"    {name}: {summary(properties)}")


def response(outcome: Outcome, full: bool = False) -> None:
    """The response CloudFormation would receive: in full, or with the policy abbreviated;
    then the ECR calls the provider made for it."""
    print("  Response CloudFormation receives:")
    if outcome.response is None:
        ended = f"; the invocation ended in error: {outcome.error}" if outcome.error else ""
        print(f"    (none){ended}")
        return
    r = outcome.response
    if full:
        print(indent(pretty(r), 4))
    else:
        print(f"    Status: {r.get('Status')}")
        if "Reason" in r:
            wrapped = textwrap.fill(r["Reason"], width=92, subsequent_indent=" " * 12)
            print(f"    Reason: {wrapped}")
        print(f"    PhysicalResourceId: {r.get('PhysicalResourceId')}")
        data = dict(r.get("Data") or {})
        if "PolicyText" in data:
            data["PolicyText"] = f"<the policy as written, {len(data['PolicyText'])} characters>"
        print("    Data:" + (" {}" if not data else ""))
        if data:
            print(indent(pretty(data), 6))
    calls = outcome.ecr_calls
    if calls is not None:
        print(
            f"  ECR calls made: {calls['reads']} read(s), {calls['writes']} write(s), "
            f"{calls['deletes']} delete(s)"
        )


def live(cloud: Any, targets: list[str]) -> None:
    """The policies now live in ECR: "registry", or repository names."""
    print("  Live in ECR:")
    for target in targets:
        label = "registry policy" if target == "registry" else f"repository {target!r}"
        print(f"    {label}:")
        print(indent(pretty_policy(cloud.policy(target)), 6))

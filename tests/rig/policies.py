"""Policy documents as text: the compact form the provider writes to ECR, and the same grant
written another way (as ECR hands policies back, or as a template edit that changes nothing
gives), which the provider must take as equivalent."""

from __future__ import annotations

import json
from typing import Any

# Keys whose lists are sets to IAM, and whose single value may be written as a one-element
# list and the other way round.
_SET_VALUED = ("Action", "NotAction", "Resource", "NotResource", "AWS", "Service", "Federated")


def compact(policy: dict[str, Any] | str) -> str:
    """The compact form the provider sends to ECR: key order kept, no white space, text
    outside ASCII as itself (serde_json's form)."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=False)


def rewritten(policy: dict[str, Any], *, statement_list: bool = False) -> dict[str, Any]:
    """The same grant written another way: every object's keys in reverse order, set-valued
    lists reversed, a single value as a one-element list and a one-element list as a single
    value, and a one-statement list as that statement alone (unless ``statement_list``: ECR
    hands statements back as a list, and moto takes no other form). ``Version``, ``Sid``,
    ``Effect`` and condition keys stay as they are."""

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: walk(value[k], k) for k in reversed(list(value))}
        if key in _SET_VALUED:
            if isinstance(value, str):
                return [value]
            return value[0] if len(value) == 1 else list(reversed(value))
        if isinstance(value, list):
            items = [walk(item) for item in value]
            alone = key == "Statement" and len(items) == 1 and not statement_list
            return items[0] if alone else items
        return value

    out = walk(policy)
    assert compact(out) != compact(policy), "the rewrite changed nothing"
    return out

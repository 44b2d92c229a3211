"""What the rig knows of the Rust provider, read from ``tests/interface.json`` and nowhere else.

A Rust test pins every value of that file to the code (the log line's message and field names,
the fallback budget, the SDK's attempts and attempt timeout, the response size limit, the lock
table's variable, item keys and attributes), so a change on either side fails a test instead
of drifting. Python code reads those values only
through this module: ``INTERFACE`` for the numbers, ``response_sent`` for the log line.
"""

from __future__ import annotations

import json
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

FILE = Path(__file__).resolve().parents[1] / "interface.json"


@dataclass(frozen=True)
class Interface:
    response_sent_message: str
    response_sent_fields: tuple[str, ...]
    span_fields: tuple[str, ...]
    default_budget_seconds: float
    sdk_max_attempts: int
    ecr_attempt_timeout_seconds: float
    max_response_bytes: int
    lock_table_variable: str
    lock_key: dict[str, str]  # "registry", "repository", "template": the item key's format
    lock_attributes: dict[str, str]  # what the rig reads of an item, by the attribute's name
    lock_entry_attributes: dict[str, str]  # inside a held statement, an owner, a removal
    lock_margin_seconds: float  # how long a lease outlives its invocation's deadline
    # "registry", "repository", "statements", "failed_create", "prefix"
    physical_ids: dict[str, str]
    drift_message: str  # the "policy drift" line's message (CONTRACT 13)
    drift_fields: tuple[str, ...]  # its fields, always there
    drift_metric: tuple[str, str]  # the embedded metric's namespace and name
    drift_result: tuple[str, ...]  # the keys of a drift invocation's result
    # The prefix statements' log lines (fan-out, pacing, continuation, new targets): name to
    # message ("prefix_done", "continued", "arrival_applied", ...)
    log_lines: dict[str, str]


def load(path: Path = FILE) -> Interface:
    raw = json.loads(path.read_text(encoding="utf-8"))
    sent = raw["response_sent"]
    return Interface(
        response_sent_message=sent["message"],
        response_sent_fields=tuple(sent["fields"]),
        span_fields=tuple(sent["span_fields"]),
        default_budget_seconds=float(raw["default_budget_seconds"]),
        sdk_max_attempts=int(raw["sdk_max_attempts"]),
        ecr_attempt_timeout_seconds=float(raw["ecr_attempt_timeout_seconds"]),
        max_response_bytes=int(raw["max_response_bytes"]),
        lock_table_variable=raw["lock_item"]["table_variable"],
        lock_key=dict(raw["lock_item"]["key"]),
        lock_attributes=dict(raw["lock_item"]["attributes"]),
        lock_entry_attributes=dict(raw["lock_item"]["entry_attributes"]),
        lock_margin_seconds=float(raw["lock_item"]["lease_margin_seconds"]),
        physical_ids={k: v for k, v in raw["physical_ids"].items() if k != "about"},
        drift_message=raw["drift"]["message"],
        drift_fields=tuple(raw["drift"]["fields"]),
        drift_metric=(raw["drift"]["metric_namespace"], raw["drift"]["metric_name"]),
        drift_result=tuple(raw["drift"]["result"]),
        log_lines={
            name: line["message"] for name, line in raw["operations_log"]["lines"].items()
        },
    )


INTERFACE = load()

# One "response sent" line, its attributes named by interface.json (a renamed field in Rust
# is an AttributeError here, not a silent None).
ResponseSent = namedtuple("ResponseSent", INTERFACE.response_sent_fields)  # type: ignore[misc]


def response_sent(log: Iterable[dict[str, Any]]) -> list[Any]:
    """The provider's "response sent" lines among ``log`` (JSON log lines), as ResponseSent
    values; a line that lacks one of the declared fields, or of its span's, is an error, not
    skipped."""
    found = []
    for line in log:
        if line.get("message") != INTERFACE.response_sent_message:
            continue
        span = line.get("span") or {}
        missing = [f for f in INTERFACE.response_sent_fields if f not in line]
        missing += [f"span.{f}" for f in INTERFACE.span_fields if f not in span]
        if missing:
            raise ValueError(
                f"a {INTERFACE.response_sent_message!r} line lacks {missing} "
                f"(declared in {FILE.name}): {line}"
            )
        found.append(ResponseSent(**{f: line[f] for f in INTERFACE.response_sent_fields}))
    return found


def message(name: str) -> str:
    """The message of the log line ``name`` of ``operations_log`` (a name interface.json does
    not declare is a KeyError, not a silent miss)."""
    return INTERFACE.log_lines[name]


# How the rig names a repository creation template as a target: this, then its prefix (no
# repository name holds a colon).
TEMPLATE = "template:"


def lock_key(target: str, region: str) -> str:
    """The lock item's key for ``target``: "registry", a repository's name, or a creation
    template as ``template:<prefix>``."""
    if target.startswith(TEMPLATE):
        return INTERFACE.lock_key["template"].format(region=region, prefix=target[len(TEMPLATE) :])
    if target == "registry":
        return INTERFACE.lock_key["registry"].format(region=region)
    return INTERFACE.lock_key["repository"].format(region=region, name=target)


def lock_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A lock item (its values plain) by what it means: ``lease_owner``, ``lease_until_ms``,
    ``expires_at``, ``statements`` (Sid to its entry, by meaning), ``owner``, ``removed``, and
    ``holders`` (Sid to the holding resource's tag); an absent attribute is None (no
    statements, holders or removals: {})."""
    if item is None:
        return None
    names = INTERFACE.lock_attributes
    found = {meaning: item.get(name) for meaning, name in names.items()}
    for meaning in ("statements", "removed"):
        found[meaning] = {sid: _entry(e) for sid, e in (found[meaning] or {}).items()}
    found["owner"] = None if found["owner"] is None else _entry(found["owner"])
    found["holders"] = {sid: e["holder"] for sid, e in found["statements"].items()}
    return found


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A held statement, an owner or a removal, by what its attributes mean."""
    names = INTERFACE.lock_entry_attributes
    return {meaning: entry[name] for meaning, name in names.items() if name in entry}


def physical_id(kind: str, **values: str) -> str:
    """A PhysicalResourceId of ``kind`` ("registry", "repository", "statements",
    "failed_create"; "prefix": a prefix statement's target id), in the provider's format."""
    return INTERFACE.physical_ids[kind].format(**values)


def ecr_calls(line: Any) -> dict[str, int]:
    """ECR reads, writes and deletes of one answered event."""
    return {"reads": line.ecr_reads, "writes": line.ecr_writes, "deletes": line.ecr_deletes}


def timings_ms(line: Any) -> dict[str, float]:
    """Where one event's time went, in milliseconds: the whole event, the provider's own
    share, waiting on ECR, waiting on the response PUT, and in the lock table's calls
    (waiting for a lease included)."""
    return {
        "total_ms": line.total_us / 1e3,
        "own_ms": line.own_us / 1e3,
        "ecr_ms": line.ecr_us / 1e3,
        "response_ms": line.response_us / 1e3,
        "lock_ms": line.lock_us / 1e3,
    }

"""One event handed to the function, and everything that came of it, whichever runtime ran
it: the invocation's answer, the response CloudFormation would read, how many times it was
stored, the provider's log lines for it and every request it made through the fault proxy
(always its response PUTs and DynamoDB calls; its ECR calls when the cloud has the proxy in
front of ECR too)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rig import interface
from rig.faultproxy import ECR_ANY, RESPONSE, Record, is_ecr


@dataclass
class Outcome:
    name: str
    event: dict[str, Any]  # as sent, with its ResponseURL
    key: str  # the response's key in the bucket
    runtime: str  # which runtime ran it
    deadline: float | None  # wall clock; None when the runtime set none we know of
    handed: float  # wall clock: the event was handed to the function
    answered: float  # wall clock: the function answered the runtime
    result: Any  # the invocation's result (None for the provider's Ok(()))
    error: dict[str, Any] | None  # errorType/errorMessage when the invocation ended in error
    response: dict[str, Any] | None  # what CloudFormation would read from the bucket
    response_bytes: int | None  # its size as stored
    stored: int  # PUTs that reached the bucket for this event (every version counts)
    deleted: int  # delete markers under its key (the provider never deletes: always 0)
    log: list[dict[str, Any]]  # the provider's JSON log lines written during the invocation
    requests: list[Record]  # what went through the fault proxy
    ecr_seen: bool  # whether ECR's calls went through it too (Cloud(proxy=True))
    # Sent while no other event was in flight. When others were, ``log`` and ``requests``
    # hold only what can be told to be this event's: its log lines and its response PUTs.
    alone: bool = True

    @property
    def seconds(self) -> float:
        return self.answered - self.handed

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_message(self) -> str:
        return str((self.error or {}).get("errorMessage", ""))

    @property
    def status(self) -> str | None:
        return self.response and self.response.get("Status")

    @property
    def reason(self) -> str:
        return (self.response or {}).get("Reason", "")

    @property
    def physical_id(self) -> str | None:
        return self.response and self.response.get("PhysicalResourceId")

    @property
    def data(self) -> dict[str, Any]:
        return (self.response or {}).get("Data") or {}

    @property
    def metered(self) -> list[Any]:
        """The provider's "response sent" lines for this event (rig.interface)."""
        return interface.response_sent(self.log)

    @property
    def ecr_calls(self) -> dict[str, int] | None:
        """ECR reads, writes and deletes, as the provider metered them; None when it logged
        no "response sent" line."""
        lines = self.metered
        return interface.ecr_calls(lines[0]) if lines else None

    def calls(self, kind: str) -> int:
        """Requests of one kind through the fault proxy: an ECR operation, ``ECR_ANY`` or
        ``RESPONSE``."""
        if is_ecr(kind) and not self.ecr_seen:
            raise ValueError(f"{self.name}: no fault proxy saw this event's ECR calls")
        if not self.alone and kind != RESPONSE:
            raise ValueError(f"{self.name}: sent among others, its {kind} calls are not its own")
        if kind == ECR_ANY:
            return sum(1 for r in self.requests if is_ecr(r.kind))
        return sum(1 for r in self.requests if r.kind == kind)

    @property
    def response_puts(self) -> list[Record]:
        return [r for r in self.requests if r.kind == RESPONSE]

    @property
    def delivered_at(self) -> float | None:
        """When S3 (moto) accepted the response PUT, as relayed by the proxy."""
        ok = [r.done_at for r in self.response_puts if r.status == 200]
        return ok[0] if ok else None

    def describe(self) -> str:
        lines = [
            f"{self.name} ({self.runtime}): {self.seconds:.2f}s, result={self.result!r} "
            f"error={self.error!r}",
            f"  response={json.dumps(self.response)[:600] if self.response else None}",
            f"  stored={self.stored} deleted={self.deleted} bytes={self.response_bytes}",
        ]
        for r in self.requests:
            lines.append(
                f"  {r.kind} {r.method} fault={r.fault} status={r.status} note={r.note}"
                f" at +{r.received_at - self.handed:.2f}s"
            )
        return "\n".join(lines)

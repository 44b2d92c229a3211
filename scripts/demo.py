"""A stack's life, end to end on this machine: moto stands in for ECR and for CloudFormation's
response bucket, the provider's real binary runs behind `cargo lambda watch`. For each step
it prints the request, the response CloudFormation would receive, and the policy now live in
ECR. Run it with scripts/demo (which bootstraps and builds first).

Exit status: 0 when every step ended as expected, 1 when one did not, 2 when the demo could
not start, 130 when interrupted. Everything it starts is stopped, Ctrl-C included."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

import harness as h  # noqa: E402

# Longer than the demo can take; the servers end by themselves after it.
LIFETIME_SECONDS = 300

# A policy someone set on the repository by hand before the stack existed.
HAND_MADE_POLICY = json.dumps(
    {
        "Version": "2008-10-17",
        "Statement": [
            {
                "Sid": "Legacy",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "ecr:BatchGetImage",
            }
        ],
    }
)


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
    """A policy in one line: its statements by Sid, effect and principal."""
    try:
        policy = h.policy_of(properties)
    except ValueError:
        return repr(properties["PolicyText"])
    statements = policy.get("Statement", [])
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


class Demo:
    def __init__(self, harness: h.Harness):
        self.h = harness
        self.step = 0
        self.failures: list[str] = []

    def run(
        self,
        title: str,
        event: dict[str, Any],
        *,
        expect_status: str,
        expect_physical_id: str | None = None,
        show: list[str],
        check: Callable[[h.Sent], list[str]] = lambda sent: [],
    ) -> h.Sent:
        self.step += 1
        print(f"\n=== {self.step}. {title} ===")
        self.print_request(event)
        sent = self.h.send(event)
        self.print_response(sent)
        print("  Live in ECR:")
        for target in show:
            text = self.h.registry_policy() if target == "registry" else self.h.repository_policy(target)
            label = "registry policy" if target == "registry" else f"repository {target!r}"
            print(f"    {label}:")
            print(indent(pretty_policy(text), 6))
        problems = []
        if not sent.invocation.ok:
            problems.append(f"the invocation failed: {sent.invocation.error_message}")
        if sent.status != expect_status:
            problems.append(f"Status {sent.status}, expected {expect_status}")
        if expect_physical_id and sent.physical_id != expect_physical_id:
            problems.append(
                f"PhysicalResourceId {sent.physical_id}, expected {expect_physical_id}"
            )
        if sent.response is not None:
            problems += check(sent)
        if problems:
            self.failures += [f"step {self.step} ({title}): {p}" for p in problems]
            print("  UNEXPECTED:")
            for p in problems:
                print(f"    - {p}")
        else:
            print("  -> as expected")
        return sent

    @staticmethod
    def print_request(event: dict[str, Any]) -> None:
        print(
            f"  Request: {event['RequestType']} {event['ResourceType']}"
            f" (logical id {event['LogicalResourceId']})"
        )
        if event.get("PhysicalResourceId"):
            print(f"    PhysicalResourceId: {event['PhysicalResourceId']}")
        properties = event.get("ResourceProperties") or {}
        for name in ("RepositoryName", "Adopt", "Region", "Force", "RepositoryNmae"):
            if name in properties:
                print(f"    {name}: {json.dumps(properties[name])}")
        old = event.get("OldResourceProperties") or {}
        if "RepositoryName" in old and old.get("RepositoryName") != properties.get("RepositoryName"):
            print(f"    (was RepositoryName: {json.dumps(old['RepositoryName'])})")
        if event["RequestType"] != "Delete" and "PolicyText" in properties:
            print(f"    PolicyText: {summary(properties)}")

    @staticmethod
    def print_response(sent: h.Sent) -> None:
        print("  Response CloudFormation receives:")
        if sent.response is None:
            print("    (none)")
            return
        r = sent.response
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
        calls = sent.ecr_calls
        if calls is not None:
            print(
                f"  ECR calls made: {calls['reads']} read(s), {calls['writes']} write(s), "
                f"{calls['deletes']} delete(s)"
            )


def main() -> int:
    started = time.monotonic()
    harness = h.Harness(lifetime=LIFETIME_SECONDS)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        print("Starting moto (ECR and S3) and the provider under `cargo lambda watch`...")
        try:
            harness.start()
        except h.HarnessError as e:
            print(f"The demo could not start: {e}", file=sys.stderr)
            return 2
        print(f"  moto: {harness.moto.endpoint}; Lambda invoke endpoint: {harness.runtime.url}")
        print(f"  logs: {harness.workdir}")
        harness.create_repository("app")
        harness.create_repository("app-v2")
        harness.ecr.set_repository_policy(repositoryName="app", policyText=HAND_MADE_POLICY)
        print("  account 123456789012, us-east-1: repositories 'app' and 'app-v2';")
        print("  'app' already has a policy someone set by hand:")
        print(indent(pretty_policy(HAND_MADE_POLICY), 4))

        demo = Demo(harness)
        registry = h.load_event("registry-create.json")
        demo.run(
            "Create the registry replication policy",
            registry,
            expect_status="SUCCESS",
            expect_physical_id=h.REGISTRY_ID,
            show=["registry"],
            check=lambda s: []
            if harness.registry_policy() == s.data.get("PolicyText")
            else ["the live registry policy is not the one written"],
        )

        adopt = h.load_event("repository-adopt.json")
        app = h.repository_arn("app")
        demo.run(
            "Create the repository policy, adopting the hand-made one (Adopt: true)",
            adopt,
            expect_status="SUCCESS",
            expect_physical_id=app,
            show=["app"],
            check=lambda s: [] if s.data.get("Adopted") == "true" else ["Data.Adopted is not \"true\""],
        )

        more = h.load_event("repository-update.json")["ResourceProperties"]
        update = h.follow_up(
            adopt, "Update", physical_id=app, properties=dict(more, Adopt="true")
        )
        demo.run(
            "Update it: add a push statement for the CI role",
            update,
            expect_status="SUCCESS",
            expect_physical_id=app,
            show=["app"],
            check=lambda s: []
            if harness.repository_policy("app") == h.compact(h.policy_of(update["ResourceProperties"]))
            else ["the live policy is not the updated one"],
        )

        app_v2 = h.repository_arn("app-v2")
        replace = h.follow_up(
            update,
            "Update",
            physical_id=app,
            properties=dict(update["ResourceProperties"], RepositoryName="app-v2"),
        )
        demo.run(
            "Replace it: the template now names repository 'app-v2'",
            replace,
            expect_status="SUCCESS",
            expect_physical_id=app_v2,
            show=["app", "app-v2"],
        )

        cleanup = h.follow_up(update, "Delete", physical_id=app)
        demo.run(
            "CloudFormation's cleanup: Delete of the old PhysicalResourceId",
            cleanup,
            expect_status="SUCCESS",
            expect_physical_id=app,
            show=["app", "app-v2"],
            check=lambda s: [] if harness.repository_policy("app") is None else ["'app' still has a policy"],
        )

        demo.run(
            "Delete the stack: the repository policy",
            h.follow_up(replace, "Delete", physical_id=app_v2),
            expect_status="SUCCESS",
            expect_physical_id=app_v2,
            show=["app-v2"],
            check=lambda s: [] if harness.repository_policy("app-v2") is None else ["'app-v2' still has a policy"],
        )
        demo.run(
            "Delete the stack: the registry policy",
            h.follow_up(registry, "Delete", physical_id=h.REGISTRY_ID),
            expect_status="SUCCESS",
            expect_physical_id=h.REGISTRY_ID,
            show=["registry"],
            check=lambda s: [] if harness.registry_policy() is None else ["the registry still has a policy"],
        )

        bad = h.load_event("bad-input.json")
        demo.run(
            "A template with a typo (RepositoryNmae) and Adopt: yes",
            bad,
            expect_status="FAILED",
            expect_physical_id="failed-create:" + bad["RequestId"],
            show=["app"],
            check=lambda s: []
            if "RepositoryNmae" in s.reason and harness.repository_policy("app") is None
            else ["the Reason does not name RepositoryNmae, or ECR was written"],
        )

        problems = harness.unexpected_responses()
        demo.failures += [f"responses: {p}" for p in problems]
        print(
            f"\n{demo.step} steps, {len(demo.failures)} unexpected, "
            f"one response per event: {'yes' if not problems else 'NO'}; "
            f"{time.monotonic() - started:.1f} s"
        )
        for failure in demo.failures:
            print(f"  UNEXPECTED {failure}")
        print(f"Provider log: {harness.provider_log}")
        return 1 if demo.failures else 0
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything the demo started.", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        harness.stop()


if __name__ == "__main__":
    sys.exit(main())

"""Sample events run the way `sam local invoke -e <event>` runs them, with no Docker and no AWS
account: the provider's binary is the bootstrap of AWS's own Lambda Runtime Interface Emulator
(the aws-lambda-rie that the installed aws-sam-cli ships and runs inside its container), with
template.yaml's MemorySize, Timeout and environment; moto stands in for ECR, DynamoDB and
CloudFormation's response bucket. Each event gets what it needs in the account first (the
repository it names; for repository-adopt.json a policy to adopt), its ResponseURL becomes a
presigned PUT URL of the local bucket, and the response CloudFormation would receive and the
policy now live in ECR are printed. Several events run in order against the same account, an
Update or a Delete carrying the PhysicalResourceId its resource was answered with earlier in
the run. A drift sample (events/drift/: a CloudTrail record or the schedule) is handed over as
EventBridge would, and the invocation's result and its "policy drift" lines are printed. Run it
with scripts/invoke (or make invoke EVENTS=...), which builds first.

Exit status: 0 when every custom-resource event got exactly one response, in time, and every
drift event returned a result, 1 when one did not, 2 when
nothing could start (or an event file is missing), 130 when interrupted. Whether each event
ended as its sample is meant to (rig.samples) is printed, but does not change the status: a
run of your own may mean another outcome.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rig import samples, show, template
from rig.asserts import assert_answered, failure
from rig.cloud import Cloud, Function
from rig.events import is_drift_event, target_of
from rig.procs import RigError, run_script
from rig.runtimes import rie_path

# Longer than a run can take with the template's timeout; everything ends by itself after it.
LIFETIME_SECONDS = 1800


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events", nargs="+", type=Path, help="event files, e.g. events/registry-create.json")
    args = parser.parse_args()
    missing = [str(p) for p in args.events if not p.is_file()]
    if missing:
        print(f"invoke: no such event file: {', '.join(missing)}", file=sys.stderr)
        return 2
    cloud = Cloud(lifetime=LIFETIME_SECONDS)
    return run_script(lambda: invoke_all(cloud, args.events), cloud.stop)


def invoke_all(cloud: Cloud, paths: list[Path]) -> int:
    started = time.monotonic()
    settings = template.function_settings()
    print("Starting moto (ECR, S3, DynamoDB) and AWS's Lambda Runtime Interface Emulator...")
    try:
        cloud.start()
        function = cloud.start_rie(
            "rie",
            timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb,
            **samples.function_env(settings),
        )
    except RigError as e:
        print(f"invoke: could not start: {e}", file=sys.stderr)
        return 2
    print(f"  {rie_path()}")
    print(
        f"  runs target/debug/ecr-policy-provider as template.yaml's {settings.logical_id}: "
        f"MemorySize {settings.memory_mb} MB, Timeout {settings.timeout_seconds} s"
    )
    print(f"  moto: {cloud.moto.endpoint}; logs: {cloud.workdir} (rie.log, moto.log)")
    sequence = samples.Sequence()
    unanswered, as_meant, requests = [], 0, 0
    for path in paths:
        outcome, meant = invoke_one(cloud, function, sequence, path)
        wrong = failure(assert_answered, outcome) if outcome is not None else (
            None if meant else "the drift event ended in error"
        )
        if wrong:
            unanswered.append(f"{path}: {wrong.splitlines()[0]}")
        as_meant += meant
        requests += outcome is not None
    print(
        f"\n{len(paths)} events, {as_meant} ended as their samples are meant to; "
        f"{requests - len(unanswered)} of {requests} custom-resource requests got exactly one "
        f"response in time; "
        f"{time.monotonic() - started:.1f} s"
    )
    for problem in unanswered:
        print(f"  NO RIGHT RESPONSE {problem}")
    print(f"RIE and provider log: {function.log}")
    return 1 if unanswered else 0


def invoke_one(
    cloud: Cloud, function: Function, sequence: samples.Sequence, path: Path
) -> tuple[Any, bool]:
    """Runs one event file; returns what came of it and whether it ended as meant."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if is_drift_event(raw):
        return invoke_drift(cloud, function, path, raw)
    event, note = sequence.next(raw)
    print(f"\n=== {path} ===")
    seeded = samples.seed(cloud, path.name, event)
    if seeded:
        print("  Seeded in the local account: " + "; ".join(seeded))
    if note:
        print(f"  {note}")
    print("  ResponseURL: replaced by a presigned PUT URL of the local response bucket")
    show.request(event)
    before = samples.live_policy(cloud, event)
    outcome = function.send(event, str(path))
    sequence.answered(event, outcome)
    show.response(outcome, full=True)
    show.live(cloud, live_targets(cloud, event))
    wrong = failure(samples.check, cloud, path.name, event, before, outcome)
    if wrong:
        print(f"  -> not as this sample is meant to end: {wrong.splitlines()[0]}")
        return outcome, False
    print(f"  -> {outcome.status}, as this sample is meant to end")
    return outcome, True


def invoke_drift(
    cloud: Cloud, function: Function, path: Path, event: dict[str, Any]
) -> tuple[Any, bool]:
    """A drift event (events/drift/): a CloudTrail record or the schedule, with nothing to
    answer; prints the invocation's result and its "policy drift" lines. It ends as meant
    when the function returns a result."""
    print(f"\n=== {path} ===")
    detail = event.get("detail") or {}
    print(f"  {event.get('detail-type')} from {event.get('source')}"
          + (f": {detail.get('eventName')}" if detail.get("eventName") else ""))
    invocation, lines = function.invoke_event(event)
    if invocation.error is not None:
        print(f"  -> invocation error: {invocation.error}")
        return None, False
    print(f"  Result: {json.dumps(invocation.result)}")
    for line in lines:
        if line.get("message") == "policy drift":
            print(f"  policy drift: {json.dumps(line)}")
    show.live(cloud, live_targets(cloud, event))
    print("  -> returned a result, as a drift event is meant to end")
    return None, True


def live_targets(cloud: Cloud, event: dict[str, Any]) -> list[str]:
    """What to show of ECR after the event: its target, or, when that cannot be told, the
    registry and every repository."""
    target = target_of(event) or (event.get("ResourceProperties") or {}).get("RepositoryName")
    if isinstance(target, str):
        return [target]
    repositories = cloud.ecr.describe_repositories()["repositories"]
    return ["registry", *sorted(r["repositoryName"] for r in repositories)]


if __name__ == "__main__":
    sys.exit(main())

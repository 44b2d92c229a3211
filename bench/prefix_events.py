"""A `CreateRepository` event to the statement being live (issue 25, CONTRACT 15).

The release binary behind the Runtime API emulator of the test rig, ECR and the lock table
from moto (the lock table's calls through the rig's proxy, one at a time), as the e2e rig runs
it. A prefix statement on `team/` is created through CloudFormation's event (over
PREFIX_REPOSITORIES repositories); then, one at a time, a repository `team/new-<n>` is created
in moto and ECR's `CreateRepository`, as CloudTrail records it (events/drift/), is handed to the
function. Each event's time runs from the hand-out until a read of moto shows the statement
in the new repository's policy (polled every POLL_SECONDS after the invocation returns, which
in moto is at once); the provider's own, ECR and lock-table times and calls come from its
"drift checked" log line. One event first, not counted (the SDK clients' set-up).

Run by bench/bench.py (`make bench`); alone:

    PYTHONPATH=tests .venv/bin/python bench/prefix_events.py --ours target/release/ecr-policy-provider
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rig.asserts import assert_success, failure
from rig.cloud import Cloud
from rig.events import load_event, prefix_create, prefix_data, prefix_id, stack_statement

EVENTS = 100
PREFIX_REPOSITORIES = 10
POLL_SECONDS = 0.005
LIVE_WITHIN_SECONDS = 10.0
# The contract's "within seconds": the p99 must be under this.
P99_MAX_MS = 1000.0


class Wrong(Exception):
    """The provider did something wrong: a correctness failure, not a slow run."""


def created_repository(name: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("drift/create-repository.json"))
    event["detail"]["requestParameters"]["repositoryName"] = name
    event["detail"]["responseElements"]["repository"]["repositoryName"] = name
    return event


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def measure(cloud: Cloud, binary: Path, events: int = EVENTS) -> dict[str, Any]:
    """``events`` CreateRepository events, each to its statement being live."""
    cloud.prepare(repositories=[f"team/svc-{n:02d}" for n in range(PREFIX_REPOSITORIES)])
    function = cloud.start_emulator("prefix-events", binary=binary)
    mine = stack_statement("team/svc-00", "TeamPull", 1)
    try:
        created = prefix_create("team/", [mine], "TeamPull")
        wrong = failure(
            assert_success, function.send(created), prefix_id(created),
            prefix_data(created, PREFIX_REPOSITORIES),
        )
        if wrong:
            raise Wrong(f"the prefix statement's Create: {wrong}")
        figures = []
        for n in range(events + 1):
            name = f"team/new-{n:03d}"
            cloud.create_repository(name)
            event = created_repository(name)
            handed = time.monotonic()
            invocation, lines = function.invoke_event(event)
            returned = time.monotonic()
            while not any(s.get("Sid") == "TeamPull" for s in cloud.statements(name)):
                if time.monotonic() - handed > LIVE_WITHIN_SECONDS:
                    raise Wrong(f"{name}: no statement after {LIVE_WITHIN_SECONDS:g} s")
                time.sleep(POLL_SECONDS)
            live = time.monotonic()
            if invocation.error or invocation.result != {"targets": 1, "drifted": 0, "restored": 0}:
                raise Wrong(f"{name}: {invocation.error or invocation.result}")
            (line,) = [x for x in lines if x.get("message") == "drift checked"]
            if n == 0:
                continue
            figures.append({
                "live_ms": (live - handed) * 1e3,
                "invocation_ms": (returned - handed) * 1e3,
                "own_ms": (line["total_us"] - line["ecr_us"] - line["lock_us"]) / 1e3,
                "ecr_ms": line["ecr_us"] / 1e3,
                "lock_ms": line["lock_us"] / 1e3,
                "ecr_reads": line["ecr_reads"],
                "ecr_writes": line["ecr_writes"],
                "lock_calls": line["lock_calls"],
            })
        rss = function.runtime.peak_rss_kib()
    finally:
        function.stop()
    live = [f["live_ms"] for f in figures]
    return {
        "events": events,
        "live_median_ms": statistics.median(live),
        "live_p99_ms": percentile(live, 99),
        "live_max_ms": max(live),
        "rss_kib": rss,
        "per_event": figures,
    }


def summary_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, figure) pairs for a table."""
    per = figures["per_event"]
    med = lambda key: statistics.median(f[key] for f in per)  # noqa: E731
    return [
        (f"CreateRepository event to the statement live, {figures['events']} events: median (ms)",
         f"{figures['live_median_ms']:.1f}"),
        ("  p99 (ms)", f"{figures['live_p99_ms']:.1f}"),
        ("  max (ms)", f"{figures['live_max_ms']:.1f}"),
        ("  in the invocation: own / ECR / lock table, medians (ms)",
         f"{med('own_ms'):.2f} / {med('ecr_ms'):.2f} / {med('lock_ms'):.2f}"),
        ("  ECR reads / writes, lock calls, per event (median)",
         f"{med('ecr_reads'):.0f} / {med('ecr_writes'):.0f}, {med('lock_calls'):.0f}"),
        ("  peak RSS (MiB)", f"{figures['rss_kib'] / 1024:.2f}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", type=Path, required=True, help="our release binary")
    parser.add_argument("--events", type=int, default=EVENTS, help=f"events ({EVENTS})")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    cloud = Cloud(Path(tempfile.mkdtemp(prefix="ecr-policy-prefix-events-")), lifetime=900).start()
    try:
        figures = measure(cloud, args.ours, args.events)
    except Wrong as e:
        print(f"prefix events: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        cloud.stop()
    width = max(len(w) for w, _ in summary_rows(figures))
    for what, figure in summary_rows(figures):
        print(f"{what:<{width}}  {figure}")
    verdict = "pass" if figures["live_p99_ms"] < P99_MAX_MS else "FAIL"
    print(f"p99 < {P99_MAX_MS:g} ms: {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

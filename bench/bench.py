"""Cold start, latency, memory and size of the provider, side by side with the floor.

The floor is the smallest function `lambda_runtime` can run (bench/floor.rs, an echo), built
with the same release profile. Both binaries are started fresh for every run behind the
Runtime API emulator of the test rig (tests/rig/runtime_api.py), as Lambda starts a
`provided.al2023` bootstrap; ECR and the response bucket are moto's server on loopback. Runs
alternate ours/floor so that both see the same machine.

Per run, ours, as template.yaml deploys it (the lock table configured, so whole policies take
the lock: issue 12): init (process start to the first `next`); a registry-policy Create on a
fresh target (moto's registry policy deleted first); peak RSS; then warm Updates whose policy
is equivalent to the live one but written differently. The same again with the lock table
unset, for the lock's added time per whole-policy event. Each event's latency is the
emulator's (hand-out to answer); own, ECR, lock and response time and the ECR call counts come
from the provider's "response sent" log line (read through rig.interface). The floor: init,
one echo event, peak RSS, then as many warm echoes.

Then bursts (issue 11): 6 fresh processes of ours behind one Runtime API, 24 statement
Creates on the registry policy handed out at once (a console statement already there), then
their 24 Deletes at once: the time until all are answered, the lock's added time per event
(taking the lease, waiting included, and giving it back), and nothing lost or left. The
lock table's calls reach moto through the rig's fault proxy, one at a time (moto's conditional writes are not atomic; DynamoDB's are).

Before all that, the analysis's own cost (issue 16): bench/analysis.rs, built with the same
release profile, times what the provider works out from a policy before any ECR call (the
diagnosis and who gets in, as lifecycle::judge runs them) over the sample events of events/
and the policies of tests/access-cases.json, in microseconds per event (median and p99).

Then drift (issue 17): a sweep over 1,000 recorded targets (one in ten drifted) seeded in moto,
its time and peak RSS, and CloudTrail events for one drifted target (own time, ECR reads).

Then prefix statements (issue 25): one `RepositoryPrefix` Create over 1,000 repositories in
moto (`--prefix-repositories 1000,10000` adds 10,000; `--only-prefix` runs nothing else, as
`make bench-prefix` does), through the release binary with template.yaml's Timeout per
invocation, continuing through its own Lambda Invoke (answered by the emulator): time to
SUCCESS, invocations, ECR calls over all of them, peak RSS, and the time the fan-out paused
for throttling. `--prefix-concurrency 1,4,16` measures each PREFIX_CONCURRENCY.

Then a prefix statement's new repositories (issue 25, bench/prefix_events.py): 100
`CreateRepository` events, each from its hand-out to the statement being live in moto, median
and p99.

Prints one table (medians with min and max, ratio to the floor, target, pass/fail) and
writes the raw figures as JSON. Exit status: 1 when the provider made the wrong ECR calls or
answered wrongly (correctness); timing targets are shown, never asserted. 2 on set-up
errors.

    PYTHONPATH=tests .venv/bin/python bench/bench.py --ours BIN --floor BIN [--analysis BIN]
        [--zip bootstrap.zip] [--runs 30]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from rig import interface
from rig.asserts import assert_statements, assert_success, failure
from rig.cloud import Cloud, Function
from rig.constants import REGION, REGISTRY_ID, others_policy
from rig.events import (
    follow_up,
    load_event,
    pull_statement,
    policy_of,
    prefix_create,
    registry_create,
    repository_create,
    stack_statement,
    statement_create,
    statements_id,
)
from rig.interface import INTERFACE
from rig.policies import compact, rewritten
from rig.procs import RigError
from rig.runtimes import Emulator

import prefix_events

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
INVOKE_SECONDS = 60
LIFETIME_SECONDS = 1800

# The targets (issue 5).
INIT_RATIO = 1.5
RSS_RATIO = 3.0
RSS_MAX_MIB = 16.0
ZIP_MAX_MIB = 5.0
WARM_OWN_MAX_MS = 1.0
# A policy that can never work (CONTRACT 10): answered FAILED within this, whatever the
# IAM-propagation timeout, which is set to DOOMED_IAM_TIMEOUT_SECONDS for the measurement.
DOOMED_MAX_MS = 2000.0
DOOMED_IAM_TIMEOUT_SECONDS = 60
DOOMED_EVENTS = 5
# Issue 11's: 24 concurrent statement Creates on one target through 6 processes.
BURST_WRITERS = 24
BURST_PROCESSES = 6
BURST_MAX_SECONDS = 10.0
# Issue 17's: a sweep over 1,000 recorded targets (one in ten drifted), and CloudTrail events.
SWEEP_TARGETS = 1000
PREFIX_REPOSITORIES = "1000"
PREFIX_RSS_MAX_MIB = 64.0
# template.yaml's Timeout: each invocation's time, as deployed.
FUNCTION_TIMEOUT_SECONDS = 180
# CloudFormation's longest ServiceTimeout: the most a prefix Create may take.
SERVICE_TIMEOUT_SECONDS = 3600
RECORD_FORMAT = 2
SWEEP_DRIFT_EVERY = 10
SWEEP_MAX_SECONDS = 60.0
SWEEP_RSS_MAX_MIB = 32.0
CLOUDTRAIL_EVENTS = 20


class CheckFailed(Exception):
    """The provider did something wrong: a correctness failure, not a slow run."""


# --- events ---------------------------------------------------------------------------------


def update_event(create: dict[str, Any]) -> dict[str, Any]:
    """An Update of ``create``'s resource whose policy is equivalent to the live one."""
    new = copy.deepcopy(create["ResourceProperties"])
    new["PolicyText"] = rewritten(policy_of(new))
    return follow_up(create, "Update", physical_id=REGISTRY_ID, properties=new)


# --- measuring ------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.cloud = Cloud(workdir, lifetime=LIFETIME_SECONDS).start()
        # Private copies: a rebuild in target/ while this runs changes nothing here.
        self.ours = self._copy(args.ours, "ours")
        self.floor = self._copy(args.floor, "floor")
        self.runs = 0

    def _copy(self, binary: Path, name: str) -> Path:
        dest = self.workdir / name
        shutil.copy2(binary, dest)
        return dest

    def stop(self) -> None:
        self.cloud.stop()


    # one run of each binary

    def run_ours(self, lock: bool = True) -> dict[str, Any]:
        """One run of ours; ``lock`` False: with the lock table unset."""
        self.cloud.forget("registry")
        self.runs += 1
        env = {} if lock else {INTERFACE.lock_table_variable: None}
        name = f"ours-{self.runs:04d}" if lock else f"ours-no-lock-{self.runs:04d}"
        function = self.cloud.start_emulator(name, binary=self.ours, **env)
        try:
            init = function.runtime.init_seconds
            create = registry_create()
            first = self._invoke_ours(function, create, want=(1, 1))
            rss_first = function.runtime.peak_rss_kib()
            warm = [
                self._invoke_ours(function, update_event(create), want=(1, 0))
                for _ in range(self.args.warm)
            ]
            rss_warm = function.runtime.peak_rss_kib()
        finally:
            function.stop()
        return {
            "init_ms": init * 1e3,
            "first": first,
            "warm": warm,
            "rss_first_kib": rss_first,
            "rss_warm_kib": rss_warm,
        }

    def _invoke_ours(
        self, function: Function, event: dict[str, Any], want: tuple[int, int]
    ) -> dict[str, Any]:
        outcome = function.send(event, deadline_in=INVOKE_SECONDS, timeout=INVOKE_SECONDS + 10)
        kind = event["RequestType"]
        wrong = failure(assert_success, outcome, REGISTRY_ID)
        if wrong:
            raise CheckFailed(f"{kind}: {wrong}")
        sent = outcome.metered
        if len(sent) != 1:
            raise CheckFailed(f"{kind}: {len(sent)} 'response sent' log lines, expected 1")
        calls = interface.ecr_calls(sent[0])
        if (calls["reads"], calls["writes"], calls["deletes"]) != (*want, 0):
            # Shown as FAIL in the table, and the exit status says so.
            print(
                f"\nbench: {kind}: {calls['reads']} ECR read(s), {calls['writes']} write(s), "
                f"{calls['deletes']} delete(s); expected {want[0]}, {want[1]}, 0",
                file=sys.stderr,
            )
        return {
            "latency_ms": outcome.seconds * 1e3,
            **interface.timings_ms(sent[0]),
            **calls,
            "lock_calls": sent[0].lock_calls,
        }

    def burst(self) -> dict[str, Any]:
        """BURST_WRITERS statement Creates on the registry policy at once through
        BURST_PROCESSES fresh processes, then their Deletes at once."""
        self.cloud.prepare()
        others = others_policy("registry")
        self.cloud.set_policy("registry", others)
        self.runs += 1
        function = self.cloud.start_emulator(
            f"burst-{self.runs:04d}", binary=self.ours, processes=BURST_PROCESSES
        )
        own = [stack_statement("registry", f"Writer{n:02d}", n) for n in range(BURST_WRITERS)]
        creates = [
            statement_create("registry", [s], f"Writer{n:02d}") for n, s in enumerate(own)
        ]
        deletes = [follow_up(e, "Delete", physical_id=statements_id(e)) for e in creates]
        try:
            created = self._burst(function, creates)
            self._check(assert_statements, self.cloud, "registry", others["Statement"], own)
            deleted = self._burst(function, deletes)
            self._check(assert_statements, self.cloud, "registry", others["Statement"], [])
        finally:
            function.stop()
        return {"creates": created, "deletes": deleted}

    def _burst(self, function: Function, events: list[dict[str, Any]]) -> dict[str, Any]:
        handed = time.time()
        outcomes = function.send_all(
            events, deadline_in=INVOKE_SECONDS, timeout=INVOKE_SECONDS + 10
        )
        for event, outcome in zip(events, outcomes):
            physical_id = event.get("PhysicalResourceId") or statements_id(event)
            self._check(assert_success, outcome, physical_id)
        lines = [o.metered[0] for o in outcomes]
        return {
            "all_answered_s": max(o.answered for o in outcomes) - handed,
            "events": [
                {**interface.timings_ms(line), "lock_calls": line.lock_calls} for line in lines
            ],
        }

    @staticmethod
    def _check(check: Callable[..., None], *args: Any) -> None:
        wrong = failure(check, *args)
        if wrong:
            raise CheckFailed(f"burst: {wrong}")

    def drift(self, targets: int) -> dict[str, Any]:
        """A sweep over ``targets`` recorded targets, one in SWEEP_DRIFT_EVERY drifted (its
        held statement removed), with Report; then CLOUDTRAIL_EVENTS CloudTrail events for one
        drifted target. The record and the policies are seeded in moto directly."""
        self.cloud.prepare()
        seeding = time.monotonic()
        drifted = seed_drift(self.cloud, targets)
        seeded_s = time.monotonic() - seeding
        function = self.cloud.start_emulator("drift", binary=self.ours)
        try:
            handed = time.monotonic()
            invocation, lines = function.invoke_event(
                load_event("drift/sweep.json"), deadline_in=180, timeout=200
            )
            sweep_s = time.monotonic() - handed
            want = {"targets": targets, "drifted": len(drifted), "restored": 0}
            if invocation.error or invocation.result != want:
                raise CheckFailed(f"sweep: {invocation.error or invocation.result}, want {want}")
            rss = function.runtime.peak_rss_kib()
            sweep_line = drift_checked(lines)
            event = load_event("drift/set-repository-policy.json")
            event["detail"]["requestParameters"]["repositoryName"] = drifted[0]
            calls = []
            for _ in range(CLOUDTRAIL_EVENTS):
                handed = time.monotonic()
                invocation, lines = function.invoke_event(event)
                latency = time.monotonic() - handed
                if invocation.result != {"targets": 1, "drifted": 1, "restored": 0}:
                    raise CheckFailed(f"CloudTrail event: {invocation.error or invocation.result}")
                line = drift_checked(lines)
                calls.append({
                    "latency_ms": latency * 1e3,
                    "total_ms": line["total_us"] / 1e3,
                    "own_ms": (line["total_us"] - line["ecr_us"] - line["lock_us"]) / 1e3,
                    "lock_ms": line["lock_us"] / 1e3,
                    "ecr_reads": line["ecr_reads"],
                })
        finally:
            function.stop()
        return {
            "targets": targets,
            "seeded_s": seeded_s,
            "sweep_s": sweep_s,
            "sweep_ecr_reads": sweep_line["ecr_reads"],
            "rss_kib": rss,
            "cloudtrail": calls,
        }

    def prefix(self, repositories: int, concurrency: int | None = None) -> dict[str, Any]:
        """One prefix statement's Create over ``repositories`` repositories under `team/`
        (and one beside it), through our release binary with the function's Timeout per
        invocation; with ``concurrency``, PREFIX_CONCURRENCY set to it."""
        self.cloud.prepare()
        seeding = time.monotonic()
        names = [f"team/r{n:05d}" for n in range(repositories)]
        for name in names + ["team-x"]:
            self.cloud.create_repository(name)
        seeded_s = time.monotonic() - seeding
        env = {} if concurrency is None else {"PREFIX_CONCURRENCY": str(concurrency)}
        function = self.cloud.start_emulator(
            f"prefix-{repositories}-{concurrency or 'default'}", binary=self.ours, **env
        )
        statement = pull_statement("TeamPull", "444455556666")
        create = prefix_create("team", [statement], "TeamPull")
        try:
            out = function.send_continued(
                create, deadline_in=FUNCTION_TIMEOUT_SECONDS, timeout=SERVICE_TIMEOUT_SECONDS
            )
            rss = function.runtime.peak_rss_kib()
        finally:
            function.stop()
        want = str(repositories)
        if out.response is None or out.response.get("Status") != "SUCCESS":
            raise CheckFailed(f"prefix over {repositories}: {out.response}")
        if out.response["Data"]["Repositories"] != want or out.response_puts != 1:
            raise CheckFailed(
                f"prefix over {repositories}: Repositories {out.response['Data']['Repositories']},"
                f" {out.response_puts} response(s)"
            )
        # Every repository holds it (every tenth above 1,000: reading them all back takes long).
        step = 1 if repositories <= 1000 else 10
        for name in names[::step]:
            wrong = failure(assert_statements, self.cloud, name, [], [statement])
            if wrong:
                raise CheckFailed(f"prefix over {repositories}: {name}: {wrong}")
        if self.cloud.policy("team-x") is not None:
            raise CheckFailed("prefix: a repository beside the prefix changed")
        lines = out.lines(interface.message("continued"))
        lines += out.lines(INTERFACE.response_sent_message)
        return {
            "repositories": repositories,
            "concurrency": concurrency,
            "seeded_s": seeded_s,
            "success_s": out.seconds,
            "invocations": out.invocations,
            "ecr_calls": out.ecr_calls(),
            "lock_calls": sum(line.get("lock_calls", 0) for line in lines),
            "throttled": out.throttled(),
            "paused_s": out.paused_ms() / 1e3,
            "rss_kib": rss,
        }

    def prefixes(self, sizes: list[int], levels: list[int | None]) -> list[dict[str, Any]]:
        """``prefix`` for each size, at each concurrency level."""
        runs = []
        for size in sizes:
            for level in levels:
                runs.append(self.prefix(size, level))
                print(f"prefix over {size} repositories ({level or 'default'})", file=sys.stderr)
        return runs

    def run_doomed(self) -> list[float]:
        """Milliseconds to a FAILED answer for a repository policy with a misspelt action,
        with IAM_PROPAGATION_TIMEOUT_SECONDS at 60: before the diagnosis, ECR's refusal of
        it was retried for all of that."""
        self.cloud.prepare(repositories=("app",))
        function = self.cloud.start_emulator(
            "doomed", binary=self.ours,
            IAM_PROPAGATION_TIMEOUT_SECONDS=str(DOOMED_IAM_TIMEOUT_SECONDS),
        )
        times = []
        try:
            for _ in range(DOOMED_EVENTS):
                event = doomed_event()
                outcome = function.send(
                    event, deadline_in=INVOKE_SECONDS * 3, timeout=INVOKE_SECONDS * 3 + 10
                )
                if outcome.status != "FAILED" or "did you mean" not in outcome.reason:
                    raise CheckFailed(f"doomed policy: {outcome.describe()}")
                writes = interface.ecr_calls(outcome.metered[0])["writes"]
                if writes:
                    raise CheckFailed(f"doomed policy: {writes} ECR write(s), expected none")
                times.append(outcome.seconds * 1e3)
        finally:
            function.stop()
        return times

    def run_floor(self) -> dict[str, Any]:
        self.runs += 1
        floor = Emulator(
            self.cloud.run, self.cloud.provider_env(), f"floor-{self.runs:04d}", self.floor
        )
        try:
            floor.start()
            events = []
            for i in range(1 + self.args.warm):
                event = registry_create()
                event["ResponseURL"] = self.cloud.response_url(f"floor-{self.runs}-{i}")
                inv = floor.invoke(event, deadline_in=INVOKE_SECONDS, timeout=INVOKE_SECONDS + 10)
                if inv.result != event:
                    raise CheckFailed(f"the floor did not echo its event: {inv.result!r}")
                events.append((inv.answered - inv.handed) * 1e3)
                if i == 0:
                    rss_first = floor.peak_rss_kib()
            rss_warm = floor.peak_rss_kib()
        finally:
            floor.stop()
        return {
            "init_ms": floor.init_seconds * 1e3,
            "first_ms": events[0],
            "warm_ms": events[1:],
            "rss_first_kib": rss_first,
            "rss_warm_kib": rss_warm,
        }


def seed_drift(cloud: Cloud, targets: int) -> list[str]:
    """``targets`` repositories, each with a held statement and a console one in ECR and a
    format-2 record holding the first; one in SWEEP_DRIFT_EVERY without its held statement
    live. Returns the drifted repositories."""
    attrs, entry = INTERFACE.lock_attributes, INTERFACE.lock_entry_attributes
    drifted = []
    for n in range(targets):
        name = f"team-{n:04d}"
        held = pull_statement("Held", f"{111122220000 + n:012d}")
        console = pull_statement("Console", "777788889999")
        cloud.create_repository(name)
        if n % SWEEP_DRIFT_EVERY:
            cloud.set_policy(name, {"Version": "2012-10-17", "Statement": [held, console]})
        else:
            cloud.set_policy(name, {"Version": "2012-10-17", "Statement": [console]})
            drifted.append(name)
        holder = {
            entry["holder"]: {"S": f"tag{n:04d}"},
            entry["stack"]: {"S": "arn:aws:cloudformation:us-east-1:123456789012:stack/bench/1"},
            entry["logical"]: {"S": f"Grant{n:04d}"},
            entry["statement"]: {"S": compact(held)},
        }
        cloud.dynamodb.put_item(
            TableName=cloud.lock_table,
            Item={
                attrs["key"]: {"S": INTERFACE.lock_key["repository"].format(region=REGION, name=name)},
                attrs["format"]: {"N": str(RECORD_FORMAT)},
                attrs["statements"]: {"M": {"Held": {"M": holder}}},
                attrs["removed"]: {"M": {}},
            },
        )
    return drifted


def drift_checked(lines: list[dict[str, Any]]) -> dict[str, Any]:
    (line,) = [line for line in lines if line.get("message") == "drift checked"]
    return line


def run_analysis(binary: Path) -> dict[str, Any]:
    """The analysis's own cost: bench/analysis.rs's JSON (it reads events/ and tests/ from the
    repository root)."""
    done = subprocess.run([str(binary)], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RigError(f"{binary} exited {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def analysis_rows(analysis: dict[str, Any]) -> list[list[str]]:
    """One row per input set: median / p99 microseconds per event, and the slowest input."""
    rows = []
    for key, what in (("events", "sample events (events/)"),
                      ("access_cases", "access cases (tests/access-cases.json)")):
        figures = analysis[key]
        slowest = figures["slowest"]
        rows += [
            [f"analysis per event (µs): {figures['count']} {what}, median / p99",
             f"{figures['median_us']:.1f} / {figures['p99_us']:.1f}", "", "", "", ""],
            [f"  slowest: {slowest['name']}, median", f"{slowest['median_us']:.1f}",
             "", "", "", ""],
        ]
    return rows


def doomed_event() -> dict[str, Any]:
    """A repository Create whose policy names an action ECR does not have."""
    event = repository_create()
    policy = policy_of(event["ResourceProperties"])
    policy["Statement"][0]["Action"] = ["ecr:BatchGetImages"]
    event["ResourceProperties"]["PolicyText"] = policy
    return event


# --- the table ------------------------------------------------------------------------------


class Stat:
    def __init__(self, values: list[float]):
        self.values = values
        self.median = statistics.median(values) if values else float("nan")
        self.min = min(values) if values else float("nan")
        self.max = max(values) if values else float("nan")

    def show(self, digits: int) -> str:
        if not self.values:
            return "-"
        if self.min == self.max:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} ({self.min:.{digits}f}–{self.max:.{digits}f})"


def table(rows: list[list[str]]) -> str:
    header = ["metric", "ours: median (min–max)", "floor: median (min–max)", "ratio", "target", "result"]
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if i in (0, 4, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def row(
    name: str,
    ours: Stat | None,
    floor: Stat | None,
    digits: int,
    target: str = "",
    check: Callable[[float, float | None], bool] | None = None,
) -> list[str]:
    ratio = ""
    if ours is not None and floor is not None and floor.median > 0:
        ratio = f"{ours.median / floor.median:.2f}x"
    verdict = ""
    if check is not None and ours is not None:
        verdict = "pass" if check(ours.median, floor.median if floor else None) else "FAIL"
    return [
        name,
        ours.show(digits) if ours else "-",
        floor.show(digits) if floor else "-",
        ratio,
        target,
        verdict,
    ]


def zipped_size(path: Path, workdir: Path) -> int:
    """The size of `path` zipped as a Lambda package (one `bootstrap`, deflate level 9)."""
    dest = workdir / f"{path.name}.zip"
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return dest.stat().st_size


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, {rustc}, "
        f"load {load:.2f} at start"
    )


def prefix_rows(prefix: list[dict[str, Any]]) -> list[list[str]]:
    """The prefix statements' rows: one block per run."""
    rows: list[list[str]] = []
    for p in prefix:
        concurrency = p["concurrency"] or "default"
        rows += [
            [f"prefix Create over {p['repositories']:,} repositories "
             f"(PREFIX_CONCURRENCY {concurrency})", "", "", "", "", ""],
            row("  time to SUCCESS (s)", Stat([p["success_s"]]), None, 1,
                f"< {SERVICE_TIMEOUT_SECONDS} s",
                lambda a, _: a < SERVICE_TIMEOUT_SECONDS),
            row("  invocations", Stat([p["invocations"]]), None, 0),
            row("  ECR calls, every invocation", Stat([p["ecr_calls"]]), None, 0),
            row("  lock table calls", Stat([p["lock_calls"]]), None, 0),
            row("  paused for throttling (s)", Stat([p["paused_s"]]), None, 1),
            row("  throttled calls", Stat([p["throttled"]]), None, 0),
            row("  peak RSS (MiB)", Stat([p["rss_kib"] / 1024]), None, 2,
                f"< {PREFIX_RSS_MAX_MIB:g} MiB", lambda a, _: a < PREFIX_RSS_MAX_MIB),
        ]
    return rows


def report(
    args: argparse.Namespace,
    bench: Bench,
    ours: list[dict],
    floor: list[dict],
    doomed: list[float],
    no_lock: list[dict],
    bursts: list[dict],
    analysis: dict[str, Any] | None,
    drift: dict[str, Any] | None = None,
    prefix: list[dict[str, Any]] | None = None,
    arrivals: dict[str, Any] | None = None,
) -> tuple[str, bool]:
    """The table, and whether the ECR call counts were right."""
    o = lambda f: Stat([f(r) for r in ours])  # noqa: E731
    f = lambda g: Stat([g(r) for r in floor])  # noqa: E731
    n = lambda g: Stat([g(r) for r in no_lock])  # noqa: E731
    warm = lambda key, runs=ours: Stat([w[key] for r in runs for w in r["warm"]])  # noqa: E731
    mib = lambda kib: kib / 1024  # noqa: E731

    init_o, init_f = o(lambda r: r["init_ms"]), f(lambda r: r["init_ms"])
    rss_o, rss_f = o(lambda r: mib(r["rss_first_kib"])), f(lambda r: mib(r["rss_first_kib"]))
    rows = [
        row("init (ms)", init_o, init_f, 2, f"<= {INIT_RATIO}x floor",
            lambda a, b: a <= INIT_RATIO * b),
        row("first event (ms)", o(lambda r: r["first"]["latency_ms"]),
            f(lambda r: r["first_ms"]), 2),
        row("  own", o(lambda r: r["first"]["own_ms"]), None, 3),
        row("  waiting on ECR", o(lambda r: r["first"]["ecr_ms"]), None, 2),
        row("  waiting on S3 (response)", o(lambda r: r["first"]["response_ms"]), None, 2),
        row("warm event (ms)", warm("latency_ms"),
            Stat([w for r in floor for w in r["warm_ms"]]), 2),
        row("  own", warm("own_ms"), None, 3, f"< {WARM_OWN_MAX_MS} ms",
            lambda a, _: a < WARM_OWN_MAX_MS),
        row("  waiting on ECR", warm("ecr_ms"), None, 2),
        row("  waiting on S3 (response)", warm("response_ms"), None, 2),
        row("peak RSS after first event (MiB)", rss_o, rss_f, 2,
            f"<= {RSS_RATIO:g}x floor, < {RSS_MAX_MIB:g} MiB",
            lambda a, b: a <= RSS_RATIO * b and a < RSS_MAX_MIB),
        row("peak RSS after warm events (MiB)", o(lambda r: mib(r["rss_warm_kib"])),
            f(lambda r: mib(r["rss_warm_kib"])), 2),
        row("release binary (MiB)", Stat([args.ours.stat().st_size / MIB]),
            Stat([args.floor.stat().st_size / MIB]), 2),
    ]
    floor_zip = Stat([zipped_size(bench.floor, bench.workdir) / MIB])
    if args.zip:
        with zipfile.ZipFile(args.zip) as z:
            unzipped = sum(i.file_size for i in z.infolist() if i.filename == "bootstrap")
        rows += [
            row("bootstrap, unzipped (MiB)", Stat([unzipped / MIB]), None, 2),
            row("package, zipped (MiB)", Stat([args.zip.stat().st_size / MIB]), floor_zip, 2,
                f"<= {ZIP_MAX_MIB:g} MiB", lambda a, _: a <= ZIP_MAX_MIB),
        ]
    first_o, first_n = o(lambda r: r["first"]["latency_ms"]), n(lambda r: r["first"]["latency_ms"])
    warm_o, warm_n = warm("latency_ms"), warm("latency_ms", no_lock)

    def added(a: Stat, b: Stat) -> Stat | None:
        return Stat([a.median - b.median]) if a.values and b.values else None

    rows += [
        ["whole policy, with and without the lock table", "", "", "", "", ""],
        row("  first event, no lock table (ms)", first_n, f(lambda r: r["first_ms"]), 2),
        row("  first event, lock's added time (ms)", added(first_o, first_n), None, 2),
        row("    in the lock, from the provider's lock_us (ms)",
            o(lambda r: r["first"]["lock_ms"]), None, 2),
        row("  warm event, no lock table (ms)", warm_n,
            Stat([w for r in floor for w in r["warm_ms"]]), 2),
        row("  warm event, lock's added time (ms)", added(warm_o, warm_n), None, 2),
        row("    in the lock, from the provider's lock_us (ms)", warm("lock_ms"), None, 2),
        row("  peak RSS after first event, no lock table (MiB)",
            n(lambda r: mib(r["rss_first_kib"])), rss_f, 2),
    ]
    if bursts:
        for phase in ("creates", "deletes"):
            events = [e for b in bursts for e in b[phase]["events"]]
            rows += [
                row(f"{BURST_WRITERS} statement {phase.title()} at once, {BURST_PROCESSES} "
                    "processes: all answered (s)",
                    Stat([b[phase]["all_answered_s"] for b in bursts]), None, 2,
                    f"< {BURST_MAX_SECONDS:g} s" if phase == "creates" else "",
                    (lambda a, _: a < BURST_MAX_SECONDS) if phase == "creates" else None),
                row("  per event (ms)", Stat([e["total_ms"] for e in events]), None, 1),
                row("  in the lock: taking it (waiting included), giving it back (ms)",
                    Stat([e["lock_ms"] for e in events]), None, 1),
                row("  lock calls", Stat([e["lock_calls"] for e in events]), None, 0),
            ]
        rows.append(["statements lost or left", "0", "", "", "0", "pass"])
    if drift:
        ct = drift["cloudtrail"]
        rows += [
            ["drift", "", "", "", "", ""],
            row(f"  sweep of {drift['targets']} recorded targets, 1 in {SWEEP_DRIFT_EVERY} "
                "drifted (s)", Stat([drift["sweep_s"]]), None, 1,
                f"< {SWEEP_MAX_SECONDS:g} s", lambda a, _: a < SWEEP_MAX_SECONDS),
            row("    ECR reads", Stat([drift["sweep_ecr_reads"]]), None, 0),
            row("  peak RSS after the sweep (MiB)", Stat([mib(drift["rss_kib"])]), None, 2,
                f"< {SWEEP_RSS_MAX_MIB:g} MiB", lambda a, _: a < SWEEP_RSS_MAX_MIB),
            row("  CloudTrail event, drifted target (ms)",
                Stat([c["latency_ms"] for c in ct]), None, 2),
            row("    own", Stat([c["own_ms"] for c in ct]), None, 3),
            row("    reading the record (ms)", Stat([c["lock_ms"] for c in ct]), None, 2),
            row("    ECR reads", Stat([c["ecr_reads"] for c in ct]), None, 0),
        ]
    if arrivals:
        rows.append(["prefix statements' new repositories (issue 25)", "", "", "", "", ""])
        for what, figure in prefix_events.summary_rows(arrivals):
            target, verdict = "", ""
            if what.startswith("  p99"):
                target = f"< {prefix_events.P99_MAX_MS:g} ms"
                verdict = "pass" if arrivals["live_p99_ms"] < prefix_events.P99_MAX_MS else "FAIL"
            rows.append([f"  {what}", figure, "", "", target, verdict])
    calls = lambda e: (e["reads"], e["writes"], e["deletes"])  # noqa: E731
    creates = {calls(r["first"]) for r in ours + no_lock}
    updates = {calls(w) for r in ours + no_lock for w in r["warm"]}
    show = lambda s: ", ".join("/".join(map(str, c)) for c in sorted(s))  # noqa: E731
    counts_ok = creates == {(1, 1, 0)} and updates == {(1, 0, 0)}
    rows += [
        ["ECR reads/writes/deletes, Create", show(creates), "", "", "1/1/0",
         "pass" if creates == {(1, 1, 0)} else "FAIL"],
        ["ECR reads/writes/deletes, equivalent Update", show(updates), "", "", "1/0/0",
         "pass" if updates == {(1, 0, 0)} else "FAIL"],
    ]
    rows.append(
        row(f"FAILED for a doomed policy (ms; IAM timeout {DOOMED_IAM_TIMEOUT_SECONDS} s)",
            Stat(doomed), None, 2, f"< {DOOMED_MAX_MS:g} ms",
            lambda a, _: a < DOOMED_MAX_MS)
    )
    if analysis:
        rows += analysis_rows(analysis)
    rows += prefix_rows(prefix or [])
    n_warm = sum(len(r["warm"]) for r in ours)
    text = (
        f"{len(ours)} runs each, alternating; {n_warm} warm events of ours in all; "
        f"{len(bursts)} bursts. {machine()}.\n"
        "floor = bench/floor.rs, a lambda_runtime echo built with the same profile. ours = as "
        "template.yaml deploys it, the lock table configured (whole policies take the lock); "
        "the same with it unset below. init = "
        "process start to the first Runtime API `next`; event = hand-out to answer; own = "
        "event minus waiting on ECR (SDK client set-up on first use included), on the lock "
        "table and on the response PUT (S3), from the provider's \"response sent\" log "
        "line. The lock table's calls go through the rig's proxy, one at a time. package = "
        "cargo lambda build --release --output-format zip (floor: its release binary zipped "
        "here)."
        + (" analysis = bench/analysis.rs: the diagnosis and who gets in, as lifecycle::judge "
           f"runs them before any ECR call, each call timed alone ({analysis['rounds']} "
           "rounds per input)." if analysis else "")
        + "\n\n"
        + table(rows)
    )
    return text, counts_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", type=Path, required=True, help="our release binary")
    parser.add_argument("--floor", type=Path, required=True, help="the floor's release binary")
    parser.add_argument("--zip", type=Path, help="cargo lambda's bootstrap.zip")
    parser.add_argument(
        "--analysis", type=Path,
        help="the analysis-cost release binary (bench/analysis.rs): the analysis's own cost",
    )
    parser.add_argument("--runs", type=int, default=30, help="runs of each binary (30)")
    parser.add_argument("--warm", type=int, default=5, help="warm events per run (5)")
    parser.add_argument(
        "--bursts", type=int, default=5,
        help=f"bursts of {BURST_WRITERS} concurrent statement Creates, then Deletes (5)",
    )
    parser.add_argument(
        "--drift-targets", type=int, default=SWEEP_TARGETS,
        help=f"recorded targets the drift sweep checks ({SWEEP_TARGETS}; 0: no drift runs)",
    )
    parser.add_argument(
        "--prefix-repositories", default=PREFIX_REPOSITORIES,
        help=f"repositories of each prefix statement run, comma-separated ({PREFIX_REPOSITORIES};"
        " 0: none)",
    )
    parser.add_argument(
        "--prefix-concurrency", default="",
        help="PREFIX_CONCURRENCY values to run each prefix size with, comma-separated (the"
        " default only)",
    )
    parser.add_argument(
        "--prefix-events", type=int, default=prefix_events.EVENTS,
        help=f"CreateRepository events under a prefix statement ({prefix_events.EVENTS}; 0: none)",
    )
    parser.add_argument(
        "--only-prefix", action="store_true",
        help="run the prefix statements only (make bench-prefix)",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    optional = [p for p in (args.zip, args.analysis) if p]
    for path in (args.ours, args.floor, *optional):
        if not path.is_file():
            print(f"bench: {path} is missing; scripts/bench builds it", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="ecr-policy-bench-"))
    try:
        # First, alone on the machine: nothing of the rig is running yet.
        analysis = run_analysis(args.analysis) if args.analysis else None
        bench = Bench(args, workdir)
    except RigError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    ours: list[dict] = []
    floor: list[dict] = []
    no_lock: list[dict] = []
    bursts: list[dict] = []
    drift: dict[str, Any] | None = None
    prefix: list[dict[str, Any]] = []
    arrivals: dict[str, Any] | None = None
    sizes = [int(n) for n in args.prefix_repositories.split(",") if n.strip() and int(n) > 0]
    levels: list[int | None] = [
        int(c) for c in args.prefix_concurrency.split(",") if c.strip()
    ] or [None]
    started = time.monotonic()
    try:
        if not args.only_prefix:
            # One run of each, not counted: page cache, moto's first requests.
            bench.run_ours()
            bench.run_floor()
            for i in range(args.runs):
                runs = [
                    (bench.run_ours, ours),
                    (lambda: bench.run_ours(lock=False), no_lock),
                    (bench.run_floor, floor),
                ]
                for run, into in runs if i % 2 == 0 else reversed(runs):
                    into.append(run())
                if sys.stderr.isatty():
                    print(f"\rrun {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
            print(f"\r{args.runs} runs in {time.monotonic() - started:.0f} s", file=sys.stderr)
            doomed = bench.run_doomed()
            for i in range(args.bursts):
                bursts.append(bench.burst())
            if args.bursts:
                print(f"{args.bursts} bursts", file=sys.stderr)
            if args.drift_targets:
                drift = bench.drift(args.drift_targets)
                print(f"drift: sweep of {args.drift_targets} targets", file=sys.stderr)
            if args.prefix_events:
                try:
                    arrivals = prefix_events.measure(bench.cloud, bench.ours, args.prefix_events)
                except prefix_events.Wrong as e:
                    raise CheckFailed(f"prefix events: {e}") from e
                print(
                    f"prefix statements: {args.prefix_events} CreateRepository events",
                    file=sys.stderr,
                )
        prefix = bench.prefixes(sizes, levels)
    except CheckFailed as e:
        print(f"\nbench: FAILED: {e}\n(logs in {workdir})", file=sys.stderr)
        return 1
    finally:
        bench.stop()
    if args.only_prefix:
        print(f"{machine()}.\n\n" + table(prefix_rows(prefix)))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"prefix": prefix}, indent=1))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    text, counts_ok = report(
        args, bench, ours, floor, doomed, no_lock, bursts, analysis, drift, prefix, arrivals
    )
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            "ours": ours,
            "floor": floor,
            "doomed_ms": doomed,
            "ours_no_lock_table": no_lock,
            "bursts": bursts,
            "drift": drift,
            "analysis": analysis,
            "prefix": prefix,
            "prefix_events": arrivals,
        }
        args.json.write_text(json.dumps({**figures, "table": text}, indent=1))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if counts_ok else 1


if __name__ == "__main__":
    sys.exit(main())

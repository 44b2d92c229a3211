"""The rig shared by test_faults.py and test_security.py: moto, the fault proxy in front of it
(faultproxy.py), and the provider's real binary behind the Runtime API emulator
(runtime_api.py), which lets each invocation have the deadline a test chooses.

    provider --ECR calls--> FaultProxy --> moto (ECR)
    provider --response PUT (ResponseURL host = the proxy)--> FaultProxy --> moto (S3)
    tests --boto3--> moto directly (ECR state, the response bucket)

Every event gets a presigned PUT URL of its own on a versioned bucket, so that every PUT that
reached S3 is counted; the proxy records when each response PUT was answered, which is
compared with the invocation's deadline. Every part is bounded in time: moto and the proxy
end by themselves after the rig's lifetime, the function process dies with the test process
(and is stopped after each test), every wait has a timeout.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness as h
from faultproxy import RESPONSE, FaultProxy, Record
from runtime_api import RuntimeApi

# Distinctive fake credentials: the provider's own (its environment) and the ones the
# ResponseURLs are presigned with. None of them may ever appear in the provider's output.
PROVIDER_ACCESS_KEY_ID = "AKIAE2EFAULTPROVIDR7"
PROVIDER_SECRET_ACCESS_KEY = "e2eFakeSecret/Qz8vLw3Nr5Tk9Yp2Hs6Dm4Xc1Bj7Gf0"
PROVIDER_SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjE2eFakeSessionToken//wEaCXVzLWVhc3QtMSJHMEUCIQ" + "Zk4Wq9Tn2Lr7Vb5Mx3"
)
PRESIGN_ACCESS_KEY_ID = "AKIAE2EPRESIGNERKEY3"
PRESIGN_SECRET_ACCESS_KEY = "e2ePresignSecret/Hn4Jw8Rq2Vt6Yx0Bz3Cm7Fk5Lp9"

IAM_PROPAGATION_TIMEOUT_SECONDS = 2
# How long the function process may take to ask for its first event.
READY_SECONDS = 15
# The provider's fallback budget for a missing or implausible deadline (src/provider.rs).
DEFAULT_BUDGET_SECONDS = 60.0
PROBE_REPOSITORY = "probe"

LOG_TAIL = f" (logs: CloudWatch log group {h.LOG_GROUP}, stream {h.LOG_STREAM})"


def missing_parts() -> list[str]:
    problems = []
    if not os.access(h.MOTO_SERVER, os.X_OK):
        problems.append(f"{h.MOTO_SERVER} is missing: run scripts/bootstrap")
    if not os.access(h.BINARY, os.X_OK):
        problems.append(f"{h.BINARY} is missing: run `cargo build` (scripts/e2e does)")
    return problems


class BoundedRuntimeApi(RuntimeApi):
    """runtime_api.RuntimeApi whose function process dies with this process (Linux
    PR_SET_PDEATHSIG), carries the run's marker, and which stops by itself after
    ``lifetime`` seconds."""

    def __init__(self, lifetime: float, marker: str) -> None:
        super().__init__()
        # The emulator's pending `next` request fails when the function is stopped: quiet.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.marker = marker
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def start_function(self, binary: Path | str, env: dict[str, str], log: Any = None):
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "AWS_LAMBDA_FUNCTION_NAME": h.FUNCTION,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "ECR_E2E_RUN": self.marker,
            **env,
        }
        parent = os.getpid()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [str(binary)],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log if log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: h._child_setup(parent),
        )
        return self.process

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        super().stop()


@dataclass
class Outcome:
    """One event handed to the function, and what came of it."""

    name: str
    event: dict[str, Any]
    key: str
    deadline: float | None  # wall clock (time.time()); None when the test sent none
    handed: float  # wall clock when the function took the event
    answered: float  # wall clock when the function answered the Runtime API
    answer: Any  # the invocation's result (None for the provider's Ok(()))
    error: Any  # the invocation's error, a dict with errorType/errorMessage
    response: dict[str, Any] | None  # what CloudFormation would read from the bucket
    stored: int  # PUTs that reached the bucket for this event (every version counts)
    log: list[dict[str, Any]]  # the provider's JSON log lines for this invocation
    requests: list[Record] = field(default_factory=list)  # what went through the proxy

    @property
    def seconds(self) -> float:
        return self.answered - self.handed

    @property
    def status(self) -> str | None:
        return self.response and self.response.get("Status")

    @property
    def reason(self) -> str:
        return (self.response or {}).get("Reason", "")

    def calls(self, kind: str) -> int:
        return sum(1 for r in self.requests if r.kind == kind)

    @property
    def ecr_calls(self) -> int:
        return sum(1 for r in self.requests if r.kind not in (RESPONSE, "other"))

    @property
    def delivered_at(self) -> float | None:
        """When S3 (moto) accepted the response PUT, as relayed by the proxy."""
        ok = [r.done_at for r in self.requests if r.kind == RESPONSE and r.status == 200]
        return ok[0] if ok else None

    def describe(self) -> str:
        lines = [
            f"{self.name}: {self.seconds:.2f}s, answer={self.answer!r} error={self.error!r}",
            f"  response={json.dumps(self.response)[:600] if self.response else None}",
            f"  stored={self.stored}",
        ]
        for r in self.requests:
            lines.append(
                f"  {r.kind} {r.method} fault={r.fault} status={r.status} note={r.note}"
                f" at +{r.received_at - self.handed:.2f}s"
            )
        return "\n".join(lines)


class Function:
    """One provider process behind its own Runtime API emulator."""

    def __init__(self, rig: "Rig", env: dict[str, str], log_path: Path, lifetime: float):
        self.rig = rig
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.api = BoundedRuntimeApi(lifetime, rig.marker)
        self.api.start_function(h.BINARY, env, log=self._log)
        try:
            self.init_seconds = self.api.wait_ready(READY_SECONDS)
        except TimeoutError:
            self.stop()
            raise AssertionError(
                f"the provider did not ask for an event within {READY_SECONDS}s:\n"
                + self.log_text()[-3000:]
            ) from None
        assert self.api.process is not None
        self.pid = self.api.process.pid
        self._count = 0

    def alive(self) -> bool:
        return self.api.alive()

    def log_text(self) -> str:
        """Everything the process wrote (the process writes to the file directly)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # What conftest.py's report hook reads to show a failed test's provider output.
    @property
    def provider_log(self) -> Path:
        return self.log_path

    def provider_log_since(self, offset: int) -> str:
        return self.log_text()[offset:]

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def send(
        self,
        event: dict[str, Any],
        name: str = "",
        *,
        deadline_in: float | None = 30.0,
        deadline_ms: int | None = None,
        timeout: float = 90.0,
        response_host: str | None = None,
    ) -> Outcome:
        """Invokes the function with ``event`` (its ResponseURL replaced by a presigned PUT
        URL on the proxy), with a deadline ``deadline_in`` seconds away, or exactly
        ``deadline_ms`` (0: none; a past time: already gone)."""
        self._count += 1
        key = "{:03d}-{}-{}-{}".format(
            self._count,
            event.get("RequestType", "none"),
            event.get("LogicalResourceId", "none"),
            event.get("RequestId", "none"),
        )
        event = copy.deepcopy(event)
        event["ResponseURL"] = self.rig.response_url(key, response_host)
        self.rig.expected[key] = 0 if response_host else None  # None: checked by the test
        if deadline_ms is None:
            deadline_ms = int((time.time() + (deadline_in or 0)) * 1000)
        deadline = deadline_ms / 1000 if deadline_ms > 0 else None
        records_before = len(self.rig.proxy.records())
        log_before = self._log_size()
        inv = self.api.invoke(event, deadline_ms=deadline_ms, timeout=timeout)
        # The emulator keeps monotonic times; the deadline and the proxy use the wall clock.
        offset = time.time() - time.monotonic()
        assert inv.handed_at is not None and inv.answered_at is not None
        # The response PUT, if any, has been answered by now; give the proxy's own record a
        # moment to be completed.
        time.sleep(0.05)
        requests = self.rig.proxy.records()[records_before:]
        log = []
        with open(self.log_path, "rb") as f:
            f.seek(log_before)
            for line in f.read().decode(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        log.append(json.loads(line))
        return Outcome(
            name=name or key,
            event=event,
            key=key,
            deadline=deadline,
            handed=inv.handed_at + offset,
            answered=inv.answered_at + offset,
            answer=inv.response,
            error=inv.error,
            response=self.rig.read_response(key),
            stored=self.rig.versions(key),
            log=log,
            requests=requests,
        )

    def stop(self) -> None:
        self.api.stop()
        with contextlib.suppress(OSError):
            self._log.close()


class Rig:
    """moto + the fault proxy, for one test module; a fresh function process per test."""

    def __init__(self, workdir: Path, lifetime: int = 600):
        problems = missing_parts()
        if problems:
            raise AssertionError("the fault suite cannot run:\n  " + "\n  ".join(problems))
        self.workdir = workdir
        self.lifetime = lifetime
        self.marker = uuid.uuid4().hex
        self.moto = h.Moto(workdir, self.marker, lifetime)
        self.proxy: FaultProxy | None = None
        self.functions: list[Function] = []
        self.expected: dict[str, int | None] = {}
        # Appended to every ResponseURL's query (the security test adds a session token).
        self.extra_query = ""
        self.sigv2 = False
        try:
            self.moto.wait_ready()
            self.proxy = FaultProxy(self.moto.port, h.BUCKET, lifetime)
            self.s3 = self.moto.client("s3")
            self.ecr = self.moto.client("ecr")
            self.presigner = _presigner(self.moto.endpoint)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for function in self.functions:
            function.stop()
        if self.proxy is not None:
            self.proxy.stop()
        self.moto.service.stop()
        h._end_marked(self.marker)

    def prepare(self) -> None:
        """A clean account: moto reset, an empty versioned response bucket, repositories
        ``app`` and ``probe``, no proxy rules, counters at zero."""
        self.moto.reset()
        self.s3.create_bucket(Bucket=h.BUCKET)
        self.s3.put_bucket_versioning(
            Bucket=h.BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        self.ecr.create_repository(repositoryName="app")
        self.ecr.create_repository(repositoryName=PROBE_REPOSITORY)
        self.proxy.clear()
        self.expected = {}
        self.extra_query = ""
        self.sigv2 = False

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.proxy.endpoint,
            "AWS_REGION": h.REGION,
            "AWS_ACCESS_KEY_ID": PROVIDER_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": PROVIDER_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": PROVIDER_SESSION_TOKEN,
            # No shared config or credentials files, no instance metadata.
            "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "RESPONSE_URL_ALLOWED_HOSTS": self.proxy.address,
            "IAM_PROPAGATION_TIMEOUT_SECONDS": str(IAM_PROPAGATION_TIMEOUT_SECONDS),
            "AWS_LAMBDA_LOG_GROUP_NAME": h.LOG_GROUP,
            "AWS_LAMBDA_LOG_STREAM_NAME": h.LOG_STREAM,
            # As verbose as the provider gets: the leak checks read this output.
            "RUST_LOG": "debug",
        }
        env.update(overrides)
        return env

    def start_function(self, name: str, **env: str) -> Function:
        function = Function(
            self, self.env(**env), self.workdir / f"{name}.provider.log", self.lifetime
        )
        self.functions.append(function)
        return function

    # CloudFormation's side

    def response_url(self, key: str, host: str | None = None) -> str:
        """A presigned PUT URL for ``key`` on the proxy (or ``host``): SigV4, as
        CloudFormation's are today, or, with ``self.sigv2``, the older
        ``AWSAccessKeyId``/``Expires``/``Signature`` form some regions still send."""
        if self.sigv2:
            url = _sigv2_url(f"http://127.0.0.1:{self.moto.port}", key)
        else:
            url = self.presigner.generate_presigned_url(
                "put_object", Params={"Bucket": h.BUCKET, "Key": key}, ExpiresIn=3600
            )
        url = url.replace(f"127.0.0.1:{self.moto.port}", host or self.proxy.address, 1)
        return url + self.extra_query

    def read_response(self, key: str) -> dict[str, Any] | None:
        try:
            obj = self.s3.get_object(Bucket=h.BUCKET, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())

    def versions(self, key: str | None = None) -> int | dict[str, int]:
        """PUTs that reached the bucket: for one key, or per key."""
        counts: dict[str, int] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=h.BUCKET):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                counts[version["Key"]] = counts.get(version["Key"], 0) + 1
        return counts if key is None else counts.get(key, 0)

    def stray_responses(self) -> list[str]:
        """Keys written that no event of this test used."""
        return [k for k in self.versions() if k not in self.expected]

    # ECR's side, read from moto directly (not through the proxy)

    def registry_policy(self) -> str | None:
        return h.registry_policy(self.ecr)

    def repository_policy(self, name: str) -> str | None:
        return h.repository_policy(self.ecr, name)


def _sigv2_url(endpoint: str, key: str) -> str:
    """A query-string-authenticated URL in Signature Version 2 form (moto does not check
    the signature, but it is computed as S3 would)."""
    expires = int(time.time()) + 3600
    path = f"/{h.BUCKET}/{urllib.parse.quote(key)}"
    to_sign = f"PUT\n\n\n{expires}\n{path}".encode()
    digest = hmac.new(PRESIGN_SECRET_ACCESS_KEY.encode(), to_sign, hashlib.sha1).digest()
    signature = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    return (
        f"{endpoint}{path}?AWSAccessKeyId={PRESIGN_ACCESS_KEY_ID}"
        f"&Expires={expires}&Signature={signature}"
    )


def _presigner(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=h.REGION,
        aws_access_key_id=PRESIGN_ACCESS_KEY_ID,
        aws_secret_access_key=PRESIGN_SECRET_ACCESS_KEY,
        config=Config(signature_version="s3v4"),
    )


# --- events ---------------------------------------------------------------------------------


def new_id(event: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["RequestId"] = str(uuid.uuid4())
    return event


def registry_create() -> dict[str, Any]:
    return new_id(h.load_event("registry-create.json"))


def registry_delete() -> dict[str, Any]:
    return new_id(h.load_event("registry-delete.json"))


def repository_create(name: str = "app", logical_id: str = "AppRepositoryPolicy") -> dict[str, Any]:
    event = new_id(h.load_event("repository-create.json"))
    event["ResourceProperties"]["RepositoryName"] = name
    event["LogicalResourceId"] = logical_id
    return event


def desired(event: dict[str, Any]) -> str:
    """The compact policy the provider writes for this event."""
    return h.compact(h.policy_of(event["ResourceProperties"]))


# --- assertions -----------------------------------------------------------------------------


def budget_end(outcome: Outcome) -> float:
    """The time by which the response must be sent: the invocation's deadline, or, when it
    had none usable, the end of the provider's default budget."""
    if outcome.deadline is not None and outcome.deadline > outcome.handed:
        return outcome.deadline
    return outcome.handed + DEFAULT_BUDGET_SECONDS


def assert_one_response_in_time(outcome: Outcome) -> dict[str, Any]:
    """Exactly one response stored, delivered before the deadline, the invocation answered
    (not failed) before the deadline."""
    info = outcome.describe()
    assert outcome.stored == 1, f"{outcome.stored} responses stored, expected 1\n{info}"
    assert outcome.response is not None, info
    for name in ("StackId", "RequestId", "LogicalResourceId"):
        assert outcome.response[name] == outcome.event[name], f"{name}\n{info}"
    delivered = outcome.delivered_at
    assert delivered is not None, f"no response PUT accepted by S3\n{info}"
    end = budget_end(outcome)
    assert delivered < end, f"response delivered {delivered - end:.2f}s after the deadline\n{info}"
    assert outcome.answered < end, f"invocation answered after the deadline\n{info}"
    assert outcome.error is None, f"the invocation ended in error\n{info}"
    return outcome.response


def assert_success(outcome: Outcome, physical_id: str) -> dict[str, Any]:
    response = assert_one_response_in_time(outcome)
    assert response["Status"] == "SUCCESS", outcome.describe()
    assert "Reason" not in response
    assert response["PhysicalResourceId"] == physical_id, outcome.describe()
    return response


def assert_failed(outcome: Outcome, physical_id: str, *fragments: str) -> str:
    response = assert_one_response_in_time(outcome)
    assert response["Status"] == "FAILED", outcome.describe()
    assert response["PhysicalResourceId"] == physical_id, outcome.describe()
    reason = response["Reason"]
    for fragment in fragments:
        assert fragment in reason, f"{fragment!r} not in Reason {reason!r}"
    assert reason.endswith(LOG_TAIL), reason
    return reason


def assert_no_response(outcome: Outcome, error_type: str) -> None:
    """Nothing stored, the invocation ended in error before the deadline."""
    info = outcome.describe()
    assert outcome.stored == 0, f"{outcome.stored} responses stored, expected none\n{info}"
    assert isinstance(outcome.error, dict), f"the invocation did not end in error\n{info}"
    assert outcome.error.get("errorType") == error_type, info
    assert outcome.answered < budget_end(outcome), f"answered after the deadline\n{info}"


def assert_serves_next_event(rig: Rig, function: Function) -> Outcome:
    """The same process, still alive, answers a normal event with SUCCESS: a repository
    policy on ``probe``, with no fault in the way."""
    assert function.alive(), "the provider process died\n" + function.log_text()[-3000:]
    rig.proxy.clear_rules()
    event = repository_create(PROBE_REPOSITORY, "ProbePolicy")
    outcome = function.send(event, "next event", deadline_in=30.0)
    assert_success(outcome, h.repository_arn(PROBE_REPOSITORY))
    assert rig.repository_policy(PROBE_REPOSITORY) == desired(event)
    assert function.alive(), "the provider process died after the next event"
    assert function.api.process is not None and function.api.process.pid == function.pid
    return outcome


def fallback_logged(outcome: Outcome) -> bool:
    return any(
        line.get("message") == "event received" and line.get("deadline_fallback") is True
        for line in outcome.log
    )

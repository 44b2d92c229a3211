"""The end-to-end harness shared by tests/e2e (pytest) and scripts/demo.py.

It runs the provider the way Lambda does, through real parts and on loopback only:

* moto's server (``.venv/bin/moto_server``) stands in for ECR and for the S3 bucket that
  CloudFormation's presigned ``ResponseURL`` points at;
* ``cargo lambda watch`` runs a local Lambda Runtime API (2018-06-01) and starts the real
  ``ecr-policy-provider`` binary behind it (``cargo run``, so a stale binary is rebuilt);
* every event is sent over HTTP to the emulator's invoke endpoint with its ``ResponseURL``
  replaced by a presigned S3 PUT URL on moto; the response CloudFormation would receive is
  then read back from the bucket.

Every process started here runs in its own session under ``timeout`` (so it ends by itself
after ``lifetime`` seconds), gets SIGTERM if the Python process that started it dies, and
carries a per-run marker in its environment so that ``stop()`` can find and end exactly the
processes this harness started (cargo-lambda starts the function in a process group of its
own). Every wait is bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
MOTO_SERVER = VENV_BIN / "moto_server"
CARGO_LAMBDA = VENV_BIN / "cargo-lambda"
BINARY = ROOT / "target" / "debug" / "ecr-policy-provider"
EVENTS = ROOT / "events"

FUNCTION = "ecr-policy-provider"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, and the one the sample events name
PARTITION = "aws"
# Named like the buckets CloudFormation's own ResponseURLs point at.
BUCKET = "cloudformation-custom-resource-response-useast1"
LOG_GROUP = "/aws/lambda/ecr-policy-provider"
LOG_STREAM = "2026/11/23/[$LATEST]e2e"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

REGISTRY_ID = f"registry-policy:{REGION}:{ACCOUNT}"

# Bounds on every wait.
MOTO_START_SECONDS = 30
RUNTIME_START_SECONDS = 30
# The first invocation runs `cargo run`, which rebuilds a stale binary.
FIRST_INVOKE_SECONDS = 300
# The provider answers within its 60 s fallback budget; this leaves room for the emulator.
INVOKE_SECONDS = 90
STOP_GRACE_SECONDS = 5


class HarnessError(RuntimeError):
    """The harness could not start or talk to one of its parts."""


def registry_policy(ecr: Any) -> str | None:
    """The registry's live policy text, read through a boto3 ECR client; None when there is none."""
    try:
        return ecr.get_registry_policy()["policyText"]
    except ecr.exceptions.RegistryPolicyNotFoundException:
        return None


def repository_policy(ecr: Any, name: str) -> str | None:
    """A repository's live policy text; None when there is none."""
    try:
        return ecr.get_repository_policy(repositoryName=name)["policyText"]
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        return None


def repository_arn(name: str) -> str:
    return f"arn:{PARTITION}:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def missing_tools() -> list[str]:
    """What is missing to run the harness, each with the command that provides it."""
    problems = []
    if not os.access(MOTO_SERVER, os.X_OK):
        problems.append(f"{MOTO_SERVER} is missing: run scripts/bootstrap")
    if not os.access(CARGO_LAMBDA, os.X_OK):
        problems.append(f"{CARGO_LAMBDA} is missing: run scripts/bootstrap")
    if shutil.which("cargo") is None:
        problems.append("cargo is not on PATH: install the Rust toolchain (rustup)")
    if not os.access(BINARY, os.X_OK):
        problems.append(f"{BINARY} is missing: run `cargo build` (scripts/e2e does)")
    return problems


# --- events -----------------------------------------------------------------------------


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, as CloudFormation would send it."""
    with open(EVENTS / name, encoding="utf-8") as f:
        return json.load(f)


def policy_of(properties: dict[str, Any]) -> dict[str, Any]:
    """The PolicyText property as a document (it may arrive as a JSON string)."""
    text = properties["PolicyText"]
    return json.loads(text) if isinstance(text, str) else text


def compact(policy: dict[str, Any] | str) -> str:
    """The compact form the provider sends to ECR: key order kept, no white space."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=False)


def follow_up(
    previous: dict[str, Any],
    request_type: str,
    *,
    physical_id: str,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The next event CloudFormation sends for the same resource: a new RequestId, the
    resource's PhysicalResourceId and, for an Update, the previous properties as
    OldResourceProperties."""
    event = copy.deepcopy(previous)
    event["RequestType"] = request_type
    event["RequestId"] = str(uuid.uuid4())
    event["PhysicalResourceId"] = physical_id
    old = copy.deepcopy(previous["ResourceProperties"])
    event["ResourceProperties"] = copy.deepcopy(properties) if properties else old
    event.pop("OldResourceProperties", None)
    if request_type == "Update":
        event["OldResourceProperties"] = old
    return event


def rollback_of(update: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's rollback of an Update: the same resource, old and new swapped."""
    event = copy.deepcopy(update)
    event["RequestId"] = str(uuid.uuid4())
    event["ResourceProperties"], event["OldResourceProperties"] = (
        copy.deepcopy(update["OldResourceProperties"]),
        copy.deepcopy(update["ResourceProperties"]),
    )
    return event


# --- processes ----------------------------------------------------------------------------

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None
_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int) -> None:
    """In the child, before exec: die with the parent (Linux)."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# Loopback only: never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Service:
    """One long-running process in its own session, logging to a file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, lifetime: int
    ):
        self.name = name
        self.log = log
        if shutil.which("timeout"):
            # Ends by itself even if nobody stops it.
            argv = ["timeout", "--kill-after=5", str(lifetime), *argv]
        self._log_file = open(log, "ab")
        parent = os.getpid()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: _child_setup(parent),
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(STOP_GRACE_SECONDS)
        self._log_file.close()


def _marked_pids(marker: str) -> list[int]:
    """The processes whose environment carries this run's marker: the ones it started."""
    needle = f"ECR_E2E_RUN={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _end_marked(marker: str) -> None:
    """Ends whatever this run started that is still alive (the function cargo-lambda
    spawned in a group of its own, say): SIGTERM, then SIGKILL."""
    if not os.path.isdir("/proc"):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _marked_pids(marker)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and _marked_pids(marker):
            time.sleep(0.1)


def _base_env(marker: str, workdir: Path) -> dict[str, str]:
    """The environment without any AWS settings of the caller's, and without proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # No shared config or credentials files, no instance metadata.
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "ECR_E2E_RUN": marker,
        }
    )
    return env


# --- the parts ------------------------------------------------------------------------------


class Moto:
    """moto's server: ECR and S3 on loopback."""

    def __init__(self, workdir: Path, marker: str, lifetime: int):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.service = Service(
            "moto",
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            _base_env(marker, workdir),
            workdir / "moto.log",
            lifetime,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + MOTO_START_SECONDS
        while time.monotonic() < deadline:
            if not self.service.running():
                raise HarnessError(
                    f"moto_server exited with {self.service.proc.returncode}:\n"
                    + self.service.log_tail()
                )
            try:
                with _HTTP.open(f"{self.endpoint}/moto-api/data.json", timeout=2) as r:
                    r.read()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise HarnessError(
            f"moto_server did not answer within {MOTO_START_SECONDS} s:\n"
            + self.service.log_tail()
        )

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with _HTTP.open(request, timeout=10) as r:
            r.read()

    def client(self, service: str):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(
                signature_version="s3v4" if service == "s3" else None,
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2, "mode": "standard"},
            ),
            **CREDENTIALS,
        )


@dataclass
class Invocation:
    """What the Lambda invoke endpoint answered."""

    status: int
    body: Any
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def error_message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("errorMessage", self.body))
        return str(self.body)


class Runtime:
    """`cargo lambda watch`: the Lambda Runtime API, with the provider's binary behind it."""

    def __init__(self, workdir: Path, marker: str, lifetime: int, moto_endpoint: str):
        self.port = free_port()
        moto_host = moto_endpoint.removeprefix("http://")
        env = _base_env(marker, workdir)
        env.update(
            {
                "AWS_ENDPOINT_URL": moto_endpoint,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
                "RESPONSE_URL_ALLOWED_HOSTS": moto_host,
                "IAM_PROPAGATION_TIMEOUT_SECONDS": "2",
                "RUST_LOG": "info",
                # Lambda sets these; the provider names them in every Reason.
                "AWS_LAMBDA_LOG_GROUP_NAME": LOG_GROUP,
                "AWS_LAMBDA_LOG_STREAM_NAME": LOG_STREAM,
                "CARGO_TERM_COLOR": "never",
            }
        )
        self.service = Service(
            "cargo lambda watch",
            [
                str(CARGO_LAMBDA),
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                str(self.port),
                "--bin",
                FUNCTION,
                "--color",
                "never",
            ],
            env,
            workdir / "provider.log",
            lifetime,
        )
        self.url = (
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/{FUNCTION}/invocations"
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + RUNTIME_START_SECONDS
        while not _port_open(self.port):
            if not self.service.running():
                raise HarnessError(
                    f"cargo lambda watch exited with {self.service.proc.returncode}:\n"
                    + self.service.log_tail()
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"cargo lambda watch did not listen within {RUNTIME_START_SECONDS} s:\n"
                    + self.service.log_tail()
                )
            time.sleep(0.2)
        # The first invocation starts (and if needed builds) the function. An event with no
        # ResponseURL is refused before anything else happens: no response, no ECR call.
        warm = self.invoke({"E2E": "warm-up, no ResponseURL"}, timeout=FIRST_INVOKE_SECONDS)
        if "no ResponseURL" not in warm.error_message:
            raise HarnessError(
                "the provider did not answer the warm-up invocation as expected "
                f"(HTTP {warm.status}: {warm.body!r}):\n" + self.service.log_tail()
            )

    def invoke(self, payload: dict[str, Any], timeout: float = INVOKE_SECONDS) -> Invocation:
        if not self.service.running():
            raise HarnessError(
                "cargo lambda watch is not running:\n" + self.service.log_tail()
            )
        data = json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        started = time.monotonic()
        try:
            with _HTTP.open(request, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise HarnessError(
                f"invoking the function failed: {e}\n" + self.service.log_tail()
            ) from e
        seconds = time.monotonic() - started
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return Invocation(status, body, seconds)


@dataclass
class Sent:
    """One event sent, with what came of it."""

    name: str
    event: dict[str, Any]
    key: str | None
    invocation: Invocation
    response: dict[str, Any] | None
    # The provider's JSON log lines written during this invocation.
    log: list[dict[str, Any]]

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
    def ecr_calls(self) -> dict[str, int] | None:
        """ECR reads, writes and deletes, from the provider's "response sent" log line."""
        for line in self.log:
            if line.get("message") == "response sent" and "ecr_reads" in line:
                return {k: line[f"ecr_{k}"] for k in ("reads", "writes", "deletes")}
        return None


class Harness:
    """moto + the provider under `cargo lambda watch`, and the CloudFormation side: events
    in, responses read back from the bucket, ECR state read through boto3."""

    def __init__(self, workdir: Path | None = None, lifetime: int = 900):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ecr-policy-e2e-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lifetime = lifetime
        self.marker = uuid.uuid4().hex
        self.moto: Moto | None = None
        self.runtime: Runtime | None = None
        self.keys: dict[str, int] = {}  # key -> responses expected (1, or 0 if refused)
        self._count = 0
        self._stopped = False

    # lifecycle of the harness itself

    def start(self) -> "Harness":
        problems = missing_tools()
        if problems:
            raise HarnessError("cannot run end to end:\n  " + "\n  ".join(problems))
        atexit.register(self.stop)
        self.moto = Moto(self.workdir, self.marker, self.lifetime)
        self.moto.wait_ready()
        self.s3 = self.moto.client("s3")
        self.ecr = self.moto.client("ecr")
        self.runtime = Runtime(self.workdir, self.marker, self.lifetime, self.moto.endpoint)
        self.runtime.wait_ready()
        self.prepare()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for part in (self.runtime, self.moto):
            if part is not None:
                part.service.stop()
        _end_marked(self.marker)

    def __enter__(self) -> "Harness":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def prepare(self) -> None:
        """A clean account: moto reset, an empty versioned response bucket."""
        self.moto.reset()
        self.s3.create_bucket(Bucket=BUCKET)
        # Versioning counts every PUT, so a second response to one URL cannot hide.
        self.s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        self.keys = {}

    @property
    def provider_log(self) -> Path:
        return self.workdir / "provider.log"

    def provider_log_size(self) -> int:
        try:
            return self.provider_log.stat().st_size
        except OSError:
            return 0

    def provider_log_since(self, offset: int) -> str:
        try:
            with open(self.provider_log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # CloudFormation's side

    def response_url(self, key: str, host: str | None = None) -> str:
        url = self.s3.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=3600
        )
        if host:
            url = url.replace(f"127.0.0.1:{self.moto.port}", host, 1)
        return url

    def send(
        self, event: dict[str, Any], name: str = "", *, response_host: str | None = None
    ) -> Sent:
        """Invokes the function with `event`, its ResponseURL replaced by a presigned PUT URL
        for a key of its own, and returns the response stored there (None if none).
        `response_host` puts the URL on another host (one the provider must refuse)."""
        self._count += 1
        key = "{:03d}-{}-{}-{}".format(
            self._count,
            event.get("RequestType", "none"),
            event.get("LogicalResourceId", "none"),
            event.get("RequestId", "none"),
        )
        event = copy.deepcopy(event)
        event["ResponseURL"] = self.response_url(key, response_host)
        self.keys[key] = 0 if response_host else 1
        log_offset = self.provider_log_size()
        invocation = self.runtime.invoke(event)
        log = []
        for line in self.provider_log_since(log_offset).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    log.append(json.loads(line))
        return Sent(name or key, event, key, invocation, self.read_response(key), log)

    def read_response(self, key: str) -> dict[str, Any] | None:
        try:
            obj = self.s3.get_object(Bucket=BUCKET, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())

    def responses_per_key(self) -> dict[str, int]:
        """How many times each key of the bucket was written (every version counts)."""
        counts: dict[str, int] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
            for version in page.get("Versions", []):
                counts[version["Key"]] = counts.get(version["Key"], 0) + 1
            for marker in page.get("DeleteMarkers", []):
                counts[marker["Key"]] = counts.get(marker["Key"], 0) + 1000
        return counts

    def unexpected_responses(self) -> list[str]:
        """Every way the bucket differs from one response per event with a usable URL."""
        counts = self.responses_per_key()
        problems = [
            f"{key}: {counts.get(key, 0)} response(s), expected {want}"
            for key, want in self.keys.items()
            if counts.get(key, 0) != want
        ]
        problems += [f"{key}: written, but no event used it" for key in counts if key not in self.keys]
        return problems

    # ECR's side

    def registry_policy(self) -> str | None:
        return registry_policy(self.ecr)

    def repository_policy(self, name: str) -> str | None:
        return repository_policy(self.ecr, name)

    def create_repository(self, name: str) -> None:
        self.ecr.create_repository(repositoryName=name)

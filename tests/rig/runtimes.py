"""Three ways to run the provider's real binary behind a Lambda Runtime API, behind one
interface (``start``, ``invoke``, ``alive``, ``stop``, a ``log``):

* ``CargoLambdaWatch``: `cargo lambda watch`, a real third-party runtime (it starts the
  function with ``cargo run``, so a stale binary is rebuilt); it sets no deadline of ours.
* ``Emulator``: the project's own Runtime API (runtime_api.py), which gives each invocation
  the deadline a test chooses (or none, or one already past) and times the process's start.
* ``Rie``: AWS's Lambda Runtime Interface Emulator, the one `sam local invoke` runs inside its
  container, taken from the installed aws-sam-cli package and run here without Docker. Its
  deadline is the function's timeout (``AWS_LAMBDA_FUNCTION_TIMEOUT``), as on Lambda.

Each returns an ``Invocation``: when the event was handed over and answered (wall clock), the
deadline it had, and the result or the error the function reported.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.constants import BINARY, CARGO_LAMBDA, FUNCTION
from rig.interface import INTERFACE
from rig.logs import LogFile
from rig.procs import HTTP, RigError, Run, Service, caller_env, free_port, isolated_env
from rig.runtime_api import RuntimeApi

# How long a runtime may take to listen, and the function to ask for its first event.
START_SECONDS = 30
READY_SECONDS = 15
# The first `cargo lambda watch` invocation runs `cargo run`, which rebuilds a stale binary.
FIRST_INVOKE_SECONDS = 300
# An invocation answers within the provider's fallback budget; this leaves room around it.
INVOKE_SECONDS = INTERFACE.default_budget_seconds + 30
INVOKE_PATH = "/2015-03-31/functions/{}/invocations"


@dataclass
class Invocation:
    """What the runtime reported for one event."""

    handed: float  # wall clock: the event was handed over (or the invoke request sent)
    answered: float  # wall clock: the function's answer was in
    deadline: float | None  # wall clock; None when the runtime set none we know of
    result: Any  # the invocation's result (None for the provider's Ok(()))
    error: dict[str, Any] | None  # errorType and errorMessage, when it ended in error


def _error(body: Any, why: str) -> dict[str, Any]:
    if isinstance(body, dict) and "errorType" in body:
        return body
    return {"errorType": why, "errorMessage": str(body)}


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _post(url: str, event: dict[str, Any], timeout: float, service: Service) -> tuple[int, Any]:
    """POSTs an event to an invoke endpoint: the HTTP status and the decoded body."""
    request = urllib.request.Request(
        url, data=json.dumps(event).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with HTTP.open(request, timeout=timeout) as r:
            return r.status, _decode(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _decode(e.read())
    except (urllib.error.URLError, OSError) as e:
        raise RigError(f"invoking the function failed: {e}\n{service.log.tail()}") from e


def _require(problems: list[str], name: str) -> None:
    """A missing part is an error that says how to get it, never a skip."""
    if problems:
        raise RigError(f"cannot run {name}:\n  " + "\n  ".join(problems))


def _binary_problems(binary: Path) -> list[str]:
    if os.access(binary, os.X_OK):
        return []
    return [f"{binary} is missing: run `cargo build` (scripts/e2e does)"]


def _no_deadline_of_ours(name: str, deadline_in: float | None, deadline_ms: int | None) -> None:
    if deadline_in is not None or deadline_ms is not None:
        raise ValueError(f"{name} cannot be given a deadline per invocation; use Emulator")


class CargoLambdaWatch:
    """`cargo lambda watch` with the provider behind it."""

    name = "cargo lambda watch"

    def __init__(self, run: Run, env: dict[str, str]):
        problems = _binary_problems(BINARY)
        if not os.access(CARGO_LAMBDA, os.X_OK):
            problems.append(f"{CARGO_LAMBDA} is missing: run scripts/bootstrap")
        if shutil.which("cargo") is None:
            problems.append("cargo is not on PATH: install the Rust toolchain (rustup)")
        _require(problems, self.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}" + INVOKE_PATH.format(FUNCTION)
        self.service = Service(
            self.name,
            [
                str(CARGO_LAMBDA), "lambda", "watch", "--ignore-changes",
                "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port),
                "--bin", FUNCTION, "--color", "never",
            ],
            {**caller_env(run), **env, "CARGO_TERM_COLOR": "never"},
            run.workdir / "provider.log",
            run.lifetime,
        )
        self.log = self.service.log

    def start(self) -> None:
        self.service.wait_listening(self.port, START_SECONDS)
        # The first invocation starts (and if needed builds) the function. An event with no
        # ResponseURL is refused before anything else happens: no response, no ECR call.
        warm = self.invoke({"E2E": "warm-up, no ResponseURL"}, timeout=FIRST_INVOKE_SECONDS)
        if "no ResponseURL" not in str((warm.error or {}).get("errorMessage")):
            raise RigError(
                "the provider did not answer the warm-up invocation as expected "
                f"({warm.error or warm.result!r}):\n{self.log.tail()}"
            )

    def invoke(
        self,
        event: dict[str, Any],
        *,
        deadline_in: float | None = None,
        deadline_ms: int | None = None,
        timeout: float = INVOKE_SECONDS,
    ) -> Invocation:
        _no_deadline_of_ours(self.name, deadline_in, deadline_ms)
        if not self.alive():
            raise RigError(f"{self.name} is not running:\n{self.log.tail()}")
        handed = time.time()
        status, body = _post(self.url, event, timeout, self.service)
        answered = time.time()
        if status == 200:
            return Invocation(handed, answered, None, body, None)
        return Invocation(handed, answered, None, None, _error(body, f"HTTP {status}"))

    def alive(self) -> bool:
        return self.service.running()

    def stop(self) -> None:
        self.service.stop()


class Emulator:
    """The provider behind the project's own Runtime API emulator: one process, or
    ``processes`` of them polling the same API (concurrent invocations), all writing to one
    log (each line is written whole, and carries its event's RequestId)."""

    name = "Runtime API emulator"

    def __init__(
        self,
        run: Run,
        env: dict[str, str],
        log_name: str = "provider",
        binary: Path = BINARY,
        processes: int = 1,
    ):
        _require(_binary_problems(binary), self.name)
        self.binary = binary
        self.processes = processes
        self.log = LogFile(run.workdir / f"{log_name}.log")
        self.api = RuntimeApi(run.lifetime, run.marker)
        # The function's self-invoke (a prefix statement that continues) reaches the API.
        self.env = {**env, "AWS_ENDPOINT_URL_LAMBDA": f"http://{self.api.address}"}
        self._log_file: Any = None
        self.init_seconds: float | None = None

    def start(self) -> None:
        self._log_file = open(self.log.path, "ab")
        try:
            self.api.start_function(self.binary, self.env, log=self._log_file)
            self.init_seconds = self.api.wait_ready(READY_SECONDS)
            for _ in range(self.processes - 1):
                self.api.start_function(self.binary, self.env, log=self._log_file)
            self.api.wait_polling(self.processes, READY_SECONDS)
        except TimeoutError as e:
            self.stop()
            raise RigError(f"{e}:\n{self.log.tail()}") from None

    @property
    def pid(self) -> int | None:
        return self.api.process.pid if self.api.process else None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.api.processes]

    def kill(self) -> None:
        """Ends every process with SIGKILL mid-whatever (a crash, or Lambda's timeout)."""
        for pid in self.pids:
            self.api.kill(pid)

    def invoke(
        self,
        event: dict[str, Any] | str | bytes,
        *,
        deadline_in: float | None = 30.0,
        deadline_ms: int | None = None,
        timeout: float = INVOKE_SECONDS,
    ) -> Invocation:
        """``deadline_in`` seconds from now, or exactly ``deadline_ms`` (0: none; a past
        time: already gone)."""
        inv = self.api.invoke(
            event, deadline_in=deadline_in, deadline_ms=deadline_ms, timeout=timeout
        )
        # The emulator keeps monotonic times; deadlines and the proxy use the wall clock.
        offset = time.time() - time.monotonic()
        assert inv.handed_at is not None and inv.answered_at is not None
        deadline = inv.deadline_ms / 1000 if inv.deadline_ms > 0 else None
        error = None if inv.error is None else _error(inv.error, "error")
        return Invocation(
            inv.handed_at + offset, inv.answered_at + offset, deadline, inv.response, error
        )

    def peak_rss_kib(self) -> int:
        return self.api.peak_rss_kib()

    def alive(self) -> bool:
        return self.api.alive()

    def stop(self) -> None:
        self.api.stop()
        if self._log_file is not None:
            self._log_file.close()


def rie_path() -> Path:
    """AWS's Runtime Interface Emulator as the installed aws-sam-cli package ships it (the
    binary `sam local invoke` runs in its container), for this machine's architecture."""
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine()
    )
    try:
        import samcli
    except ImportError:
        raise RigError(
            "aws-sam-cli is not installed, so there is no aws-lambda-rie: run scripts/bootstrap"
        ) from None
    path = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not path.is_file():
        raise RigError(
            f"aws-sam-cli {getattr(samcli, '__version__', '?')} ships no {path.name} at {path}: "
            "the Runtime Interface Emulator moved or this architecture has none"
        )
    return path


class Rie:
    """The provider's binary run as the bootstrap of AWS's Runtime Interface Emulator, which
    passes its own environment through to the function, sets the deadline of every event to
    now + ``AWS_LAMBDA_FUNCTION_TIMEOUT`` and ends the function ("Task timed out") when it is
    passed. It starts the function on the first event (init counts in that event's time)."""

    name = "aws-lambda-rie"

    def __init__(
        self,
        run: Run,
        env: dict[str, str],
        *,
        timeout_seconds: int,
        memory_mb: int,
        log_name: str = "rie",
        binary: Path = BINARY,
    ):
        _require(_binary_problems(binary), self.name)
        self.timeout_seconds = timeout_seconds
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}" + INVOKE_PATH.format("function")
        argv = [
            str(rie_path()),
            "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
            # Its own Runtime API would default to 127.0.0.1:9001.
            "--runtime-api-address", f"127.0.0.1:{free_port()}",
            str(binary),
        ]
        lambda_env = {
            # Without these the RIE names the function test_function, with 3008 MB.
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_seconds),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        }
        self.service = Service(
            self.name, argv, {**isolated_env(run), **lambda_env, **env},
            run.workdir / f"{log_name}.log", run.lifetime, cwd=run.workdir,
        )
        self.log = self.service.log

    def start(self) -> None:
        self.service.wait_listening(self.port, START_SECONDS)

    def invoke(
        self,
        event: dict[str, Any],
        *,
        deadline_in: float | None = None,
        deadline_ms: int | None = None,
        timeout: float | None = None,
    ) -> Invocation:
        _no_deadline_of_ours(self.name, deadline_in, deadline_ms)
        if not self.alive():
            raise RigError(f"{self.name} is not running:\n{self.log.tail()}")
        handed = time.time()
        # The RIE starts its clock when it takes the request, a moment after this one.
        deadline = handed + self.timeout_seconds
        status, body = _post(self.url, event, timeout or self.timeout_seconds + 30, self.service)
        answered = time.time()
        if status != 200:
            return Invocation(handed, answered, deadline, None, _error(body, f"HTTP {status}"))
        if isinstance(body, dict) and "errorType" in body:
            return Invocation(handed, answered, deadline, None, body)
        if isinstance(body, str) and body.startswith("Task timed out"):
            return Invocation(handed, answered, deadline, None, _error(body, "Sandbox.Timedout"))
        return Invocation(handed, answered, deadline, body, None)

    def alive(self) -> bool:
        return self.service.running()

    def stop(self) -> None:
        self.service.stop()

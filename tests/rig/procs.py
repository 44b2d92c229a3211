"""Processes the rig starts, and how it makes sure they end.

Every process runs in a session of its own under ``timeout`` (so it ends by itself after its
lifetime), gets SIGTERM if the Python process that started it dies (Linux PR_SET_PDEATHSIG),
and carries the run's marker in its environment, so that ``end_marked`` can find and end
exactly the processes one run started, whatever groups they put their children in. Every wait
is bounded.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable

from rig.constants import ROOT, VENV_BIN
from rig.logs import LogFile

MARKER_VARIABLE = "ECR_E2E_RUN"
STOP_GRACE_SECONDS = 5

# Loopback only: never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RigError(RuntimeError):
    """The rig could not start or talk to one of its parts."""


class QuietHandler(BaseHTTPRequestHandler):
    """The request handler of the rig's own HTTP servers (the fault proxy, the Runtime API
    emulator): HTTP/1.1, and no access log (each keeps its own records)."""

    protocol_version = "HTTP/1.1"
    # A reply goes out as two writes (headers, body): with Nagle's algorithm the body waits
    # for the client's delayed ACK of the headers, up to 40 ms that no AWS endpoint adds.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Run:
    """One run of the rig: where its parts keep their logs, how long any of its processes may
    live, and the marker they all carry."""

    workdir: Path
    lifetime: float
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In the child, before exec: die with the parent (Linux)."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def caller_env(run: Run) -> dict[str, str]:
    """The caller's environment without any AWS settings and without proxies, the .venv tools
    first on PATH, and no shared AWS config, credentials or instance metadata."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(isolated_env(run))
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def isolated_env(run: Run) -> dict[str, str]:
    """What every process of the rig gets: the marker, loopback without proxies, and no AWS
    configuration from the machine."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "AWS_CONFIG_FILE": str(run.workdir / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(run.workdir / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        MARKER_VARIABLE: run.marker,
    }


class Service:
    """One long-running process in its own session, writing to a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        lifetime: float,
        cwd: Path = ROOT,
    ):
        self.name = name
        self.log = LogFile(log)
        if shutil.which("timeout"):
            # Ends by itself even if nobody stops it.
            argv = ["timeout", "--kill-after=5", str(int(lifetime)), *argv]
        self._log_file = open(log, "ab")
        parent = os.getpid()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(parent),
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_listening(self, port: int, seconds: float) -> None:
        """Waits until the service accepts connections on ``port``."""
        deadline = time.monotonic() + seconds
        while not port_open(port):
            if not self.running():
                raise RigError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log.tail()}"
                )
            if time.monotonic() > deadline:
                raise RigError(
                    f"{self.name} did not listen within {seconds:g} s:\n{self.log.tail()}"
                )
            time.sleep(0.1)

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


def marked_pids(marker: str) -> list[int]:
    """The processes whose environment carries this run's marker: the ones it started."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
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


def end_marked(marker: str) -> None:
    """Ends whatever this run started that is still alive (the function cargo-lambda or the
    RIE spawned, say): SIGTERM, then SIGKILL."""
    if not os.path.isdir("/proc"):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = marked_pids(marker)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and marked_pids(marker):
            time.sleep(0.1)


def run_script(body: Callable[[], int], cleanup: Callable[[], None]) -> int:
    """A script's main: SIGTERM is taken as Ctrl-C, an interruption exits 130, and
    ``cleanup`` always runs, without a second Ctrl-C cutting it short."""

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return body()
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything that was started.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup()

"""A Lambda Runtime API (2018-06-01) on loopback, for tests and the benchmark that need what
`cargo lambda watch` does not give: a chosen invocation deadline (or none, or one already
past), and timestamps of the process start, its first `next` request, each event handed out
and each answer.

The function is the real binary, started with ``AWS_LAMBDA_RUNTIME_API`` pointing here, as
Lambda starts a ``provided.al2023`` bootstrap. One event at a time per process, like Lambda;
several processes may poll one API (``start_function`` again), as Lambda runs concurrent
invocations in sandboxes of their own: each event goes to whichever process asks first. The
function processes die with this process (Linux PR_SET_PDEATHSIG) and carry the run's
marker; the emulator stops by itself after ``lifetime`` seconds.

    api = RuntimeApi(lifetime=600, marker=run)
    proc = api.start_function(binary, env)
    api.wait_ready(10)                 # or api.wait_polling(6, 10) after six start_function
    inv = api.invoke(event, deadline_in=3.0, timeout=10)
    inv.response / inv.error / inv.latency
    api.stop()

It also answers Lambda's own ``Invoke`` (``POST /2015-03-31/functions/<name>/invocations``)
for an asynchronous invocation (``X-Amz-Invocation-Type: Event``), as the function's self-
invoke sends it when it continues a prefix statement (CONTRACT 15; ``AWS_ENDPOINT_URL_LAMBDA``
points here): the event is queued like any other, with ``async_deadline_in`` seconds to run
(the function's Timeout), and listed in ``async_invocations``. The request's signature is
not checked.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rig.constants import FUNCTION, FUNCTION_ARN
from rig.procs import MARKER_VARIABLE, QuietHandler, die_with_parent

PREFIX = "/2018-06-01/runtime"
INVOKE_PREFIX = "/2015-03-31/functions/"
# How long a `next` request is held before the emulator answers it with nothing to do; the
# runtime then asks again. Bounded so that the server threads end on their own.
NEXT_POLL_SECONDS = 1.0


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    handed_at: float | None = None
    answered_at: float | None = None
    response: Any = None
    error: Any = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def latency(self) -> float:
        """Seconds from handing the event to the function to its answer."""
        assert self.handed_at is not None and self.answered_at is not None
        return self.answered_at - self.handed_at


class RuntimeApi:
    def __init__(self, lifetime: float = 600.0, marker: str = "") -> None:
        self.marker = marker
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.invocations: dict[str, Invocation] = {}
        self.first_next_at: float | None = None
        self.started_at: float | None = None
        self.init_error: Any = None
        self.processes: list[subprocess.Popen[bytes]] = []
        # `next` requests waiting for an event now: the processes that are idle.
        self.polling = 0
        self._polling_changed = threading.Condition()
        # Lambda's Invoke, asynchronous: the deadline each such event gets, and the events.
        self.async_deadline_in = 30.0
        self.async_invocations: list[Invocation] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        # A pending `next` request fails when the function is stopped: quiet.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self._stop_lock = threading.Lock()
        self._stopped = False
        # Stops by itself even if nobody calls stop().
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(QuietHandler):
            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                if api.first_next_at is None:
                    api.first_next_at = time.monotonic()
                    api.ready.set()
                api._poll(+1)
                try:
                    inv = api._next_event()
                finally:
                    api._poll(-1)
                if inv is not None:
                    inv.handed_at = time.monotonic()
                    return self._reply(
                        200,
                        inv.payload,
                        {
                            "Content-Type": "application/json",
                            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                        },
                    )
                self._reply(503)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith(INVOKE_PREFIX) and self.path.endswith("/invocations"):
                    if self.headers.get("X-Amz-Invocation-Type") != "Event":
                        return self._reply(400, b'{"message":"only Event invocations here"}')
                    api.enqueue_async(body)
                    return self._reply(202)
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                    return self._reply(202, b"{}")
                if len(parts) == 3 and parts[0] == "invocation" and parts[1] in api.invocations:
                    inv = api.invocations[parts[1]]
                    decoded = _decode(body)
                    if parts[2] == "response":
                        inv.response = decoded
                    elif parts[2] == "error":
                        inv.error = decoded
                    else:
                        return self._reply(404)
                    inv.answered_at = time.monotonic()
                    inv.done.set()
                    return self._reply(202, b"{}")
                self._reply(404)

        return Handler

    def _poll(self, change: int) -> None:
        with self._polling_changed:
            self.polling += change
            self._polling_changed.notify_all()

    def _next_event(self) -> Invocation | None:
        """The next pending event, or None once the emulator stops."""
        while not self.stopping.is_set():
            try:
                return self.pending.get(timeout=NEXT_POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def wait_polling(self, count: int, timeout: float) -> None:
        """Waits until ``count`` processes are asking for an event at once (all idle)."""
        deadline = time.monotonic() + timeout
        with self._polling_changed:
            while self.polling < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.polling} of {count} processes asked for an event within {timeout}s"
                    )
                self._polling_changed.wait(left)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The first function process started."""
        return self.processes[0] if self.processes else None

    def start_function(self, binary: Path | str, env: dict[str, str], log: Any = None) -> subprocess.Popen[bytes]:
        """Starts a function process as Lambda would, in a session of its own, with only
        ``env`` and the variables Lambda sets. Called again, another process polls the same
        API."""
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            MARKER_VARIABLE: self.marker,
            **env,
        }
        parent = os.getpid()
        if self.started_at is None:
            self.started_at = time.monotonic()
        process = subprocess.Popen(
            [str(binary)],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log if log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(parent),
        )
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float) -> float:
        """Waits for the first `next` request; returns the init time in seconds."""
        if not self.ready.wait(timeout):
            raise TimeoutError(f"the function did not ask for an event within {timeout}s")
        assert self.started_at is not None and self.first_next_at is not None
        return self.first_next_at - self.started_at

    def invoke(
        self,
        event: dict[str, Any] | str | bytes,
        *,
        deadline_in: float | None = 30.0,
        deadline_ms: int | None = None,
        timeout: float = 90.0,
    ) -> Invocation:
        """Hands one event to the function and waits for its answer.

        ``deadline_in`` seconds from now sets the deadline header; ``deadline_ms`` sets it
        exactly (0 for an emulator that has none, a past time for one already gone).
        """
        if isinstance(event, dict):
            payload = json.dumps(event).encode()
        elif isinstance(event, str):
            payload = event.encode()
        else:
            payload = event
        if deadline_ms is None:
            deadline_ms = int((time.time() + (deadline_in or 0)) * 1000)
        inv = Invocation(str(uuid.uuid4()), payload, deadline_ms)
        self.invocations[inv.request_id] = inv
        self.pending.put(inv)
        if not inv.done.wait(timeout):
            raise TimeoutError(f"no answer within {timeout}s")
        return inv

    def enqueue_async(self, payload: bytes) -> Invocation:
        """Queues an asynchronous invocation (Lambda's Invoke with InvocationType Event)."""
        deadline_ms = int((time.time() + self.async_deadline_in) * 1000)
        inv = Invocation(str(uuid.uuid4()), payload, deadline_ms)
        self.invocations[inv.request_id] = inv
        self.async_invocations.append(inv)
        self.pending.put(inv)
        return inv

    def alive(self) -> bool:
        """Every function process is running."""
        return bool(self.processes) and all(p.poll() is None for p in self.processes)

    def kill(self, pid: int) -> None:
        """Ends one function process with SIGKILL, as a crash or Lambda's timeout would:
        whatever it was doing stops there, nothing is given back."""
        for process in self.processes:
            if process.pid == pid and process.poll() is None:
                with _suppress():
                    os.killpg(process.pid, signal.SIGKILL)
                with _suppress():
                    process.wait(5)

    def peak_rss_kib(self) -> int:
        """The function's peak resident set (VmHWM) so far, in KiB."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc status")

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self.stopping.set()
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            with _suppress():
                os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                with _suppress():
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
        self.server.shutdown()
        self.server.server_close()


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode("utf-8", "replace")


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return True

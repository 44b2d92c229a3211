"""A fault-injecting HTTP proxy on loopback, between the provider and moto.

The provider's ``AWS_ENDPOINT_URL`` points here, and so does the host of every ``ResponseURL``
(a presigned moto S3 URL with its host rewritten; moto does not check signatures, and the
provider's ``RESPONSE_URL_ALLOWED_HOSTS`` lists this proxy's ``127.0.0.1:port``). Every
request is forwarded to moto unless a rule says otherwise.

Requests are sorted into kinds:

* an ECR operation, by the ``X-Amz-Target`` header
  (``AmazonEC2ContainerRegistry_V20150921.PutRegistryPolicy`` is ``PutRegistryPolicy``);
* a DynamoDB operation (the lock table), by the same header, prefixed
  (``DynamoDB_20120810.UpdateItem`` is ``dynamodb:UpdateItem``);
* ``response``: a ``PUT`` to the response bucket's path (CloudFormation's ``ResponseURL``);
* ``other``: anything else (the tests' own calls never come through here).

A rule applies a fault to the first N requests of a kind (``ECR_ANY`` matches every ECR
operation that has no rule of its own). Rules can be changed between invocations; requests
are counted per kind, and each one is recorded with its wall-clock times.

DynamoDB requests are forwarded to moto one at a time, always: moto checks a condition and
then writes without a lock, so two concurrent conditional writes could both succeed, where
DynamoDB itself is atomic. The lock table's semantics hold only through this proxy, which is
why the rig points the provider's ``AWS_ENDPOINT_URL_DYNAMODB`` here even when ECR is not.

ECR's reads can lag its writes, moto's never do. ``Fault.lagging_reads(n)`` on a policy write
(``PutRegistryPolicy``, ``SetRepositoryPolicy``, ``DeleteRegistryPolicy``,
``DeleteRepositoryPolicy``) forwards the write, then answers the next ``n`` reads of that
policy with what a read returned just before it. ``Fault.stale(seconds)`` on a policy read
answers it with the policy as it was that many seconds ago: while the rule is set, every
write of that policy that reaches moto keeps the answer a read gave just before it, with the
write's time; so does a write whose answer is lost (``after_forward``) or that lands late
(``Fault.late``), so a read that checks whether it landed lags it too.

A request can also outlive its caller. ``reset`` and ``hang`` with ``after_forward`` forward
it and lose the answer (the call took effect; the client sees a reset or no answer).
``Fault.late`` answers the client (with an error, or not at all) and forwards the request
later: after some seconds or at ``release()`` (a write that lands after its caller gave up).
``Fault.delay`` holds a request the same way, then forwards it and passes its answer on.

A rule can wait for another request: ``set_rule(kind, fault, after=kinds)`` applies only to
requests of ``kind`` that come after a request of one of ``kinds`` was forwarded ("fail the
lock writes that follow the next ECR write": ``after=ECR_WRITES``).

    proxy = FaultProxy(upstream_port=moto_port, bucket="b", lifetime=600)
    proxy.set_rule("PutRegistryPolicy", Fault.http(500), times=2)
    proxy.set_rule(RESPONSE, Fault.hang(15))
    proxy.set_rule(DYNAMODB + "UpdateItem", Fault.http(500), times=3, after=ECR_WRITES)
    proxy.set_rule("SetRepositoryPolicy", Fault.late())  # held until proxy.release()
    ...
    proxy.count("PutRegistryPolicy"), proxy.injected("PutRegistryPolicy")
    proxy.wait_for("SetRepositoryPolicy"); proxy.release(); proxy.wait_delivered(...)
    proxy.clear(); proxy.stop()

Everything here is bounded: the server stops by itself after ``lifetime`` seconds, a hang
ends after its own bound, when the client goes away or when the proxy stops, a held request
is forwarded within its bound or dropped by ``clear()`` and ``stop()``, and every upstream
call has a timeout. Loopback only.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from rig.procs import QuietHandler

ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
# DynamoDB operations are kinds of their own: "dynamodb:UpdateItem".
DYNAMODB = "dynamodb:"
RESPONSE = "response"
OTHER = "other"
# A rule under this kind applies to every ECR operation without a rule of its own.
ECR_ANY = "ecr:*"
# The ECR operations that write a policy (``after=ECR_WRITES``: once one has been forwarded).
ECR_WRITES = ("PutRegistryPolicy", "SetRepositoryPolicy")

# Each policy write, and the read of the same policy (registry or repository).
_READ_OF = {
    "PutRegistryPolicy": "GetRegistryPolicy",
    "DeleteRegistryPolicy": "GetRegistryPolicy",
    "SetRepositoryPolicy": "GetRepositoryPolicy",
    "DeleteRepositoryPolicy": "GetRepositoryPolicy",
}


def is_ecr(kind: str) -> bool:
    """Whether a kind is an ECR operation."""
    return kind not in (RESPONSE, OTHER) and not kind.startswith(DYNAMODB)


def policy_of_request(kind: str, body: bytes) -> tuple[str, str] | None:
    """Which policy an ECR policy read or write acts on: ("registry", "") or ("repository",
    its name); None for any other request."""
    if kind not in _READ_OF and kind not in _READ_OF.values():
        return None
    if "Registry" in kind:
        return ("registry", "")
    try:
        return ("repository", str(json.loads(body or b"{}").get("repositoryName")))
    except (ValueError, AttributeError):
        return None

UPSTREAM_TIMEOUT_SECONDS = 30
# The longest any hang, delay or late delivery may last, whatever a rule asks.
MAX_HANG_SECONDS = 120


def _bounded(seconds: float | None) -> float:
    """A hold's length: ``seconds``, or the bound when there is none (until released)."""
    return MAX_HANG_SECONDS if seconds is None else min(seconds, MAX_HANG_SECONDS)
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "expect",
}

# IAM's wording; registry actions have no resource type, so IAM names "*".
ACCESS_DENIED_MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/ecr-policy-provider-FunctionRole/"
    "ecr-policy-provider is not authorized to perform: ecr:{operation} on resource: "
    "{resource} because no identity-based policy allows the ecr:{operation} action"
)


@dataclass(frozen=True)
class Fault:
    """What to do with a matching request instead of forwarding it."""

    # "status" | "throttle" | "access_denied" | "invalid_policy" | "not_found" | "answer"
    # | "hang" | "reset"
    # | "lag" | "stale" | "delay" | "late"
    kind: str
    status: int = 0
    seconds: float = 0.0
    # For "answer": the JSON body served as ECR's own answer.
    payload: str = ""
    reads: int = 0  # lag: how many reads after the write are served the policy before it
    # Hang or reset only after the request has reached moto: the call took effect, but its
    # answer is lost (a write that landed while the network failed).
    after_forward: bool = False

    @staticmethod
    def http(status: int) -> "Fault":
        """An HTTP error status with a body in the service's own format (JSON for ECR, XML
        for S3): 500, 503, 403..."""
        return Fault("status", status=status)

    @staticmethod
    def throttle() -> "Fault":
        """ECR's ThrottlingException: HTTP 400, ``{"__type":"ThrottlingException",...}``."""
        return Fault("throttle", status=400)

    @staticmethod
    def access_denied() -> "Fault":
        """ECR's AccessDeniedException: HTTP 400, as IAM denies an action."""
        return Fault("access_denied", status=400)

    @staticmethod
    def not_found() -> "Fault":
        """ECR's RepositoryNotFoundException (HTTP 400) for the repository the request
        names: what a read of a repository just created can answer while ECR's reads lag."""
        return Fault("not_found", status=400)

    @staticmethod
    def invalid_policy() -> "Fault":
        """ECR's refusal of a policy document, HTTP 400 InvalidParameterException, in the
        words it uses for a principal IAM has not propagated yet as for most bad policies."""
        return Fault("invalid_policy", status=400)

    @staticmethod
    def answer(body: dict[str, Any]) -> "Fault":
        """A successful answer in ECR's JSON, for an operation moto lacks (GetAccountSetting)."""
        return Fault("answer", status=200, payload=json.dumps(body))

    @staticmethod
    def hang(seconds: float, after_forward: bool = False) -> "Fault":
        """Read the request, then hold the connection open without answering for up to
        ``seconds`` (less if the client gives up or the proxy stops); then close it."""
        return Fault("hang", seconds=min(seconds, MAX_HANG_SECONDS), after_forward=after_forward)

    @staticmethod
    def reset(after_forward: bool = False) -> "Fault":
        """Read the request, then close the socket with SO_LINGER 0: the client sees a
        connection reset (RST) instead of an answer."""
        return Fault("reset", after_forward=after_forward)

    @staticmethod
    def lagging_reads(reads: int) -> "Fault":
        """For a policy write: forward it, then serve the next ``reads`` reads of the same
        policy what a read returned just before the write (ECR's eventual consistency)."""
        return Fault("lag", reads=reads)

    @staticmethod
    def stale(seconds: float) -> "Fault":
        """For a policy read (``GetRegistryPolicy``, ``GetRepositoryPolicy``): answer with
        the policy as it was ``seconds`` ago. Writes of that policy made while the rule is
        set are remembered (the answer a read gave just before each, and when), including
        one whose answer a fault loses (``after_forward``) or that a fault delivers late; a
        read with no such write in the last ``seconds`` is answered live. Only answers
        served from the past count as injected."""
        return Fault("stale", seconds=seconds)

    @staticmethod
    def delay(seconds: float | None = None) -> "Fault":
        """Hold the request ``seconds`` (or until ``release()``), then forward it and pass
        its answer on: the client just waits."""
        return Fault("delay", seconds=_bounded(seconds))

    @staticmethod
    def late(seconds: float | None = None, status: int = 0) -> "Fault":
        """Deliver the request after its client gave up: answer the client at once with
        HTTP ``status`` (an error in the service's format) or, with 0, never (the connection
        is held open until the client goes away); forward the request to moto ``seconds``
        after it came, or at ``release()``, whatever became of the client. ``clear()`` and
        ``stop()`` drop a request still held."""
        return Fault("late", status=status, seconds=_bounded(seconds))

    def __str__(self) -> str:
        after = " after forwarding" if self.after_forward else ""
        if self.kind == "lag":
            return f"the next {self.reads} read(s) lag this write"
        if self.kind == "stale":
            return f"read as of {self.seconds:g}s ago"
        if self.kind == "delay":
            return f"delay up to {self.seconds:g}s"
        if self.kind == "late":
            answer = f"HTTP {self.status}" if self.status else "no answer"
            return f"{answer}, delivered within {self.seconds:g}s"
        if self.kind == "status":
            return f"HTTP {self.status}"
        if self.kind == "hang":
            return f"hang {self.seconds:g}s{after}"
        return self.kind + after


@dataclass
class Rule:
    fault: Fault
    remaining: int
    # Kinds one of which must be forwarded before the rule applies; empty: at once.
    after: frozenset[str] = frozenset()
    armed: bool = True


@dataclass
class Record:
    """One request the proxy received."""

    kind: str
    method: str
    path: str  # without the query string (a presigned URL's query is a credential)
    received_at: float  # time.time()
    fault: Fault | None = None
    status: int | None = None  # what the client was answered; None for a hang or a reset
    done_at: float | None = None
    note: str = ""
    content_type: str | None = None  # the request's Content-Type header; None when absent
    size: int = 0  # the request body's length in bytes
    # When a request held back (delay, late) or one whose answer is lost (after_forward)
    # reached moto; None for every other request.
    forwarded_at: float | None = None


@dataclass
class _Held:
    """A request a delay or a late delivery holds back."""

    record: Record
    go: threading.Event = field(default_factory=threading.Event)
    dropped: bool = False


@dataclass
class _State:
    rules: dict[str, Rule] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    # Per policy (rig.faultproxy.policy_of_request): the answer a read gave before the last
    # lagged write, and how many reads it is still served to.
    stale: dict[tuple[str, str], tuple[int, list[tuple[str, str]], bytes, int]] = field(
        default_factory=dict
    )
    # Per policy, while a "stale" rule is set on its read: (when a write was made, the
    # answer a read gave just before it), oldest first.
    history: dict[tuple[str, str], list[tuple[float, tuple[int, list[tuple[str, str]], bytes]]]] = (
        field(default_factory=dict)
    )
    held: list[_Held] = field(default_factory=list)


class _QuietServer(ThreadingHTTPServer):
    """Keeps handler errors (a client that went away mid-answer, say) instead of printing
    them."""

    errors: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        self.errors.append(repr(sys.exc_info()[1]))


class FaultProxy:
    def __init__(self, upstream_port: int, bucket: str, lifetime: float = 600.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.bucket = bucket
        self._lock = threading.Lock()
        # DynamoDB requests reach moto one at a time (see the module's docstring).
        self._dynamodb = threading.Lock()
        self._state = _State()
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.errors = self.errors
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.endpoint = f"http://{self.address}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        # Stops by itself even if nobody calls stop().
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        self._stopped = False

    # rules and counters

    def set_rule(
        self, kind: str, fault: Fault, times: int = 1, after: str | Iterable[str] = ()
    ) -> None:
        """Applies ``fault`` to the next ``times`` requests of ``kind``; with ``after``, to
        the next ``times`` that come once a request of one of those kinds was forwarded."""
        after = frozenset([after] if isinstance(after, str) else after)
        with self._lock:
            self._state.rules[kind] = Rule(fault, times, after, armed=not after)

    def clear_rules(self) -> None:
        with self._lock:
            self._state.rules.clear()

    def clear(self) -> None:
        """No rules, counters at zero, no records; requests still held are dropped."""
        with self._lock:
            held, self._state = self._state.held, _State()
        _drop(held)

    def release(self, kind: str | None = None) -> int:
        """Lets every request still held (of ``kind``) go on now; returns how many."""
        with self._lock:
            held = [
                h
                for h in self._state.held
                if (kind is None or h.record.kind == kind)
                and h.record.forwarded_at is None
                and not h.dropped
            ]
        for h in held:
            h.go.set()
        return len(held)

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> None:
        """Waits until ``count`` requests of ``kind`` have come."""
        self._wait(lambda: self.count(kind) >= count, f"{count} {kind} request(s)", timeout)

    def wait_delivered(self, kind: str, count: int = 1, timeout: float = 10.0) -> list[Record]:
        """Waits until ``count`` requests of ``kind`` held back or forwarded for a lost
        answer (``Record.forwarded_at``) have reached moto; returns them."""

        def delivered() -> list[Record]:
            return [r for r in self.records(kind) if r.forwarded_at is not None]

        self._wait(lambda: len(delivered()) >= count, f"{count} {kind} delivered", timeout)
        return delivered()

    def _wait(self, done: Any, what: str, timeout: float) -> None:
        until = time.monotonic() + timeout
        while not done():
            if time.monotonic() > until:
                raise TimeoutError(f"the proxy saw no {what} within {timeout:g}s: {self.counts()}")
            time.sleep(0.02)

    def count(self, kind: str) -> int:
        """Requests of this kind received (faulted or forwarded)."""
        with self._lock:
            if kind == ECR_ANY:
                return sum(n for k, n in self._state.counts.items() if is_ecr(k))
            return self._state.counts.get(kind, 0)

    def injected(self, kind: str) -> int:
        """Faults applied to requests of this kind."""
        with self._lock:
            return self._state.injected.get(kind, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._state.counts)

    def records(self, kind: str | None = None) -> list[Record]:
        with self._lock:
            return [r for r in self._state.records if kind is None or r.kind == kind]

    def _take(self, kind: str, record: Record) -> Fault | None:
        """Counts the request and returns the fault to apply, if any."""
        with self._lock:
            state = self._state
            state.counts[kind] = state.counts.get(kind, 0) + 1
            state.records.append(record)
            rule = state.rules.get(kind)
            if rule is None and is_ecr(kind):
                rule = state.rules.get(ECR_ANY)
            fault = None
            if rule is not None and rule.armed and rule.remaining > 0:
                rule.remaining -= 1
                fault = rule.fault
                # A stale read counts when it is served from the past (_as_of).
                if fault.kind != "stale":
                    state.injected[kind] = state.injected.get(kind, 0) + 1
            if fault is None:
                for waiting in state.rules.values():
                    waiting.armed |= kind in waiting.after
            return fault

    def _hold(self, record: Record) -> _Held:
        held = _Held(record)
        with self._lock:
            self._state.held.append(held)
        return held

    def _keeps_history(self, write: str) -> bool:
        """Whether a write of this kind is remembered: a "stale" rule is set on its read."""
        with self._lock:
            rule = self._state.rules.get(_READ_OF[write])
            return rule is not None and rule.fault.kind == "stale" and rule.remaining > 0

    def _remember(
        self, target: tuple[str, str], before: tuple[int, list[tuple[str, str]], bytes]
    ) -> None:
        with self._lock:
            self._state.history.setdefault(target, []).append((time.time(), before))

    def _as_of(
        self, kind: str, body: bytes, seconds: float
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """For a policy read: the answer it would have had ``seconds`` ago, when a write
        was made since; None to answer it live."""
        target = policy_of_request(kind, body)
        if target is None:
            return None
        then = time.time() - seconds
        with self._lock:
            for written_at, before in self._state.history.get(target, []):
                if written_at > then:
                    self._state.injected[kind] = self._state.injected.get(kind, 0) + 1
                    return before
        return None

    def _stale_answer(
        self, kind: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """For a policy read while an earlier write lags: the answer from before that write
        (counted as a fault applied to the read)."""
        target = policy_of_request(kind, body)
        if target is None or kind in _READ_OF:
            return None
        with self._lock:
            stale = self._state.stale.get(target)
            if stale is None:
                return None
            status, headers, payload, left = stale
            if left <= 1:
                del self._state.stale[target]
            else:
                self._state.stale[target] = (status, headers, payload, left - 1)
            self._state.injected[kind] = self._state.injected.get(kind, 0) + 1
            return status, headers, payload

    def _lag(
        self, target: tuple[str, str], before: tuple[int, list[tuple[str, str]], bytes], reads: int
    ) -> None:
        with self._lock:
            self._state.stale[target] = (*before, reads)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        with self._lock:
            held = self._state.held
        _drop(held)
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def classify(self, method: str, path: str, headers: Any) -> str:
        target = headers.get("X-Amz-Target") or ""
        if target.startswith(ECR_TARGET_PREFIX):
            return target[len(ECR_TARGET_PREFIX) :]
        if target.startswith(DYNAMODB_TARGET_PREFIX):
            return DYNAMODB + target[len(DYNAMODB_TARGET_PREFIX) :]
        if method == "PUT" and path.split("?", 1)[0].startswith(f"/{self.bucket}/"):
            return RESPONSE
        return OTHER

    # the server

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            # trailers, up to the empty line
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                self.connection.settimeout(UPSTREAM_TIMEOUT_SECONDS)
                body = self._read_body()
                kind = proxy.classify(self.command, self.path, self.headers)
                record = Record(
                    kind,
                    self.command,
                    self.path.split("?", 1)[0],
                    time.time(),
                    content_type=self.headers.get("Content-Type"),
                    size=len(body),
                )
                fault = proxy._take(kind, record)
                # One request per connection: the client never reuses a socket the proxy
                # may have to hang or reset.
                self.close_connection = True
                if fault is None:
                    stale = proxy._stale_answer(kind, body)
                    if stale is not None:
                        record.fault = Fault("lag")
                        record.note = "served the policy as it was before the last write"
                        self._answer(*stale, record)
                        return
                if fault is None or fault.kind == "lag":
                    record.fault = fault
                    self._forward(kind, body, fault, record)
                    return
                record.fault = fault
                if fault.kind == "stale":
                    past = proxy._as_of(kind, body, fault.seconds)
                    if past is None:
                        self._forward(kind, body, None, record)
                    else:
                        record.note = f"served the policy as it was {fault.seconds:g}s ago"
                        self._answer(*past, record)
                    return
                if fault.kind == "delay":
                    held = proxy._hold(record)
                    held.go.wait(fault.seconds)
                    record.forwarded_at = time.time()
                    self._forward(kind, body, None, record)
                    return
                if fault.kind == "late":
                    self._deliver_later(kind, body, fault, record)
                    if fault.status:
                        self._answer(*_fault_answer(Fault.http(fault.status), kind, body), record)
                    else:
                        self._hang(fault.seconds, record)
                    return
                if fault.after_forward:
                    status, _, _ = self._through(kind, body, None, record)
                    record.forwarded_at = time.time()
                    record.note = f"moto answered {status}, not passed on; "
                if fault.kind == "hang":
                    self._hang(fault.seconds, record)
                elif fault.kind == "reset":
                    self._reset(record)
                else:
                    status, headers, payload = _fault_answer(fault, kind, body)
                    self._answer(status, headers, payload, record)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

            def _answer(
                self, status: int, headers: list[tuple[str, str]], body: bytes, record: Record
            ) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.wfile.flush()
                record.status = status
                record.done_at = time.time()

            def _forward(
                self, kind: str, body: bytes, fault: Fault | None, record: Record
            ) -> None:
                """Passes the request on and its answer back (_through)."""
                self._answer(*self._through(kind, body, fault, record), record)

            def _through(
                self, kind: str, body: bytes, fault: Fault | None, record: Record
            ) -> tuple[int, list[tuple[str, str]], bytes]:
                """Passes the request on and returns its answer (_pass_on); a policy write
                that lags, or that a "stale" rule remembers, after reading the policy as it
                is before it."""
                target = policy_of_request(kind, body)
                lagged = fault is not None and fault.kind == "lag"
                remembered = kind in _READ_OF and proxy._keeps_history(kind)
                if target is None or kind not in _READ_OF or not (lagged or remembered):
                    return self._pass_on(kind, body, record)
                read = _READ_OF[kind]
                read_body = json.dumps({"repositoryName": target[1]} if target[1] else {})
                before = self._upstream(
                    read_body.encode(), Record(read, "POST", "/", time.time()),
                    target=ECR_TARGET_PREFIX + read,
                )
                answer = self._upstream(body, record)
                if answer[0] == 200:
                    if lagged:
                        proxy._lag(target, before, fault.reads)
                    if remembered:
                        proxy._remember(target, before)
                return answer

            def _pass_on(
                self, kind: str, body: bytes, record: Record
            ) -> tuple[int, list[tuple[str, str]], bytes]:
                """Forwards the request to moto and returns its answer; DynamoDB's one at a
                time."""
                if kind.startswith(DYNAMODB):
                    with proxy._dynamodb:
                        return self._upstream(body, record)
                return self._upstream(body, record)

            def _deliver_later(
                self, kind: str, body: bytes, fault: Fault, record: Record
            ) -> None:
                """Forwards the request from a thread of its own once released or after the
                fault's seconds, unless dropped first."""
                held = proxy._hold(record)

                def deliver() -> None:
                    held.go.wait(fault.seconds)
                    if held.dropped:
                        record.note += "; dropped, never delivered"
                        return
                    status, _, _ = self._through(kind, body, None, record)
                    record.forwarded_at = time.time()
                    record.note += f"; delivered late, moto answered {status}"

                threading.Thread(target=deliver, daemon=True).start()

            def _upstream(
                self, body: bytes, record: Record, target: str | None = None
            ) -> tuple[int, list[tuple[str, str]], bytes]:
                """Forwards the request to moto (as another ECR operation when ``target`` is
                given); returns its answer."""
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in _HOP_BY_HOP
                }
                headers["Host"] = f"{proxy.upstream[0]}:{proxy.upstream[1]}"
                if target is not None:
                    headers["X-Amz-Target"] = target
                upstream = http.client.HTTPConnection(
                    *proxy.upstream, timeout=UPSTREAM_TIMEOUT_SECONDS
                )
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    status = answer.status
                    # send_response() adds its own Server and Date.
                    answer_headers = [
                        (n, v)
                        for n, v in answer.getheaders()
                        if n.lower() not in _HOP_BY_HOP and n.lower() not in ("server", "date")
                    ]
                except OSError as e:
                    record.note = f"upstream failed: {e}"
                    status, answer_headers, payload = 502, [], b"upstream failed"
                finally:
                    upstream.close()
                return status, answer_headers, payload

            def _hang(self, seconds: float, record: Record) -> None:
                until = time.monotonic() + seconds
                sock = self.connection
                while not proxy.stopping.is_set():
                    left = until - time.monotonic()
                    if left <= 0:
                        record.note += "hang ended by its bound"
                        break
                    readable, _, _ = select.select([sock], [], [], min(left, 0.2))
                    if readable:
                        try:
                            if not sock.recv(1, socket.MSG_PEEK):
                                record.note += "client closed the connection"
                                break
                        except OSError:
                            record.note += "client reset the connection"
                            break
                record.done_at = time.time()

            def _reset(self, record: Record) -> None:
                sock = self.connection
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Closing the descriptor itself, with linger 0, sends an RST. detach() leaves
                # the socket object (and the handler's files on it) without a descriptor, so
                # nothing later touches the one just closed.
                os.close(sock.detach())
                record.done_at = time.time()

        return Handler


def _drop(held: list[_Held]) -> None:
    """Requests held back are never forwarded (a delay's is, at once)."""
    for h in held:
        h.dropped = True
        h.go.set()


def _fault_answer(
    fault: Fault, kind: str, request_body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body of an error answer, in the service's own format."""
    if kind in (RESPONSE, OTHER):
        code = {403: "AccessDenied", 503: "SlowDown", 500: "InternalError"}.get(
            fault.status, "InjectedFault"
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>injected by faultproxy</Message>"
            "<RequestId>FAULTPROXY</RequestId></Error>"
        ).encode()
        return fault.status, [("Content-Type", "application/xml")], body
    if fault.kind == "answer":
        return fault.status, [("Content-Type", "application/x-amz-json-1.1")], fault.payload.encode()
    if kind.startswith(DYNAMODB):
        error_type = "InternalServerError" if fault.status >= 500 else "InjectedFault"
        body = json.dumps(
            {
                "__type": f"com.amazonaws.dynamodb.v20120810#{error_type}",
                "message": f"injected by faultproxy: HTTP {fault.status}",
            }
        ).encode()
        return fault.status, [("Content-Type", "application/x-amz-json-1.0")], body
    if fault.kind == "throttle":
        error_type, message = "ThrottlingException", "Rate exceeded"
    elif fault.kind == "access_denied":
        try:
            repository = json.loads(request_body or b"{}").get("repositoryName")
        except (ValueError, AttributeError):
            repository = None
        resource = (
            f"arn:aws:ecr:us-east-1:123456789012:repository/{repository}" if repository else "*"
        )
        error_type = "AccessDeniedException"
        message = ACCESS_DENIED_MESSAGE.format(operation=kind, resource=resource)
    elif fault.kind == "not_found":
        try:
            repository = json.loads(request_body or b"{}").get("repositoryName")
        except (ValueError, AttributeError):
            repository = None
        error_type = "RepositoryNotFoundException"
        message = (
            f"The repository with name '{repository}' does not exist in the registry with id "
            "'123456789012'"
        )
    elif fault.kind == "invalid_policy":
        which = "registry" if "Registry" in kind else "repository"
        error_type = "InvalidParameterException"
        message = (
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
            f"'Invalid {which} policy provided'"
        )
    elif fault.status >= 500:
        error_type, message = "ServerException", "injected by faultproxy: internal failure"
    else:
        error_type, message = "InjectedFault", f"injected by faultproxy: HTTP {fault.status}"
    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", error_type),
        ("x-amzn-RequestId", "00000000-0000-0000-0000-00000000fa17"),
    ]
    return fault.status, headers, body

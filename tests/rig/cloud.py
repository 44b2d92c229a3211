"""The world the provider runs in, on loopback: moto for ECR, DynamoDB and CloudFormation's
response bucket, optionally the fault proxy in front of it, and the provider's functions
started against them under any of the runtimes. CloudFormation's side too: every event goes
out with a presigned ResponseURL of its own, and what came of it comes back as an Outcome.

    provider --ECR calls--> [FaultProxy -->] moto (ECR)
    provider --response PUT (ResponseURL)--> [FaultProxy -->] moto (S3, versioned bucket)
    the rig --boto3--> moto directly (ECR state, the response bucket)

    with Cloud(proxy=True) as cloud:
        cloud.prepare(repositories=["app"])
        provider = cloud.start_emulator("name")
        outcome = provider.send(registry_create(), deadline_in=5)

Everything started here ends by itself after ``lifetime`` seconds, and ``stop()`` ends exactly
what this cloud started (rig.procs).
"""

from __future__ import annotations

import atexit
import copy
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from rig import moto as m
from rig.constants import BINARY, BUCKET
from rig.env import provider_env
from rig.faultproxy import FaultProxy
from rig.logs import LogFile
from rig.outcome import Outcome
from rig.procs import RigError, Run, end_marked
from rig.runtimes import CargoLambdaWatch, Emulator, Invocation, Rie

# Time for the proxy to complete its record of a response PUT already answered.
PROXY_SETTLE_SECONDS = 0.05


class Runtime(Protocol):
    name: str
    log: LogFile

    def start(self) -> None: ...
    def invoke(self, event: dict[str, Any], **kwargs: Any) -> Invocation: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...


class Cloud:
    def __init__(self, workdir: Path | None = None, lifetime: float = 900, proxy: bool = False):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ecr-policy-rig-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run = Run(self.workdir, lifetime)
        self.with_proxy = proxy
        self.moto: m.Moto | None = None
        self.proxy: FaultProxy | None = None
        self.functions: list[Function] = []
        # Responses each key should get: 1, or 0 for a ResponseURL the provider must refuse.
        self.expected: dict[str, int] = {}
        # Appended to every ResponseURL's query (the security test adds a session token).
        self.extra_query = ""
        self.sigv2 = False
        self._count = 0
        self._stopped = False

    # the cloud itself

    def start(self) -> "Cloud":
        problems = m.missing()
        if problems:
            raise RigError("cannot run the provider locally:\n  " + "\n  ".join(problems))
        atexit.register(self.stop)
        try:
            self.moto = m.Moto(self.run)
            self.moto.wait_ready()
            if self.with_proxy:
                self.proxy = FaultProxy(self.moto.port, BUCKET, self.run.lifetime)
            self.bucket = m.Bucket(self.moto)
            self.s3 = self.bucket.s3
            self.ecr = self.moto.client("ecr")
            self.prepare()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for function in self.functions:
            function.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.moto is not None:
            self.moto.stop()
        end_marked(self.run.marker)

    def __enter__(self) -> "Cloud":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def prepare(self, repositories: tuple[str, ...] | list[str] = ()) -> None:
        """A clean account: moto reset, an empty versioned response bucket, these
        repositories, no proxy rules and its counters at zero."""
        assert self.moto is not None
        self.moto.reset()
        self.bucket.create()
        for name in repositories:
            self.create_repository(name)
        if self.proxy is not None:
            self.proxy.clear()
        self.expected = {}
        self.extra_query = ""
        self.sigv2 = False

    # where the provider is pointed

    @property
    def address(self) -> str:
        """host:port of every AWS endpoint the provider uses (the proxy's, if there is one)."""
        assert self.moto is not None
        return self.proxy.address if self.proxy is not None else self.moto.address

    def provider_env(self, **overrides: str) -> dict[str, str]:
        return provider_env(f"http://{self.address}", self.address, **overrides)

    def response_url(self, key: str, host: str | None = None) -> str:
        """A presigned PUT URL for ``key`` on the provider's endpoint (or ``host``)."""
        url = self.bucket.presigned_put(key, host or self.address, sigv2=self.sigv2)
        return url + self.extra_query

    # the provider, under each runtime

    def _start(self, runtime: Runtime) -> "Function":
        function = Function(self, runtime)
        self.functions.append(function)
        runtime.start()
        return function

    def start_watch(self, **env: str) -> "Function":
        """The provider behind `cargo lambda watch`."""
        return self._start(
            CargoLambdaWatch(self.run, self.provider_env(**env))
        )

    def start_emulator(
        self, name: str = "provider", binary: Path = BINARY, **env: str
    ) -> "Function":
        """A fresh provider process behind the Runtime API emulator."""
        return self._start(
            Emulator(self.run, self.provider_env(**env), log_name=name, binary=binary)
        )

    def start_rie(
        self,
        name: str = "rie",
        *,
        timeout_seconds: int,
        memory_mb: int,
        binary: Path = BINARY,
        **env: str,
    ) -> "Function":
        """The provider as the bootstrap of AWS's Runtime Interface Emulator."""
        return self._start(
            Rie(
                self.run, self.provider_env(**env), timeout_seconds=timeout_seconds,
                memory_mb=memory_mb, log_name=name, binary=binary,
            )
        )

    # what came back

    def unexpected_responses(self) -> list[str]:
        """Every way the bucket differs from one response per event with a usable
        ResponseURL (none for one the provider must refuse)."""
        stored = self.bucket.stored()
        problems = [
            f"{key}: {stored[key].puts if key in stored else 0} response(s), expected {want}"
            for key, want in self.expected.items()
            if (stored[key].puts if key in stored else 0) != want
        ]
        return problems + self.stray_responses(stored)

    def stray_responses(self, stored: dict[str, m.Stored] | None = None) -> list[str]:
        """Keys that no event used, and any delete marker."""
        stored = self.bucket.stored() if stored is None else stored
        problems = [f"{k}: written, but no event used it" for k in stored if k not in self.expected]
        problems += [f"{k}: {s.deletes} delete marker(s)" for k, s in stored.items() if s.deletes]
        return problems

    # ECR's side, read from moto directly (never through the proxy)

    def registry_policy(self) -> str | None:
        return m.registry_policy(self.ecr)

    def repository_policy(self, name: str) -> str | None:
        return m.repository_policy(self.ecr, name)

    def create_repository(self, name: str) -> None:
        self.ecr.create_repository(repositoryName=name)


class Function:
    """One provider behind one runtime, and CloudFormation's side of its events."""

    def __init__(self, cloud: Cloud, runtime: Runtime):
        self.cloud = cloud
        self.runtime = runtime
        self.log = runtime.log

    def send(
        self,
        event: dict[str, Any],
        name: str = "",
        *,
        response_host: str | None = None,
        **invoke: Any,
    ) -> Outcome:
        """Invokes the function with ``event``, its ResponseURL replaced by a presigned PUT
        URL for a key of its own, and returns what came of it. ``response_host`` puts the URL
        on another host (one the provider must refuse); ``invoke`` goes to the runtime
        (``deadline_in``, ``deadline_ms`` and ``timeout`` for the emulator)."""
        cloud = self.cloud
        cloud._count += 1
        key = "{:03d}-{}-{}-{}".format(
            cloud._count,
            event.get("RequestType", "none"),
            event.get("LogicalResourceId", "none"),
            event.get("RequestId", "none"),
        )
        event = copy.deepcopy(event)
        event["ResponseURL"] = cloud.response_url(key, response_host)
        cloud.expected[key] = 0 if response_host else 1
        records_before = len(cloud.proxy.records()) if cloud.proxy else 0
        log_offset = self.log.size()
        inv = self.runtime.invoke(event, **invoke)
        requests = None
        if cloud.proxy is not None:
            time.sleep(PROXY_SETTLE_SECONDS)
            requests = cloud.proxy.records()[records_before:]
        response, size = cloud.bucket.read(key)
        stored = cloud.bucket.stored().get(key, m.Stored())
        return Outcome(
            name=name or key,
            event=event,
            key=key,
            runtime=self.runtime.name,
            deadline=inv.deadline,
            handed=inv.handed,
            answered=inv.answered,
            result=inv.result,
            error=inv.error,
            response=response,
            response_bytes=size,
            stored=stored.puts,
            deleted=stored.deletes,
            log=self.log.json_since(log_offset),
            requests=requests,
        )

    def alive(self) -> bool:
        return self.runtime.alive()

    def stop(self) -> None:
        self.runtime.stop()

"""The world the provider runs in, on loopback: moto for ECR, DynamoDB and CloudFormation's
response bucket, the fault proxy in front of it (always in front of the response bucket and
DynamoDB, so that every response PUT is seen), and the provider's functions started against
them under any of the runtimes. CloudFormation's side too: every event goes
out with a presigned ResponseURL of its own, and what came of it comes back as an Outcome.

    provider --ECR calls--> [FaultProxy -->] moto (ECR)
    provider --response PUT (ResponseURL)--> FaultProxy --> moto (S3, versioned bucket)
    provider --lock table calls--> FaultProxy, one at a time --> moto (DynamoDB)
    the rig --boto3--> moto directly (ECR state, the response bucket, the lock table)

    with Cloud(proxy=True) as cloud:
        cloud.prepare(repositories=["app"])
        provider = cloud.start_emulator("name")
        outcome = provider.send(registry_create(), deadline_in=5)
        outcomes = cloud.start_emulator("many", processes=6).send_all(events)

The account has the tables template.yaml names to the function (the lock table), created as
the template declares them, and every provider is given them as the template gives them,
unless a test sets the variable to None. Its DynamoDB calls always go through the fault proxy
(rig.faultproxy), which passes them to moto one at a time, as DynamoDB's conditional writes
are atomic and moto's are not, and so do the response PUTs (their headers and the time
they were delivered are checked for every event, rig.asserts); with ``proxy=False`` ECR's
calls go to moto directly.

Everything started here ends by itself after ``lifetime`` seconds, and ``stop()`` ends exactly
what this cloud started (rig.procs).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from rig import interface, template
from rig import moto as m
from rig.constants import BINARY, BUCKET, REGION, others_policy
from rig.env import provider_env
from rig.faultproxy import FaultProxy
from rig.interface import INTERFACE
from rig.logs import LogFile
from rig.outcome import Outcome
from rig.policies import compact
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
        # The fault proxy in front of every AWS endpoint (``proxy=True``), or None; ``front``
        # is the proxy all the same, in front of DynamoDB and the response bucket at least.
        self.proxy: FaultProxy | None = None
        self.front: FaultProxy | None = None
        self.settings = template.function_settings()
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
            self.front = FaultProxy(self.moto.port, BUCKET, self.run.lifetime)
            if self.with_proxy:
                self.proxy = self.front
            self.bucket = m.Bucket(self.moto)
            self.s3 = self.bucket.s3
            self.ecr = self.moto.client("ecr")
            self.dynamodb = self.moto.client("dynamodb")
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
        if self.front is not None:
            self.front.stop()
        if self.moto is not None:
            self.moto.stop()
        end_marked(self.run.marker)

    def __enter__(self) -> "Cloud":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def prepare(self, repositories: tuple[str, ...] | list[str] = ()) -> None:
        """A clean account: moto reset, an empty versioned response bucket, the template's
        tables (empty), these repositories, no proxy rules and its counters at zero."""
        assert self.moto is not None and self.front is not None
        self.moto.reset()
        self.bucket.create()
        for table in self.settings.tables:
            m.create_table(self.dynamodb, table.logical_id, table.properties)
        for name in repositories:
            self.create_repository(name)
        self.front.clear()
        self.expected = {}
        self.extra_query = ""
        self.sigv2 = False

    # where the provider is pointed

    @property
    def address(self) -> str:
        """host:port of every AWS endpoint the provider uses (the proxy's, if there is one)."""
        assert self.moto is not None
        return self.proxy.address if self.proxy is not None else self.moto.address

    def provider_env(self, **overrides: str | None) -> dict[str, str]:
        """The provider's environment against this cloud, with the template's tables (by
        the names `sam local invoke` gives them, their logical ids)."""
        assert self.front is not None
        tables = {t.variable: t.logical_id for t in self.settings.tables}
        return provider_env(
            f"http://{self.address}",
            self.front.endpoint,
            self.front.address,
            **{**tables, **overrides},
        )

    def response_url(self, key: str, host: str | None = None) -> str:
        """A presigned PUT URL for ``key`` through the proxy (or on ``host``)."""
        assert self.front is not None
        url = self.bucket.presigned_put(key, host or self.front.address, sigv2=self.sigv2)
        return url + self.extra_query

    # the provider, under each runtime

    def _start(self, runtime: Runtime) -> "Function":
        function = Function(self, runtime)
        self.functions.append(function)
        runtime.start()
        return function

    def start_watch(self, **env: str | None) -> "Function":
        """The provider behind `cargo lambda watch`."""
        return self._start(
            CargoLambdaWatch(self.run, self.provider_env(**env))
        )

    def start_emulator(
        self, name: str = "provider", binary: Path = BINARY, processes: int = 1, **env: str | None
    ) -> "Function":
        """A fresh provider process behind the Runtime API emulator, or ``processes`` of
        them behind one (concurrent invocations)."""
        return self._start(
            Emulator(
                self.run, self.provider_env(**env), log_name=name, binary=binary,
                processes=processes,
            )
        )

    def start_rie(
        self,
        name: str = "rie",
        *,
        timeout_seconds: int,
        memory_mb: int,
        binary: Path = BINARY,
        **env: str | None,
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

    def policy(self, target: str) -> str | None:
        """The live policy of ``target``: "registry", a repository's name, or a creation
        template's ``repositoryPolicy`` (``template:<prefix>``, rig.interface.TEMPLATE)."""
        if target.startswith(interface.TEMPLATE):
            return m.template_policy(self.ecr, target[len(interface.TEMPLATE) :])
        return self.registry_policy() if target == "registry" else self.repository_policy(target)

    def statements(self, target: str) -> list[dict[str, Any]]:
        """The statements of ``target``'s live policy, in order; none without a policy."""
        text = self.policy(target)
        if text is None:
            return []
        statements = json.loads(text)["Statement"]
        return statements if isinstance(statements, list) else [statements]

    def set_policy(self, target: str, policy: dict[str, Any] | str) -> str:
        """Sets ``target``'s policy as someone else would (the console, Lambda), directly
        in moto; returns the text set."""
        text = policy if isinstance(policy, str) else compact(policy)
        if target.startswith(interface.TEMPLATE):
            prefix = target[len(interface.TEMPLATE) :]
            self.ecr.update_repository_creation_template(prefix=prefix, repositoryPolicy=text)
        elif target == "registry":
            self.ecr.put_registry_policy(policyText=text)
        else:
            self.ecr.set_repository_policy(repositoryName=target, policyText=text)
        return text

    def seed_others(self, target: str) -> list[dict[str, Any]]:
        """Others' statements (rig.constants.others_policy) as ``target``'s policy, set
        directly in moto; returns them."""
        policy = others_policy(target)
        self.set_policy(target, policy)
        return policy["Statement"]

    def forget(self, target: str) -> None:
        """``target`` ("registry", a repository's name or ``template:<prefix>``) as if no one
        had touched it: no policy, and no lock item (whose record would otherwise bring back
        the statements it holds, or name an owner)."""
        if target.startswith(interface.TEMPLATE):
            self.set_policy(target, "")
        elif target == "registry":
            with contextlib.suppress(self.ecr.exceptions.RegistryPolicyNotFoundException):
                self.ecr.delete_registry_policy()
        else:
            with contextlib.suppress(self.ecr.exceptions.RepositoryPolicyNotFoundException):
                self.ecr.delete_repository_policy(repositoryName=target)
        self.dynamodb.delete_item(TableName=self.lock_table, Key=self._lock_item_key(target))

    def create_repository(self, name: str) -> None:
        self.ecr.create_repository(repositoryName=name)

    def create_template(self, prefix: str, **fields: Any) -> str:
        """A repository creation template for ``prefix`` (in the stand-in,
        rig.moto_templates), for pull-through cache unless ``fields`` say otherwise; returns
        its name as a target (``template:<prefix>``)."""
        fields.setdefault("appliedFor", ["PULL_THROUGH_CACHE"])
        self.ecr.create_repository_creation_template(prefix=prefix, **fields)
        return interface.TEMPLATE + prefix

    def template(self, prefix: str) -> dict[str, Any]:
        """A creation template as ECR describes it, every field."""
        (found,) = self.ecr.describe_repository_creation_templates(prefixes=[prefix])[
            "repositoryCreationTemplates"
        ]
        return found

    # the lock table, read (and a request's lease taken) in moto directly

    @property
    def lock_table(self) -> str:
        """The lock table's name: the template's table named to the function by the
        provider's variable."""
        (table,) = [
            t for t in self.settings.tables if t.variable == INTERFACE.lock_table_variable
        ]
        return table.logical_id

    def lock_item(self, target: str) -> dict[str, Any] | None:
        """The lock table's item for ``target`` ("registry", or a repository's name), by
        what its attributes mean (rig.interface.lock_item); None when there is none."""
        item = self.dynamodb.get_item(
            TableName=self.lock_table, Key=self._lock_item_key(target), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        from boto3.dynamodb.types import TypeDeserializer

        plain = {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
        # DynamoDB's numbers come back as Decimal; the lock's are whole milliseconds.
        return interface.lock_item(
            {k: int(v) if isinstance(v, Decimal) else v for k, v in plain.items()}
        )

    def holders(self, target: str) -> dict[str, str]:
        """Who holds which Sid of ``target`` (Sid to tag), with no lease held on it."""
        item = self.lock_item(target)
        assert item is not None, f"no lock item for {target}"
        assert item["lease_owner"] is None, f"a lease is still held: {item}"
        return item["holders"]

    @property
    def _lock_expiry_attribute(self) -> str:
        """The lock table's TTL attribute, as template.yaml declares it."""
        (table,) = [t for t in self.settings.tables if t.logical_id == self.lock_table]
        return table.properties["TimeToLiveSpecification"]["AttributeName"]

    def lock_expiry(self, target: str) -> int | None:
        """When DynamoDB may delete ``target``'s lock item (its TTL, seconds since the
        epoch); None when it has none, or there is no item."""
        item = self.dynamodb.get_item(
            TableName=self.lock_table, Key=self._lock_item_key(target), ConsistentRead=True
        ).get("Item")
        value = (item or {}).get(self._lock_expiry_attribute)
        return None if value is None else m.plain(value)

    def set_lock_expiry(self, target: str, seconds: int) -> None:
        """Sets the TTL of ``target``'s lock item (which must exist), as time passing would
        make it due."""
        self.dynamodb.update_item(
            TableName=self.lock_table,
            Key=self._lock_item_key(target),
            UpdateExpression="SET #ttl = :at",
            ConditionExpression="attribute_exists(#key)",
            ExpressionAttributeNames={
                "#ttl": self._lock_expiry_attribute,
                "#key": INTERFACE.lock_attributes["key"],
            },
            ExpressionAttributeValues={":at": {"N": str(seconds)}},
        )

    def hold_lease(self, target: str, owner: str, seconds: float) -> None:
        """Takes ``target``'s lease for ``owner`` for ``seconds``, as a request in the middle
        of its work holds it (the item is made if there is none)."""
        names = INTERFACE.lock_attributes
        until = int((time.time() + seconds) * 1000)
        self.dynamodb.update_item(
            TableName=self.lock_table,
            Key=self._lock_item_key(target),
            UpdateExpression="SET #owner = :owner, #until = :until",
            ExpressionAttributeNames={
                "#owner": names["lease_owner"],
                "#until": names["lease_until_ms"],
            },
            ExpressionAttributeValues={":owner": {"S": owner}, ":until": {"N": str(until)}},
        )

    def give_back_lease(self, target: str, owner: str) -> None:
        """Gives back ``target``'s lease, which ``owner`` must hold, as a request does when
        it is done."""
        names = INTERFACE.lock_attributes
        self.dynamodb.update_item(
            TableName=self.lock_table,
            Key=self._lock_item_key(target),
            UpdateExpression="REMOVE #owner, #until",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={
                "#owner": names["lease_owner"],
                "#until": names["lease_until_ms"],
            },
            ExpressionAttributeValues={":owner": {"S": owner}},
        )

    @staticmethod
    def _lock_item_key(target: str) -> dict[str, Any]:
        return {INTERFACE.lock_attributes["key"]: {"S": interface.lock_key(target, REGION)}}


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
        (``deadline_in``, ``deadline_ms`` and ``timeout`` for the emulator). Nothing else may
        be in flight: every request the proxy saw meanwhile is this event's."""
        return self.submit(event, name, response_host=response_host, alone=True, **invoke).outcome()

    def submit(
        self,
        event: dict[str, Any],
        name: str = "",
        *,
        response_host: str | None = None,
        alone: bool = False,
        **invoke: Any,
    ) -> "Pending":
        """Hands ``event`` to the function without waiting for its answer (as ``send``);
        ``outcome()`` of what it returns waits. Unless ``alone``, other events may be in
        flight: the outcome then has this event's log lines and response PUTs only (told
        apart by its RequestId and its response key), and no ECR calls of its own."""
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
        return Pending(self, event, name or key, key, alone, invoke)

    def submit_and_kill(
        self, event: dict[str, Any], when: str, wait: float = 10.0, **invoke: Any
    ) -> "Pending":
        """Hands ``event`` to the function (as ``submit``), waits until the proxy has seen a
        request of kind ``when`` (a fault the caller set keeps it there), then kills every
        process of the function with SIGKILL: CloudFormation gets no response for it."""
        proxy = self.cloud.front
        assert proxy is not None
        seen = proxy.count(when)
        pending = self.submit(event, **invoke)
        try:
            proxy.wait_for(when, seen + 1, wait)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{self.log.tail()}") from None
        self.runtime.kill()
        pending.lost()
        return pending

    def invoke_event(
        self, event: dict[str, Any], **invoke: Any
    ) -> tuple[Invocation, list[dict[str, Any]]]:
        """Invokes the function with an event that has nothing to answer (EventBridge's:
        a CloudTrail record, the schedule); returns what the runtime reported (its
        ``result``, or its ``error``) and the JSON lines the function wrote meanwhile."""
        offset = self.log.size()
        invocation = self.runtime.invoke(event, **invoke)
        return invocation, self.log.json_since(offset)

    def send_all(self, events: list[dict[str, Any]], **invoke: Any) -> list[Outcome]:
        """Hands every event to the function at once and waits for all their answers (in
        the order of ``events``); with several processes behind the runtime they run
        concurrently."""
        pending = [self.submit(event, **invoke) for event in events]
        return [p.outcome() for p in pending]

    def send_continued(
        self,
        event: dict[str, Any],
        *,
        deadline_in: float,
        timeout: float,
    ) -> "Continued":
        """A prefix statement's event whose work may go on in further invocations of the
        function (CONTRACT 15; the emulator answers the function's asynchronous Invoke of
        itself, each such invocation with ``deadline_in`` to run too): hands it over, waits
        until CloudFormation's response is in the bucket (at most ``timeout`` seconds), then
        for every invocation to end, and returns what came of it. Emulator only."""
        api = self.runtime.api  # type: ignore[attr-defined]
        api.async_deadline_in = deadline_in
        before = len(api.async_invocations)
        offset = self.log.size()
        handed = time.monotonic()
        pending = self.submit(event, deadline_in=deadline_in, timeout=timeout)
        response = None
        while time.monotonic() - handed < timeout:
            response, _ = self.cloud.bucket.read(pending.key)
            if response is not None:
                break
            time.sleep(0.05)
        answered = time.monotonic() - handed
        pending._thread.join(timeout)
        invocations = api.async_invocations[before:]
        for inv in invocations:
            inv.done.wait(max(1.0, timeout - (time.monotonic() - handed)))
        stored = self.cloud.bucket.stored().get(pending.key, m.Stored())
        return Continued(
            event=pending.event,
            response=response,
            seconds=answered,
            invocations=1 + len(invocations),
            unanswered=sum(1 for inv in invocations if not inv.done.is_set()),
            response_puts=stored.puts,
            log=self.log.json_since(offset),
        )

    def alive(self) -> bool:
        return self.runtime.alive()

    def stop(self) -> None:
        self.runtime.stop()


@dataclass
class Continued:
    """What came of an event whose work went on over several invocations."""

    event: dict[str, Any]
    # CloudFormation's response, or None if none came in time.
    response: dict[str, Any] | None
    # From handing the event over to the response in the bucket.
    seconds: float
    # Invocations of the function: the first and those it (or the next) started.
    invocations: int
    # Invocations still running when the wait ended.
    unanswered: int
    response_puts: int
    log: list[dict[str, Any]]

    def lines(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.log if line.get("message") == message]

    def ecr_calls(self) -> int:
        """ECR calls over every invocation (handed over or answering)."""
        lines = self.lines(interface.message("continued"))
        lines += self.lines(INTERFACE.response_sent_message)
        return sum(
            line.get("ecr_reads", 0) + line.get("ecr_writes", 0) + line.get("ecr_deletes", 0)
            for line in lines
        )

    def paused_ms(self) -> int:
        """Time the fan-outs paused for ECR's throttling, over every invocation."""
        return sum(line.get("paused_ms", 0) for line in self.lines(interface.message("prefix_done")))

    def throttled(self) -> int:
        return sum(line.get("throttled", 0) for line in self.lines(interface.message("prefix_done")))


class Pending:
    """An event handed to a function whose answer is not in yet."""

    def __init__(
        self,
        function: Function,
        event: dict[str, Any],
        name: str,
        key: str,
        alone: bool,
        invoke: dict[str, Any],
    ):
        self.function = function
        self.event = event
        self.name = name
        self.key = key
        self.alone = alone
        cloud = function.cloud
        assert cloud.front is not None
        self._records_before = len(cloud.front.records())
        self._log_offset = function.log.size()
        self._invocation: Invocation | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._invoke, args=(invoke,), daemon=True)
        self._thread.start()

    def _invoke(self, invoke: dict[str, Any]) -> None:
        try:
            self._invocation = self.function.runtime.invoke(self.event, **invoke)
        except BaseException as e:  # noqa: BLE001 - raised again by outcome()
            self._error = e

    def lost(self) -> None:
        """Its process was killed: CloudFormation gets no response for it."""
        self.function.cloud.expected[self.key] = 0

    def outcome(self) -> Outcome:
        """Waits for the answer (the runtime's own timeout bounds it) and returns what came
        of the event; raises what the runtime raised (no answer in time, say)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        inv = self._invocation
        assert inv is not None
        cloud = self.function.cloud
        assert cloud.front is not None
        time.sleep(PROXY_SETTLE_SECONDS)
        requests = cloud.front.records()[self._records_before :]
        if not self.alone:
            path = f"/{cloud.bucket.name}/{self.key}"
            requests = [r for r in requests if r.path == path]
        log = self.function.log.json_since(self._log_offset)
        if not self.alone:
            request_id = self.event.get("RequestId")
            log = [line for line in log if (line.get("span") or {}).get("request_id") == request_id]
        response, size = cloud.bucket.read(self.key)
        stored = cloud.bucket.stored().get(self.key, m.Stored())
        return Outcome(
            name=self.name,
            event=self.event,
            key=self.key,
            runtime=self.function.runtime.name,
            deadline=inv.deadline,
            handed=inv.handed,
            answered=inv.answered,
            result=inv.result,
            error=inv.error,
            response=response,
            response_bytes=size,
            stored=stored.puts,
            deleted=stored.deletes,
            log=log,
            requests=requests,
            ecr_seen=cloud.proxy is not None,
            alone=self.alone,
        )

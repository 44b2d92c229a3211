"""The path users take with `sam local invoke -e events/<file>`, for real and without Docker:
the provider's binary as the bootstrap of AWS's own Lambda Runtime Interface Emulator
(aws-lambda-rie, the binary SAM runs inside its container, taken from the installed
aws-sam-cli package), with template.yaml's MemorySize, Timeout and environment, ECR and the
response bucket from moto behind the fault proxy.

Every file in events/ ends as it is meant to (rig.samples: a `bad-*` file FAILED with its
Reason, any other SUCCESS) with exactly one response PUT, an empty Content-Type and at most
4,096 bytes; each resource's Create, Update and Delete, in one account, keep its
PhysicalResourceId; scripts/invoke runs; and with a function timeout of a few seconds and an
ECR that hangs, FAILED arrives before the RIE's deadline, as on Lambda.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from rig import samples, template
from rig.asserts import assert_failed, assert_success
from rig.constants import REGISTRY_ID, ROOT, TEMPLATE, failed_create_id
from rig.events import drift_samples, load_event, registry_create, sample_events
from rig.faultproxy import RESPONSE, Fault
from rig.procs import RigError
from rig.runtimes import rie_path

# A function timeout short enough to wait out, long enough for the provider's margins.
SHORT_TIMEOUT_SECONDS = 4
INVOKE_SCRIPT_SECONDS = 300


def script(*argv: str) -> str:
    """Runs one of the project's scripts as a user would; its standard output, once it has
    exited 0."""
    ran = subprocess.run(
        list(argv), cwd=ROOT, capture_output=True, text=True, timeout=INVOKE_SCRIPT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return ran.stdout


@pytest.fixture(scope="module")
def settings():
    return template.function_settings()


@pytest.fixture
def start_rie(cloud, settings, request, show_log):
    """Starts the provider under the RIE in a clean account, as a fresh `sam local invoke`
    container would be; returns the function and its environment."""

    def start(timeout_seconds: int | None = None):
        cloud.prepare()
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        try:
            function = cloud.start_rie(
                name,
                timeout_seconds=timeout_seconds or settings.timeout_seconds,
                memory_mb=settings.memory_mb,
                **samples.function_env(settings),
            )
        except RigError as e:  # a missing RIE fails the test, saying why
            pytest.fail(str(e), pytrace=False)
        show_log(function.log)
        return function

    return start


@pytest.mark.parametrize("path", sample_events(), ids=lambda p: p.name)
def test_every_sample_event_ends_as_it_is_meant_to_under_the_rie(cloud, start_rie, path):
    function = start_rie()
    event = load_event(path.name)
    samples.seed(cloud, path.name, event)
    before = samples.live_policy(cloud, event)
    outcome = function.send(event, path.name)
    samples.check(cloud, path.name, event, before, outcome)
    assert outcome.calls(RESPONSE) == 1, outcome.describe()
    assert not cloud.stray_responses()


@pytest.mark.parametrize(
    "life", samples.lives(), ids=lambda life: "+".join(p.stem for p in life)
)
def test_each_resource_life_through_the_rie_keeps_its_physical_id(cloud, start_rie, life):
    # One account and one function for the whole life, as scripts/invoke runs several files.
    function = start_rie()
    sequence = samples.Sequence()
    for path in life:
        event, _ = sequence.next(load_event(path.name))
        samples.seed(cloud, path.name, event)
        before = samples.live_policy(cloud, event)
        outcome = function.send(event, path.name)
        samples.check(cloud, path.name, event, before, outcome)
        sequence.answered(event, outcome)
    if load_event(life[-1].name)["RequestType"] == "Delete":
        assert sequence.ids == {}, "the resource was deleted"
    assert not cloud.unexpected_responses()


def test_a_drift_life_through_the_rie(cloud, start_rie):
    # A statement resource's Create, a console edit that takes its grant out, then every drift
    # sample as `sam local invoke -e events/drift/<file>` sends it (the template's default:
    # DriftAction Report).
    function = start_rie()
    create = load_event("repository-statement-create.json")
    samples.seed(cloud, "repository-statement-create.json", create)
    outcome = function.send(create)
    samples.check(cloud, "repository-statement-create.json", create, None, outcome)
    console = {
        "Sid": "Console", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"},
        "Action": ["ecr:BatchGetImage"],
    }
    cloud.set_policy("app", {"Version": "2012-10-17", "Statement": [console]})
    results = {}
    for path in drift_samples():
        invocation, lines = function.invoke_event(load_event(f"drift/{path.name}"))
        assert invocation.error is None, (path.name, invocation.error)
        results[path.stem] = invocation.result
        drifted = [line for line in lines if line.get("message") == "policy drift"]
        assert len(drifted) == invocation.result["drifted"], (path.name, lines)
    touching_app = {"targets": 1, "drifted": 1, "restored": 0}
    elsewhere = {"targets": 0, "drifted": 0, "restored": 0}
    assert results == {
        # A repository and a template under `team/`, where no prefix statement is.
        "create-repository": elsewhere,
        "create-repository-creation-template": elsewhere,
        "update-repository-creation-template": elsewhere,
        "delete-registry-policy": elsewhere,
        "delete-repository": touching_app,
        "delete-repository-policy": touching_app,
        "put-registry-policy": elsewhere,
        "set-repository-policy": touching_app,
        "sweep": touching_app,
    }
    assert cloud.statements("app") == [console], "Report writes nothing"


def test_the_templates_empty_endpoint_override_is_no_override(cloud, settings, show_log):
    # Deployed, and under `sam local invoke`, the function gets the template's
    # AWS_ENDPOINT_URL="", which means "unset" (src/provider.rs, empty_endpoint_overrides):
    # with the service-specific variables pointing at moto, a local run works as before.
    assert settings.variables.get("AWS_ENDPOINT_URL") == ""
    cloud.prepare()
    endpoint = f"http://{cloud.address}"
    function = cloud.start_rie(
        "empty-endpoint",
        timeout_seconds=settings.timeout_seconds,
        memory_mb=settings.memory_mb,
        **{
            **samples.function_env(settings),
            "AWS_ENDPOINT_URL": "",
            "AWS_ENDPOINT_URL_ECR": endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        },
    )
    show_log(function.log)
    outcome = function.send(registry_create())
    assert_success(outcome, REGISTRY_ID)


def test_an_ecr_that_hangs_gets_failed_before_the_rie_deadline(cloud, start_rie):
    function = start_rie(timeout_seconds=SHORT_TIMEOUT_SECONDS)
    cloud.proxy.set_rule("GetRegistryPolicy", Fault.hang(30), times=1)
    create = registry_create()
    out = function.send(create)
    # Delivered and answered before the deadline, the invocation not "Task timed out".
    assert_failed(out, failed_create_id(create), "did not finish")
    assert out.deadline == out.handed + SHORT_TIMEOUT_SECONDS
    assert out.calls(RESPONSE) == 1, out.describe()
    assert out.calls("PutRegistryPolicy") == 0
    received = [line for line in out.log if line.get("message") == "event received"]
    assert [line.get("deadline_fallback") for line in received] == [False], (
        "the provider did not take the RIE's deadline"
    )
    assert cloud.registry_policy() is None


def test_the_rie_comes_from_the_installed_aws_sam_cli_and_a_missing_one_says_so(monkeypatch):
    import samcli

    path = rie_path()
    assert path.parent == Path(samcli.__file__).parent / "local" / "rapid", path
    assert path.is_file()
    monkeypatch.setattr("platform.machine", lambda: "sparc64")
    with pytest.raises(RigError, match=r"ships no aws-lambda-rie-sparc64 at .*rapid"):
        rie_path()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # samtranslator's own
def test_the_rig_reads_the_template_as_sam_local_invoke_does(settings, monkeypatch, tmp_path):
    # SAM CLI's own resolution (its private _make_env_vars: aws-sam-cli is pinned in
    # requirements-dev.txt), with no AWS configuration of the machine's in the way.
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    for name in list(settings.variables):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    stacks, _ = SamLocalStackProvider.get_stacks(str(TEMPLATE))
    functions = SamFunctionProvider(stacks)
    function = functions.get(settings.logical_id)
    assert (function.memory, function.timeout) == (settings.memory_mb, settings.timeout_seconds)
    runner = LocalLambdaRunner(None, functions, str(ROOT), str(ROOT))
    env = runner._make_env_vars(function).resolve()
    ours = {k: v for k, v in env.items() if not k.startswith("AWS_") or k in settings.variables}
    assert ours == settings.variables

    # The --env-vars file for users with Docker names this function and one local moto.
    overrides = json.loads((ROOT / "local" / "env.json").read_text())
    assert list(overrides) == [settings.logical_id]
    endpoint = overrides[settings.logical_id]["AWS_ENDPOINT_URL"]
    assert endpoint == "http://" + overrides[settings.logical_id]["RESPONSE_URL_ALLOWED_HOSTS"]


def test_scripts_invoke_runs_a_sequence_and_says_what_cloudformation_receives():
    # One resource's life: the Update and Delete are AppRepositoryPolicy's, so its Create
    # comes first (an Update from another resource than the one managing the policy is
    # refused: CONTRACT 11).
    events = ["events/repository-create.json", "events/repository-update.json",
              "events/repository-delete.json"]
    out = script("scripts/invoke", *events)
    assert out.count("Building the provider") == 1 and "log: " in out, out[:500]
    assert out.count('"Status": "SUCCESS"') == 3, out
    assert '"Adopted": "false"' in out, out
    assert "3 events, 3 ended as their samples are meant to" in out, out[-1000:]


def test_scripts_invoke_hands_a_drift_sample_over_as_eventbridge_would():
    events = ["events/repository-statement-create.json", "events/drift/set-repository-policy.json"]
    out = script("scripts/invoke", *events)
    assert 'Result: {"targets": 1, "drifted": 0, "restored": 0}' in out, out[-2000:]
    assert "2 events, 2 ended as their samples are meant to" in out, out[-1000:]
    assert "1 of 1 custom-resource requests got exactly one response" in out, out[-1000:]


def test_the_demo_walks_every_step_as_expected():
    out = script("scripts/demo")
    assert "0 unexpected, one response per event: yes" in out, out[-2000:]
    assert '"restored": 1' in out and "policy drift" in out, out[-3000:]

"""Drift (CONTRACT 13), end to end: the provider's binary behind the Runtime API emulator, ECR,
DynamoDB and S3 from moto. Resources are created through custom-resource events as
CloudFormation sends them; the console's edits are made in moto directly; then the CloudTrail
records of those edits (the samples in events/, shaped as AWS documents them) and the scheduled
sweep are handed to the same function, as EventBridge would. Each test reads the invocation's
result, the "policy drift" lines and the embedded-metric line from the function's log, and
the policies left in ECR."""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rig.asserts import assert_success
from rig.cloud import Function
from rig.constants import repository_arn
from rig.interface import INTERFACE
from rig.events import (
    drift_samples,
    follow_up,
    load_event,
    made_now,
    pull_statement,
    repository_create,
    statement_create,
    statements_id,
    with_policy,
)
from rig.faultproxy import Fault

APP = "app"  # the start fixture creates it
ACCOUNT_A, ACCOUNT_B, CONSOLE = "111122223333", "444455556666", "777788889999"
ADMIN = "arn:aws:sts::123456789012:assumed-role/Admin/alice"
OWN_ROLE = "arn:aws:iam::123456789012:role/ecr-policy-provider-FunctionRole-1A2B3C"


def cloudtrail(sample: str, repository: str = APP, policy_text: str | None = None) -> dict[str, Any]:
    """A CloudTrail sample of events/drift/ for ``repository``, made now; a set's
    ``policyText`` is what the console set (the sample's own is taken out when none is given)."""
    event = made_now(load_event(sample))
    parameters = event["detail"].get("requestParameters")
    if isinstance(parameters, dict):
        parameters["repositoryName"] = repository
        parameters.pop("policyText", None)
        if policy_text is not None:
            parameters["policyText"] = policy_text
    return event


def drift(function: Function, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hands ``event`` to the function; returns its result and its "policy drift" lines,
    after checking the embedded-metric line counts the same drifted targets."""
    invocation, lines = function.invoke_event(event)
    assert invocation.error is None, invocation.error
    result = invocation.result
    assert set(result) == set(INTERFACE.drift_result), result
    found = [line for line in lines if line.get("message") == INTERFACE.drift_message]
    assert len(found) == result["drifted"], (result, found)
    assert all(set(INTERFACE.drift_fields) <= set(line) for line in found), found
    metrics = [line for line in lines if "_aws" in line]
    namespace, name = INTERFACE.drift_metric
    if result["targets"]:
        (metric,) = metrics
        (directive,) = metric["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == namespace
        assert directive["Metrics"] == [{"Name": name, "Unit": "Count"}]
        assert metric[name] == result["drifted"]
    else:
        assert metrics == [], metrics
    return result, found


def grant(function: Function, sid: str, account: str, repository: str = APP) -> dict[str, Any]:
    """A statement resource ``sid`` created: its Create event."""
    event = statement_create(repository, [pull_statement(sid, account)], logical_id=sid)
    assert_success(function.send(event), statements_id(event))
    return event


def sids(cloud, target: str = APP) -> list[str]:
    return [s.get("Sid", "") for s in cloud.statements(target)]


def test_a_held_statement_removed_in_the_console_is_reported_with_who_did_it(start, cloud):
    function = start()
    grant(function, "PullA", ACCOUNT_A)
    grant(function, "PullB", ACCOUNT_B)
    kept = [s for s in cloud.statements(APP) if s["Sid"] != "PullA"]
    text = cloud.set_policy(APP, {"Version": "2012-10-17", "Statement": kept})
    before = cloud.policy(APP)

    result, (line,) = drift(function, cloudtrail("drift/set-repository-policy.json", APP, text))

    assert result == {"targets": 1, "drifted": 1, "restored": 0}
    assert line["target"] == "repository/us-east-1/app"
    assert (line["missing"], line["changed"], line["whole_policy"]) == (["PullA"], [], None)
    assert line["by"] == ADMIN
    assert line["restored"] is False
    assert cloud.policy(APP) == before, "Report writes nothing"


def test_restore_puts_the_held_statement_back_and_keeps_the_consoles(start, cloud):
    function = start(DRIFT_ACTION="Restore")
    grant(function, "PullA", ACCOUNT_A)
    grant(function, "PullB", ACCOUNT_B)
    console = pull_statement("Console", CONSOLE)
    kept = [s for s in cloud.statements(APP) if s["Sid"] != "PullA"]
    text = cloud.set_policy(APP, {"Version": "2012-10-17", "Statement": [*kept, console]})

    started = time.monotonic()
    result, (line,) = drift(function, cloudtrail("drift/set-repository-policy.json", APP, text))
    seconds = time.monotonic() - started

    assert result == {"targets": 1, "drifted": 1, "restored": 1}
    assert line["restored"] is True and line["missing"] == ["PullA"]
    assert sorted(sids(cloud)) == ["Console", "PullA", "PullB"]
    assert seconds < 5, f"noticed and restored in {seconds:.1f} s"
    # Nothing left to find.
    again, _ = drift(function, load_event("drift/sweep.json"))
    assert again == {"targets": 1, "drifted": 0, "restored": 0}


def test_an_owned_whole_policy_changed_then_deleted(start, cloud):
    function = start(DRIFT_ACTION="Restore")
    create = with_policy(repository_create(APP), [pull_statement("Owned", ACCOUNT_A)])
    assert_success(function.send(create), repository_arn(APP))
    owned = cloud.statements(APP)

    text = cloud.set_policy(
        APP, {"Version": "2012-10-17", "Statement": [pull_statement("Owned", CONSOLE)]}
    )
    result, (line,) = drift(function, cloudtrail("drift/set-repository-policy.json", APP, text))
    assert result == {"targets": 1, "drifted": 1, "restored": 1}
    assert line["whole_policy"] == "changed"
    assert cloud.statements(APP) == owned

    cloud.ecr.delete_repository_policy(repositoryName=APP)
    result, (line,) = drift(function, cloudtrail("drift/delete-repository-policy.json"))
    assert result == {"targets": 1, "drifted": 1, "restored": 1}
    assert line["whole_policy"] == "deleted"
    assert cloud.statements(APP) == owned


def test_a_statement_added_by_someone_else_is_not_drift(start, cloud):
    function = start(DRIFT_ACTION="Restore")
    grant(function, "PullA", ACCOUNT_A)
    statements = [*cloud.statements(APP), pull_statement("Console", CONSOLE)]
    text = cloud.set_policy(APP, {"Version": "2012-10-17", "Statement": statements})
    before = cloud.policy(APP)

    result, found = drift(function, cloudtrail("drift/set-repository-policy.json", APP, text))

    assert result == {"targets": 1, "drifted": 0, "restored": 0}
    assert found == []
    assert cloud.policy(APP) == before


def test_an_event_for_a_target_nobody_manages(start, cloud):
    function = start(DRIFT_ACTION="Restore")
    grant(function, "PullA", ACCOUNT_A)
    cloud.create_repository("web")
    text = cloud.set_policy(
        "web", {"Version": "2012-10-17", "Statement": [pull_statement("Console", CONSOLE)]}
    )

    result, found = drift(function, cloudtrail("drift/set-repository-policy.json", "web", text))

    assert result == {"targets": 0, "drifted": 0, "restored": 0}
    assert sids(cloud, "web") == ["Console"]


def test_the_providers_own_write_is_not_drift(start, cloud):
    function = start(DRIFT_ACTION="Restore", FUNCTION_ROLE_ARN=OWN_ROLE)
    grant(function, "PullA", ACCOUNT_A)
    # The CloudTrail record of the provider's own SetRepositoryPolicy, by its role.
    own = cloudtrail("drift/set-repository-policy.json")
    identity = own["detail"]["userIdentity"]
    identity["arn"] = "arn:aws:sts::123456789012:assumed-role/ecr-policy-provider-FunctionRole-1A2B3C/ecr-policy-provider"
    identity["sessionContext"]["sessionIssuer"]["arn"] = OWN_ROLE

    result, _ = drift(function, own)
    assert result == {"targets": 0, "drifted": 0, "restored": 0}
    # Checked anyway, what the provider wrote is what its record says.
    result, _ = drift(function, cloudtrail("drift/set-repository-policy.json"))
    assert result == {"targets": 1, "drifted": 0, "restored": 0}


def test_a_sweep_over_several_targets(start, cloud):
    # The grants were written moments ago: a read lacking one may be a read lagging behind
    # the provider's own write, so the sweep looks at such a target again once
    # DRIFT_READ_LAG_SECONDS have passed since that write (60 by default; 2 here).
    function = start(DRIFT_READ_LAG_SECONDS="2")
    for name in ("web", "api", "db"):
        cloud.create_repository(name)
    for name in ("app", "web", "api", "db"):
        grant(function, f"Pull{name.title()}", ACCOUNT_A, name)
    cloud.set_policy("web", {"Version": "2012-10-17", "Statement": [pull_statement("Console", CONSOLE)]})
    cloud.ecr.delete_repository_policy(repositoryName="db")

    result, found = drift(function, load_event("drift/sweep.json"))

    assert result == {"targets": 4, "drifted": 2, "restored": 0}
    by_target = {line["target"]: line for line in found}
    assert sorted(by_target) == ["repository/us-east-1/db", "repository/us-east-1/web"]
    assert by_target["repository/us-east-1/web"]["missing"] == ["PullWeb"]
    assert all(line["by"] is None for line in found), "a sweep knows no caller"


def test_a_deleted_repository_is_reported_and_left_alone(start, cloud):
    function = start(DRIFT_ACTION="Restore")
    grant(function, "PullA", ACCOUNT_A)
    cloud.ecr.delete_repository(repositoryName=APP, force=True)

    result, (line,) = drift(function, cloudtrail("drift/delete-repository.json"))

    assert result == {"targets": 1, "drifted": 1, "restored": 0}
    assert line["missing"] == ["PullA"] and line["restored"] is False
    assert "does not exist" in line["not_restored"]


def test_an_event_of_unknown_shape_is_an_invocation_error(start, cloud):
    function = start()
    grant(function, "PullA", ACCOUNT_A)
    push = cloudtrail("drift/set-repository-policy.json")
    push["detail"]["eventName"] = "PutImage"
    other = copy.deepcopy(push)
    other["detail-type"] = "ECR Image Action"

    for event in (push, other):
        invocation, _ = function.invoke_event(event)
        assert invocation.result is None
        assert invocation.error["errorType"] == "UnknownEvent", invocation.error
        assert "unknown event" in invocation.error["errorMessage"]
    assert sids(cloud) == ["PullA"]


def test_every_drift_sample_is_taken(start, cloud):
    """The samples in events/drift/ as they are, for a target nobody manages: each is a
    drift event (never a custom-resource request), and finds nothing."""
    function = start()
    names = [f"drift/{path.name}" for path in drift_samples()]
    assert len(names) == 9, names
    for name in names:
        result, found = drift(function, load_event(name))
        assert result == {"targets": 0, "drifted": 0, "restored": 0}, name
        assert found == [], name
    assert cloud.unexpected_responses() == []


# --- CONTRACT 13: drift during a deployment (issue 23, sequences 16 and 17) -------------------

DEPLOYMENT = "req-deploy/lambda-deploy"


def test_seq16_a_console_edit_during_a_deployment_is_checked_once_the_lease_is_given_back(
    start, cloud
):
    function = start()
    grant(function, "PullA", ACCOUNT_A)
    text = cloud.set_policy(
        APP, {"Version": "2012-10-17", "Statement": [pull_statement("Console", CONSOLE)]}
    )
    # A deployment holds the target's lease when the console's CloudTrail event arrives, and
    # gives it back 2 s later.
    cloud.hold_lease(APP, DEPLOYMENT, seconds=60)
    deployment = threading.Timer(2.0, cloud.give_back_lease, (APP, DEPLOYMENT))
    deployment.start()
    try:
        started = time.monotonic()
        result, (line,) = drift(function, cloudtrail("drift/set-repository-policy.json", APP, text))
        seconds = time.monotonic() - started
    finally:
        deployment.join()

    assert result == {"targets": 1, "drifted": 1, "restored": 0}
    assert (line["missing"], line["by"]) == (["PullA"], ADMIN)
    assert seconds >= 2, f"judged after {seconds:.1f} s, while the lease was held"


def test_seq16_an_event_whose_target_stays_leased_fails_and_is_checked_when_delivered_again(
    start, cloud
):
    function = start()
    grant(function, "PullA", ACCOUNT_A)
    text = cloud.set_policy(
        APP, {"Version": "2012-10-17", "Statement": [pull_statement("Console", CONSOLE)]}
    )
    event = cloudtrail("drift/set-repository-policy.json", APP, text)
    cloud.hold_lease(APP, DEPLOYMENT, seconds=60)

    invocation, _ = function.invoke_event(event, deadline_in=4.0)

    assert invocation.result is None
    assert invocation.error is not None, "dropped: the event would never be checked"
    assert invocation.error["errorType"] == "DriftCheckFailed", invocation.error
    assert "held the lease on repository/us-east-1/app" in invocation.error["errorMessage"]
    assert invocation.deadline is not None and invocation.answered <= invocation.deadline
    # Lambda's retry hands the same event over again; by then the deployment is done.
    cloud.give_back_lease(APP, DEPLOYMENT)
    result, (line,) = drift(function, event)
    assert result == {"targets": 1, "drifted": 1, "restored": 0}
    assert line["missing"] == ["PullA"]


def test_seq17_the_providers_own_write_landing_while_a_check_reads_is_not_drift(start, cloud):
    deployer, checker = start(suffix="-deployer"), start(suffix="-drift")
    pull_a = grant(deployer, "PullA", ACCOUNT_A)
    grant(deployer, "PullB", ACCOUNT_B)
    # The check's read of ECR is held back; meanwhile the stack deletes PullA (its record,
    # then ECR), and only then the check reads ECR.
    reads = cloud.proxy.count("GetRepositoryPolicy")
    cloud.proxy.set_rule("GetRepositoryPolicy", Fault.delay(), times=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        checking = pool.submit(drift, checker, load_event("drift/sweep.json"))
        try:
            cloud.proxy.wait_for("GetRepositoryPolicy", reads + 1)
            delete = follow_up(pull_a, "Delete", physical_id=statements_id(pull_a))
            assert_success(deployer.submit(delete).outcome(), statements_id(pull_a))
        finally:
            cloud.proxy.release()
        result, found = checking.result()

    assert sids(cloud) == ["PullB"], "premise: the delete's write landed"
    assert result == {"targets": 1, "drifted": 0, "restored": 0}, found

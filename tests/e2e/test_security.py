"""No credential in the provider's output (CONTRACT 7: "ResponseURL is never logged with its
query string"), at the most verbose levels the provider can be set to: RUST_LOG=debug, and
trace (Lambda's ApplicationLogLevel allows TRACE, which the provider reads from
AWS_LAMBDA_LOG_LEVEL).

A whole life runs through the real binary (create, update, delete, a bad input, ECR faults,
response-PUT faults, a refused ResponseURL), with distinctive fake values for the provider's
secret access key and session token and for the credentials the ResponseURLs are presigned
with. Then everything the provider said is searched: its standard output and error, the
errors it posted to the Runtime API, and the responses it stored in the bucket.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from rig.asserts import assert_failed, assert_no_response, assert_success
from rig.constants import (
    PRESIGN_ACCESS_KEY_ID,
    PRESIGN_SECRET_ACCESS_KEY,
    PROVIDER_SECRET_ACCESS_KEY,
    PROVIDER_SESSION_TOKEN,
    REGISTRY_ID,
    failed_create_id,
    repository_arn,
)
from rig.events import (
    follow_up,
    load_event,
    registry_create,
    registry_delete,
    repository_create,
)
from rig.faultproxy import RESPONSE, Fault

# A session token in the presigned query too, as URLs presigned with temporary credentials
# carry.
URL_SESSION_TOKEN = "FwoGZXIvYXdzE2eUrlSessionTokenQ7mK2xV9pL4tR8wN3bY6"
# The query parameters of a presigned URL that are credentials: SigV4's, and SigV2's.
CREDENTIAL_PARAMETERS = (
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "Signature",
    "AWSAccessKeyId",
)


def _query_secrets(url: str) -> dict[str, str]:
    """The credential-bearing parts of a presigned URL, raw and percent-encoded."""
    raw_query = urllib.parse.urlsplit(url).query
    found = {"query string": raw_query}
    for name, value in urllib.parse.parse_qsl(raw_query):
        if name in CREDENTIAL_PARAMETERS:
            found[f"{name} value"] = value
            found[f"{name} value (encoded)"] = urllib.parse.quote(value, safe="")
    return found


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    leaks = [f"{label}: {value[:24]}..." for label, value in secrets.items() if value and value in text]
    # The query parameters themselves, in any case, with whatever value. (The SDK's trace of
    # a signed request names the x-amz-security-token header, with its value redacted: that
    # is no leak, and has a colon, not an equals sign.)
    for name in CREDENTIAL_PARAMETERS:
        if re.search(re.escape(name) + r"(=|%3D)", text, re.IGNORECASE):
            leaks.append(f"a query parameter {name}=")
    return leaks


@pytest.mark.parametrize("level", ["debug", "trace"])
def test_no_credential_reaches_the_output_over_a_whole_life(cloud, level, show_log):
    cloud.prepare(repositories=("app",))
    cloud.extra_query = "&X-Amz-Security-Token=" + URL_SESSION_TOKEN
    function = cloud.start_emulator(f"security-{level}", RUST_LOG=level)
    show_log(function.log)
    outcomes = []
    try:
        # Create, with the first response PUT answered 503 (retried, logged as a warning).
        create = registry_create()
        cloud.proxy.set_rule(RESPONSE, Fault.http(503), times=1)
        outcomes.append(function.send(create, "create"))
        assert_success(outcomes[-1], REGISTRY_ID)

        # Update, with the write answered 500 once (retried by the SDK).
        update = follow_up(
            create,
            "Update",
            physical_id=REGISTRY_ID,
            properties=load_event("registry-update.json")["ResourceProperties"],
        )
        cloud.proxy.set_rule("PutRegistryPolicy", Fault.http(500), times=1)
        outcomes.append(function.send(update, "update"))
        assert_success(outcomes[-1], REGISTRY_ID)

        # Update, with every read reset: FAILED with the SDK's error chain in the Reason.
        reset = follow_up(update, "Update", physical_id=REGISTRY_ID)
        cloud.proxy.set_rule("GetRegistryPolicy", Fault.reset(), times=3)
        outcomes.append(function.send(reset, "update under resets"))
        assert_failed(outcomes[-1], REGISTRY_ID, "failed after retries")

        # A repository policy the role may not write: FAILED with IAM's message.
        denied = repository_create("app")
        cloud.proxy.set_rule("SetRepositoryPolicy", Fault.access_denied(), times=1)
        outcomes.append(function.send(denied, "access denied"))
        assert_failed(outcomes[-1], failed_create_id(denied), "ECR denied")

        # A bad input.
        bad = load_event("bad-input.json")
        outcomes.append(function.send(bad, "bad input"))
        assert_failed(outcomes[-1], failed_create_id(bad), "RepositoryNmae")

        # A response PUT refused with 403: the invocation ends in error.
        refused_put = repository_create("app")
        cloud.proxy.set_rule(RESPONSE, Fault.http(403), times=1)
        outcomes.append(function.send(refused_put, "response 403"))
        assert_no_response(outcomes[-1], "ResponseNotDelivered")

        # A ResponseURL outside the allow-list: refused, logged, nothing sent.
        elsewhere = registry_create()
        outcomes.append(
            function.send(elsewhere, "refused URL", response_host="attacker.example:8443")
        )
        assert_no_response(outcomes[-1], "ResponseUrlRefused")

        # A Create whose ResponseURL is in the older Signature Version 2 form.
        cloud.sigv2 = True
        sigv2 = repository_create("app")
        outcomes.append(function.send(sigv2, "SigV2 URL"))
        assert_success(outcomes[-1], repository_arn("app"))
        cloud.sigv2 = False

        # Delete.
        delete = registry_delete()
        outcomes.append(function.send(delete, "delete"))
        assert_success(outcomes[-1], REGISTRY_ID)
        assert cloud.registry_policy() is None
        assert function.alive()
    finally:
        function.stop()

    output = function.log.since()
    lines = [line for line in output.splitlines() if line.startswith("{")]
    # The level really is the one asked for, and the URL really is logged (without its
    # query): the search below would see a leak.
    marker = f'"level":"{level.upper()}"'
    assert any(marker in line for line in lines), f"no {level} line: RUST_LOG ignored?"
    for outcome in outcomes:
        if outcome.name != "refused URL":
            assert outcome.key in output, f"{outcome.name}: its ResponseURL path is not logged"

    secrets = {
        "provider secret access key": PROVIDER_SECRET_ACCESS_KEY,
        "provider secret access key (encoded)": urllib.parse.quote(
            PROVIDER_SECRET_ACCESS_KEY, safe=""
        ),
        "provider session token": PROVIDER_SESSION_TOKEN,
        "provider session token (encoded)": urllib.parse.quote(PROVIDER_SESSION_TOKEN, safe=""),
        "presigner secret access key": PRESIGN_SECRET_ACCESS_KEY,
        "presigner access key id (in X-Amz-Credential)": PRESIGN_ACCESS_KEY_ID,
        "ResponseURL session token": URL_SESSION_TOKEN,
    }
    for outcome in outcomes:
        for label, value in _query_secrets(outcome.event["ResponseURL"]).items():
            secrets[f"{outcome.name}: {label}"] = value

    places = {"provider output (stdout and stderr)": output}
    for outcome in outcomes:
        places[f"{outcome.name}: invocation error"] = json.dumps(outcome.error)
        places[f"{outcome.name}: invocation result"] = json.dumps(outcome.result)
        places[f"{outcome.name}: stored response"] = json.dumps(outcome.response)
    found = {place: _leaks(text, secrets) for place, text in places.items()}
    found = {place: leaks for place, leaks in found.items() if leaks}
    # Which log lines carry them, by level, target module and message.
    culprits = sorted(
        {
            _describe_line(line)
            for line in output.splitlines()
            if _leaks(line, secrets)
        }
    )
    assert not found, (
        "credentials in the provider's output:\n"
        + "\n".join(f"  {place}: {', '.join(leaks[:6])}" for place, leaks in found.items())
        + "\nlines that carry them:\n"
        + "\n".join(f"  {c}" for c in culprits)
    )


def _describe_line(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return f"(not JSON) {line[:120]}"
    fields = [k for k in record if k not in ("timestamp", "level", "message", "span")]
    return f"{record.get('level')} {record.get('message', '')[:80]!r} fields={fields}"

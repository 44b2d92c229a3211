"""What "the provider answered right" means, once, for every test, the demo, the benchmark
and scripts/invoke (CONTRACT 6 and 7): exactly one response stored for the event, echoing its
ids, no larger than the limit, sent with an empty Content-Type, delivered and answered before
the deadline (or, without one, within the provider's fallback budget), the invocation not
ended in error; then SUCCESS or FAILED with the expected PhysicalResourceId."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from rig.constants import REASON_LOG_TAIL
from rig.interface import INTERFACE
from rig.outcome import Outcome

if TYPE_CHECKING:
    from rig.cloud import Cloud


def failure(check: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """What ``check`` (one of the assert_* here, or any function that asserts) found wrong,
    its first line being the headline; None when it passed. For the demo, scripts/invoke and
    the benchmark, which report a wrong answer instead of stopping at it."""
    try:
        check(*args, **kwargs)
    except AssertionError as e:
        return str(e) or f"{getattr(check, '__name__', 'a check')} failed"
    return None


def budget_end(outcome: Outcome) -> float:
    """The time by which the response must be sent: the invocation's deadline, or, when it
    had none usable, the end of the provider's default budget."""
    if outcome.deadline is not None and outcome.deadline > outcome.handed:
        return outcome.deadline
    return outcome.handed + INTERFACE.default_budget_seconds


def assert_answered(outcome: Outcome) -> dict[str, Any]:
    """Exactly one response, well formed and in time; returns it."""
    info = outcome.describe()
    assert outcome.deleted == 0, f"a delete marker in the bucket\n{info}"
    assert outcome.stored == 1, f"{outcome.stored} responses stored, expected 1\n{info}"
    response = outcome.response
    assert response is not None, f"no response was stored\n{info}"
    for name in ("StackId", "RequestId", "LogicalResourceId"):
        assert response[name] == outcome.event[name], f"{name}\n{info}"
    assert outcome.response_bytes is not None
    assert outcome.response_bytes <= INTERFACE.max_response_bytes, (
        f"the response has {outcome.response_bytes} bytes, over "
        f"{INTERFACE.max_response_bytes}\n{info}"
    )
    end = budget_end(outcome)
    # Every response PUT goes through the fault proxy (rig.cloud), so these always run.
    puts = outcome.response_puts
    assert puts, f"no response PUT went through the proxy: nothing to check it by\n{info}"
    for put in puts:
        assert put.content_type == "", f"response PUT Content-Type {put.content_type!r}\n{info}"
    delivered = outcome.delivered_at
    assert delivered is not None, f"no response PUT accepted by S3\n{info}"
    late = delivered - end
    assert late < 0, f"response delivered {late:.2f}s after the deadline\n{info}"
    assert outcome.answered < end, f"invocation answered after the deadline\n{info}"
    assert outcome.error is None, f"the invocation ended in error\n{info}"
    return response


def assert_success(
    outcome: Outcome, physical_id: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Answered (above) with SUCCESS, no Reason, this PhysicalResourceId and, when ``data`` is
    given, exactly this Data."""
    response = assert_answered(outcome)
    assert response["Status"] == "SUCCESS", f"{response.get('Reason')}\n{outcome.describe()}"
    assert "Reason" not in response, outcome.describe()
    assert response["PhysicalResourceId"] == physical_id, outcome.describe()
    if data is not None:
        assert response["Data"] == data, outcome.describe()
    return response


def assert_failed(outcome: Outcome, physical_id: str, *fragments: str) -> str:
    """Answered (above) with FAILED, this PhysicalResourceId, no Data, and a Reason that holds
    every fragment and ends with where the logs are; returns the Reason."""
    response = assert_answered(outcome)
    assert response["Status"] == "FAILED", outcome.describe()
    assert response["PhysicalResourceId"] == physical_id, outcome.describe()
    assert response["Data"] == {}, outcome.describe()
    reason = response["Reason"]
    for fragment in fragments:
        assert fragment in reason, f"{fragment!r} not in Reason {reason!r}"
    assert reason.endswith(REASON_LOG_TAIL), reason
    return reason


def assert_no_response(outcome: Outcome, error_type: str) -> None:
    """Nothing stored; the invocation ended in error of this type, before the deadline."""
    info = outcome.describe()
    assert outcome.stored == 0 and outcome.deleted == 0, f"responses stored, expected none\n{info}"
    assert outcome.error is not None, f"the invocation did not end in error\n{info}"
    assert outcome.error.get("errorType") == error_type, info
    assert outcome.answered < budget_end(outcome), f"answered after the deadline\n{info}"


def assert_ecr_calls(outcome: Outcome, **expected: int) -> None:
    """What the provider's own meter says it asked of ECR for this event."""
    calls = outcome.ecr_calls
    assert calls is not None, "no metered 'response sent' line in the provider's log"
    for kind, count in expected.items():
        assert calls[kind] == count, f"ECR {kind}: {calls}"


def assert_statements(
    cloud: Cloud, target: str, others: list[dict[str, Any]], own: list[dict[str, Any]]
) -> None:
    """``target``'s live policy (CONTRACT 9) holds the others' statements first, exactly as
    they were and in their order, then ``own`` (in any order, each once), and nothing else;
    with neither, there is no policy at all."""
    live = cloud.statements(target)
    if not others and not own:
        assert cloud.policy(target) is None, f"{target} still has a policy: {live}"
        return
    other_sids = {s["Sid"] for s in others}
    assert live[: len(others)] == others, f"{target}: others' statements changed: {live}"
    mine = [s for s in live if s["Sid"] not in other_sids]
    assert sorted(mine, key=lambda s: s["Sid"]) == sorted(own, key=lambda s: s["Sid"]), (
        f"{target}: live statements {[s['Sid'] for s in live]}, expected the others' "
        f"{sorted(other_sids)} and {sorted(s['Sid'] for s in own)}"
    )

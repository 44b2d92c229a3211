"""A prefix statement over more repositories than one invocation reaches (CONTRACT 15), end to
end: the provider's real binary behind the Runtime API emulator, with a few seconds per
invocation; ECR and the lock table from moto behind the fault proxy. The work goes on in the
next invocation, which the binary starts itself with Lambda's Invoke (signed with SigV4,
`AWS_ENDPOINT_URL_LAMBDA` pointing at the emulator, which runs it as Lambda would), and the
last invocation puts the one response in the bucket. Then ECR throttling beyond the SDK's
retries: the fan-out pauses and every repository still holds the statement."""

from __future__ import annotations

from rig.asserts import assert_statements
from rig.events import follow_up, prefix_create, prefix_data, prefix_id, stack_statement
from rig.faultproxy import Fault
from rig.interface import message

UNDER = [f"team/r{n:03d}" for n in range(240)]
BESIDE = ["team-x"]
# Each invocation's time: a part of the repositories at moto's pace, then the next.
INVOCATION_SECONDS = 4.0
WAIT_SECONDS = 180.0


def test_a_prefix_over_hundreds_of_repositories_continues_in_further_invocations(cloud, start):
    for name in UNDER + BESIDE:
        cloud.create_repository(name)
    provider = start()
    mine = stack_statement("team/r000", "TeamPull", 1)
    created = prefix_create("team", [mine], "TeamPull")

    out = provider.send_continued(created, deadline_in=INVOCATION_SECONDS, timeout=WAIT_SECONDS)
    assert out.response is not None, f"no response within {WAIT_SECONDS}s\n{provider.log.tail()}"
    assert out.response["Status"] == "SUCCESS", out.response
    assert out.response["PhysicalResourceId"] == prefix_id(created)
    assert out.response["Data"] == prefix_data(created, len(UNDER))
    assert out.invocations >= 2, "the work went on in another invocation"
    assert out.unanswered == 0
    assert out.response_puts == 1, "exactly one response"
    handed = out.lines(message("continued"))
    assert len(handed) == out.invocations - 1
    assert [line["step"] for line in handed] == list(range(1, out.invocations))
    for name in UNDER:
        assert_statements(cloud, name, [], [mine])
        assert cloud.holders(name) == {"TeamPull": created["RequestId"]}, name
    assert cloud.policy("team-x") is None

    deleted = follow_up(created, "Delete", physical_id=prefix_id(created))
    out = provider.send_continued(deleted, deadline_in=INVOCATION_SECONDS, timeout=WAIT_SECONDS)
    assert out.response is not None and out.response["Status"] == "SUCCESS", out.response
    assert out.invocations >= 2 and out.response_puts == 1
    for name in UNDER:
        assert cloud.policy(name) in (None, '{"Version":"2012-10-17","Statement":[]}'), name


def test_throttling_beyond_the_sdk_retries_pauses_the_fan_out(cloud, start):
    names = UNDER[:12]
    for name in names:
        cloud.create_repository(name)
    # One repository at a time, so that three throttled answers in a row are the SDK's three
    # attempts of one call.
    provider = start(PREFIX_CONCURRENCY="1")
    cloud.proxy.set_rule("GetRepositoryPolicy", Fault.throttle(), times=3)
    mine = stack_statement("team/r000", "TeamPull", 1)
    created = prefix_create("team", [mine], "TeamPull")
    out = provider.send_continued(created, deadline_in=30.0, timeout=60.0)
    assert out.response is not None and out.response["Status"] == "SUCCESS", out.response
    assert out.response["Data"]["Repositories"] == str(len(names))
    assert out.throttled() == 1 and out.paused_ms() >= 500, out.lines(message("prefix_done"))
    for name in names:
        assert_statements(cloud, name, [], [mine])

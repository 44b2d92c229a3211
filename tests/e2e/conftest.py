"""Session fixtures: one moto server and one `cargo lambda watch` for the whole run, a clean
account (moto reset, empty response bucket) for every test. See harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

# Longer than the suite can take; every server ends by itself after it.
SESSION_LIFETIME_SECONDS = 900


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    # Missing parts are a failure, never a skip: the suite exists to run them.
    problems = h.missing_tools()
    if problems:
        pytest.fail(
            "the end-to-end suite cannot run:\n  " + "\n  ".join(problems), pytrace=False
        )
    running = h.Harness(tmp_path_factory.mktemp("e2e"), lifetime=SESSION_LIFETIME_SECONDS)
    try:
        running.start()
    except h.HarnessError as e:
        running.stop()
        pytest.fail(f"{e}\n(logs in {running.workdir})", pytrace=False)
    except BaseException:
        running.stop()
        raise
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def stack(harness, request):
    """A clean account with repositories `app` and `app-v2`; after the test, exactly one
    response per event with a usable ResponseURL, and no signed URL in the provider's logs."""
    harness.prepare()
    harness.create_repository("app")
    harness.create_repository("app-v2")
    log_offset = harness.provider_log_size()
    request.node.e2e_log = (harness, log_offset)
    yield harness
    problems = harness.unexpected_responses()
    assert not problems, "responses in the bucket:\n" + "\n".join(problems)
    provider_lines = [
        line
        for line in harness.provider_log_since(log_offset).splitlines()
        if line.startswith("{")
    ]
    leaked = [line for line in provider_lines if "X-Amz-Signature" in line]
    assert not leaked, f"the provider logged a signed ResponseURL: {leaked[0]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and hasattr(item, "e2e_log"):
        running, offset = item.e2e_log
        text = running.provider_log_since(offset)
        tail = "\n".join(text.splitlines()[-60:])
        report.sections.append(
            ("provider log (cargo lambda watch)", f"{running.provider_log}\n{tail}")
        )

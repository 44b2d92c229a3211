"""Fixtures shared by the end-to-end modules; the rig (tests/rig) does the work. A missing
part is a failure, never a skip: the suite exists to run them."""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

import pytest

from rig.cloud import Cloud, Function
from rig.logs import LogFile
from rig.procs import RigError

# Longer than the suite, or a module, can take; every server ends by itself after it.
SESSION_LIFETIME_SECONDS = 900
MODULE_LIFETIME_SECONDS = 600


@contextlib.contextmanager
def _running(cloud: Cloud) -> Iterator[Cloud]:
    try:
        cloud.start()  # stops what it started if it fails
    except RigError as e:
        pytest.fail(f"{e}\n(logs in {cloud.workdir})", pytrace=False)
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="session")
def watched(tmp_path_factory) -> Iterator[Function]:
    """moto and the provider under `cargo lambda watch`, one for the whole run."""
    cloud = Cloud(tmp_path_factory.mktemp("e2e"), lifetime=SESSION_LIFETIME_SECONDS)
    with _running(cloud):
        try:
            function = cloud.start_watch()
        except RigError as e:
            pytest.fail(f"{e}\n(logs in {cloud.workdir})", pytrace=False)
        yield function


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, request) -> Iterator[Cloud]:
    """moto behind the fault proxy, for one test module; functions are started per test."""
    workdir = tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))
    with _running(Cloud(workdir, lifetime=MODULE_LIFETIME_SECONDS, proxy=True)) as running:
        yield running


@pytest.fixture
def start(cloud, request, show_log):
    """A clean account (repository `app`); ``start(processes=1, suffix="", **env)`` starts a
    provider of the test's own (``processes`` of them behind one Runtime API), stopped
    afterwards. Then exactly one response in the bucket per event that could be answered."""
    cloud.prepare(repositories=("app",))
    started = []
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)

    def start_function(processes: int = 1, suffix: str = "", **env: str | None) -> Function:
        function = cloud.start_emulator(name + suffix, processes=processes, **env)
        show_log(function.log)
        started.append(function)
        return function

    yield start_function
    for function in started:
        function.stop()
    problems = cloud.unexpected_responses()
    assert not problems, "responses in the bucket:\n" + "\n".join(problems)


@pytest.fixture
def show_log(request):
    """``show_log(log, offset)``: a failed test's report ends with what the provider wrote
    to ``log`` from ``offset`` on."""

    def show(log: LogFile, offset: int = 0) -> None:
        request.node.e2e_log = (log, offset)

    return show


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and hasattr(item, "e2e_log"):
        log, offset = item.e2e_log
        report.sections.append(("provider log", f"{log}\n{log.tail(offset)}"))

"""Fixtures of the end-to-end agent tests: a fresh cluster per test (its own
greenlightd, store, agents, state dirs and fake NVML files), torn down, every
process killed, even when the test fails."""

from __future__ import annotations

import os
import signal

import pytest

import paths  # noqa: F401  (sys.path for the stubs and server.py)
from paths import AGENT_BIN, BIN_REQUIRED, GREENLIGHTD_BIN, NVML_LIB, SESSION_MARKER


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# A SIGTERM (ctest's timeout, a CI cancel) still runs the fixtures' teardown.
signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session", autouse=True)
def _kill_everything_started_here():
    """Last line of defence: whatever a test left running (greenlightd,
    agents, supervisors, jobs) carries this session's marker."""
    from cluster import kill_marked

    try:
        yield
    finally:
        kill_marked(SESSION_MARKER)


def _require_binaries():
    missing = [p for p in (GREENLIGHTD_BIN, AGENT_BIN, NVML_LIB) if not os.path.exists(p)]
    if missing:
        msg = f"not built: {', '.join(missing)} (build greenlightd, greenlight-agent and greenlight_test_nvml)"
        if BIN_REQUIRED:
            pytest.fail(msg)
        pytest.skip(msg + "; or set GREENLIGHT_BIN to the build directory")
    if os.geteuid() != 0:
        pytest.skip("the agent must run as root to run jobs as another user (--run-as nobody)")


@pytest.fixture
def make_cluster(tmp_path):
    """make_cluster(nodes=("a", "b", "c"), **Cluster options): a started
    greenlightd with the agent pool and these agents, all READY."""
    from cluster import Cluster

    _require_binaries()
    made = []

    def make(nodes=("e2e-a", "e2e-b", "e2e-c"), **options):
        c = Cluster(str(tmp_path / f"c{len(made)}"), **options)
        made.append(c)
        c.start_server()
        c.upsert_pool()
        for n in nodes:
            c.add_agent(n)
        if nodes:
            c.wait_ready(*nodes)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.teardown()


@pytest.fixture
def cluster(make_cluster):
    return make_cluster()

"""Fixtures for the Python client tests.

GREENLIGHT_ROOT: the repository (default: three levels up).
GREENLIGHT_BIN:  the CMake build directory holding services/scheduler/greenlightd
                 (default: the newest build*/ under the root). When it is set
                 (ctest) and the binary is missing, live tests fail; when it is
                 not set and no binary is found, they are skipped.
"""

from __future__ import annotations

import glob
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.environ.get("GREENLIGHT_ROOT") or os.path.join(HERE, "..", "..", ".."))
CLIENT_DIR = os.path.join(ROOT, "clients", "python")
sys.path.insert(0, CLIENT_DIR)
sys.path.insert(0, HERE)

import greenlight  # noqa: E402  (generates the stubs when needed)
from server import Greenlightd  # noqa: E402


def _find_binary():
    env = os.environ.get("GREENLIGHT_BIN")
    if env:
        return os.path.join(env, "services", "scheduler", "greenlightd"), True
    candidates = glob.glob(os.path.join(ROOT, "build*", "services", "scheduler", "greenlightd"))
    candidates = [c for c in candidates if os.access(c, os.X_OK)]
    if not candidates:
        return None, False
    return max(candidates, key=os.path.getmtime), False


def greenlightd_binary() -> str:
    path, required = _find_binary()
    if path and os.access(path, os.X_OK):
        return path
    if required:
        pytest.fail(f"greenlightd not built: {path} (build the greenlightd target)")
    pytest.skip("no greenlightd binary found (set GREENLIGHT_BIN to the build directory)")


def demo_config() -> str:
    return os.environ.get("GREENLIGHT_CONFIG") or os.path.join(ROOT, "deploy", "config", "demo.yaml")


@pytest.fixture(scope="session")
def client_env():
    """Environment for running the CLI as a subprocess from the source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = CLIENT_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for k in ("GREENLIGHT_TARGET", "GREENLIGHT_TOKEN", "GREENLIGHT_TOKEN_FILE", "GREENLIGHT_TLS_CA", "GREENLIGHT_TEAM"):
        env.pop(k, None)
    return env


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for k in ("GREENLIGHT_TARGET", "GREENLIGHT_TOKEN", "GREENLIGHT_TOKEN_FILE", "GREENLIGHT_TLS_CA", "GREENLIGHT_TEAM"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One greenlightd per test module (shared state: use unique team names)."""
    srv = Greenlightd(greenlightd_binary(), demo_config(), str(tmp_path_factory.mktemp("greenlightd")))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A greenlightd of one's own (for restart tests)."""
    srv = Greenlightd(greenlightd_binary(), demo_config(), str(tmp_path))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def gl(server):
    with greenlight.Client(server.target, timeout=20) as c:
        yield c

"""Where the repository, the binaries and the generated Python stubs are.

GREENLIGHT_ROOT: the repository (default: three levels up).
GREENLIGHT_BIN:  the CMake build directory (default: the newest build*/ under
                 the root that holds both greenlightd and greenlight-agent).

Importing this module puts clients/python (the generated stubs in
greenlight/_gen, made on first import) and tests/integration/python (for its
Greenlightd process helper, server.py) on sys.path.
"""

from __future__ import annotations

import glob
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.environ.get("GREENLIGHT_ROOT") or os.path.join(HERE, "..", "..", ".."))
CLIENT_DIR = os.path.join(ROOT, "clients", "python")
PY_TESTS_DIR = os.path.join(ROOT, "tests", "integration", "python")
for _p in (PY_TESTS_DIR, CLIENT_DIR):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import greenlight  # noqa: E402,F401  (generates the stubs when needed; makes greenlight.v1 importable)


def _build_dir():
    env = os.environ.get("GREENLIGHT_BIN")
    if env:
        return env, True
    dirs = [d for d in glob.glob(os.path.join(ROOT, "build*"))
            if os.access(os.path.join(d, "services", "scheduler", "greenlightd"), os.X_OK)
            and os.access(os.path.join(d, "services", "agent", "greenlight-agent"), os.X_OK)]
    if not dirs:
        return None, False
    return max(dirs, key=lambda d: os.path.getmtime(os.path.join(d, "services", "agent", "greenlight-agent"))), False


BIN, BIN_REQUIRED = _build_dir()
GREENLIGHTD_BIN = os.path.join(BIN or "", "services", "scheduler", "greenlightd")
AGENT_BIN = os.path.join(BIN or "", "services", "agent", "greenlight-agent")
NVML_LIB = os.path.join(BIN or "", "testing", "nvml", "libnvidia-ml.so.1")
DEMO_CONFIG = os.path.join(ROOT, "deploy", "config", "demo.yaml")

# In the environment of everything this test session starts (greenlightd
# inherits it; agents and jobs are given it), so that conftest can kill
# exactly those processes, whatever happened to the test that started them.
SESSION_MARKER = f"GL_E2E_SESSION={uuid.uuid4().hex}"
os.environ["GL_E2E_SESSION"] = SESSION_MARKER.split("=", 1)[1]

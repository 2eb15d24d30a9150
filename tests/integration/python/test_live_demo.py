"""`make run` as a new user meets it: scripts/run-demo.sh on the bundled demo
config, in a copy of the repository layout (so the demo's store lands in the
copy, not in the source tree), then the banner's example submit with the CLI.
Only the ports are moved (extra greenlightd flags), so that the test does not
need 50051 and 9464 free.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import grpc
import pytest

from conftest import ROOT, greenlightd_binary
from server import free_port
from greenlight.v1 import scheduler_pb2, scheduler_pb2_grpc

pytestmark = pytest.mark.live


def _demo_layout(tmp_path):
    """A repository-shaped folder: the real scripts and config, data linked."""
    (tmp_path / "scripts").mkdir(parents=True)
    shutil.copy2(os.path.join(ROOT, "scripts", "run-demo.sh"), tmp_path / "scripts" / "run-demo.sh")
    (tmp_path / "deploy" / "config").mkdir(parents=True)
    shutil.copy2(os.path.join(ROOT, "deploy", "config", "demo.yaml"), tmp_path / "deploy" / "config" / "demo.yaml")
    os.symlink(os.path.join(ROOT, "data"), tmp_path / "data")
    return tmp_path


def _wait_ping(target: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run-demo.sh exited with {proc.returncode}")
        with grpc.insecure_channel(target) as ch:
            try:
                scheduler_pb2_grpc.SchedulerStub(ch).Ping(scheduler_pb2.PingRequest(), timeout=1)
                return
            except grpc.RpcError:
                pass
        time.sleep(0.2)
    raise AssertionError("greenlightd (make run) did not answer Ping")


def test_make_run_demo_serves_and_takes_the_banner_submit(tmp_path, client_env):
    binary = greenlightd_binary()
    build_dir = os.path.dirname(os.path.dirname(os.path.dirname(binary)))
    root = _demo_layout(tmp_path / "repo")
    grpc_port, metrics_port = free_port(), free_port()
    target = f"127.0.0.1:{grpc_port}"
    out = open(tmp_path / "run-demo.out", "w+", encoding="utf-8")
    proc = subprocess.Popen(
        ["bash", str(root / "scripts" / "run-demo.sh"), build_dir, "deploy/config/demo.yaml",
         f"--grpc_address={target}", f"--metrics_address=127.0.0.1:{metrics_port}"],
        cwd="/", stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ping(target, proc)
        # The store is where the config says, relative to the config file.
        assert (root / ".demo" / "greenlight.db").is_file()
        # The banner's example, as printed, against the moved port.
        out.seek(0)
        banner = out.read()
        assert "greenlightd (demo) starting" in banner
        assert "-m greenlight submit --team ml-research" in banner
        env = dict(client_env, GREENLIGHT_TARGET=target)
        cli = [sys.executable, "-m", "greenlight"]
        sub = subprocess.run(cli + ["submit", "--team", "ml-research", "--gpus", "8", "--gpu-type", "H100",
                                    "--gpu-hours", "192", "--max-cost", "2000"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0, sub.stdout + sub.stderr
        listed = subprocess.run(cli + ["list"], env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "ml-research" in listed.stdout
        # Ctrl-C / SIGTERM drains and exits cleanly.
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()

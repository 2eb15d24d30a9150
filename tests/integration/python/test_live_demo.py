"""`make run` as a new user meets it: scripts/run-demo.sh on the bundled demo
config, in a copy of the repository layout (so the demo's store lands in the
copy, not in the source tree), then the banner's example submit with the CLI.
Only the ports are moved (extra greenlightd flags), so that the test does not
need 50051 and 9464 free.
"""

from __future__ import annotations

import json
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


# -- issue 17: relative times follow the demo server's fast clock --------------


def _cli(target, client_env, *args):
    return subprocess.run(
        [sys.executable if sys.executable.startswith("/usr/bin/") else "/usr/bin/python3", "-m", "greenlight",
         "--target", target, "--timeout", "20", *args],
        env=client_env, capture_output=True, text=True, timeout=120,
    )


def test_demo_ping_reports_its_fast_clock_and_relative_deadlines_follow_it(tmp_path, client_env):
    from datetime import timedelta

    import greenlight
    from conftest import demo_config
    from server import Greenlightd

    srv = Greenlightd(greenlightd_binary(), demo_config(), str(tmp_path / "srv"))  # the demo's 3600x
    try:
        srv.start()
        with grpc.insecure_channel(srv.target) as ch:
            resp = scheduler_pb2_grpc.SchedulerStub(ch).Ping(scheduler_pb2.PingRequest(), timeout=5)
        assert resp.time_scale == 3600.0
        time.sleep(3)  # 3 demo hours pass
        with greenlight.Client(srv.target, timeout=10) as gl:
            clock = gl.server_clock()
            assert clock.time_scale == 3600.0 and clock.scaled
            assert clock.offset > timedelta(hours=2)  # the server's clock is ahead of ours
        p = _cli(srv.target, client_env, "estimate", "--team", "ml-research", "--gpus", "8", "--gpu-hours", "64", "--deadline", "+48h")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "greenlight: relative times use the server's clock: " in p.stderr and "(3600x)" in p.stderr
    finally:
        srv.stop()


def test_plus_48h_still_works_once_the_server_clock_is_days_ahead(tmp_path, client_env):
    """The issue as the user met it, without waiting 48 s: at 300,000x the
    server's clock is 48 h ahead of the wall clock after 0.6 s. Resolving
    "+48h" on the wall clock (the old CLI) gives a deadline in the server's
    past: "spec.deadline: must be in the future"."""
    from datetime import datetime, timedelta, timezone

    import greenlight
    from conftest import demo_config
    from server import Greenlightd

    srv = Greenlightd(greenlightd_binary(), demo_config(), str(tmp_path / "srv"), ["--time_scale=300000"])
    try:
        srv.start()
        time.sleep(1.5)
        with greenlight.Client(srv.target, timeout=10) as gl:
            clock = gl.server_clock()
            assert clock.time_scale == 300000.0
            assert clock.time > datetime.now(timezone.utc) + timedelta(hours=72)
            # The precondition of the bug: a wall-clock +48 h is in the server's past.
            with pytest.raises(greenlight.InvalidJob) as e:
                gl.estimate(team="vision", gpus=1, gpu_hours=1, deadline=datetime.now(timezone.utc) + timedelta(hours=48))
            assert "deadline" in e.value.message and "future" in e.value.message
            q = gl.estimate(team="vision", gpus=1, gpu_hours=1, deadline=timedelta(hours=48))
            assert q.chosen is not None
        p = _cli(srv.target, client_env, "estimate", "--team", "vision", "--gpus", "1", "--gpu-hours", "1", "--deadline", "+48h")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "(300000x)" in p.stderr
        p = _cli(srv.target, client_env, "-o", "json", "submit", "--team", "vision", "--gpus", "1", "--gpu-hours", "1",
                 "--deadline", "+1d12h")
        assert p.returncode == 0, p.stdout + p.stderr
        job = json.loads(p.stdout)
        deadline = datetime.fromisoformat(job["spec"]["deadline"].replace("Z", "+00:00"))
        assert deadline > datetime.now(timezone.utc) + timedelta(hours=72)  # on the server's clock
        # An absolute time in the server's past is refused, naming the flag.
        p = _cli(srv.target, client_env, "estimate", "--team", "vision", "--gpus", "1", "--gpu-hours", "1",
                 "--deadline", (datetime.now(timezone.utc) + timedelta(hours=48)).strftime("%Y-%m-%dT%H:%MZ"))
        assert p.returncode == 3, p.stdout + p.stderr
        assert "(--deadline)" in p.stderr and "relative times such as --deadline +48h" in p.stderr
    finally:
        srv.stop()


def test_every_help_example_runs_against_the_demo(tmp_path, client_env):
    """Each command's --help examples, as printed, run against a demo server
    (demo config, 3600x) with `greenlight` on PATH."""
    from conftest import CLIENT_DIR, demo_config
    from server import Greenlightd
    from greenlight import cli

    srv = Greenlightd(greenlightd_binary(), demo_config(), str(tmp_path / "srv"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.join(CLIENT_DIR, "bin", "greenlight"), bindir / "greenlight")
    env = dict(client_env, PATH=f"{bindir}{os.pathsep}{client_env.get('PATH', '/usr/bin:/bin')}")
    try:
        srv.start()
        env["GREENLIGHT_TARGET"] = srv.target
        blocks = [("first steps", [line.strip() for line in cli.DESCRIPTION.split("first steps")[1].split("\n\n")[0].splitlines()[1:]
                                   if line.strip().startswith(("greenlight ", "JOB="))])]
        blocks += list(cli.EXAMPLES.items())
        for name, lines in blocks:
            script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
            p = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180)
            assert p.returncode == 0, f"{name} examples failed ({p.returncode}):\n{script}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    finally:
        srv.stop()

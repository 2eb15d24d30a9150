"""`make run` for the docs test: scripts/run-demo.sh on deploy/config/demo.yaml
in a repository-shaped temporary folder (the approach of
tests/integration/python/test_live_demo.py), so that the demo store lands in
that folder and the blocks' relative paths (clients/python/bin/greenlight,
PYTHONPATH=clients/python) work from it. Only the ports move, by extra
greenlightd flags.

The folder links every top-level entry of the repository except the few that
are copied: the demo script and config (the config's relative paths, the store
among them, resolve next to the copy) and clients/python (gen_stubs.py and
the first `import greenlight` write the stubs into the copy, never into the
source tree that other tests read at the same time).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from typing import Iterable, Optional

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.environ.get("GREENLIGHT_ROOT") or os.path.join(HERE, "..", "..", ".."))

COPIED = ("scripts/run-demo.sh", "deploy/config/demo.yaml", "clients/python")
NOT_LINKED = (".git", ".demo")  # the demo store of a `make run` in the source tree stays out
_COPY_IGNORE = shutil.ignore_patterns("_gen", "build", "dist", "*.egg-info", "__pycache__")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary() -> tuple[Optional[str], bool]:
    """(path of greenlightd, whether GREENLIGHT_BIN asked for it)."""
    env = os.environ.get("GREENLIGHT_BIN")
    if env:
        return os.path.join(os.path.abspath(env), "services", "scheduler", "greenlightd"), True
    found = [c for c in glob.glob(os.path.join(ROOT, "build*", "services", "scheduler", "greenlightd"))
             if os.access(c, os.X_OK)]
    return (max(found, key=os.path.getmtime) if found else None), False


def shadow_tree(src: str, dst: str, copies: Iterable[str] = COPIED, skip: Iterable[str] = NOT_LINKED) -> str:
    """``dst`` shaped like ``src``: each path in ``copies`` is copied, every
    folder above one is a real folder, everything else is a symlink."""
    copies = [c.strip("/") for c in copies]
    skip = set(skip)

    def build(rel: str) -> None:
        here_src = os.path.join(src, rel) if rel else src
        here_dst = os.path.join(dst, rel) if rel else dst
        os.makedirs(here_dst, exist_ok=True)
        for name in sorted(os.listdir(here_src)):
            child = f"{rel}/{name}" if rel else name
            if not rel and name in skip:
                continue
            s, d = os.path.join(here_src, name), os.path.join(here_dst, name)
            if child in copies:
                if os.path.isdir(s):
                    shutil.copytree(s, d, symlinks=True, ignore=_COPY_IGNORE)
                else:
                    shutil.copy2(s, d)
            elif any(c.startswith(child + "/") for c in copies):
                build(child)
            else:
                os.symlink(s, d)

    build("")
    return dst


class Demo:
    """scripts/run-demo.sh BUILD_DIR deploy/config/demo.yaml --grpc_address=... --metrics_address=..."""

    def __init__(self, binary: str, root: str, log_path: str):
        self.binary = binary
        # run-demo.sh takes the build directory: .../services/scheduler/greenlightd -> ...
        self.build_dir = os.path.dirname(os.path.dirname(os.path.dirname(binary)))
        self.root = root
        self.log_path = log_path
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self) -> None:
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            ["bash", os.path.join(self.root, "scripts", "run-demo.sh"), self.build_dir, "deploy/config/demo.yaml",
             f"--grpc_address={self.target}", f"--metrics_address={self.metrics_address}"],
            cwd="/", stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def ping(self, timeout: float = 2.0):
        from greenlight.v1 import scheduler_pb2, scheduler_pb2_grpc

        with grpc.insecure_channel(self.target) as ch:
            return scheduler_pb2_grpc.SchedulerStub(ch).Ping(scheduler_pb2.PingRequest(), timeout=timeout)

    def wait_ready(self, timeout: float = 90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"run-demo.sh exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return self.ping(timeout=1.0)
            except grpc.RpcError:
                time.sleep(0.2)
        raise AssertionError(f"the demo greenlightd did not answer Ping in {timeout:.0f} s:\n{self.log()}")

    def wait_server_time(self, after_seconds: float, timeout: float) -> tuple[float, float]:
        """Polls Ping until server_time is more than ``after_seconds`` past its
        first reading; returns (first, last) as POSIX seconds."""
        first = self.ping().server_time.ToSeconds()
        deadline = time.monotonic() + timeout
        now = first
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"run-demo.sh exited with {self.proc.returncode}:\n{self.log()}")
            now = self.ping().server_time.ToSeconds()
            if now > first + after_seconds:
                return first, now
            time.sleep(0.5)
        raise AssertionError(
            f"the demo clock went only {(now - first) / 3600:.1f} simulated hours in {timeout:.0f} s "
            f"(wanted more than {after_seconds / 3600:.0f})")

    def stop(self) -> Optional[int]:
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                rc = self.proc.wait(timeout=60)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self._log:
            self._log.close()
        return rc

"""Starts and stops a real greenlightd for the tests.

The server gets free loopback ports and a store in its own temporary
directory; restart() keeps both, so a client reconnects to the same server
state. The process runs in its own session and is killed at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import grpc

from greenlight.v1 import scheduler_pb2, scheduler_pb2_grpc

_live = set()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerError(RuntimeError):
    pass


class Greenlightd:
    def __init__(self, binary: str, config: str, workdir: str, extra_args=(), ca_pem: bytes | None = None):
        self.ca_pem = ca_pem  # set when the config turns TLS on
        self.binary = binary
        self.config = config
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.store = os.path.join(workdir, "gl.db")
        self.log_path = os.path.join(workdir, "greenlightd.log")
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.proc = None
        self.starts = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config={self.config}",
            f"--grpc_address=127.0.0.1:{self.grpc_port}",
            f"--metrics_address=127.0.0.1:{self.metrics_port}",
            f"--store={self.store}",
            *self.extra_args,
        ]

    def log(self, tail: int = 60) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no log)"
        return "".join(lines[-tail:])

    def start(self, timeout: float = 60.0) -> None:
        for attempt in range(3):
            self._spawn()
            try:
                self.wait_serving(timeout)
                return
            except ServerError:
                code = self.proc.poll()
                # Exit 2 = a port was taken (greenlightd checks): new ports,
                # unless this is a restart that must keep them.
                if code == 2 and self.starts == 1 and attempt < 2:
                    self.starts = 0
                    self.grpc_port, self.metrics_port = free_port(), free_port()
                    continue
                self.stop()
                raise

    def _spawn(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n=== start {self.starts + 1}: {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        _live.add(self)

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Until grpc.health.v1 says SERVING (or, without a health service,
        Scheduler.Ping answers)."""
        deadline = time.monotonic() + timeout
        # Wait for the port first: a gRPC channel whose first connection
        # attempts are refused can sit in reconnect backoff for seconds
        # (grpcio 1.51) after the server is up.
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", self.grpc_port)) == 0:
                    break
            time.sleep(0.05)
        # Poll quickly: gRPC's default reconnect backoff grows past the start time.
        opts = [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 300),
        ]
        if self.ca_pem:
            creds = grpc.ssl_channel_credentials(root_certificates=self.ca_pem)
            channel = grpc.secure_channel(self.target, creds, options=opts)
        else:
            channel = grpc.insecure_channel(self.target, options=opts)
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda _: b"",  # HealthCheckRequest{service: ""}
            response_deserializer=lambda b: b,
        )
        ping = scheduler_pb2_grpc.SchedulerStub(channel).Ping
        use_ping = False
        last = "no answer"
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerError(
                        f"greenlightd exited with {self.proc.returncode} before serving:\n{self.log()}"
                    )
                try:
                    if use_ping:
                        ping(scheduler_pb2.PingRequest(), timeout=1)
                        return
                    resp = check(None, timeout=1)
                    if resp == b"\x08\x01":  # HealthCheckResponse{status: SERVING}
                        return
                    last = f"health status bytes {resp!r}"
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                        use_ping = True
                        continue
                    last = f"{e.code().name}: {e.details()}"
                time.sleep(0.1)
        finally:
            channel.close()
        raise ServerError(f"greenlightd not serving after {timeout}s ({last}):\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Stops the server (SIGTERM, then SIGKILL). Returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        _live.discard(self)
        return proc.returncode

    def kill(self) -> None:
        """kill -9: no graceful shutdown."""
        self.stop(signal.SIGKILL)

    def restart(self, kill: bool = True, timeout: float = 60.0) -> None:
        if kill:
            self.kill()
        else:
            self.stop()
        self._spawn()
        self.wait_serving(timeout)


def kill_all() -> None:
    for srv in list(_live):
        try:
            srv.stop(signal.SIGKILL)
        except Exception:
            pass


import atexit  # noqa: E402

atexit.register(kill_all)

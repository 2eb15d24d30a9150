"""Process helpers shared by the live Prometheus tests (test_e2e_prometheus,
test_tls_scrape): free ports, polling with the processes' logs on failure,
and stopping what a fixture started."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what, fn, timeout, procs=()):
    """Polls fn() until it returns a truthy value; fails naming `what`, with
    the logs of `procs` ((name, Popen, log path) tuples)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for name, proc, log in procs:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode} while waiting for {what}:\n" + tail(log))
        try:
            result = fn()
            if result:
                return result
            last = result
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n"
                + "\n".join(f"--- {name}\n{tail(log)}" for name, _, log in procs))


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def stop_all(procs):
    """SIGTERM in reverse start order, SIGKILL after 15 s."""
    for _, proc, _ in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

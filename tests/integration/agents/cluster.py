"""A real greenlight cluster for the end-to-end agent tests: one greenlightd
(token auth, real time) and greenlight-agent processes on loopback, each
agent with its own state dir and its own fake NVML file (tests/testing/fake_nvml).

Everything here is started by the tests and found again by a marker in its
environment (GL_E2E_MARKER=<uuid of this cluster>): the agents carry it in
theirs, so do their job supervisors (forked from them), and every job gets it
through Command.env. teardown() SIGKILLs exactly those processes.
"""

from __future__ import annotations

import csv
import ctypes
import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid

import grpc
import yaml

from paths import AGENT_BIN, DEMO_CONFIG, GREENLIGHTD_BIN, NVML_LIB, ROOT, SESSION_MARKER
from server import Greenlightd

from greenlight.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    budgets_pb2,
    budgets_pb2_grpc,
    executor_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
    types_pb2,
)

S = types_pb2  # JobState and friends
TERMINAL = {S.JOB_STATE_SUCCEEDED, S.JOB_STATE_FAILED, S.JOB_STATE_CANCELLED,
            S.JOB_STATE_BUDGET_EXHAUSTED, S.JOB_STATE_REJECTED}

MJ_PER_WH = 3.6e6  # NVML energy counters are in millijoules

# The grid intensity of the test zone, gCO2e/kWh: a real hour of Spain's grid,
# Electricity Maps 2022 (data/carbon/emaps_ES_2022_hourly.csv, row
# "2022-01-01 00:00:00", direct intensity). The test series holds this one
# value for every hour from 3 days before now to 3 days after, so measured
# carbon is exactly energy x PUE x this value.
INTENSITY_ROW = "2022-01-01 00:00:00"
ZONE = "XE2E"
POOL_ID = "onprem/e2e-1/box"
POOL_REGION = "e2e-1"
OTHER_POOL_ID = "onprem/e2e-2/box"  # a second AGENT pool (bad-input tests)
OTHER_REGION = "e2e-2"
GPUS_PER_NODE = 2
PUE = 1.5
PRICE_MICROS_PER_NODE_HOUR = 3_600_000  # $3.60 per node-hour
GPU_POWER_W = 300.0  # only for quotes: charges use the measured energy


def es_intensity() -> float:
    path = os.path.join(ROOT, "data", "carbon", "emaps_ES_2022_hourly.csv")
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["Datetime (UTC)"] == INTENSITY_ROW:
                return float(row["Carbon Intensity gCO₂eq/kWh (direct)"])
    raise AssertionError(f"{path}: no row {INTENSITY_ROW}")


def write_constant_series(path: str, g_per_kwh: float) -> None:
    """Hourly "Let's Wait Awhile" CSV (Time,Carbon Intensity), now -3 d .. now +3 d."""
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    with open(path, "w", encoding="utf-8") as f:
        f.write("Time,Carbon Intensity\n")
        for h in range(-72, 73):
            t = now + dt.timedelta(hours=h)
            f.write(f"{t:%Y-%m-%d %H:%M:%S},{g_per_kwh!r}\n")


def write_config(path: str, *, store: str, series_file: str, admin_token_file: str,
                 lease_timeout_seconds: int, heartbeat_interval_ms: int) -> None:
    """deploy/config/demo.yaml with real time, a fast tick, token auth, the
    test's zone series and agent lease; paths made absolute."""
    with open(DEMO_CONFIG, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    base = os.path.dirname(DEMO_CONFIG)

    def absolute(p):
        return p if not p or os.path.isabs(p) else os.path.normpath(os.path.join(base, p))

    data = cfg["data"]
    for c in data["catalogs"]:
        for k in ("file", "host_file"):
            if k in c:
                c[k] = absolute(c[k])
    for k in ("gpu_power", "gpu_overrides", "region_carbon", "region_zones"):
        data[k] = absolute(data[k])
    for s in data["carbon_series"]:
        s["file"] = absolute(s["file"])
    data["carbon_series"].append({"zone": ZONE, "file": series_file})
    data["align_series_to_now"] = False  # the test series covers now as it is
    cfg["clock"] = {"time_scale": 1, "tick_ms": 100}
    cfg["store"] = {"path": store, "synchronous": "full"}  # greenlightd also gets --store
    cfg["server"]["log_level"] = "info"
    cfg["agents"] = {"lease_timeout_seconds": lease_timeout_seconds,
                     "heartbeat_interval_ms": heartbeat_interval_ms}
    cfg["auth"] = {"mode": "token", "admin_token_file": admin_token_file}
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)


class FakeNvml:
    """One node's fake NVML state file; counters only move when the test says."""

    def __init__(self, path: str, gpus: int = GPUS_PER_NODE, node: str = "n"):
        self.path = path
        self.energy_mj = [1_000_000_000 + 17 * i for i in range(gpus)]  # mJ since "driver load"
        self.node = node
        self._lock = threading.Lock()
        self.write()

    def write(self) -> None:
        lines = ["# index uuid name memory_mib power_limit_mw energy_mj power_mw util_pct"]
        for i, e in enumerate(self.energy_mj):
            lines.append(f"{i} GPU-{self.node}-{i:04d} NVIDIA-A100-SXM4-40GB 40960 400000 {e} 250000 87")
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.path)  # the library re-reads it on every call: never half-written

    def add_wh(self, indices, wh_per_gpu: float) -> None:
        """Advances the energy counters of these GPUs by wh_per_gpu each."""
        mj = int(round(wh_per_gpu * MJ_PER_WH))
        assert mj == wh_per_gpu * MJ_PER_WH, "use Wh that are whole mJ"
        with self._lock:
            for i in indices:
                self.energy_mj[i] += mj
            self.write()


def proc_environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def proc_start_ticks(pid: int):
    """Field 22 of /proc/<pid>/stat, or None when the pid is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def proc_pgid(pid: int):
    """Field 5 of /proc/<pid>/stat (the process group), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[2])


def pids_with_env(entry: str) -> dict[int, int]:
    """{pid: start_ticks} of the live processes whose environment holds `entry` (NAME=value)."""
    want = entry.encode() + b"\0"
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        env = b"\0" + proc_environ(pid)
        if b"\0" + want in env:
            ticks = proc_start_ticks(pid)
            if ticks is not None:
                out[pid] = ticks
    return out


def alive(pids: dict[int, int]) -> dict[int, int]:
    """Those of `pids` still running (same start time: not a reused pid)."""
    return {p: t for p, t in pids.items() if proc_start_ticks(p) == t}


def read_kv(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) == 2:
                out[parts[0]] = parts[1].strip()
    return out


def wait_for(what: str, fn, timeout: float, interval: float = 0.05, diag=None):
    """Polls fn until it returns something truthy; fails with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            extra = diag() if diag else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n{extra}")
        time.sleep(interval)


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies (PR_SET_PDEATHSIG)."""
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def kill_marked(entry: str, timeout: float = 20.0) -> None:
    """SIGKILLs every process whose environment holds `entry`, until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = pids_with_env(entry)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


class Agent:
    def __init__(self, cluster: "Cluster", node: str, pool: str, token_file: str):
        self.cluster = cluster
        self.node = node
        self.pool = pool
        self.token_file = token_file
        self.state_dir = os.path.join(cluster.agents_dir, node)
        self.nvml = FakeNvml(os.path.join(cluster.workdir, f"nvml-{node}.txt"), node=node)
        self.log_path = os.path.join(cluster.workdir, f"agent-{node}.log")
        self.proc = None
        self.starts = 0

    def command(self) -> list[str]:
        return [
            AGENT_BIN,
            f"--server={self.cluster.server.target}",
            f"--token-file={self.token_file}",
            f"--pool={self.pool}",
            f"--node={self.node}",
            f"--state-dir={self.state_dir}",
            f"--nvml={NVML_LIB}",
            "--run-as=nobody",
            "--heartbeat-interval=200ms",
            "--report-interval=1s",
            "--grace=2s",
        ]

    def start(self) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "GREENLIGHT_FAKE_NVML_FILE": self.nvml.path,
            "GL_E2E_MARKER": self.cluster.marker,
            "GL_E2E_SESSION": SESSION_MARKER.split("=", 1)[1],
        }
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                         preexec_fn=_die_with_parent)

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def log(self, start_only_last: bool = False) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        if start_only_last:
            text = text[text.rfind("\n=== start "):]
        return text

    def job_dir(self, job_id: str) -> str:
        return os.path.join(self.state_dir, "jobs", job_id)

    def work_dir(self, job_id: str) -> str:
        return os.path.join(self.job_dir(job_id), "work")

    def release(self, job_id: str) -> None:
        """Creates the file the test jobs wait for in their working dir."""
        open(os.path.join(self.work_dir(job_id), "release"), "w").close()

    def process_record(self, job_id: str) -> dict[str, str]:
        return read_kv(os.path.join(self.job_dir(job_id), "process"))


class Cluster:
    def __init__(self, workdir: str, *, lease_timeout_seconds: int = 3, heartbeat_interval_ms: int = 200):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.marker = uuid.uuid4().hex
        # Jobs run as nobody: their work dirs must be reachable by it, which
        # pytest's 0700 tmp dirs are not. A dir of its own under /tmp, 0711.
        self.agents_dir = tempfile.mkdtemp(prefix="gl-agents-e2e-")
        os.chmod(self.agents_dir, 0o711)
        self.intensity = es_intensity()
        series = os.path.join(workdir, "zone-series.csv")
        write_constant_series(series, self.intensity)
        self.admin_secret = "adm-" + uuid.uuid4().hex + uuid.uuid4().hex
        admin_file = os.path.join(workdir, "admin.token")
        with open(admin_file, "w") as f:
            f.write(self.admin_secret + "\n")
        os.chmod(admin_file, 0o600)
        self.config = os.path.join(workdir, "greenlightd.yaml")
        self.server = Greenlightd(GREENLIGHTD_BIN, self.config, os.path.join(workdir, "greenlightd"))
        write_config(self.config, store=self.server.store, series_file=series, admin_token_file=admin_file,
                     lease_timeout_seconds=lease_timeout_seconds, heartbeat_interval_ms=heartbeat_interval_ms)
        self.agents: dict[str, Agent] = {}
        self.channel = None
        self._watchers = []

    # ---- lifecycle -------------------------------------------------------

    def start_server(self) -> None:
        self.server.start()
        self._connect()

    def _connect(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = grpc.insecure_channel(self.server.target, options=[
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 300)])
        self.sched = scheduler_pb2_grpc.SchedulerStub(self.channel)
        self.budgets = budgets_pb2_grpc.BudgetsStub(self.channel)
        self.inv = inventory_pb2_grpc.InventoryStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)
        self.agent_api = executor_pb2_grpc.AgentServiceStub(self.channel)

    def restart_server(self, kill: bool = True) -> None:
        self.server.restart(kill=kill)
        self._connect()

    def md(self, secret: str | None = None):
        return [("authorization", f"Bearer {secret or self.admin_secret}")]

    def upsert_pool(self, pool_id: str = POOL_ID, region: str = POOL_REGION) -> None:
        pool = S.NodePool(
            id=pool_id, provider="onprem", region=region, grid_zone=ZONE, instance_type="box",
            gpu_type="A100", gpus_per_node=GPUS_PER_NODE,
            price_micros_per_node_hour=PRICE_MICROS_PER_NODE_HOUR, gpu_power_w=GPU_POWER_W,
            pue=PUE, executor=S.POOL_EXECUTOR_AGENT)
        self.inv.UpsertPools(inventory_pb2.UpsertPoolsRequest(pools=[pool]), metadata=self.md(), timeout=20)

    def create_token(self, *, agent_pool: str = "", team: str = "") -> str:
        resp = self.admin.CreateToken(
            admin_pb2.CreateTokenRequest(agent_pool=agent_pool, team=team, description="agents e2e"),
            metadata=self.md(), timeout=20)
        return resp.secret

    def token_file(self, name: str, secret: str) -> str:
        path = os.path.join(self.workdir, f"{name}.token")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return path

    def add_agent(self, node: str, pool: str = POOL_ID, start: bool = True) -> Agent:
        secret = self.create_token(agent_pool=pool)
        agent = Agent(self, node, pool, self.token_file(f"agent-{node}", secret))
        self.agents[node] = agent
        if start:
            agent.start()
        return agent

    def set_team(self, name: str) -> None:
        team = S.Team(name=name, monthly_cost_budget_micros=10**12, monthly_carbon_budget_mg=10**12)
        self.budgets.SetTeam(budgets_pb2.SetTeamRequest(team=team), metadata=self.md(), timeout=20)

    def teardown(self) -> None:
        for w in self._watchers:
            w.cancel()
        for a in self.agents.values():
            if a.proc and a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait(timeout=20)
        self.server.stop(signal.SIGKILL)
        # Supervisors and jobs (and any agent restarted by hand): by marker.
        kill_marked(f"GL_E2E_MARKER={self.marker}")
        if self.channel is not None:
            self.channel.close()
        shutil.rmtree(self.agents_dir, ignore_errors=True)

    # ---- reads -----------------------------------------------------------

    def pools(self) -> dict[str, S.NodePool]:
        resp = self.inv.ListPools(inventory_pb2.ListPoolsRequest(), metadata=self.md(), timeout=20)
        return {p.id: p for p in resp.pools}

    def node(self, name: str, pool: str = POOL_ID):
        for n in self.pools()[pool].agent_nodes:
            if n.name == name:
                return n
        return None

    def wait_ready(self, *names: str, after: float = 0.0, timeout: float = 30.0) -> None:
        """Until each node is READY with a heartbeat later than `after` (unix seconds)."""
        def ready():
            for name in names:
                n = self.node(name, self.agents[name].pool)
                if n is None or n.state != S.NODE_STATE_READY:
                    return False
                if n.last_heartbeat.seconds + n.last_heartbeat.nanos / 1e9 <= after:
                    return False
            return True
        wait_for(f"nodes {names} READY", ready, timeout, diag=self.diagnostics)

    def job(self, job_id: str) -> S.Job:
        return self.sched.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id), metadata=self.md(), timeout=20).job

    def wait_job(self, job_id: str, states, timeout: float = 30.0) -> S.Job:
        states = set(states)
        return wait_for(f"job {job_id} in {[S.JobState.Name(s) for s in states]}",
                        lambda: (lambda j: j if j.state in states else None)(self.job(job_id)),
                        timeout, diag=lambda: self.diagnostics(job_id))

    def usage(self, team: str) -> S.Usage:
        return self.budgets.GetUsage(budgets_pb2.GetUsageRequest(team=team), metadata=self.md(), timeout=20).usage

    def server_now(self) -> float:
        t = self.sched.Ping(scheduler_pb2.PingRequest(), timeout=20).server_time
        return t.seconds + t.nanos / 1e9

    def ledger(self, job_id: str) -> list[dict]:
        """The job's budget ledger rows, read from greenlightd's SQLite store
        (read-only; the API exposes only the team totals)."""
        db = sqlite3.connect(f"file:{self.server.store}?mode=ro", uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(
                "SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))]
        finally:
            db.close()

    def diagnostics(self, job_id: str | None = None) -> str:
        parts = []
        if job_id:
            try:
                j = self.job(job_id)
                parts.append(f"job {job_id}: {S.JobState.Name(j.state)} node={j.node!r} message={j.message!r}")
            except grpc.RpcError as e:
                parts.append(f"job {job_id}: {e.code().name} {e.details()}")
        parts.append("--- greenlightd log (tail) ---\n" + self.server.log(40))
        for a in self.agents.values():
            parts.append(f"--- agent {a.node} log (tail) ---\n" + "".join(a.log().splitlines(True)[-25:]))
        return "\n".join(parts)

    # ---- jobs ------------------------------------------------------------

    def spec(self, team: str, script: str, *, name: str = "e2e", checkpointable: bool = False,
             max_carbon_mg: int = 0, region: str = POOL_REGION, duration_s: int = 60,
             env: dict | None = None) -> S.JobSpec:
        """A one-GPU job that runs `script` with /bin/sh, placed to start now:
        CHEAPEST, on the agent pool's region, deadline = now + duration + 2 min."""
        spec = S.JobSpec(team=team, name=name, gpus=1, regions=[region],
                         mode=S.PLACEMENT_MODE_CHEAPEST, checkpointable=checkpointable,
                         max_carbon_mg=max_carbon_mg)
        spec.duration.seconds = duration_s
        spec.deadline.seconds = int(self.server_now()) + duration_s + 120
        spec.command.argv.extend(["/bin/sh", "-c", script])
        spec.command.env["GL_E2E_MARKER"] = self.marker
        spec.command.env["GL_E2E_SESSION"] = SESSION_MARKER.split("=", 1)[1]
        for k, v in (env or {}).items():
            spec.command.env[k] = v
        return spec

    def submit(self, spec: S.JobSpec) -> S.Job:
        return self.sched.SubmitJob(scheduler_pb2.SubmitJobRequest(spec=spec), metadata=self.md(), timeout=20).job

    def cancel(self, job_id: str, reason: str = "") -> S.Job:
        return self.sched.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job_id, reason=reason),
                                    metadata=self.md(), timeout=20).job

    def watch(self, job_id: str) -> "Watch":
        w = Watch(self, job_id)
        self._watchers.append(w)
        return w

    def job_pids(self, job_id: str) -> dict[int, int]:
        return pids_with_env(f"GREENLIGHT_JOB_ID={job_id}")


class Watch:
    """The job's state changes as WatchJobs delivers them (a background thread)."""

    def __init__(self, cluster: Cluster, job_id: str):
        self.events = []
        self._lock = threading.Lock()
        self._call = cluster.sched.WatchJobs(
            scheduler_pb2.WatchJobsRequest(from_revision=0, job_id=job_id), metadata=cluster.md())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for ev in self._call:
                with self._lock:
                    self.events.append(ev)
        except grpc.RpcError:
            pass

    def cancel(self):
        self._call.cancel()

    def states(self) -> list[int]:
        """The job's states in order, consecutive repeats merged."""
        out = []
        with self._lock:
            for ev in self.events:
                if not out or out[-1] != ev.state:
                    out.append(ev.state)
        return out

    def names(self) -> list[str]:
        return [S.JobState.Name(s) for s in self.states()]


def is_subsequence(want, have) -> bool:
    it = iter(have)
    return all(any(x == y for y in it) for x in want)


def expected_carbon_mg(gpu_wh: float, pue: float, g_per_kwh: float) -> float:
    # Wh x PUE -> facility Wh; / 1000 -> kWh; x g/kWh -> g; x 1000 -> mg.
    return gpu_wh * pue / 1000.0 * g_per_kwh * 1000.0


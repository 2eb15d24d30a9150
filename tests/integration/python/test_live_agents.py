"""The client and CLI against greenlightd with a real greenlight-agent (issue 14):
an agent token made by Client.create_token, a job submitted with
`greenlight submit ... -- python3 train_checkpoint.py`, run by the agent as a
real process (as nobody) with energy from the fake NVML library, and what
`greenlight get` and `greenlight pools` then show. The cluster (greenlightd in
token mode at real time, the AGENT pool, the agent) is the one of the agent
end-to-end tests, tests/integration/agents/cluster.py."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

import greenlight
from conftest import CLIENT_DIR, ROOT

pytestmark = pytest.mark.live

AGENTS_TESTS = os.path.join(ROOT, "tests", "integration", "agents")
sys.path.insert(0, AGENTS_TESTS)

from paths import AGENT_BIN, BIN_REQUIRED, GREENLIGHTD_BIN, NVML_LIB  # noqa: E402
from cluster import POOL_ID, POOL_REGION, Agent, Cluster, S, wait_for  # noqa: E402

PY = "/usr/bin/python3"
NODE = "py-agent-a"


@pytest.fixture
def agent_cluster(tmp_path):
    missing = [p for p in (GREENLIGHTD_BIN, AGENT_BIN, NVML_LIB) if not os.path.exists(p)]
    if missing:
        msg = f"not built: {', '.join(missing)}"
        if BIN_REQUIRED:
            pytest.fail(msg)
        pytest.skip(msg)
    if os.geteuid() != 0:
        pytest.skip("the agent must run as root to run jobs as another user (--run-as nobody)")
    c = Cluster(str(tmp_path / "cluster"))
    try:
        c.start_server()
        c.upsert_pool()
        with greenlight.Client(c.server.target, token=c.admin_secret, timeout=20) as admin:
            token = admin.create_token(agent_pool=POOL_ID, description="python client live test")
            assert token.agent_pool == POOL_ID and token.secret and not token.team
            c.gl = admin
            agent = Agent(c, NODE, POOL_ID, c.token_file(f"agent-{NODE}", token.secret))
            c.agents[NODE] = agent
            agent.start()
            c.wait_ready(NODE)
            # Jobs run as nobody: the script goes where nobody can read it.
            c.script = os.path.join(c.agents_dir, "train_checkpoint.py")
            shutil.copy(os.path.join(CLIENT_DIR, "examples", "train_checkpoint.py"), c.script)
            os.chmod(c.script, 0o644)
            c.team = f"py-{uuid.uuid4().hex[:8]}"
            admin.set_team(c.team, monthly_cost_budget_usd=1000, monthly_carbon_budget_kg=1000)
            yield c
    finally:
        c.teardown()


def cli(c, client_env, *args):
    env = dict(client_env, GREENLIGHT_TARGET=c.server.target, GREENLIGHT_TOKEN=c.admin_secret)
    return subprocess.run(
        [PY, "-m", "greenlight", "--timeout", "20", *args], env=env, capture_output=True, text=True, timeout=60
    )


def submit_training(c, client_env, *train_args):
    proc = cli(
        c, client_env,
        "-o", "id", "submit", "--team", c.team, "--gpus", "1", "--duration", "2m", "--region", POOL_REGION,
        "--mode", "cheapest", "--deadline", "+10m", "--checkpointable",
        "--env", f"GL_E2E_MARKER={c.marker}", "--workdir", "run",
        "--", PY, c.script, *train_args,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def test_agent_runs_the_submitted_command_and_the_cli_shows_it(agent_cluster, client_env):
    c = agent_cluster
    job_id = submit_training(c, client_env, "--steps", "20", "--step-time", "0.05", "--checkpoint-every", "5")
    c.wait_job(job_id, [S.JOB_STATE_SUCCEEDED], timeout=60)
    job = c.gl.get(job_id)
    assert job.state is greenlight.JobState.SUCCEEDED, job.message
    assert job.spec.command == [PY, c.script, "--steps", "20", "--step-time", "0.05", "--checkpoint-every", "5"]
    assert job.spec.working_dir == "run" and job.spec.env == {"GL_E2E_MARKER": c.marker}
    assert job.node == NODE and len(job.gpu_indices) == 1
    assert job.energy_measured and job.energy_basis == "measured"  # the fake NVML counters

    work = os.path.join(c.agents[NODE].work_dir(job_id), "run")
    with open(os.path.join(work, "checkpoint.json")) as f:
        ckpt = json.load(f)
    assert ckpt["step"] == 20 and ckpt["done"] and ckpt["job_id"] == job_id
    with open(os.path.join(c.agents[NODE].job_dir(job_id), "stdout.log")) as f:
        log = f.read()
    assert f"[{job_id}] step 20/20 " in log and f"[{job_id}] done: 20 steps" in log

    proc = cli(c, client_env, "get", job_id)
    assert proc.returncode == 0, proc.stderr
    shown = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)}
    assert shown["state"] == "SUCCEEDED" and shown["node"] == f"{NODE} (GPUs {job.gpu_indices[0]})"
    assert shown["command"].startswith(f"{PY} {c.script} --steps 20")
    assert shown["env"] == "GL_E2E_MARKER" and c.marker not in proc.stdout
    assert "measured by the node's GPU counters" in shown["energy"]

    proc = cli(c, client_env, "pools", "--region", "e2e-1")
    assert proc.returncode == 0, proc.stderr
    node_line = next(line for line in proc.stdout.splitlines() if line.split()[1:2] == [NODE])
    assert "READY" in node_line and "measured" in node_line
    pools = {p.id: p for p in c.gl.list_pools()}
    assert pools[POOL_ID].is_agent and [n.name for n in pools[POOL_ID].agent_nodes] == [NODE]
    assert pools[POOL_ID].agent_nodes[0].last_heartbeat is not None


def test_cancel_stops_the_script_which_checkpoints_first(agent_cluster, client_env):
    c = agent_cluster
    job_id = submit_training(c, client_env, "--steps", "100000", "--step-time", "0.02", "--checkpoint-every", "10")
    c.wait_job(job_id, [S.JOB_STATE_RUNNING], timeout=30)
    work = os.path.join(c.agents[NODE].work_dir(job_id), "run")
    ckpt_path = os.path.join(work, "checkpoint.json")
    wait_for("a first checkpoint", lambda: os.path.exists(ckpt_path), 30, diag=lambda: c.diagnostics(job_id))
    assert c.gl.cancel(job_id, reason="python client test").state is greenlight.JobState.CANCELLED
    # The stop order (SIGTERM) reaches the agent within a heartbeat; the script
    # finishes its step, writes a checkpoint and exits 143.
    log_path = os.path.join(c.agents[NODE].job_dir(job_id), "stdout.log")

    def stopped():
        with open(log_path) as f:
            log = f.read()
        return log if "stopped by SIGTERM" in log else None

    log = wait_for("the script to say it stopped", stopped, 30, diag=lambda: c.diagnostics(job_id))
    wait_for("the job's processes to be gone", lambda: not c.job_pids(job_id), 30, diag=lambda: c.diagnostics(job_id))
    with open(ckpt_path) as f:
        ckpt = json.load(f)
    assert ckpt["done"] is False and 10 <= ckpt["step"] < 100000
    assert f"stopped by SIGTERM at step {ckpt['step']}/100000" in log

"""End to end: greenlightd with real greenlight-agent processes running real
jobs (as nobody) on loopback, energy measured by the fake NVML library whose
counters the test advances, so the test knows the exact Wh a job used.

Every test gets its own cluster (conftest.make_cluster): greenlightd in token
mode at real time (clock.time_scale 1, tick 100 ms, agent heartbeat 200 ms,
lease 3 s; 15 s in the tests that restart greenlightd or an agent), the AGENT pool onprem/e2e-1/box (2 GPUs per node, PUE 1.5, grid zone
XE2E whose series is one constant, real intensity), and its agents. Jobs wait
for a `release` file in their working dir, which the test creates once it has
advanced the counters: no job ends on a timer.
"""

from __future__ import annotations

import math
import os
import pwd
import signal

import grpc
import pytest

from cluster import (
    OTHER_POOL_ID,
    OTHER_REGION,
    POOL_ID,
    PUE,
    TERMINAL,
    S,
    alive,
    expected_carbon_mg,
    is_subsequence,
    proc_pgid,
    read_kv,
    wait_for,
)
from greenlight.v1 import executor_pb2

WAIT_FOR_RELEASE = "while [ ! -e release ]; do sleep 0.1; done"


def accrue_rows(cluster, job_id, *, final_kind="settle", timeout=15):
    """The job's accrue rows, once its closing row (settle/release) is stored."""
    def closed():
        rows = cluster.ledger(job_id)
        return rows if any(r["kind"] == final_kind for r in rows) else None
    rows = wait_for(f"ledger row '{final_kind}' of {job_id}", closed, timeout,
                    diag=lambda: cluster.diagnostics(job_id))
    return [r for r in rows if r["kind"] == "accrue"]


def assert_carbon_is_measured_energy(cluster, job, rows, gpu_wh):
    """Ledger carbon = measured Wh x PUE x the zone's intensity, up to 1 mg
    of rounding per ledger row; and the job, the ledger and the team agree."""
    want = expected_carbon_mg(gpu_wh, PUE, cluster.intensity)
    carbon = sum(r["carbon_spent_mg"] for r in rows)
    assert abs(carbon - want) <= len(rows), (carbon, want, rows)
    assert carbon == job.accrued_carbon_mg
    energy_mwh = sum(r["energy_spent_mwh"] for r in rows)
    assert abs(energy_mwh - gpu_wh * PUE * 1000) <= len(rows), (energy_mwh, rows)
    assert math.isclose(job.accrued_energy_wh, energy_mwh / 1000, abs_tol=1e-9)
    assert math.isclose(job.measured_energy_wh, gpu_wh, abs_tol=1e-9)
    assert job.energy_measured
    assert all(r["reason"] == "running; energy measured" for r in rows), rows


def wait_states(watch, last, timeout=15):
    wait_for(f"WatchJobs to deliver {S.JobState.Name(last)}",
             lambda: watch.states() and watch.states()[-1] == last, timeout,
             diag=lambda: str(watch.names()))
    return watch.states()


def wait_gone(cluster, pids, job_id, timeout=20):
    wait_for(f"processes {sorted(pids)} of {job_id} to be gone", lambda: not alive(pids), timeout,
             diag=lambda: cluster.diagnostics(job_id))
    wait_for(f"no process of {job_id} left", lambda: not cluster.job_pids(job_id), timeout,
             diag=lambda: cluster.diagnostics(job_id))


def start_job(cluster, spec, node=None, timeout=30):
    job = cluster.submit(spec)
    watch = cluster.watch(job.id)
    job = cluster.wait_job(job.id, [S.JOB_STATE_RUNNING], timeout=timeout)
    if node is not None:
        assert job.node == node
    return job, watch, cluster.agents[job.node]


def test_job_runs_its_command_as_nobody_and_is_charged_on_measured_energy(cluster):
    cluster.set_team("e2e-run")
    script = ('echo "hello from $GREENLIGHT_JOB_ID"; '
              'printf "%s\\n%s\\n%s\\n" "$GREENLIGHT_JOB_ID" "$CUDA_VISIBLE_DEVICES" "$(id -u)" > info.tmp; '
              'mv info.tmp info; ' + WAIT_FOR_RELEASE)
    job, watch, agent = start_job(cluster, cluster.spec("e2e-run", script))
    info_path = os.path.join(agent.work_dir(job.id), "info")
    wait_for("the job to write its info file", lambda: os.path.exists(info_path), 15,
             diag=lambda: cluster.diagnostics(job.id))
    agent.nvml.add_wh(job.gpu_indices, 10.0)
    agent.release(job.id)
    job = cluster.wait_job(job.id, TERMINAL)
    assert job.state == S.JOB_STATE_SUCCEEDED, job.message
    states = wait_states(watch, S.JOB_STATE_SUCCEEDED)
    assert is_subsequence([S.JOB_STATE_STARTING, S.JOB_STATE_RUNNING, S.JOB_STATE_SUCCEEDED], states), watch.names()

    job_id_seen, cuda, uid = open(info_path).read().splitlines()
    assert job_id_seen == job.id
    assert len(job.gpu_indices) == 1
    assert cuda == ",".join(str(i) for i in job.gpu_indices)
    assert int(uid) != 0
    assert int(uid) == pwd.getpwnam("nobody").pw_uid

    rows = accrue_rows(cluster, job.id)
    assert_carbon_is_measured_energy(cluster, job, rows, gpu_wh=10.0)
    usage = cluster.usage("e2e-run")
    assert usage.carbon_spent_mg == job.accrued_carbon_mg
    assert usage.cost_spent_micros == job.accrued_cost_micros == sum(r["cost_spent_micros"] for r in rows)
    assert job.accrued_cost_micros > 0  # wall time on the pool's price
    assert usage.cost_reserved_micros == 0 and usage.carbon_reserved_mg == 0

    stdout = open(os.path.join(agent.job_dir(job.id), "stdout.log")).read()
    assert f"hello from {job.id}\n" in stdout
    wait_for(f"no process of {job.id} left", lambda: not cluster.job_pids(job.id), 15)


def test_cancel_kills_the_whole_process_tree(cluster):
    cluster.set_team("e2e-cancel")
    job, watch, agent = start_job(cluster, cluster.spec("e2e-cancel", "sleep 1000 & sleep 1000 & wait"))
    # sh and its two sleeps, all in the job's process group.
    pids = wait_for("sh and its two sleeps", lambda: (lambda p: p if len(p) == 3 else None)(cluster.job_pids(job.id)),
                    15, diag=lambda: cluster.diagnostics(job.id))
    pgid = int(agent.process_record(job.id)["pgid"])
    assert {proc_pgid(p) for p in pids} == {pgid}

    cancelled = cluster.cancel(job.id, "e2e test")
    assert cancelled.state == S.JOB_STATE_CANCELLED
    wait_gone(cluster, pids, job.id)
    exit_rec = wait_for("the supervisor's exit record", lambda: os.path.exists(os.path.join(agent.job_dir(job.id), "exit")), 15)
    assert exit_rec
    assert "signal" in read_kv(os.path.join(agent.job_dir(job.id), "exit"))
    job = cluster.job(job.id)
    assert job.state == S.JOB_STATE_CANCELLED
    assert "e2e test" in job.message
    assert S.JOB_STATE_RUNNING in watch.states()


def test_carbon_cap_reached_on_measured_energy_stops_the_job(cluster):
    cluster.set_team("e2e-cap")
    cap_mg = 5000  # the quote (300 W modelled for 1 min: ~1 g) fits; 40 measured Wh (~8 g) does not
    spec = cluster.spec("e2e-cap", "sleep 1000 & " + WAIT_FOR_RELEASE, max_carbon_mg=cap_mg)
    job, watch, agent = start_job(cluster, spec)
    pids = wait_for("the job's processes", lambda: (lambda p: p if len(p) >= 2 else None)(cluster.job_pids(job.id)), 15)
    assert expected_carbon_mg(40.0, PUE, cluster.intensity) > cap_mg
    agent.nvml.add_wh(job.gpu_indices, 40.0)
    job = cluster.wait_job(job.id, TERMINAL, timeout=20)
    assert job.state == S.JOB_STATE_BUDGET_EXHAUSTED, job.message
    assert "carbon" in job.message and "cap" in job.message, job.message
    rows = accrue_rows(cluster, job.id, final_kind="release")
    assert cap_mg - len(rows) <= job.accrued_carbon_mg <= cap_mg, (job.accrued_carbon_mg, rows)
    assert sum(r["carbon_spent_mg"] for r in rows) == job.accrued_carbon_mg
    assert cluster.usage("e2e-cap").carbon_spent_mg == job.accrued_carbon_mg
    wait_gone(cluster, pids, job.id)
    assert cluster.job(job.id).state == S.JOB_STATE_BUDGET_EXHAUSTED


def kill_like_a_dead_machine(agent, job_ids):
    """kill -9 the agent, the jobs' supervisors and the jobs' process groups,
    until none of the jobs' processes is left."""
    agent.signal(signal.SIGKILL)
    records = [agent.process_record(job_id) for job_id in job_ids]
    for rec in records:
        try:
            os.kill(int(rec["supervisor_pid"]), signal.SIGKILL)
        except ProcessLookupError:
            pass

    def gone():
        left = False
        for job_id, rec in zip(job_ids, records):
            try:
                os.killpg(int(rec["pgid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass
            for pid in agent.cluster.job_pids(job_id):
                left = True
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return not left
    wait_for("the dead machine's job processes to be gone", gone, 15)


def test_lost_node_requeues_checkpointable_jobs_and_fails_the_others(make_cluster):
    cluster = make_cluster(nodes=("e2e-a",), lease_timeout_seconds=3, heartbeat_interval_ms=200)
    cluster.set_team("e2e-lost")
    script = ('echo "${GREENLIGHT_RESUME:-0}" >> resumes; ' + WAIT_FOR_RELEASE)
    ckpt, ckpt_watch, agent_a = start_job(
        cluster, cluster.spec("e2e-lost", script, name="ckpt", checkpointable=True), node="e2e-a")
    plain, plain_watch, _ = start_job(cluster, cluster.spec("e2e-lost", script, name="plain"), node="e2e-a")
    wait_for("both jobs' processes", lambda: cluster.job_pids(ckpt.id) and cluster.job_pids(plain.id), 15)
    # Both have run a while: charged on at least one progress report.
    wait_for("both jobs charged", lambda: all(cluster.job(j.id).accrued_cost_micros > 0 for j in (ckpt, plain)),
             15, diag=lambda: cluster.diagnostics(ckpt.id))
    # Nodes to move to, registered only now so that both jobs ran on e2e-a.
    cluster.add_agent("e2e-b")
    cluster.add_agent("e2e-c")
    cluster.wait_ready("e2e-b", "e2e-c")

    kill_like_a_dead_machine(agent_a, [ckpt.id, plain.id])

    wait_for("e2e-a NODE_STATE_LOST in ListPools",
             lambda: (lambda n: n is not None and n.state == S.NODE_STATE_LOST)(cluster.node("e2e-a")),
             20, diag=cluster.diagnostics)

    plain = cluster.wait_job(plain.id, TERMINAL, timeout=20)
    assert plain.state == S.JOB_STATE_FAILED, plain.message
    assert "node_lost" in plain.message, plain.message

    def running_elsewhere():
        j = cluster.job(ckpt.id)
        return j if j.state == S.JOB_STATE_RUNNING and j.node not in ("", "e2e-a") else None
    moved = wait_for("the checkpointable job RUNNING on another node", running_elsewhere, 30,
                     diag=lambda: cluster.diagnostics(ckpt.id))
    agent_b = cluster.agents[moved.node]
    resumes = os.path.join(agent_b.work_dir(ckpt.id), "resumes")
    wait_for("the resumed run to start", lambda: os.path.exists(resumes), 15)
    assert open(resumes).read() == "1\n"  # GREENLIGHT_RESUME=1 on the resumed run
    agent_b.release(ckpt.id)
    done = cluster.wait_job(ckpt.id, TERMINAL, timeout=20)
    assert done.state == S.JOB_STATE_SUCCEEDED, done.message
    assert done.node == moved.node
    states = wait_states(ckpt_watch, S.JOB_STATE_SUCCEEDED)
    assert is_subsequence([S.JOB_STATE_RUNNING, S.JOB_STATE_PENDING, S.JOB_STATE_RUNNING,
                           S.JOB_STATE_SUCCEEDED], states), ckpt_watch.names()
    assert cluster.node("e2e-a").state == S.NODE_STATE_LOST  # nothing runs there any more


def test_greenlightd_kill9_and_restart_keeps_the_job_running_and_charges_once(make_cluster):
    # The default lease (15 s), not 3 s: this test is about the restart. The
    # agent's gRPC reconnect backoff (up to 5 s) can outlast a 3 s lease after
    # greenlightd comes back, and the node is then lost (seen: reconnected
    # 3.3 s after greenlightd served again, job FAILED node_lost).
    cluster = make_cluster(nodes=("e2e-a",), lease_timeout_seconds=15)
    cluster.set_team("e2e-restart")
    job, watch, agent = start_job(cluster, cluster.spec("e2e-restart", "echo run >> runs; " + WAIT_FOR_RELEASE))
    pid = int(agent.process_record(job.id)["pid"])
    agent.nvml.add_wh(job.gpu_indices, 4.0)
    wait_for("4 Wh charged", lambda: cluster.job(job.id).measured_energy_wh == 4.0, 15,
             diag=lambda: cluster.diagnostics(job.id))

    answers = agent.log().count('"greenlightd answers again"')
    cluster.server.kill()
    cluster.restart_server()
    # A real heartbeat reached the new greenlightd (ListPools' last_heartbeat
    # is set at its first tick, before any heartbeat came).
    wait_for("the agent to reach the restarted greenlightd",
             lambda: agent.log().count('"greenlightd answers again"') > answers, 30,
             diag=lambda: cluster.diagnostics(job.id))
    cluster.wait_ready("e2e-a")
    j = cluster.job(job.id)
    assert j.state == S.JOB_STATE_RUNNING and j.node == "e2e-a", (S.JobState.Name(j.state), j.message)
    assert int(agent.process_record(job.id)["pid"]) == pid  # the same process goes on
    assert pid in cluster.job_pids(job.id)

    agent.nvml.add_wh(job.gpu_indices, 6.0)
    agent.release(job.id)
    job = cluster.wait_job(job.id, TERMINAL)
    assert job.state == S.JOB_STATE_SUCCEEDED, job.message
    assert open(os.path.join(agent.work_dir(job.id), "runs")).read() == "run\n"  # ran exactly once

    rows = accrue_rows(cluster, job.id)
    assert_carbon_is_measured_energy(cluster, job, rows, gpu_wh=10.0)
    all_rows = cluster.ledger(job.id)
    assert [r["kind"] for r in all_rows].count("reserve") == 1
    assert [r["kind"] for r in all_rows].count("settle") == 1
    assert sum(r["cost_spent_micros"] for r in rows) == job.accrued_cost_micros
    usage = cluster.usage("e2e-restart")
    assert usage.cost_spent_micros == job.accrued_cost_micros
    assert usage.carbon_spent_mg == job.accrued_carbon_mg
    assert math.isclose(usage.energy_spent_wh, job.accrued_energy_wh, abs_tol=1e-6)
    assert usage.cost_reserved_micros == 0 and usage.carbon_reserved_mg == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill9"])
def test_restarted_agent_readopts_its_running_job(make_cluster, sig):
    cluster = make_cluster(nodes=("e2e-a",), lease_timeout_seconds=15)  # about adoption, not the lease
    cluster.set_team("e2e-adopt")
    job, watch, agent = start_job(cluster, cluster.spec("e2e-adopt", "echo run >> runs; " + WAIT_FOR_RELEASE))
    pid = int(agent.process_record(job.id)["pid"])
    agent.nvml.add_wh(job.gpu_indices, 4.0)
    wait_for("4 Wh charged", lambda: cluster.job(job.id).measured_energy_wh == 4.0, 15,
             diag=lambda: cluster.diagnostics(job.id))

    agent.signal(sig)
    assert pid in cluster.job_pids(job.id)  # the supervisor keeps the job running
    agent.start()
    wait_for("the new agent to re-adopt the job",
             lambda: f'"re-adopted a running job" job={job.id}' in agent.log(start_only_last=True), 15,
             diag=lambda: cluster.diagnostics(job.id))
    agent.nvml.add_wh(job.gpu_indices, 6.0)  # measured by the new agent's meter
    agent.release(job.id)
    job = cluster.wait_job(job.id, TERMINAL)
    assert job.state == S.JOB_STATE_SUCCEEDED, job.message
    assert open(os.path.join(agent.work_dir(job.id), "runs")).read() == "run\n"  # ran once
    states = wait_states(watch, S.JOB_STATE_SUCCEEDED)
    assert states[states.index(S.JOB_STATE_RUNNING):] == [S.JOB_STATE_RUNNING, S.JOB_STATE_SUCCEEDED], watch.names()
    rows = accrue_rows(cluster, job.id)
    assert_carbon_is_measured_energy(cluster, job, rows, gpu_wh=10.0)


# ---------------------------------------------------------------------------
# Bad input at the Executor API, with the generated stubs directly.

def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


def gpus(n=2):
    return [S.GpuDevice(index=i, uuid=f"GPU-fake-{i}", name="NVIDIA-A100-SXM4-40GB") for i in range(n)]


def report(job_id, kind, seq, energy=None, **kw):
    r = executor_pb2.JobReport(job_id=job_id, kind=kind, sequence=seq, **kw)
    for i, wh in enumerate(energy or []):
        r.energy.add(index=i, energy_wh=wh)
    return r


def test_executor_api_refuses_bad_input_naming_the_field(make_cluster):
    cluster = make_cluster(nodes=())
    cluster.upsert_pool(OTHER_POOL_ID, OTHER_REGION)
    cluster.set_team("e2e-bad")
    api = cluster.agent_api
    agent_md = cluster.md(cluster.create_token(agent_pool=OTHER_POOL_ID))
    other_agent_md = cluster.md(cluster.create_token(agent_pool=OTHER_POOL_ID))
    team_md = cluster.md(cluster.create_token(team="e2e-bad"))

    def register(node, md, pool=OTHER_POOL_ID):
        return api.RegisterNode(executor_pb2.RegisterNodeRequest(
            node=node, pool_id=pool, hostname="test", gpus=gpus(), agent_version="e2e",
            energy_measured=True), metadata=md, timeout=20)

    def heartbeat(node, md, reports=(), running=()):
        return api.Heartbeat(executor_pb2.HeartbeatRequest(
            node=node, reports=list(reports), running_job_ids=list(running)), metadata=md, timeout=20)

    # A team token cannot act as an agent.
    e = rpc_error(register, "e2e-fake", team_md)
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED and "agent token" in e.details(), e.details()
    e = rpc_error(heartbeat, "e2e-fake", team_md)
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()
    # A pool-bound agent token cannot register a node into another pool.
    e = rpc_error(register, "e2e-fake", agent_md, pool=POOL_ID)
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED and "pool_id" in e.details(), e.details()
    assert not cluster.pools()[POOL_ID].agent_nodes

    register("e2e-fake", agent_md)
    register("e2e-fake2", agent_md)
    # Another agent token cannot heartbeat for (or claim) that node.
    e = rpc_error(heartbeat, "e2e-fake", other_agent_md)
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED and "node" in e.details(), e.details()
    e = rpc_error(heartbeat, "e2e-nobody", agent_md)
    assert e.code() == grpc.StatusCode.NOT_FOUND and "node" in e.details(), e.details()
    # A report for an unknown job.
    e = rpc_error(heartbeat, "e2e-fake", agent_md,
                  [report("j-00000000deadbeef", executor_pb2.JOB_REPORT_KIND_STARTED, 1, pid=1)])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "reports[0].job_id" in e.details(), e.details()

    # A job placed on the fake node: this test is its agent.
    job = cluster.submit(cluster.spec("e2e-bad", "true", region=OTHER_REGION))

    def launched():
        j = cluster.job(job.id)
        return j if j.state == S.JOB_STATE_STARTING and j.node else None
    job = wait_for("the job STARTING on a fake node", launched, 15, diag=lambda: cluster.diagnostics(job.id))
    node = job.node
    other = "e2e-fake2" if node == "e2e-fake" else "e2e-fake"
    resp = heartbeat(node, agent_md)
    assert [a.job_id for a in resp.launch] == [job.id]
    resp = heartbeat(node, agent_md, [report(job.id, executor_pb2.JOB_REPORT_KIND_STARTED, 1, pid=4242)], [job.id])
    assert resp.acknowledged[job.id] == 1
    assert cluster.job(job.id).state == S.JOB_STATE_RUNNING
    resp = heartbeat(node, agent_md, [report(job.id, executor_pb2.JOB_REPORT_KIND_PROGRESS, 2, [2.0, 0.0])], [job.id])
    assert resp.acknowledged[job.id] == 2
    assert cluster.job(job.id).measured_energy_wh == 2.0

    # A report of a job given to another node.
    e = rpc_error(heartbeat, other, agent_md, [report(job.id, executor_pb2.JOB_REPORT_KIND_PROGRESS, 3, [3.0, 0.0])])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "reports[0].job_id" in e.details(), e.details()
    # Energy going backwards.
    e = rpc_error(heartbeat, node, agent_md, [report(job.id, executor_pb2.JOB_REPORT_KIND_PROGRESS, 3, [1.0, 0.0])], [job.id])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "reports[0].energy" in e.details(), e.details()
    assert "backwards" in e.details(), e.details()
    # NaN, infinite and negative energy.
    for bad in (float("nan"), float("inf"), -1.0):
        e = rpc_error(heartbeat, node, agent_md,
                      [report(job.id, executor_pb2.JOB_REPORT_KIND_PROGRESS, 3, [3.0, bad])], [job.id])
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad, e.details())
        assert "reports[0].energy[1].energy_wh" in e.details(), (bad, e.details())
    # Refused whole: a good report next to a bad one applies nothing.
    e = rpc_error(heartbeat, node, agent_md,
                  [report(job.id, executor_pb2.JOB_REPORT_KIND_PROGRESS, 3, [5.0, 0.0]),
                   report(job.id, executor_pb2.JOB_REPORT_KIND_PROGRESS, 4, [float("nan"), 0.0])], [job.id])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "reports[1].energy[0].energy_wh" in e.details(), e.details()
    j = cluster.job(job.id)
    assert j.measured_energy_wh == 2.0 and j.report_sequence == 2 and j.state == S.JOB_STATE_RUNNING

    # The job still works after all that: a cancel's stop order reaches the node.
    cluster.cancel(job.id)
    resp = heartbeat(node, agent_md, running=[job.id])
    assert [s.job_id for s in resp.stop] == [job.id]

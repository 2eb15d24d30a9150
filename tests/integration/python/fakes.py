"""An in-process fake greenlight server built on the generated servicers.

Good enough to exercise the client offline: it stores jobs and teams in
memory, pages ListJobs, streams WatchJobs from an event log, records the
metadata and requests it saw, and can be told to fail the next calls with
given statuses (optionally with grpc-status-details-bin trailers).
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from greenlight import _status
from greenlight.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    budgets_pb2,
    budgets_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
    types_pb2,
)


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str = ""
    details: list = field(default_factory=list)  # messages packed into google.rpc.Status
    sleep: float = 0.0  # sleep before failing (to provoke client deadlines)
    then_succeed_after_sleep: bool = False  # sleep, then answer normally


def make_quote(cost_micros=412_000_000, carbon_mg=35_500_000, feasible=True, summary="chosen: aws/eu-north-1/p4d"):
    q = types_pb2.Quote(feasible=feasible, summary=summary, pools_considered=12)
    chosen = q.chosen
    chosen.pool_id = "aws/eu-north-1/p4d.24xlarge"
    chosen.provider = "aws"
    chosen.region = "eu-north-1"
    chosen.grid_zone = "SE"
    chosen.instance_type = "p4d.24xlarge"
    chosen.gpu_type = "A100"
    chosen.nodes = 1
    chosen.start.FromSeconds(1_750_000_000)
    chosen.end.FromSeconds(1_750_000_000 + 8 * 3600)
    chosen.cost_micros = cost_micros
    chosen.carbon_mg = carbon_mg
    chosen.energy_wh = 32000.5
    chosen.objective_micros = cost_micros + 3_550_000
    chosen.mean_intensity_g_per_kwh = 41.0
    alt = q.alternatives.add()
    alt.CopyFrom(chosen)
    alt.pool_id = "gcp/us-central1/a2-highgpu-8g"
    alt.region = "us-central1"
    alt.cost_micros = cost_micros + 50_000_000
    alt.carbon_mg = carbon_mg * 10
    alt.carbon_estimated = True
    alt.why_not = "+$50.00, +319.5 kg CO2e"
    base = q.baseline
    base.CopyFrom(alt)
    base.why_not = ""
    q.rejections.add(reason="gpu_type", pools=7)
    q.rejections.add(reason="capacity", pools=3)
    return q


def make_agent_pool(pool_id="lab/h100", nodes=(("gpu-01", types_pb2.NODE_STATE_READY, True), ("gpu-02", types_pb2.NODE_STATE_LOST, False))):
    """An AGENT pool with registered nodes (name, state, energy measured):
    gpu-01 has two NVML-discovered H100s, gpu-02 one declared GPU."""
    p = types_pb2.NodePool(
        id=pool_id,
        provider="onprem",
        region="eu-north-1",
        grid_zone="SE",
        instance_type="dgx",
        gpu_type="H100",
        gpus_per_node=2,
        nodes=len(nodes),
        price_micros_per_node_hour=4_000_000,
        pue=1.2,
        free_nodes=1,
        executor=types_pb2.POOL_EXECUTOR_AGENT,
    )
    for slot, (name, state, measured) in enumerate(nodes):
        n = p.agent_nodes.add(name=name, slot=slot, state=state, hostname=f"{name}.lab", agent_version="0.1.0", energy_measured=measured, token_id="t-0000000a")
        n.registered.FromSeconds(1_750_000_000)
        if measured:
            for i in range(2):
                n.gpus.add(index=i, uuid=f"GPU-{i:04d}", name="NVIDIA H100 80GB HBM3", memory_bytes=80 << 30, power_limit_mw=700_000)
            n.last_heartbeat.FromSeconds(1_750_000_123)
        else:
            n.gpus.add(index=0, uuid="declared-0", name="H100")
    return p


class FakeGreenlight(
    scheduler_pb2_grpc.SchedulerServicer,
    budgets_pb2_grpc.BudgetsServicer,
    inventory_pb2_grpc.InventoryServicer,
    admin_pb2_grpc.AdminServicer,
):
    def __init__(self):
        self.lock = threading.Lock()
        self.jobs: dict[str, types_pb2.Job] = {}
        self.by_request: dict[str, str] = {}
        self.teams: dict[str, types_pb2.Team] = {}
        self.events: list[types_pb2.JobEvent] = []
        self.failures: dict[str, list[Failure]] = {}
        self.calls: list[tuple[str, object, dict]] = []
        self.watch_break_after: list[int] = []  # per WatchJobs call: abort after n events
        self.watch_resend = 0  # resend this many already-seen events on reconnect
        self.watch_hold = 0.0  # keep the stream open this long after the log
        self.revision = 0
        self.estimate_feasible = True
        self.extra_pools: list[types_pb2.NodePool] = []  # appended to ListPools' answer
        self.tokens: list[admin_pb2.TokenInfo] = []

    # -- helpers -------------------------------------------------------------

    def fail(self, method: str, *failures: Failure) -> None:
        self.failures.setdefault(method, []).extend(failures)

    def _enter(self, method, request, context):
        with self.lock:
            self.calls.append((method, request, dict(context.invocation_metadata())))
            queue = self.failures.get(method)
            failure = queue.pop(0) if queue else None
        if failure is None:
            return
        if failure.sleep:
            time.sleep(failure.sleep)
        if failure.then_succeed_after_sleep:
            return
        if failure.details:
            context.set_trailing_metadata(
                ((_status.STATUS_DETAILS_KEY, _status.encode_status(failure.code.value[0], failure.message, failure.details)),)
            )
        context.abort(failure.code, failure.message)

    def calls_of(self, method):
        return [c for c in self.calls if c[0] == method]

    def _event(self, job, type_):
        self.revision += 1
        job.revision = self.revision
        ev = types_pb2.JobEvent(
            revision=self.revision, job_id=job.id, team=job.spec.team, type=type_, state=job.state, job=job
        )
        ev.time.FromSeconds(1_750_000_000 + self.revision)
        self.events.append(ev)

    def add_event(self, job_id="j-00000000000000aa", team="t", state=types_pb2.JOB_STATE_RUNNING):
        with self.lock:
            job = types_pb2.Job(id=job_id, state=state)
            job.spec.team = team
            self._event(job, "STATE")

    # -- Scheduler -----------------------------------------------------------

    def SubmitJob(self, request, context):
        self._enter("SubmitJob", request, context)
        spec = request.spec
        if spec.gpus <= 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "gpus: must be 1..4096, got 0")
        with self.lock:
            if spec.request_id and spec.request_id in self.by_request:
                job = self.jobs[self.by_request[spec.request_id]]
                if job.spec != spec:
                    context.abort(grpc.StatusCode.ALREADY_EXISTS, "request_id reused with a different spec")
                return scheduler_pb2.SubmitJobResponse(job=job, deduplicated=True)
            job = types_pb2.Job(id=f"j-{len(self.jobs) + 1:016x}", spec=spec, state=types_pb2.JOB_STATE_PLANNED)
            job.quote.CopyFrom(make_quote())
            job.submit_time.FromSeconds(1_750_000_000)
            job.reserved_cost_micros = job.quote.chosen.cost_micros
            job.reserved_carbon_mg = job.quote.chosen.carbon_mg
            self.jobs[job.id] = job
            if spec.request_id:
                self.by_request[spec.request_id] = job.id
            self._event(job, "SUBMITTED")
            return scheduler_pb2.SubmitJobResponse(job=job)

    def EstimateJob(self, request, context):
        self._enter("EstimateJob", request, context)
        q = make_quote() if self.estimate_feasible else make_quote(feasible=False, summary="cheapest: $412 > cap $1")
        del q.alternatives[request.top_k or 5:]
        return scheduler_pb2.EstimateJobResponse(quote=q)

    def GetJob(self, request, context):
        self._enter("GetJob", request, context)
        job = self.jobs.get(request.job_id)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id} not found")
        return scheduler_pb2.GetJobResponse(job=job)

    def ListJobs(self, request, context):
        self._enter("ListJobs", request, context)
        jobs = [
            j
            for j in sorted(self.jobs.values(), key=lambda j: j.id)
            if (not request.team or j.spec.team == request.team)
            and (not request.states or j.state in request.states)
        ]
        start = int(request.page_token or 0)
        size = request.page_size or 100
        page = jobs[start : start + size]
        token = str(start + size) if start + size < len(jobs) else ""
        return scheduler_pb2.ListJobsResponse(jobs=page, next_page_token=token)

    def CancelJob(self, request, context):
        self._enter("CancelJob", request, context)
        with self.lock:
            job = self.jobs.get(request.job_id)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id} not found")
            job.state = types_pb2.JOB_STATE_CANCELLED
            job.message = request.reason
            job.reserved_cost_micros = 0
            job.reserved_carbon_mg = 0
            self._event(job, "STATE")
            return scheduler_pb2.CancelJobResponse(job=job)

    def WatchJobs(self, request, context):
        self._enter("WatchJobs", request, context)
        with self.lock:
            break_after = self.watch_break_after.pop(0) if self.watch_break_after else None
            start = max(0, request.from_revision - self.watch_resend)
            events = [e for e in self.events if e.revision > start]
        sent = 0
        for e in events:
            if request.team and e.team != request.team:
                continue
            if request.job_id and e.job_id != request.job_id:
                continue
            if break_after is not None and sent >= break_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "server going away")
            yield e
            sent += 1
        if break_after is not None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "server going away")
        if self.watch_hold:
            time.sleep(self.watch_hold)

    def Ping(self, request, context):
        self._enter("Ping", request, context)
        return scheduler_pb2.PingResponse(revision=self.revision)

    # -- Budgets -------------------------------------------------------------

    def SetTeam(self, request, context):
        self._enter("SetTeam", request, context)
        self.teams[request.team.name] = request.team
        return budgets_pb2.SetTeamResponse(team=request.team)

    def GetTeam(self, request, context):
        self._enter("GetTeam", request, context)
        team = self.teams.get(request.name)
        if team is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"team {request.name} not found")
        return budgets_pb2.GetTeamResponse(team=team)

    def ListTeams(self, request, context):
        self._enter("ListTeams", request, context)
        return budgets_pb2.ListTeamsResponse(teams=list(self.teams.values()))

    def GetUsage(self, request, context):
        self._enter("GetUsage", request, context)
        u = types_pb2.Usage(
            team=request.team,
            cost_budget_micros=1_000_000_000,
            cost_spent_micros=250_500_000,
            cost_reserved_micros=100_000_000,
            cost_remaining_micros=649_500_000,
            carbon_budget_mg=50_000_000,
            carbon_spent_mg=12_345_678,
            carbon_reserved_mg=1_000_000,
            carbon_remaining_mg=36_654_322,
            running_gpus=8,
            gpu_quota=64,
            jobs_running=1,
            jobs_pending=2,
            energy_spent_wh=123456.0,
        )
        u.period_start.FromSeconds(1_748_736_000)  # 2025-06-01
        u.period_end.FromSeconds(1_751_328_000)  # 2025-07-01
        return budgets_pb2.GetUsageResponse(usage=u)

    # -- Inventory -----------------------------------------------------------

    def ListPools(self, request, context):
        self._enter("ListPools", request, context)
        p = types_pb2.NodePool(
            id="aws/eu-north-1/p4d.24xlarge",
            provider="aws",
            region="eu-north-1",
            grid_zone="SE",
            instance_type="p4d.24xlarge",
            gpu_type="A100",
            gpus_per_node=8,
            nodes=4,
            price_micros_per_node_hour=32_772_000,
            spot_price_micros_per_node_hour=0,
            gpu_power_w=400,
            pue=1.1,
            free_nodes=3,
        )
        return inventory_pb2.ListPoolsResponse(pools=[p, *self.extra_pools])

    def ListZones(self, request, context):
        self._enter("ListZones", request, context)
        z = types_pb2.GridZone(name="DE", annual_average_g_per_kwh=380, points=8760, source="csv:x", current_g_per_kwh=312.5)
        z.step.FromSeconds(3600)
        return inventory_pb2.ListZonesResponse(zones=[z])


    # -- Admin ---------------------------------------------------------------

    def CreateToken(self, request, context):
        self._enter("CreateToken", request, context)
        if sum(bool(x) for x in (request.team, request.admin, request.agent_pool)) != 1:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give exactly one of team, admin, agent_pool")
        with self.lock:
            info = admin_pb2.TokenInfo(
                id=f"t-{len(self.tokens) + 1:08x}",
                team=request.team,
                admin=request.admin,
                agent_pool=request.agent_pool,
                description=request.description,
            )
            info.created.FromSeconds(1_750_000_000)
            self.tokens.append(info)
        return admin_pb2.CreateTokenResponse(token=info, secret=f"secret-{info.id}")


class FakeServer:
    """Runs a FakeGreenlight on a loopback port; stop()/start() keep the port."""

    def __init__(self, fake: FakeGreenlight | None = None, port: int = 0):
        self.fake = fake or FakeGreenlight()
        self.port = port
        self.server = None

    def start(self) -> "FakeServer":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        scheduler_pb2_grpc.add_SchedulerServicer_to_server(self.fake, server)
        budgets_pb2_grpc.add_BudgetsServicer_to_server(self.fake, server)
        inventory_pb2_grpc.add_InventoryServicer_to_server(self.fake, server)
        admin_pb2_grpc.add_AdminServicer_to_server(self.fake, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        assert self.port, "could not bind"
        server.start()
        self.server = server
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait()
            self.server = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

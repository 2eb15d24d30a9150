"""Unit conversions and typed wrappers (offline)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fakes import make_quote
from greenlight import JobSpec, JobState, PlacementMode, Quote, Team
from greenlight import models
from greenlight.v1 import types_pb2


@pytest.mark.parametrize(
    "usd, micros",
    [
        (Decimal("412.50"), 412_500_000),
        ("0.000001", 1),
        (0.1, 100_000),  # via repr: not 100000.0000000000055
        (3, 3_000_000),
        ("1e9", 10**15),
        (Decimal("0.0000005"), 0),  # half-even to the micro
        (Decimal("0.0000015"), 2),
    ],
)
def test_usd_to_micros(usd, micros):
    assert models.micros_from_usd(usd) == micros


def test_micros_to_usd_is_exact_decimal():
    assert models.usd_from_micros(412_500_000) == Decimal("412.5")
    assert str(models.usd_from_micros(1)) == "0.000001"
    assert str(models.usd_from_micros(0)) == "0"
    assert models.usd_from_micros(10**15) == Decimal(10**9)


def test_carbon_kg_mg_roundtrip():
    assert models.mg_from_kg("35.5") == 35_500_000
    assert models.kg_from_mg(35_500_000) == Decimal("35.5")
    assert models.mg_from_kg(0.001) == 1000


def test_bad_numbers_are_rejected():
    with pytest.raises(ValueError):
        models.micros_from_usd("lots")
    with pytest.raises(TypeError):
        models.micros_from_usd(True)


def test_timestamps_are_aware_utc_and_unset_is_none():
    ts = types_pb2.Job().submit_time
    assert models.datetime_from_timestamp(ts) is None
    ts.seconds, ts.nanos = 1_750_000_000, 123_456_000
    dt = models.datetime_from_timestamp(ts)
    assert dt.tzinfo is not None and dt.utcoffset() == timedelta(0)
    assert dt == datetime(2025, 6, 15, 15, 6, 40, 123456, tzinfo=timezone.utc)


def test_set_timestamp_handles_zones():
    ts = types_pb2.Job().submit_time
    cet = timezone(timedelta(hours=2))
    models.set_timestamp(ts, datetime(2025, 6, 15, 17, 6, 40, tzinfo=cet))
    assert ts.seconds == 1_750_000_000
    with pytest.raises(TypeError):
        models.set_timestamp(ts, "2025-06-15")


def test_durations():
    d = types_pb2.JobSpec().duration
    models.set_duration(d, timedelta(hours=2, microseconds=5))
    assert (d.seconds, d.nanos) == (7200, 5000)
    assert models.timedelta_from_duration(d) == timedelta(hours=2, microseconds=5)
    models.set_duration(d, 90)
    assert (d.seconds, d.nanos) == (90, 0)


def test_job_spec_to_proto_units_and_aliases():
    spec = JobSpec.build(
        team="nlp",
        gpus=8,
        gpu_hours=100,
        gpu_type="H100",
        region=["eu-north-1", "eu-west-1"],
        max_cost_usd="412.5",
        max_carbon_kg=35.5,
        deadline=datetime(2025, 6, 15, 15, 6, 40, tzinfo=timezone.utc),
        mode="greenest",
        carbon_price_usd_per_tonne=100,
        labels={"sweep": "lr"},
    )
    m = spec.to_proto()
    assert m.max_cost_micros == 412_500_000
    assert m.max_carbon_mg == 35_500_000
    assert m.reference_gpu_hours == 100.0
    assert m.WhichOneof("work") == "reference_gpu_hours"
    assert list(m.gpu_types) == ["H100"]
    assert list(m.regions) == ["eu-north-1", "eu-west-1"]
    assert m.deadline.seconds == 1_750_000_000
    assert m.mode == types_pb2.PLACEMENT_MODE_GREENEST
    assert m.carbon_price_micros_per_tonne == 100_000_000
    assert not m.HasField("not_before")
    back = JobSpec.from_proto(m)
    assert back.max_cost_usd == Decimal("412.5") and back.max_carbon_kg == Decimal("35.5")
    assert back.mode is PlacementMode.GREENEST
    assert back.deadline == spec.deadline


def test_job_spec_duration_and_conflicts():
    m = JobSpec(team="a", gpus=1, duration=timedelta(minutes=90)).to_proto()
    assert m.WhichOneof("work") == "duration" and m.duration.seconds == 5400
    with pytest.raises(ValueError):
        JobSpec(team="a", gpus=1, duration=timedelta(hours=1), reference_gpu_hours=1).to_proto()
    with pytest.raises(TypeError, match="unknown field"):
        JobSpec.build(team="a", gpus=1, gpu_hours=1, max_cost=5)


def test_quote_wrapper():
    q = Quote.from_proto(make_quote())
    assert q.feasible and q.chosen.cost_usd == Decimal("412")
    assert q.chosen.carbon_kg == Decimal("35.5")
    assert [p.pool_id for p in q.ranked] == ["aws/eu-north-1/p4d.24xlarge", "gcp/us-central1/a2-highgpu-8g"]
    assert q.alternatives[0].why_not.startswith("+$50")
    assert q.rejections == {"gpu_type": 7, "capacity": 3}
    assert q.carbon_avoided_kg == Decimal("355") - Decimal("35.5")
    assert q.chosen.start.tzinfo is not None
    d = q.to_dict()
    assert d["chosen"]["cost_usd"] == 412.0 and d["chosen"]["start"].endswith("Z")
    assert "proto" not in d


def test_job_state_parse_and_unknown_values():
    assert JobState.parse("running") is JobState.RUNNING
    assert JobState.parse("JOB_STATE_BUDGET_EXHAUSTED") is JobState.BUDGET_EXHAUSTED
    assert JobState.parse("budget-exhausted") is JobState.BUDGET_EXHAUSTED
    assert JobState.CANCELLED.terminal and not JobState.PLANNED.terminal
    future = JobState(42)  # a newer server's state does not crash the client
    assert future.name == "UNKNOWN_42" and int(future) == 42
    with pytest.raises(ValueError):
        JobState.parse("sleeping")


def test_team_none_means_unlimited():
    t = Team(name="vision", monthly_cost_budget_usd=Decimal("1000"), gpu_quota_by_type={"H100": 8})
    m = t.to_proto()
    assert m.monthly_cost_budget_micros == 1_000_000_000 and m.monthly_carbon_budget_mg == 0
    back = Team.from_proto(m)
    assert back.monthly_carbon_budget_kg is None and back.gpu_quota_by_type == {"H100": 8}
    assert back == t


# -- node agents (issue 14) ----------------------------------------------------


def test_job_spec_command_round_trips_as_a_command_message():
    spec = JobSpec.build(
        team="nlp",
        gpus=1,
        gpu_hours=2,
        command=["python", "train.py", "--lr", 3e-4],
        env={"WANDB_MODE": "offline", "SPACES": " a b "},
        workdir="runs/lr-3e-4",
    )
    m = spec.to_proto()
    assert list(m.command.argv) == ["python", "train.py", "--lr", "0.0003"]
    assert dict(m.command.env) == {"WANDB_MODE": "offline", "SPACES": " a b "}
    assert m.command.working_dir == "runs/lr-3e-4"
    back = JobSpec.from_proto(m)
    assert back.command == ["python", "train.py", "--lr", "0.0003"]
    assert back.env == {"WANDB_MODE": "offline", "SPACES": " a b "} and back.working_dir == "runs/lr-3e-4"
    d = back.to_dict()
    assert d["command"] == ["python", "train.py", "--lr", "0.0003"] and d["working_dir"] == "runs/lr-3e-4"


def test_job_spec_without_command_sends_none():
    m = JobSpec(team="a", gpus=1, reference_gpu_hours=1).to_proto()
    assert not m.HasField("command")
    back = JobSpec.from_proto(m)
    assert back.command == [] and back.env == {} and back.working_dir == ""


@pytest.mark.parametrize(
    "fields, error, text",
    [
        (dict(command="python train.py"), TypeError, "not one string"),
        (dict(command=[b"python"]), TypeError, "strings"),
        (dict(env={"A": "1"}), ValueError, "need a command"),
        (dict(working_dir="runs"), ValueError, "need a command"),
    ],
)
def test_job_spec_command_mistakes_are_refused_before_sending(fields, error, text):
    with pytest.raises(error, match=text):
        JobSpec(team="a", gpus=1, reference_gpu_hours=1, **fields).to_proto()


def test_job_agent_fields_and_starting_state():
    m = types_pb2.Job(id="j-1", state=types_pb2.JOB_STATE_STARTING, node="gpu-01", measured_energy_wh=812.5, energy_measured=True, accrued_energy_wh=975.0)
    m.gpu_indices.extend([0, 1])
    m.lost_nodes.append("gpu-07")
    job = models.Job.from_proto(m)
    assert job.state is JobState.STARTING and not job.done
    assert job.node == "gpu-01" and job.gpu_indices == [0, 1] and job.lost_nodes == ["gpu-07"]
    assert job.measured_energy_wh == 812.5 and job.energy_measured and job.energy_basis == "measured"
    d = job.to_dict()
    assert d["state"] == "STARTING" and d["gpu_indices"] == [0, 1] and d["energy_measured"] is True
    assert JobState.parse("starting") is JobState.STARTING


def test_job_from_an_older_server_reads_as_modelled_on_no_node():
    # A server from before agents sends none of the new fields.
    job = models.Job.from_proto(types_pb2.Job(id="j-1", state=types_pb2.JOB_STATE_RUNNING, accrued_energy_wh=10))
    assert job.node == "" and job.gpu_indices == [] and job.measured_energy_wh == 0.0
    assert not job.energy_measured and job.energy_basis == "modelled"


def test_agent_pool_with_its_nodes():
    from fakes import make_agent_pool

    pool = models.NodePool.from_proto(make_agent_pool())
    assert pool.executor is models.PoolExecutor.AGENT and pool.is_agent
    a, b = pool.agent_nodes
    assert (a.name, a.state, a.slot, a.energy_measured) == ("gpu-01", models.NodeState.READY, 0, True)
    assert [g.index for g in a.gpus] == [0, 1] and a.gpus[0].power_limit_w == 700.0
    assert a.gpus[0].memory_bytes == 80 << 30
    assert a.last_heartbeat.tzinfo is not None and a.registered is not None
    assert b.state is models.NodeState.LOST and b.last_heartbeat is None and b.gpus[0].uuid == "declared-0"
    d = pool.to_dict()
    assert d["executor"] == "AGENT" and d["agent_nodes"][0]["state"] == "READY"
    assert d["agent_nodes"][0]["last_heartbeat"].endswith("Z")


def test_pools_of_an_older_server_are_simulated():
    pool = models.NodePool.from_proto(types_pb2.NodePool(id="aws/x", nodes=2))  # executor UNSPECIFIED
    assert pool.executor is models.PoolExecutor.SIMULATED and not pool.is_agent and pool.agent_nodes == []
    assert models.PoolExecutor.parse("agent") is models.PoolExecutor.AGENT
    assert models.NodeState(7).name == "UNKNOWN_7"  # a newer server's node state


def test_token_keeps_its_secret_out_of_repr():
    from greenlight.v1 import admin_pb2

    t = models.Token.from_proto(admin_pb2.TokenInfo(id="t-1", agent_pool="lab/h100"), secret="s3cret")
    assert t.agent_pool == "lab/h100" and t.secret == "s3cret" and not t.admin
    assert "s3cret" not in repr(t)

"""Client behaviour against an in-process fake server (no greenlightd)."""

import threading
import time
import uuid
from decimal import Decimal

import grpc
import pytest

import greenlight
from fakes import Failure, FakeServer, make_quote
from greenlight import _status, errors
from greenlight.v1 import types_pb2

FAST = greenlight.RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05, max_elapsed=10)


@pytest.fixture
def fake_server():
    srv = FakeServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def fake(fake_server):
    return fake_server.fake


@pytest.fixture
def client(fake_server):
    with greenlight.Client(fake_server.target, timeout=5, retry=FAST) as c:
        yield c


def spec(**kw):
    base = dict(team="nlp", gpus=8, gpu_hours=64, max_cost_usd=500)
    base.update(kw)
    return greenlight.JobSpec.build(**base)


# -- every call ---------------------------------------------------------------


def test_submit_returns_typed_job_with_generated_request_id(client, fake):
    job = client.submit(team="nlp", gpus=8, gpu_hours=64, max_cost_usd="500", max_carbon_kg=40)
    assert job.id.startswith("j-") and job.state is greenlight.JobState.PLANNED
    assert not job.deduplicated
    rid = job.spec.request_id
    assert uuid.UUID(rid).version == 4
    sent = fake.calls_of("SubmitJob")[0][1].spec
    assert sent.max_cost_micros == 500_000_000 and sent.max_carbon_mg == 40_000_000
    assert job.predicted_cost_usd == Decimal("412") and job.predicted_carbon_kg == Decimal("35.5")
    assert job.reserved_cost_usd == Decimal("412")
    assert job.submit_time.tzinfo is not None


def test_submit_with_request_id_is_idempotent(client):
    a = client.submit(spec(request_id="sweep-1"))
    b = client.submit(spec(request_id="sweep-1"))
    assert a.id == b.id and b.deduplicated
    with pytest.raises(greenlight.AlreadyExists):
        client.submit(spec(request_id="sweep-1", gpus=16))


def test_estimate_get_list_cancel(client, fake):
    q = client.estimate(spec(), top_k=1)
    assert q.feasible and len(q.alternatives) == 1
    assert fake.calls_of("EstimateJob")[0][1].top_k == 1
    ids = [client.submit(spec(team="cv" if i % 2 else "nlp", name=f"run-{i}")).id for i in range(7)]
    assert client.get(ids[0]).name == "run-0"
    all_jobs = list(client.list(page_size=2))
    assert [j.id for j in all_jobs] == sorted(ids)
    assert len(fake.calls_of("ListJobs")) == 4  # 2+2+2+1
    assert {j.team for j in client.list(team="cv")} == {"cv"}
    assert len(list(client.list(limit=3, page_size=2))) == 3
    cancelled = client.cancel(ids[1], reason="bad lr")
    assert cancelled.state is greenlight.JobState.CANCELLED and cancelled.done
    assert [j.id for j in client.list(states=["cancelled"])] == [ids[1]]
    assert list(fake.calls_of("ListJobs")[-1][1].states) == [types_pb2.JOB_STATE_CANCELLED]


def test_teams_usage_pools_zones_ping(client, fake):
    t = client.set_team("vision", monthly_cost_budget_usd=1000, monthly_carbon_budget_kg=50, gpu_quota=64)
    assert t.monthly_cost_budget_usd == Decimal(1000) and t.monthly_carbon_budget_kg == Decimal(50)
    assert fake.teams["vision"].monthly_cost_budget_micros == 1_000_000_000
    assert client.get_team("vision") == t
    t2 = client.update_team("vision", gpu_quota=32)
    assert t2.gpu_quota == 32 and t2.monthly_cost_budget_usd == Decimal(1000)  # kept
    assert client.update_team("new-team", gpu_quota=4).name == "new-team"
    assert sorted(x.name for x in client.list_teams()) == ["new-team", "vision"]
    u = client.usage("vision")
    assert u.cost_spent_usd == Decimal("250.5") and u.carbon_spent_kg == Decimal("12.345678")
    assert u.cost_remaining_usd == Decimal("649.5")
    assert u.period_start.isoformat() == "2025-06-01T00:00:00+00:00"
    pools = client.list_pools(gpu_type="A100")
    assert pools[0].price_usd_per_node_hour == Decimal("32.772") and pools[0].spot_price_usd_per_node_hour is None
    assert fake.calls_of("ListPools")[0][1].gpu_type == "A100"
    zones = client.list_zones()
    assert zones[0].name == "DE" and zones[0].step.total_seconds() == 3600
    assert client.ping() >= 0


# -- errors -------------------------------------------------------------------


def test_invalid_argument_is_invalid_job_naming_the_field(client):
    with pytest.raises(greenlight.InvalidJob) as e:
        client.submit(spec(gpus=0))
    assert e.value.field == "gpus"
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be 1..4096" in e.value.message
    assert isinstance(e.value, greenlight.GreenlightError)


def test_bad_request_detail_names_the_field(client, fake):
    from greenlight import _status

    detail = _status.encode_bad_request([("spec.deadline", "must be in the future")])
    fake.fail("SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, "bad deadline", [detail]))
    with pytest.raises(greenlight.InvalidJob) as e:
        client.submit(spec())
    assert e.value.field == "deadline"  # as documented: the field of the request object
    assert e.value.argument == "deadline"
    assert e.value.violations == [("spec.deadline", "must be in the future")]


def test_cap_exceeded_carries_the_quote_from_status_details(client, fake):
    quote = make_quote(cost_micros=412_000_000, feasible=False, summary="cheapest feasible: $412 > cap $300")
    fake.fail("SubmitJob", Failure(grpc.StatusCode.FAILED_PRECONDITION, "cheapest feasible: $412 > cap $300", [quote]))
    with pytest.raises(greenlight.CapExceeded) as e:
        client.submit(spec(max_cost_usd=300))
    err = e.value
    assert err.message == "cheapest feasible: $412 > cap $300"
    assert err.quote is not None and err.quote.chosen.cost_usd == Decimal(412)
    assert err.quote.summary.startswith("cheapest feasible")
    assert err.details[0].type_url.endswith("greenlight.v1.Quote")
    assert len(fake.calls_of("SubmitJob")) == 1  # never retried


def test_cap_exceeded_without_details_still_maps(client, fake):
    fake.fail("SubmitJob", Failure(grpc.StatusCode.FAILED_PRECONDITION, "no placement fits"))
    with pytest.raises(greenlight.CapExceeded) as e:
        client.submit(spec())
    assert e.value.quote is None


def test_failed_precondition_elsewhere_is_not_cap_exceeded(client, fake):
    fake.fail("CancelJob", Failure(grpc.StatusCode.FAILED_PRECONDITION, "job already finished"))
    with pytest.raises(greenlight.FailedPrecondition) as e:
        client.cancel("j-1")
    assert not isinstance(e.value, greenlight.CapExceeded)


@pytest.mark.parametrize(
    "code, cls",
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, greenlight.BudgetExhausted),
        (grpc.StatusCode.NOT_FOUND, greenlight.NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, greenlight.AlreadyExists),
        (grpc.StatusCode.PERMISSION_DENIED, greenlight.PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, greenlight.Unauthenticated),
        (grpc.StatusCode.INTERNAL, greenlight.GreenlightError),
    ],
)
def test_status_codes_map_to_exceptions(client, fake, code, cls):
    fake.fail("SubmitJob", Failure(code, "nope"))
    with pytest.raises(cls) as e:
        client.submit(spec())
    assert type(e.value) is cls
    assert e.value.code == code and e.value.message == "nope" and e.value.method == "SubmitJob"
    assert len(fake.calls_of("SubmitJob")) == 1  # never retried
    if cls is greenlight.Unauthenticated:
        assert isinstance(e.value, greenlight.PermissionDenied)


def test_get_unknown_job_is_not_found(client):
    with pytest.raises(greenlight.NotFound):
        client.get("j-0000000000000000")


def test_garbage_status_details_do_not_hide_the_error():
    err = errors.from_status(
        grpc.StatusCode.FAILED_PRECONDITION, "caps", [("grpc-status-details-bin", b"\xff\xff\xff")], method="SubmitJob"
    )
    assert isinstance(err, greenlight.CapExceeded) and err.quote is None


# -- retries ------------------------------------------------------------------


def test_submit_retries_unavailable_with_the_same_request_id(client, fake):
    fake.fail("SubmitJob", Failure(grpc.StatusCode.UNAVAILABLE, "restarting"), Failure(grpc.StatusCode.UNAVAILABLE, "restarting"))
    job = client.submit(spec())
    calls = fake.calls_of("SubmitJob")
    assert len(calls) == 3
    rids = {c[1].spec.request_id for c in calls}
    assert len(rids) == 1 and job.spec.request_id in rids and rids != {""}


def test_submit_retries_deadline_exceeded_and_dedups(fake_server):
    fake = fake_server.fake
    # The first attempt is committed but answers too late: the retry must
    # return the same job, not a second one.
    fake.fail("SubmitJob", Failure(grpc.StatusCode.OK, sleep=0.6, then_succeed_after_sleep=True))
    with greenlight.Client(fake_server.target, timeout=0.3, retry=FAST) as c:
        job = c.submit(spec(request_id="slow-1"))
    time.sleep(0.5)  # let the slow handler finish
    assert len(fake.jobs) == 1 and job.id in fake.jobs
    assert len(fake.calls_of("SubmitJob")) == 2


def test_retries_are_bounded(fake_server):
    fake = fake_server.fake
    fake.fail("SubmitJob", *[Failure(grpc.StatusCode.UNAVAILABLE, "down")] * 10)
    policy = greenlight.RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with greenlight.Client(fake_server.target, retry=policy) as c:
        with pytest.raises(greenlight.Unavailable):
            c.submit(spec())
    assert len(fake.calls_of("SubmitJob")) == 3


def test_retry_time_budget_is_bounded(fake_server):
    fake_server.fake.fail("SubmitJob", *[Failure(grpc.StatusCode.UNAVAILABLE, "down")] * 100)
    policy = greenlight.RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.1, max_elapsed=0.5)
    with greenlight.Client(fake_server.target, retry=policy) as c:
        t0 = time.monotonic()
        with pytest.raises(greenlight.Unavailable):
            c.submit(spec())
        assert time.monotonic() - t0 < 2


def test_backoff_grows_exponentially_with_jitter():
    import random

    p = greenlight.RetryPolicy(initial_backoff=0.1, multiplier=2, max_backoff=1.0)
    rng = random.Random(1)
    for n, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (10, 1.0)]:
        samples = [p.delay(n, rng) for _ in range(50)]
        assert all(cap / 2 <= s <= cap for s in samples)
        assert len(set(samples)) > 1  # jittered


def test_submit_survives_a_server_restart(fake_server):
    """Server down when submit starts; up again a moment later."""
    fake_server.stop()
    result = {}

    def run():
        with greenlight.Client(fake_server.target, retry=greenlight.RetryPolicy(initial_backoff=0.1, max_backoff=0.3, max_attempts=30)) as c:
            result["job"] = c.submit(spec(request_id="restart-1"))

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.7)
    fake_server.start()
    t.join(15)
    assert result["job"].spec.request_id == "restart-1"


def test_reads_do_not_retry_other_codes(client, fake):
    fake.fail("GetJob", Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "slow"))
    with pytest.raises(greenlight.DeadlineExceeded):
        client.get("j-1")
    assert len(fake.calls_of("GetJob")) == 1


def test_cancel_is_not_retried(client, fake):
    fake.fail("CancelJob", Failure(grpc.StatusCode.UNAVAILABLE, "down"))
    with pytest.raises(greenlight.Unavailable):
        client.cancel("j-1")
    assert len(fake.calls_of("CancelJob")) == 1


# -- watch --------------------------------------------------------------------


def test_watch_reconnects_and_resumes_without_gaps_or_duplicates(client, fake):
    for i in range(10):
        fake.add_event(job_id=f"j-{i:016x}")
    fake.watch_break_after = [3, 4]  # two broken streams, then a good one
    fake.watch_resend = 2  # the server re-sends some already seen events
    got = []
    for ev in client.watch():
        got.append(ev.revision)
        if ev.revision == 10:
            break
    assert got == list(range(1, 11))
    froms = [c[1].from_revision for c in fake.calls_of("WatchJobs")]
    # The second stream re-sends 2 and 3 (skipped), then 4 and 5 before breaking.
    assert froms == [0, 3, 5]


def test_watch_from_revision_and_filters(client, fake):
    for i in range(5):
        fake.add_event(job_id="j-a" if i % 2 else "j-b", team="t")
    events = client.watch(from_revision=2, job_id="j-a")
    first = next(events)
    events.close()
    assert first.revision == 4 and first.job_id == "j-a" and first.state is greenlight.JobState.RUNNING
    req = fake.calls_of("WatchJobs")[0][1]
    assert req.from_revision == 2 and req.job_id == "j-a"


def test_watch_gives_up_after_reconnect_timeout(fake_server):
    fake_server.stop()
    with greenlight.Client(fake_server.target, retry=FAST) as c:
        t0 = time.monotonic()
        with pytest.raises(greenlight.Unavailable):
            next(c.watch(reconnect_timeout=0.5))
        assert time.monotonic() - t0 < 5


def test_watch_without_reconnect_raises(client, fake):
    fake.add_event()
    fake.watch_break_after = [1]
    events = client.watch(reconnect=False)
    assert next(events).revision == 1
    with pytest.raises(greenlight.Unavailable):
        next(events)


def test_watch_across_fake_restart(fake_server):
    fake = fake_server.fake
    for _ in range(3):
        fake.add_event()
    fake.watch_hold = 30  # keep the first stream open until the server dies
    got = []
    with greenlight.Client(fake_server.target, retry=greenlight.RetryPolicy(initial_backoff=0.05, max_backoff=0.2)) as c:
        events = c.watch()
        for _ in range(3):
            got.append(next(events).revision)
        fake.watch_hold = 0
        fake_server.stop()
        for _ in range(2):
            fake.add_event()
        fake_server.start()
        for _ in range(2):
            got.append(next(events).revision)
        events.close()
    assert got == [1, 2, 3, 4, 5]


# -- connection settings ------------------------------------------------------


def test_token_is_sent_as_bearer_metadata(fake_server, tmp_path, monkeypatch):
    fake = fake_server.fake
    with greenlight.Client(fake_server.target, token="s3cret") as c:
        c.ping()
    assert fake.calls[-1][2]["authorization"] == "Bearer s3cret"

    monkeypatch.setenv("GREENLIGHT_TOKEN", "from-env")
    with greenlight.Client(fake_server.target) as c:
        c.ping()
    assert fake.calls[-1][2]["authorization"] == "Bearer from-env"

    f = tmp_path / "token"
    f.write_text("from-file\n")
    with greenlight.Client(fake_server.target, token_file=str(f)) as c:
        c.ping()
    assert fake.calls[-1][2]["authorization"] == "Bearer from-file"

    monkeypatch.delenv("GREENLIGHT_TOKEN")
    monkeypatch.setenv("GREENLIGHT_TOKEN_FILE", str(f))
    with greenlight.Client(fake_server.target) as c:
        c.ping()
        list(c.watch(reconnect=False))  # streams carry it too
    assert fake.calls[-2][2]["authorization"] == "Bearer from-file"
    assert fake.calls[-1][2]["authorization"] == "Bearer from-file"


def test_no_token_sends_no_authorization(client, fake):
    client.ping()
    assert "authorization" not in fake.calls[-1][2]


def test_target_from_environment(fake_server, monkeypatch):
    monkeypatch.setenv("GREENLIGHT_TARGET", fake_server.target)
    with greenlight.Client() as c:
        assert c.target == fake_server.target
        c.ping()


def test_tls_settings_build_credentials(tmp_path):
    from greenlight.client import _credentials

    assert _credentials(False) == (None, [])
    assert _credentials(None)[0] is None
    creds, opts = _credentials(greenlight.TLS(server_name="greenlight.local"))
    assert isinstance(creds, grpc.ChannelCredentials)
    assert opts == [("grpc.ssl_target_name_override", "greenlight.local")]
    assert isinstance(_credentials(True)[0], grpc.ChannelCredentials)
    with pytest.raises(OSError):
        _credentials(str(tmp_path / "missing-ca.pem"))


@pytest.mark.parametrize(
    "reason, message, cls",
    [
        ("TEAM_BUDGET_EXHAUSTED", "team 'nlp' budget: cheapest feasible $412 > headroom $10", greenlight.BudgetExhausted),
        # The class follows the reason, not the words: a budget message that
        # mentions a retry is still a budget refusal, and the other way round.
        ("TEAM_BUDGET_EXHAUSTED", "team 'nlp' budget spent; retry with backoff next month", greenlight.BudgetExhausted),
        ("TEAM_RATE_LIMITED", "team 'nlp' is over its submit rate; retry with backoff", greenlight.Overloaded),
        ("QUEUE_FULL", "scheduler overloaded: 4096 commands queued; retry with backoff", greenlight.Overloaded),
        ("SERVER_OVERLOADED", "the budget of our patience", greenlight.Overloaded),
        ("CANNOT_START_NOW", "team 'nlp' cannot start 8 H100 GPU(s) now", greenlight.CannotStartNow),
        ("", "no reason sent: the code decides", greenlight.BudgetExhausted),
    ],
)
def test_resource_exhausted_budget_versus_load(client, fake, reason, message, cls):
    details = [_status.encode_error_info(reason, {"cause": "QUOTA"})] if reason else []
    fake.fail("SubmitJob", Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, message, details=details))
    with pytest.raises(greenlight.GreenlightError) as e:
        client.submit(spec())
    assert type(e.value) is cls, (reason, type(e.value))
    assert e.value.reason == reason
    if reason:
        assert e.value.metadata == {"cause": "QUOTA"}
    assert len(fake.calls_of("SubmitJob")) == 1


# -- relative times on the server's clock (issue 17) ---------------------------


def _clock_fake(ahead, time_scale):
    from datetime import datetime, timedelta, timezone

    from fakes import FakeGreenlight
    from greenlight.v1 import scheduler_pb2

    class ClockFake(FakeGreenlight):
        server_time = (datetime.now(timezone.utc) + ahead).replace(microsecond=0)

        def Ping(self, request, context):
            self._enter("Ping", request, context)
            resp = scheduler_pb2.PingResponse(revision=self.revision, time_scale=time_scale)
            resp.server_time.FromSeconds(int(self.server_time.timestamp()))
            return resp

    return ClockFake()


@pytest.fixture
def clock_client():
    from datetime import timedelta

    srv = FakeServer(_clock_fake(timedelta(days=3), 3600.0)).start()
    with greenlight.Client(srv.target, timeout=5, retry=FAST) as c:
        yield c, srv.fake
    srv.stop()


def _sent_time(ts):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, timezone.utc)


def test_server_clock_reports_time_and_scale(clock_client):
    from datetime import timedelta

    client, fake = clock_client
    clock = client.server_clock()
    assert clock.time == fake.server_time and clock.time_scale == 3600.0 and clock.scaled
    assert timedelta(days=2, hours=23) < clock.offset < timedelta(days=3, minutes=1)
    time.sleep(0.05)
    assert clock.now() - clock.time >= timedelta(seconds=0.05 * 3600)  # extrapolated at 3600x


@pytest.mark.parametrize("kind", ["timedelta", "string"])
def test_relative_deadline_resolves_on_the_server_clock(clock_client, kind):
    from datetime import timedelta

    client, fake = clock_client
    value = timedelta(hours=48) if kind == "timedelta" else "+48h"
    t0 = time.monotonic()
    client.submit(spec(deadline=value, not_before="now"))
    elapsed = time.monotonic() - t0
    sent = fake.calls_of("SubmitJob")[0][1].spec
    drift = _sent_time(sent.deadline) - (fake.server_time + timedelta(hours=48))
    assert timedelta(0) <= drift <= timedelta(seconds=elapsed * 3600 + 1), drift
    assert _sent_time(sent.deadline) - _sent_time(sent.not_before) == timedelta(hours=48)
    assert len(fake.calls_of("Ping")) == 1


def test_relative_times_are_resolved_once_before_retries(clock_client):
    client, fake = clock_client
    fake.fail("SubmitJob", Failure(grpc.StatusCode.UNAVAILABLE, "restarting"))
    client.submit(spec(deadline="+1d"))
    sent = [c[1].spec for c in fake.calls_of("SubmitJob")]
    assert len(sent) == 2 and sent[0] == sent[1]  # same request id, same deadline


def test_estimate_and_usage_take_relative_times(clock_client):
    from datetime import timedelta

    client, fake = clock_client
    client.estimate(spec(deadline=timedelta(days=2)))
    sent = fake.calls_of("EstimateJob")[0][1].spec
    assert _sent_time(sent.deadline) - fake.server_time >= timedelta(days=2)
    client.usage("vision", at="+31d")
    at = _sent_time(fake.calls_of("GetUsage")[0][1].at)
    assert timedelta(days=31) <= at - fake.server_time < timedelta(days=31, hours=1)


def test_absolute_times_need_no_ping(clock_client):
    from datetime import datetime, timezone

    client, fake = clock_client
    client.submit(spec(deadline="2030-01-02T03:04Z", not_before=datetime(2030, 1, 1, tzinfo=timezone.utc)))
    sent = fake.calls_of("SubmitJob")[0][1].spec
    assert _sent_time(sent.deadline) == datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)
    client.usage("vision")
    assert fake.calls_of("Ping") == []
    with pytest.raises(ValueError):
        client.submit(spec(deadline="next tuesday"))


# -- node agents (issue 14) ----------------------------------------------------


def test_submit_sends_the_command_and_get_shows_where_it_runs(client, fake):
    job = client.submit(
        spec(command=["python", "train.py", "--lr", "3e-4"], env={"WANDB_MODE": "offline"}, working_dir="runs/a")
    )
    sent = fake.calls_of("SubmitJob")[0][1].spec
    assert list(sent.command.argv) == ["python", "train.py", "--lr", "3e-4"]
    assert dict(sent.command.env) == {"WANDB_MODE": "offline"} and sent.command.working_dir == "runs/a"
    assert job.spec.command == ["python", "train.py", "--lr", "3e-4"]
    # The agent picked it up: STARTING on a node, then measured energy.
    stored = fake.jobs[job.id]
    stored.state = types_pb2.JOB_STATE_STARTING
    stored.node = "gpu-01"
    stored.gpu_indices.extend([3])
    got = client.get(job.id)
    assert got.state is greenlight.JobState.STARTING and got.node == "gpu-01" and got.gpu_indices == [3]
    stored.state = types_pb2.JOB_STATE_RUNNING
    stored.measured_energy_wh, stored.accrued_energy_wh, stored.energy_measured = 100.0, 120.0, True
    got = client.get(job.id)
    assert got.energy_measured and got.measured_energy_wh == 100.0 and got.accrued_energy_wh == 120.0
    assert [j.id for j in client.list(states="starting")] == []
    assert [j.id for j in client.list(states=["running"])] == [job.id]


def test_submit_keywords_take_command_env_and_workdir(client, fake):
    client.submit(team="nlp", gpus=1, gpu_hours=1, command=["./run.sh"], env={"A": "1"}, workdir="w")
    sent = fake.calls_of("SubmitJob")[0][1].spec
    assert list(sent.command.argv) == ["./run.sh"] and sent.command.working_dir == "w"
    with pytest.raises(TypeError, match="not one string"):
        client.submit(team="nlp", gpus=1, gpu_hours=1, command="python train.py")
    assert len(fake.calls_of("SubmitJob")) == 1


@pytest.mark.parametrize(
    "path, field, argument",
    [
        ("spec.command.argv[0]", "command.argv[0]", "command"),
        ("spec.command.env[GREENLIGHT_X]", "command.env[GREENLIGHT_X]", "env"),
        ("spec.command.working_dir", "command.working_dir", "working_dir"),
    ],
)
def test_command_errors_name_the_jobspec_argument(client, fake, path, field, argument):
    detail = _status.encode_bad_request([(path, "is refused")])
    fake.fail("SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, f"{path}: is refused", [detail]))
    with pytest.raises(greenlight.InvalidJob) as e:
        client.submit(spec(command=["python"]))
    assert e.value.field == field and e.value.argument == argument


def test_list_pools_shows_agent_pools_and_their_nodes(client, fake):
    from fakes import make_agent_pool

    fake.extra_pools.append(make_agent_pool())
    simulated, agent = client.list_pools()
    assert simulated.executor is greenlight.PoolExecutor.SIMULATED and simulated.agent_nodes == []
    assert agent.is_agent and [n.name for n in agent.agent_nodes] == ["gpu-01", "gpu-02"]
    assert agent.agent_nodes[0].state is greenlight.NodeState.READY
    assert agent.agent_nodes[1].state is greenlight.NodeState.LOST


def test_create_token_for_an_agent_pool(client, fake):
    token = client.create_token(agent_pool="lab/h100", description="gpu-01 agent")
    assert isinstance(token, greenlight.Token)
    assert token.agent_pool == "lab/h100" and token.team == "" and not token.admin
    assert token.secret == f"secret-{token.id}" and token.created.tzinfo is not None
    req = fake.calls_of("CreateToken")[0][1]
    assert req.agent_pool == "lab/h100" and req.team == "" and not req.admin and req.description == "gpu-01 agent"
    assert client.create_token("vision").team == "vision"
    assert client.create_token(admin=True).admin


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(team="vision", agent_pool="lab"), dict(team="vision", admin=True), dict(admin=True, agent_pool="lab")],
)
def test_create_token_needs_exactly_one_kind(client, fake, kwargs):
    with pytest.raises(ValueError, match="exactly one of"):
        client.create_token(**kwargs)
    assert fake.calls_of("CreateToken") == []


def test_create_token_is_not_retried(client, fake):
    # A lost answer would leave a token whose secret nobody saw; a retry makes a second.
    fake.fail("CreateToken", Failure(grpc.StatusCode.UNAVAILABLE, "restarting"))
    with pytest.raises(greenlight.Unavailable):
        client.create_token(agent_pool="lab/h100")
    assert len(fake.calls_of("CreateToken")) == 1


def test_create_token_refuses_a_server_that_ignored_agent_pool(client, fake):
    class OldAdmin:
        def __init__(self, stub):
            self.stub = stub

        def CreateToken(self, request, **kw):
            old = type(request)()
            old.CopyFrom(request)
            old.ClearField("agent_pool")  # what a server without the field sees
            old.team = "vision"  # ...and say it made some other token anyway
            return self.stub.CreateToken(old, **kw)

    client._admin = OldAdmin(client._admin)
    with pytest.raises(greenlight.GreenlightError, match="predates agent tokens"):
        client.create_token(agent_pool="lab/h100")

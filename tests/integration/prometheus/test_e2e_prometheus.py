"""End to end: Debian's Prometheus scrapes a live greenlightd (demo config,
accelerated clock) with the shipped recording and alert rules. After jobs are
submitted through the gRPC API, every PromQL expression of the dashboard and
of the rules returns series, the exported spend agrees with GetUsage, and the
80% budget alert fires when a team crosses 80%.

Needs GREENLIGHT_BIN (the build tree); run by ctest as `prometheus_e2e`."""

import calendar
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import promql_sources as src
from procs import free_port, http_get, stop_all, wait_until

BIN = os.environ.get("GREENLIGHT_BIN", os.path.join(src.ROOT, "build"))
GREENLIGHTD = os.path.join(BIN, "services", "scheduler", "greenlightd")
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
DEMO_CONFIG = os.path.join(src.ROOT, "deploy", "config", "demo.yaml")
SCRAPE_SECONDS = 1

# --- processes -----------------------------------------------------------------


def time_scale_for_this_month():
    """The demo's 3600x would carry the simulated clock across the end of the
    UTC month within the test (budgets reset there): keep a few minutes of
    test well inside the month."""
    now = datetime.datetime.now(datetime.timezone.utc)
    days = calendar.monthrange(now.year, now.month)[1]
    end = datetime.datetime(now.year, now.month, days, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(days=1)
    seconds_left = (end - now).total_seconds()
    # At most a tenth of the remaining month in 600 wall seconds.
    return max(1.0, min(600.0, seconds_left / 6000.0))


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack():
    if not os.path.exists(GREENLIGHTD):
        pytest.fail(f"{GREENLIGHTD} not built (set GREENLIGHT_BIN to the build tree)")
    tmp = tempfile.mkdtemp(prefix="gl-prom-e2e-")
    procs = []
    try:
        # Python stubs of the public API, generated for this run.
        gen = os.path.join(tmp, "gen")
        os.makedirs(gen)
        protos = sorted(os.path.join("greenlight", "v1", p)
                        for p in os.listdir(os.path.join(src.ROOT, "proto", "greenlight", "v1"))
                        if p.endswith(".proto"))
        subprocess.run(["protoc", "-I", os.path.join(src.ROOT, "proto"), f"--python_out={gen}",
                        f"--grpc_python_out={gen}",
                        "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + protos,
                       check=True, cwd=os.path.join(src.ROOT, "proto"))
        sys.path.insert(0, gen)
        import grpc
        from greenlight.v1 import budgets_pb2, budgets_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
        from greenlight.v1 import types_pb2

        grpc_port, metrics_port, prom_port = free_port(), free_port(), free_port()
        scale = time_scale_for_this_month()
        gl_log = os.path.join(tmp, "greenlightd.log")
        gl = subprocess.Popen(
            [GREENLIGHTD, "--config", DEMO_CONFIG, "--grpc_address", f"127.0.0.1:{grpc_port}",
             "--metrics_address", f"127.0.0.1:{metrics_port}", "--store",
             os.path.join(tmp, "gl.db"), f"--time_scale={scale}"],
            stdout=open(gl_log, "w"), stderr=subprocess.STDOUT, cwd=src.ROOT)
        procs.append(("greenlightd", gl, gl_log))

        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        sched = scheduler_pb2_grpc.SchedulerStub(channel)
        budgets = budgets_pb2_grpc.BudgetsStub(channel)
        wait_until("greenlightd gRPC Ping",
                   lambda: sched.Ping(scheduler_pb2.PingRequest(), timeout=2) is not None,
                   60, procs)
        wait_until(f"greenlightd /metrics on 127.0.0.1:{metrics_port} (--metrics_address)",
                   lambda: http_get(f"http://127.0.0.1:{metrics_port}/metrics")[0] == 200,
                   15, procs)

        # Prometheus with the shipped rules, scraping every second.
        prom_dir = os.path.join(tmp, "prometheus")
        os.makedirs(prom_dir)
        prom_config = os.path.join(prom_dir, "prometheus.yml")
        with open(prom_config, "w") as f:
            json.dump({  # JSON is YAML
                "global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                           "evaluation_interval": f"{SCRAPE_SECONDS}s"},
                "rule_files": src.RULE_FILES,
                "scrape_configs": [{"job_name": "greenlight",
                                    "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
            }, f)
        prom_log = os.path.join(tmp, "prometheus.log")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={prom_config}",
             f"--storage.tsdb.path={os.path.join(prom_dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=open(prom_log, "w"), stderr=subprocess.STDOUT, cwd=prom_dir)
        procs.append(("prometheus", prom, prom_log))
        api = f"http://127.0.0.1:{prom_port}"
        wait_until("prometheus ready", lambda: http_get(f"{api}/-/ready")[0] == 200, 60, procs)

        yield {
            "api": api, "procs": procs, "scale": scale, "pb": {
                "budgets": budgets_pb2, "scheduler": scheduler_pb2, "types": types_pb2},
            "sched": sched, "budgets": budgets, "logs": (gl_log, prom_log),
        }
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def query(stack, expr):
    url = f"{stack['api']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        _, body = http_get(url)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"query {expr!r}: HTTP {e.code}: {e.read().decode()}") from e
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def value_of(stack, expr):
    result = query(stack, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


def spec(stack, team, gpus, wall_seconds, **kw):
    """A job that runs for `wall_seconds` of real time at the test's clock scale."""
    types = stack["pb"]["types"]
    s = types.JobSpec(team=team, name=f"e2e-{team}", gpus=gpus, **kw)
    s.duration.seconds = max(60, int(wall_seconds * stack["scale"]))
    return s


def submit(stack, s):
    return stack["sched"].SubmitJob(stack["pb"]["scheduler"].SubmitJobRequest(spec=s), timeout=30).job


def usage(stack, team):
    return stack["budgets"].GetUsage(stack["pb"]["budgets"].GetUsageRequest(team=team),
                                     timeout=10).usage


ALERT_TEAM = "e2e-alert"


@pytest.fixture(scope="module")
def workload(stack):
    """Jobs for the demo teams: running (burn rates, GPUs), finished (spend),
    waiting (pending by reason), plus one rejection."""
    import grpc
    types = stack["pb"]["types"]
    long_run = 600  # wall seconds: outlives the test
    jobs = [
        submit(stack, spec(stack, "vision", 8, long_run)),
        submit(stack, spec(stack, "vision", 8, long_run)),
        # vision's quota is 16 GPUs: this one waits.
        submit(stack, spec(stack, "vision", 8, long_run)),
        submit(stack, spec(stack, "ml-research", 8, long_run)),
        submit(stack, spec(stack, "ml-research", 1, 2)),
        submit(stack, spec(stack, "acme", 1, 2, mode=types.PLACEMENT_MODE_GREENEST)),
    ]
    with pytest.raises(grpc.RpcError) as e:
        submit(stack, spec(stack, "ml-research", 1, 2, max_cost_micros=1))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value
    return jobs


def wait_for_alert(stack, alertname, team, timeout):
    def firing():
        _, body = http_get(f"{stack['api']}/api/v1/alerts")
        for a in json.loads(body)["data"]["alerts"]:
            if (a["labels"].get("alertname") == alertname and a["labels"].get("team") == team
                    and a["state"] == "firing"):
                return a
        return None
    return wait_until(f"{alertname} firing for {team}", firing, timeout, stack["procs"])


def alert_states(stack, alertname, team):
    _, body = http_get(f"{stack['api']}/api/v1/alerts")
    return [a["state"] for a in json.loads(body)["data"]["alerts"]
            if a["labels"].get("alertname") == alertname and a["labels"].get("team") == team]


# --- tests -------------------------------------------------------------------------


def test_prometheus_scrapes_greenlightd(stack):
    wait_until("up{job=\"greenlight\"} == 1",
               lambda: query(stack, 'up{job="greenlight"} == 1'), 30, stack["procs"])
    assert value_of(stack, "count(greenlight_build_info)") == 1


def test_80_percent_alert_fires_when_a_team_crosses_80_percent(stack):
    types, budgets_pb2 = stack["pb"]["types"], stack["pb"]["budgets"]
    scheduler_pb2 = stack["pb"]["scheduler"]
    team = types.Team(name=ALERT_TEAM, monthly_cost_budget_micros=10**12,
                      monthly_carbon_budget_mg=10**12)
    stack["budgets"].SetTeam(budgets_pb2.SetTeamRequest(team=team), timeout=10)
    job = spec(stack, ALERT_TEAM, 1, 3, mode=types.PLACEMENT_MODE_CHEAPEST)
    quote = stack["sched"].EstimateJob(scheduler_pb2.EstimateJobRequest(spec=job), timeout=30).quote
    assert quote.feasible, quote.summary
    assert quote.chosen.cost_micros > 0
    # One such job commits 88% of the budget: past 80%, short of 100%.
    team.monthly_cost_budget_micros = int(quote.chosen.cost_micros / 0.88)
    stack["budgets"].SetTeam(budgets_pb2.SetTeamRequest(team=team), timeout=10)
    budget_expr = f'greenlight_team_cost_budget_usd{{team="{ALERT_TEAM}"}}'
    wait_until(f"{ALERT_TEAM}'s new budget exported",
               lambda: [r for r in query(stack, budget_expr)
                        if float(r["value"][1]) * 1e6 == pytest.approx(
                            team.monthly_cost_budget_micros)],
               30, stack["procs"])
    time.sleep(3 * SCRAPE_SECONDS)  # recording and alerting rules evaluated since
    ratio_expr = f'greenlight:team_cost_budget_used:ratio{{team="{ALERT_TEAM}"}}'
    assert value_of(stack, ratio_expr) < 0.8
    assert alert_states(stack, "GreenlightTeamCostBudget80Percent", ALERT_TEAM) == []

    submit(stack, job)
    alert = wait_for_alert(stack, "GreenlightTeamCostBudget80Percent", ALERT_TEAM, 30)
    assert alert["labels"]["severity"] == "warning"
    assert 0.8 <= value_of(stack, ratio_expr) < 1.0
    assert alert_states(stack, "GreenlightTeamCostBudgetExhausted", ALERT_TEAM) == []


def test_every_dashboard_and_rule_expression_returns_series(stack, workload):
    exprs = [(w, src.substitute_grafana_vars(e)) for w, e in src.dashboard_exprs()]
    for path, _, rule in src.load_rules():
        if "alert" in rule:
            # An alert's condition is empty while it does not fire; with
            # `bool` the same expression returns its inputs' series (0 or 1).
            exprs.append((f"{path} {rule['alert']}", with_bool(rule["expr"].strip())))
        else:
            exprs.append((f"{path} {rule['record']}", rule["expr"].strip()))
            exprs.append((f"{path} {rule['record']} (recorded)", rule["record"]))

    def empty():
        return [(w, e) for w, e in exprs if not query(stack, e)] or None

    # Rates and increases need a few scrapes after the workload started.
    deadline = time.monotonic() + 90
    missing = empty()
    while missing and time.monotonic() < deadline:
        time.sleep(2)
        missing = empty()
    assert not missing, "expressions without series:\n" + "\n".join(
        f"  {w}: {e}" for w, e in missing)


def test_exported_spend_agrees_with_get_usage(stack, workload):
    teams = ["acme", "ml-research", "vision", ALERT_TEAM]
    # Teams with running jobs: spend only grows within the month, so a value
    # scraped after GetUsage returned `before` lies between it and `after`.
    for t in teams:
        before = usage(stack, t)
        spent_expr = f'greenlight_team_cost_spent_usd{{team="{t}"}}'
        emitted_expr = f'greenlight_team_carbon_emitted_kg{{team="{t}"}}'
        wait_until(f"{t}'s exported spend to reach GetUsage's",
                   lambda: value_of(stack, spent_expr) >= before.cost_spent_micros / 1e6 - 1e-9
                   and value_of(stack, emitted_expr) >= before.carbon_spent_mg / 1e6 - 1e-12,
                   30, stack["procs"])
        spent, emitted = value_of(stack, spent_expr), value_of(stack, emitted_expr)
        after = usage(stack, t)
        assert spent <= after.cost_spent_micros / 1e6 + 1e-9, (t, spent, after)
        assert emitted <= after.carbon_spent_mg / 1e6 + 1e-12, (t, emitted, after)

    # Exact agreement once a team is quiescent: the alert team's only job
    # finishes after a few wall seconds.
    def settled():
        u = usage(stack, ALERT_TEAM)
        return u if u.cost_spent_micros > 0 and u.cost_reserved_micros == 0 else None
    u = wait_until(f"{ALERT_TEAM}'s job to finish", settled, 60, stack["procs"])
    want = {
        "greenlight_team_cost_budget_usd": u.cost_budget_micros / 1e6,
        "greenlight_team_cost_spent_usd": u.cost_spent_micros / 1e6,
        "greenlight_team_cost_reserved_usd": u.cost_reserved_micros / 1e6,
        "greenlight_team_cost_remaining_usd": u.cost_remaining_micros / 1e6,
        "greenlight_team_carbon_budget_kg": u.carbon_budget_mg / 1e6,
        "greenlight_team_carbon_emitted_kg": u.carbon_spent_mg / 1e6,
        "greenlight_team_carbon_reserved_kg": u.carbon_reserved_mg / 1e6,
        "greenlight_team_carbon_remaining_kg": u.carbon_remaining_mg / 1e6,
        "greenlight_team_running_gpus": u.running_gpus,
    }

    def exported():
        return {m: value_of(stack, f'{m}{{team="{ALERT_TEAM}"}}') for m in want}

    def agrees():
        got = exported()
        return all(got[m] == pytest.approx(w, rel=1e-12, abs=1e-9) for m, w in want.items())
    try:
        wait_until("exported usage to equal GetUsage", agrees, 30, stack["procs"])
    except BaseException:
        got = exported()
        pytest.fail("exported != GetUsage: " + ", ".join(
            f"{m}: {got[m]} vs {w}" for m, w in want.items() if got[m] != pytest.approx(w)))


def with_bool(expr):
    """Adds `bool` to every comparison outside label matchers and strings."""
    out, depth, i = [], 0, 0
    while i < len(expr):
        c = expr[i]
        if c == '"':
            j = expr.index('"', i + 1)
            out.append(expr[i:j + 1])
            i = j + 1
            continue
        if c in "{}":
            depth += 1 if c == "{" else -1
        elif depth == 0:
            m = re.match(r"==|!=|>=|<=|>|<", expr[i:])
            if m:
                out.append(m.group(0) + " bool")
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def test_with_bool_leaves_matchers_alone():
    assert with_bool('up{job!="x"} == 0 or absent(up{job="g"})') == \
        'up{job!="x"} == bool 0 or absent(up{job="g"})'
    assert with_bool("a >= 0.8") == "a >= bool 0.8"

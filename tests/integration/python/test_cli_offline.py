"""The CLI against an in-process fake server: output formats and exit codes."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from fakes import Failure, FakeServer, make_quote
from greenlight import cli


@pytest.fixture
def fake_server():
    srv = FakeServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def run(fake_server, capsys):
    """run(*args) -> (exit code, stdout, stderr), in-process."""

    def _run(*args):
        code = cli.main(["--target", fake_server.target, "--timeout", "5", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


SUBMIT = ["--team", "nlp", "--gpus", "8", "--gpu-hours", "64", "--max-cost", "500", "--max-carbon", "40"]


def test_submit_table_and_json(run, fake_server):
    code, out, _ = run("submit", *SUBMIT, "--name", "bert", "--label", "sweep=lr", "--deadline", "+2d")
    assert code == 0
    assert "j-0000000000000001" in out and "PLANNED" in out
    assert "$412.00, 35.50 kg CO2e" in out  # predicted
    assert "aws/eu-north-1/p4d.24xlarge" in out
    sent = fake_server.fake.calls_of("SubmitJob")[0][1].spec
    assert sent.max_cost_micros == 500_000_000 and sent.max_carbon_mg == 40_000_000
    assert dict(sent.labels) == {"sweep": "lr"} and sent.name == "bert"
    assert sent.deadline.seconds > datetime.now(timezone.utc).timestamp() + 86400
    code, out, _ = run("-o", "json", "submit", *SUBMIT)
    job = json.loads(out)
    assert code == 0 and job["id"] == "j-0000000000000002" and job["state"] == "PLANNED"
    assert job["placement"]["cost_usd"] == 412.0 and job["placement"]["carbon_kg"] == 35.5
    assert job["spec"]["max_cost_usd"] == 500.0 and job["submit_time"].endswith("Z")


def test_options_after_the_command_work_too(run):
    code, out, _ = run("submit", *SUBMIT, "--output", "json")
    assert code == 0 and json.loads(out)["state"] == "PLANNED"


def test_estimate_prints_the_ranked_table(run):
    code, out, _ = run("estimate", *SUBMIT)
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("#"))
    for col in ("POOL", "REGION", "START", "COST", "CARBON", "WHY IT LOST"):
        assert col in header
    rows = [line for line in out.splitlines() if line[:1].isdigit() or line.strip()[:1].isdigit()]
    assert "chosen" in rows[0] and "aws/eu-north-1/p4d.24xlarge" in rows[0] and "$412.00" in rows[0]
    assert "+$50.00, +319.5 kg CO2e" in rows[1] and "gcp/us-central1" in rows[1]
    assert "carbon avoided vs baseline: 319.50 kg" in out
    assert "gpu_type=7" in out
    code, out, _ = run("-o", "json", "estimate", *SUBMIT, "--top", "1")
    q = json.loads(out)
    assert q["feasible"] and len(q["alternatives"]) == 1 and q["chosen"]["why_not"] == ""


def test_estimate_not_feasible_exits_5(run, fake_server):
    fake_server.fake.estimate_feasible = False
    code, out, _ = run("estimate", *SUBMIT)
    assert code == cli.EXIT_CAP_EXCEEDED and "NOT feasible" in out and "cheapest: $412 > cap $1" in out


def test_get_list_cancel(run):
    for _ in range(3):
        run("submit", *SUBMIT)
    code, out, _ = run("get", "j-0000000000000001")
    assert code == 0 and "id:" in out and "j-0000000000000001" in out
    code, out, _ = run("list")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "STATE", "TEAM"] and len(lines) == 4
    code, out, _ = run("-o", "json", "list", "--limit", "2")
    assert [j["id"] for j in json.loads(out)] == ["j-0000000000000001", "j-0000000000000002"]
    code, out, _ = run("cancel", "j-0000000000000002", "--reason", "bad lr")
    assert code == 0 and "CANCELLED" in out
    code, out, _ = run("-o", "json", "list", "--state", "cancelled")
    assert [j["id"] for j in json.loads(out)] == ["j-0000000000000002"]


def test_watch_json_lines_and_count(run):
    for _ in range(3):
        run("submit", *SUBMIT)
    code, out, _ = run("-o", "json", "watch", "--count", "3")
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [e["revision"] for e in events] == [1, 2, 3]
    assert events[0]["type"] == "SUBMITTED"
    code, out, _ = run("watch", "--from-revision", "1", "--count", "2")
    lines = out.splitlines()
    assert lines[0].split()[0] == "REVISION" and lines[1].split()[0] == "2" and len(lines) == 3


def test_watch_until_done(run):
    run("submit", *SUBMIT)
    run("cancel", "j-0000000000000001")
    code, out, _ = run("watch", "--job", "j-0000000000000001", "--until-done")
    assert code == 0 and "CANCELLED" in out


def test_teams_and_usage(run, fake_server):
    code, out, _ = run("teams", "set", "vision", "--cost-budget", "1000", "--carbon-budget", "50", "--gpu-quota", "64")
    assert code == 0 and "$1,000.00" in out and "50.00 kg" in out
    code, out, _ = run("teams", "set", "vision", "--gpu-quota", "32")
    assert "$1,000.00" in out  # kept: set changes only what is given
    code, out, _ = run("-o", "json", "teams", "get", "vision")
    t = json.loads(out)
    assert t["monthly_cost_budget_usd"] == 1000.0 and t["gpu_quota"] == 32
    code, out, _ = run("teams", "set", "vision", "--gpu-quota", "8", "--replace")
    assert "unlimited" in out
    code, out, _ = run("teams")
    assert code == 0 and out.splitlines()[0].startswith("TEAM") and "vision" in out
    code, out, _ = run("-o", "json", "teams", "list")
    assert [t["name"] for t in json.loads(out)] == ["vision"]
    code, out, _ = run("usage", "vision")
    assert code == 0 and "$250.50" in out and "12.35 kg" in out and "2025-06-01" in out
    code, out, _ = run("-o", "json", "usage", "vision")
    u = json.loads(out)
    assert u["cost_spent_usd"] == 250.5 and u["carbon_spent_kg"] == 12.345678


def test_pools_and_zones(run):
    code, out, _ = run("pools")
    assert code == 0 and "p4d.24xlarge" in out and "$32.77" in out
    code, out, _ = run("-o", "json", "zones")
    assert code == 0 and json.loads(out)[0]["name"] == "DE"


@pytest.mark.parametrize(
    "status, expected",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, cli.EXIT_INVALID),
        (grpc.StatusCode.NOT_FOUND, cli.EXIT_NOT_FOUND),
        (grpc.StatusCode.FAILED_PRECONDITION, cli.EXIT_CAP_EXCEEDED),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, cli.EXIT_BUDGET_EXHAUSTED),
        (grpc.StatusCode.PERMISSION_DENIED, cli.EXIT_PERMISSION),
        (grpc.StatusCode.UNAUTHENTICATED, cli.EXIT_PERMISSION),
        (grpc.StatusCode.ALREADY_EXISTS, cli.EXIT_ALREADY_EXISTS),
        (grpc.StatusCode.INTERNAL, cli.EXIT_ERROR),
    ],
)
def test_exit_codes_by_error_class(run, fake_server, status, expected):
    fake_server.fake.fail("SubmitJob", Failure(status, "spec.gpus: nope"))
    code, out, err = run("submit", *SUBMIT)
    assert code == expected
    assert out == "" and "nope" in err


def test_cap_exceeded_reports_the_quote(run, fake_server):
    q = make_quote(feasible=False, summary="cheapest feasible: $412 > cap $300")
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.FAILED_PRECONDITION, "no placement meets the job's constraints", [q]))
    code, _, err = run("submit", *SUBMIT)
    assert code == cli.EXIT_CAP_EXCEEDED
    assert "CapExceeded" in err and "cheapest feasible: $412 > cap $300" in err and "$412.00" in err
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.FAILED_PRECONDITION, "no placement", [q]))
    code, _, err = run("-o", "json", "submit", *SUBMIT)
    body = json.loads(err)["error"]
    assert body["type"] == "CapExceeded" and body["quote"]["chosen"]["cost_usd"] == 412.0


def test_invalid_job_names_the_field(run):
    code, _, err = run("submit", "--team", "nlp", "--gpus", "0", "--gpu-hours", "1")
    assert code == cli.EXIT_INVALID and "field: gpus (option --gpus)" in err


def test_unavailable_exits_9(capsys):
    from server import free_port

    code = cli.main(["--target", f"127.0.0.1:{free_port()}", "--timeout", "1", "get", "j-1"])
    _, err = capsys.readouterr()
    assert code == cli.EXIT_UNAVAILABLE and "is greenlightd running?" in err


def test_usage_errors_exit_2(run):
    with pytest.raises(SystemExit) as e:
        run("submit", "--team", "x", "--gpus", "1")  # no --gpu-hours / --duration
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run("submit", *SUBMIT, "--deadline", "tomorrow-ish")
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run("list", "--state", "sleeping")
    assert e.value.code == 2
    assert cli.main([]) == 2  # no command: help


@pytest.mark.parametrize(
    "text, seconds",
    [("90m", 5400), ("2h30m", 9000), ("1d", 86400), ("45s", 45), ("3600", 3600), ("1.5h", 5400)],
)
def test_parse_duration(text, seconds):
    assert cli.parse_duration(text) == timedelta(seconds=seconds)


def test_parse_time():
    t = cli.parse_time("2025-06-01T18:00Z")
    assert t == datetime(2025, 6, 1, 18, 0, tzinfo=timezone.utc)
    assert cli.parse_time("+2h") - datetime.now(timezone.utc) > timedelta(hours=1, minutes=59)
    assert cli.parse_time("2025-06-01T18:00").tzinfo is not None  # local time


def test_token_flag_and_file(fake_server, tmp_path, capsys):
    f = tmp_path / "tok"
    f.write_text("file-secret\n")
    assert cli.main(["--target", fake_server.target, "--token-file", str(f), "zones"]) == 0
    assert fake_server.fake.calls[-1][2]["authorization"] == "Bearer file-secret"
    assert cli.main(["zones", "--target", fake_server.target, "--token", "flag-secret"]) == 0
    assert fake_server.fake.calls[-1][2]["authorization"] == "Bearer flag-secret"


def test_python_m_greenlight_and_help(client_env):
    proc = subprocess.run(
        [sys.executable if sys.executable.startswith("/usr/bin/") else "/usr/bin/python3", "-m", "greenlight", "--help"],
        env=client_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for word in ("submit", "estimate", "watch", "teams", "usage", "exit codes", "GREENLIGHT_TARGET", "--token-file"):
        assert word in proc.stdout
    proc = subprocess.run(
        ["/usr/bin/python3", "-m", "greenlight", "estimate", "--help"], env=client_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "--max-cost USD" in proc.stdout and "--max-carbon KG" in proc.stdout


def test_bin_wrapper(client_env):
    from conftest import CLIENT_DIR

    proc = subprocess.run(
        [os.path.join(CLIENT_DIR, "bin", "greenlight"), "--version"], env=client_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("greenlight ")

"""The CLI against an in-process fake server: output formats and exit codes."""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from fakes import Failure, FakeGreenlight, FakeServer, make_quote
from greenlight import cli
from greenlight.client import ServerClock
from greenlight.v1 import scheduler_pb2, types_pb2


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
    base = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert cli.parse_time("+1d12h", now=base) == base + timedelta(hours=36)
    assert cli.parse_time("2025-06-01T18:00").tzinfo is not None  # local time


def test_time_arguments_keep_relative_text_until_connected():
    rel = cli.parse_time_arg("+1d12h")
    assert isinstance(rel, cli.RelativeTime) and rel.text == "+1d12h" and rel.offset == timedelta(hours=36)
    assert cli.parse_time_arg("now").offset == timedelta(0)
    assert cli.parse_time_arg("2025-06-01T18:00Z") == datetime(2025, 6, 1, 18, 0, tzinfo=timezone.utc)
    args = cli.build_parser().parse_args(["submit", *SUBMIT, "--deadline", "+48h", "--not-before", "now"])
    assert isinstance(args.deadline, cli.RelativeTime) and args.deadline.text == "+48h"
    assert isinstance(args.not_before, cli.RelativeTime)
    args = cli.build_parser().parse_args(["usage", "vision", "--at", "+31d"])
    assert isinstance(args.at, cli.RelativeTime)


# -- relative times on the server's clock (issue 17) -----------------------------


class ClockFake(FakeGreenlight):
    """A fake whose Ping reports a server clock of its own (like the demo's,
    which runs 3600x: three days ahead of the wall clock after 72 s)."""

    def __init__(self, ahead=timedelta(days=3), time_scale=3600.0, send_time=True):
        super().__init__()
        self.server_time = (datetime.now(timezone.utc) + ahead).replace(microsecond=0)
        self.time_scale = time_scale
        self.send_time = send_time

    def Ping(self, request, context):
        self._enter("Ping", request, context)
        resp = scheduler_pb2.PingResponse(revision=self.revision, time_scale=self.time_scale)
        if self.send_time:
            resp.server_time.FromSeconds(int(self.server_time.timestamp()))
        return resp


@pytest.fixture
def clock_server():
    servers = []

    def _start(**kw):
        srv = FakeServer(ClockFake(**kw)).start()
        servers.append(srv)
        return srv

    yield _start
    for srv in servers:
        srv.stop()


def _run_cli(srv, capsys, *args):
    t0 = time.monotonic()
    code = cli.main(["--target", srv.target, "--timeout", "5", *args])
    elapsed = time.monotonic() - t0
    out, err = capsys.readouterr()
    return code, out, err, elapsed


def _ts(ts):
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, timezone.utc)


def test_relative_deadline_counts_from_the_server_clock(clock_server, capsys):
    srv = clock_server(ahead=timedelta(days=3), time_scale=3600)
    server_now = srv.fake.server_time
    code, out, err, elapsed = _run_cli(srv, capsys, "submit", *SUBMIT, "--deadline", "+48h", "--not-before", "now")
    assert code == 0, err
    sent = srv.fake.calls_of("SubmitJob")[0][1].spec
    # server_time + 48 h, plus at most what the server clock moved (3600x)
    # between the Ping and the submit; nowhere near the wall clock + 48 h.
    drift = _ts(sent.deadline) - (server_now + timedelta(hours=48))
    assert timedelta(0) <= drift <= timedelta(seconds=elapsed * 3600 + 1), drift
    assert _ts(sent.deadline) - _ts(sent.not_before) == timedelta(hours=48)  # one "now" for both
    assert _ts(sent.not_before) - server_now < timedelta(seconds=elapsed * 3600 + 1)
    assert len(srv.fake.calls_of("Ping")) == 1  # one Ping per invocation
    assert "greenlight: relative times use the server's clock: " in err and "(3600x)" in err
    note = next(line for line in err.splitlines() if "relative times" in line)
    assert cli.fmt_time(server_now)[:10] in note  # the server's date, 3 days ahead
    assert "greenlight: relative times" not in out


def test_estimate_and_usage_resolve_relative_times_on_the_server_clock(clock_server, capsys):
    srv = clock_server(ahead=timedelta(days=40), time_scale=3600)
    code, _, err, elapsed = _run_cli(srv, capsys, "estimate", *SUBMIT, "--deadline", "+1d12h")
    assert code == 0, err
    sent = srv.fake.calls_of("EstimateJob")[0][1].spec
    drift = _ts(sent.deadline) - (srv.fake.server_time + timedelta(hours=36))
    assert timedelta(0) <= drift <= timedelta(seconds=elapsed * 3600 + 1)
    code, _, err, elapsed = _run_cli(srv, capsys, "usage", "vision", "--at", "now")
    assert code == 0, err
    at = _ts(srv.fake.calls_of("GetUsage")[0][1].at)
    assert timedelta(0) <= at - srv.fake.server_time <= timedelta(seconds=elapsed * 3600 + 1)
    assert "(3600x)" in err and len(srv.fake.calls_of("Ping")) == 2


def test_absolute_times_and_no_times_need_no_ping(clock_server, capsys):
    srv = clock_server()
    code, _, err, _ = _run_cli(srv, capsys, "submit", *SUBMIT, "--deadline", "2030-01-02T03:04Z")
    assert code == 0, err
    sent = srv.fake.calls_of("SubmitJob")[0][1].spec
    assert _ts(sent.deadline) == datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)
    code, _, err, _ = _run_cli(srv, capsys, "estimate", *SUBMIT)
    assert code == 0 and not sent.HasField("not_before")
    assert srv.fake.calls_of("Ping") == [] and "relative times" not in err


def test_real_time_server_prints_no_clock_note(clock_server, capsys):
    srv = clock_server(ahead=timedelta(0), time_scale=1.0)
    code, _, err, _ = _run_cli(srv, capsys, "submit", *SUBMIT, "--deadline", "+2d")
    assert code == 0 and err == ""
    sent = srv.fake.calls_of("SubmitJob")[0][1].spec
    assert abs(_ts(sent.deadline) - (datetime.now(timezone.utc) + timedelta(days=2))) < timedelta(seconds=30)


def test_server_without_time_scale_ahead_of_us_is_named(clock_server, capsys):
    srv = clock_server(ahead=timedelta(days=3, hours=2), time_scale=0.0)  # an older server: no time_scale
    code, _, err, _ = _run_cli(srv, capsys, "submit", *SUBMIT, "--deadline", "+48h")
    assert code == 0
    assert "relative times use the server's clock" in err and "3d2h ahead of this machine's" in err
    sent = srv.fake.calls_of("SubmitJob")[0][1].spec
    drift = _ts(sent.deadline) - (srv.fake.server_time + timedelta(hours=48))
    assert timedelta(0) <= drift < timedelta(seconds=30)


def test_server_reporting_no_clock_falls_back_to_ours(clock_server, capsys):
    srv = clock_server(send_time=False, time_scale=0.0)
    code, _, err, _ = _run_cli(srv, capsys, "submit", *SUBMIT, "--deadline", "+48h")
    assert code == 0 and "this machine's clock" in err
    sent = srv.fake.calls_of("SubmitJob")[0][1].spec
    assert abs(_ts(sent.deadline) - (datetime.now(timezone.utc) + timedelta(hours=48))) < timedelta(seconds=30)


def test_json_output_keeps_stderr_clean(clock_server, capsys):
    srv = clock_server()
    code, out, err, _ = _run_cli(srv, capsys, "-o", "json", "submit", *SUBMIT, "--deadline", "+48h")
    assert code == 0 and err == "" and json.loads(out)["state"] == "PLANNED"


def test_clock_note_formats():
    t = datetime(2026, 12, 9, 14, 0, tzinfo=timezone.utc)
    clock = ServerClock(t, 3600.0, 7, t - timedelta(days=3))
    assert cli.clock_note(clock, t) == "greenlight: relative times use the server's clock: 2026-12-09 14:00Z (3600x)"
    assert cli.clock_note(ServerClock(t, 1.0, 7, t), t) is None
    assert "behind this machine's" in cli.clock_note(ServerClock(t, 1.0, 7, t + timedelta(hours=2)), t)


# -- errors name the flag (issue 17) ------------------------------------------


@pytest.mark.parametrize("path, flag", sorted(cli.JOB_FLAGS.items()))
def test_invalid_job_errors_name_the_flag_of_every_spec_field(run, fake_server, path, flag):
    for command in ("submit", "estimate"):
        method = "SubmitJob" if command == "submit" else "EstimateJob"
        fake_server.fake.fail(method, Failure(grpc.StatusCode.INVALID_ARGUMENT, f"{path}: is wrong"))
        code, _, err = run(command, *SUBMIT)
        assert code == cli.EXIT_INVALID
        assert f"{path} ({flag}): is wrong" in err, err
        assert f"(option {flag})" in err, err


def test_every_job_option_has_a_field_in_the_flag_table():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = next(g for g in sub.choices["submit"]._action_groups if g.title == "the job")
    options = {s for a in group._group_actions for s in a.option_strings if s.startswith("--")}
    named = set()
    for flag in cli.JOB_FLAGS.values():
        named.update(re.findall(r"--[a-z][a-z0-9-]*", flag))  # "-- COMMAND" is no option
    assert options == named
    assert cli.JOB_FLAGS["spec.command.argv"] == "-- COMMAND"


def test_error_messages_name_every_flag_they_mention(run, fake_server):
    fake_server.fake.fail(
        "SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, "spec.deadline: must be after spec.not_before")
    )
    code, _, err = run("submit", *SUBMIT)
    assert code == cli.EXIT_INVALID
    assert "spec.deadline (--deadline): must be after spec.not_before (--not-before)" in err
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, "spec.deadline: must be in the future"))
    code, _, err = run("submit", *SUBMIT, "--deadline", "2020-01-01T00:00Z")
    assert "field: deadline (option --deadline)" in err and "relative times such as --deadline +48h" in err
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, "spec.max_cost_micros: must be >= 0"))
    code, _, err = run("-o", "json", "submit", *SUBMIT)
    body = json.loads(err)["error"]
    assert body["flag"] == "--max-cost" and body["argument"] == "max_cost_usd"
    assert body["message"] == "spec.max_cost_micros: must be >= 0"  # the server's words, untouched
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.FAILED_PRECONDITION, "spec.gpus: 8 H100 never fit"))
    code, _, err = run("submit", *SUBMIT)
    assert code == cli.EXIT_CAP_EXCEEDED and "spec.gpus (--gpus): 8 H100 never fit" in err


def test_team_errors_name_the_teams_set_flags(run, fake_server):
    assert cli.flag_for("teams set", "team.monthly_cost_budget_micros") == "--cost-budget"
    assert cli.flag_for("submit", "max_carbon_mg") == "--max-carbon"
    assert cli.flag_for("estimate", "top_k") == "--top"
    assert cli.flag_for("submit", "spec.labels[k]") == "--label"
    assert cli.flag_for("submit", "team.gpu_quota") is None  # not a submit flag
    fake_server.fake.fail("SetTeam", Failure(grpc.StatusCode.INVALID_ARGUMENT, "team.alert_ratio: must be between 0 and 1"))
    code, _, err = run("teams", "set", "vision", "--alert-ratio", "2", "--replace")
    assert code == cli.EXIT_INVALID and "team.alert_ratio (--alert-ratio): must be" in err


# -- help examples (issue 17) --------------------------------------------------


def _demo_names():
    from conftest import demo_config

    text = open(demo_config(), encoding="utf-8").read()
    teams = set(re.findall(r"\{name: ([a-z0-9-]+)", text))
    gpus = set(re.search(r"gpu_types: \[([^\]]*)\]", text).group(1).replace(" ", "").split(","))
    return teams, gpus


def _subcommands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        yield name, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for action, tp in a.choices.items():
                    yield f"{name} {action}", tp


def test_every_subcommand_help_shows_an_example_for_the_demo(capsys):
    names = [n for n, _ in _subcommands()]
    assert {"submit", "estimate", "get", "list", "cancel", "watch", "teams", "teams set", "usage", "pools", "zones"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as e:
            cli.main([*name.split(), "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text, name
        assert "j-0123456789abcdef" not in text  # no made-up ids
        for line in cli.EXAMPLES[name]:
            assert line in text, (name, line)


def test_help_examples_use_demo_teams_and_gpus_and_parse():
    teams, gpus = _demo_names()
    assert {"acme", "ml-research", "vision"} <= teams and "H100" in gpus
    parser = cli.build_parser()
    for name, lines in cli.EXAMPLES.items():
        for line in lines:
            cmd = line.split("#")[0].strip()
            m = re.fullmatch(r"JOB=\$\((.*)\)", cmd)
            argv = shlex.split((m.group(1) if m else cmd).replace('"$JOB"', "j-00000000000000aa"))
            assert argv[0] == "greenlight", line
            args = cli.parse_args(argv[1:], parser)  # exits 2 when an example does not parse
            if getattr(args, "team", None) is not None and hasattr(args, "gpus"):
                assert args.team in teams, line
            elif args.command in ("usage",) or getattr(args, "teams_action", None) in ("get", "set"):
                assert (args.team if args.command == "usage" else args.name) in teams, line
            for g in cli._split_list(getattr(args, "gpu_type", None) if hasattr(args, "gpus") else None):
                assert g in gpus, line
            if args.command == "pools" and args.gpu_type:
                assert args.gpu_type in gpus, line
            if m:
                assert args.output == "id", line  # JOB=$(...) captures one id
    top = cli.DESCRIPTION
    assert "j-0123456789abcdef" not in top and "--team ml-research" in top


def test_output_id_prints_job_ids_only(run):
    code, out, _ = run("-o", "id", "submit", *SUBMIT)
    assert code == 0 and out == "j-0000000000000001\n"
    run("submit", *SUBMIT)
    code, out, _ = run("list", "-o", "id")
    assert out.split() == ["j-0000000000000001", "j-0000000000000002"]
    code, out, _ = run("-o", "id", "get", "j-0000000000000002")
    assert out == "j-0000000000000002\n"
    code, out, _ = run("-o", "id", "cancel", "j-0000000000000002")
    assert code == 0 and out == "j-0000000000000002\n"
    with pytest.raises(SystemExit) as e:
        run("-o", "id", "zones")
    assert e.value.code == 2


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


# -- node agents (issue 14) ----------------------------------------------------

ONE_GPU = ["--team", "ml-research", "--gpus", "1", "--gpu-hours", "2", "--max-cost", "10"]


def shown(out: str) -> dict:
    """The "key: value" lines of `greenlight get` (one job)."""
    pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_everything_after_double_dash_is_the_command(run, fake_server):
    code, out, err = run("submit", *ONE_GPU, "--env", "WANDB_MODE=offline", "--env", "NOTE=a = b ", "--workdir", "runs/lr", "--", "python", "train.py", "--lr", "3e-4", "--", "-x")
    assert code == 0, err
    sent = fake_server.fake.calls_of("SubmitJob")[0][1].spec
    assert list(sent.command.argv) == ["python", "train.py", "--lr", "3e-4", "--", "-x"]  # as given, -- and all
    assert dict(sent.command.env) == {"WANDB_MODE": "offline", "NOTE": "a = b "}  # values kept exactly
    assert sent.command.working_dir == "runs/lr"
    assert sent.max_cost_micros == 10_000_000 and sent.gpus == 1  # the options before -- still count
    assert shown(out)["command"] == "python train.py --lr 3e-4 -- -x"
    assert shown(out)["env"] == "NOTE, WANDB_MODE" and "offline" not in out  # names only: values may be secrets
    assert shown(out)["workdir"] == "runs/lr"


def test_options_may_come_before_the_subcommand_with_a_command(run, fake_server):
    code, out, err = run("-o", "json", "--timeout=5", "submit", *ONE_GPU, "--", "./train.sh", "--output", "table")
    assert code == 0, err
    assert json.loads(out)["spec"]["command"] == ["./train.sh", "--output", "table"]
    assert list(fake_server.fake.calls_of("SubmitJob")[0][1].spec.command.argv) == ["./train.sh", "--output", "table"]


def test_submit_without_a_command_sends_none(run, fake_server):
    code, out, _ = run("submit", *ONE_GPU)
    assert code == 0 and "command:" not in out
    assert not fake_server.fake.calls_of("SubmitJob")[0][1].spec.HasField("command")


def test_double_dash_followed_by_nothing_is_a_clear_error(run, fake_server, capsys):
    with pytest.raises(SystemExit) as e:
        run("submit", *ONE_GPU, "--")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "greenlight submit: error: nothing after --: give the command to run" in err
    assert fake_server.fake.calls_of("SubmitJob") == []


@pytest.mark.parametrize("extra", [["--env", "A=1"], ["--workdir", "runs"]])
def test_env_and_workdir_need_a_command(run, fake_server, capsys, extra):
    with pytest.raises(SystemExit) as e:
        run("submit", *ONE_GPU, *extra)
    assert e.value.code == 2
    assert "--env and --workdir need the command to run" in capsys.readouterr().err
    assert fake_server.fake.calls_of("SubmitJob") == []


@pytest.mark.parametrize("bad", ["NOEQUALS", "1A=x", "A-B=x", "=x"])
def test_bad_env_is_a_usage_error(run, capsys, bad):
    with pytest.raises(SystemExit) as e:
        run("submit", *ONE_GPU, "--env", bad, "--", "python")
    assert e.value.code == 2 and "--env" in capsys.readouterr().err


def test_estimate_takes_the_command_too(run, fake_server):
    code, _, err = run("estimate", *ONE_GPU, "--", "python", "train.py")
    assert code == 0, err
    assert list(fake_server.fake.calls_of("EstimateJob")[0][1].spec.command.argv) == ["python", "train.py"]


def test_other_commands_keep_the_usual_double_dash(run):
    run("submit", *ONE_GPU)
    code, out, _ = run("-o", "id", "get", "--", "j-0000000000000001")
    assert code == 0 and out == "j-0000000000000001\n"
    args = cli.parse_args(["--token", "submit", "get", "--", "j-1"])  # "submit" is the token here
    assert args.command == "get" and args.job_ids == ["j-1"]


def test_help_shows_the_command_after_double_dash(capsys):
    for command in ("submit", "estimate"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert "[-- COMMAND [ARG ...]]" in text and "--env NAME=VALUE" in text and "--workdir DIR" in text
    with pytest.raises(SystemExit):
        cli.main(["submit", "--help"])
    assert "-- python train.py --epochs 3" in capsys.readouterr().out


def test_get_shows_node_gpus_and_measured_energy(run, fake_server):
    run("submit", *ONE_GPU, "--", "python", "train.py")
    job = fake_server.fake.jobs["j-0000000000000001"]
    job.state = types_pb2.JOB_STATE_STARTING
    job.node = "gpu-01"
    job.gpu_indices.extend([0, 1])
    code, out, _ = run("get", "j-0000000000000001")
    assert code == 0 and shown(out)["state"] == "STARTING" and shown(out)["node"] == "gpu-01 (GPUs 0,1)"
    assert shown(out)["energy"] == "0.0 Wh, modelled from the GPU table's power"
    job.state = types_pb2.JOB_STATE_RUNNING
    job.accrued_energy_wh, job.measured_energy_wh, job.energy_measured = 1480.0, 1233.3, True
    code, out, _ = run("get", "j-0000000000000001")
    assert shown(out)["energy"] == "1.48 kWh, measured by the node's GPU counters (1.23 kWh before PUE)"
    code, out, _ = run("-o", "json", "get", "j-0000000000000001")
    j = json.loads(out)
    assert j["node"] == "gpu-01" and j["gpu_indices"] == [0, 1] and j["energy_measured"] is True
    assert j["measured_energy_wh"] == 1233.3 and j["spec"]["command"] == ["python", "train.py"]
    code, out, _ = run("list", "--state", "starting,running")
    assert "j-0000000000000001" in out and "RUNNING" in out


def test_get_of_a_simulated_job_says_energy_is_modelled(run, fake_server):
    run("submit", *SUBMIT)
    fake_server.fake.jobs["j-0000000000000001"].accrued_energy_wh = 250.0
    code, out, _ = run("get", "j-0000000000000001")
    assert shown(out)["energy"] == "250.0 Wh, modelled from the GPU table's power" and "node:" not in out


def test_pools_show_executor_and_agent_nodes(run, fake_server):
    from fakes import make_agent_pool

    code, out, _ = run("pools")
    assert code == 0 and "EXECUTOR" in out.splitlines()[0] and "simulated" in out and "agent nodes" not in out
    fake_server.fake.extra_pools.append(make_agent_pool())
    code, out, _ = run("pools")
    lines = out.splitlines()
    assert "lab/h100" in out and any(line.startswith("lab/h100") and line.endswith("agent") for line in lines)
    at = lines.index("agent nodes:")
    assert lines[at + 1].split() == ["POOL", "NODE", "STATE", "GPUS", "ENERGY", "LAST", "HEARTBEAT", "AGENT"]
    ready = next(line for line in lines[at:] if "gpu-01" in line)
    assert "READY" in ready and "2 x NVIDIA H100 80GB HBM3" in ready and "measured" in ready
    assert "2025-06-15 15:08:43Z" in ready
    lost = next(line for line in lines[at:] if "gpu-02" in line)
    assert "LOST" in lost and "1 x H100" in lost and "modelled" in lost
    code, out, _ = run("-o", "json", "pools")
    pools = json.loads(out)
    assert pools[1]["executor"] == "AGENT" and [n["name"] for n in pools[1]["agent_nodes"]] == ["gpu-01", "gpu-02"]
    assert pools[1]["agent_nodes"][0]["gpus"][0]["power_limit_w"] == 700.0


def test_agent_pool_without_nodes_says_so(run, fake_server):
    from fakes import make_agent_pool

    fake_server.fake.extra_pools.append(make_agent_pool(nodes=()))
    code, out, _ = run("pools")
    assert "agent nodes: none registered" in out


def test_command_errors_name_the_flags(run, fake_server):
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, "spec.command.env[GREENLIGHT_X]: reserved name"))
    code, _, err = run("submit", *ONE_GPU, "--env", "GREENLIGHT_X=1", "--", "python")
    assert code == cli.EXIT_INVALID
    assert "spec.command.env[GREENLIGHT_X] (--env): reserved name" in err and "(option --env)" in err
    fake_server.fake.fail("SubmitJob", Failure(grpc.StatusCode.INVALID_ARGUMENT, "spec.command.argv: at most 256 arguments"))
    code, _, err = run("submit", *ONE_GPU, "--", "python")
    assert "spec.command.argv (-- COMMAND): at most 256" in err
    assert cli.flag_for("submit", "team.gpu_quota") is None and cli.flag_for("submit", "spec.labels.x") == "--label"

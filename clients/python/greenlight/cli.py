"""The `greenlight` command line (also `python3 -m greenlight`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Optional, Sequence

import grpc

from greenlight import errors
from greenlight import client as _client
from greenlight.client import DEFAULT_TARGET, DEFAULT_TIMEOUT, TLS, Client, RetryPolicy, ServerClock
from greenlight.models import Job, JobSpec, JobState, NodePool, PlacementMode, Quote, to_decimal

# Exit codes, by error class (documented in --help and README.md).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_NOT_FOUND = 4
EXIT_CAP_EXCEEDED = 5
EXIT_BUDGET_EXHAUSTED = 6
EXIT_PERMISSION = 7
EXIT_ALREADY_EXISTS = 8
EXIT_UNAVAILABLE = 9
EXIT_INTERRUPTED = 130

_EXIT_BY_CLASS = [
    (errors.InvalidJob, EXIT_INVALID),
    (errors.NotFound, EXIT_NOT_FOUND),
    (errors.FailedPrecondition, EXIT_CAP_EXCEEDED),
    (errors.BudgetExhausted, EXIT_BUDGET_EXHAUSTED),
    (errors.PermissionDenied, EXIT_PERMISSION),
    (errors.AlreadyExists, EXIT_ALREADY_EXISTS),
    (errors.Unavailable, EXIT_UNAVAILABLE),
    (errors.Overloaded, EXIT_UNAVAILABLE),
]


def exit_code_for(err: BaseException) -> int:
    for cls, code in _EXIT_BY_CLASS:
        if isinstance(err, cls):
            return code
    return EXIT_ERROR


DESCRIPTION = """\
greenlight: submit and track GPU training jobs under cost (USD) and carbon
(kg CO2e) budgets on a greenlight scheduler (greenlightd).

first steps (against `make run`, which listens on 127.0.0.1:50051):
  greenlight teams list                                  # teams and their budgets
  greenlight estimate --team ml-research --gpus 8 --gpu-hours 64
                                                         # where would it run, at what cost?
  greenlight submit --team ml-research --gpus 8 --gpu-hours 64 --max-cost 500 --max-carbon 40
  greenlight estimate --team vision --gpus 4 --gpu-hours 32 --deadline +48h
                                                         # +48h on the server's clock
  greenlight list --team ml-research                     # the team's jobs
  JOB=$(greenlight -o id submit --team vision --gpus 1 --gpu-hours 1 --deadline +4h)
  greenlight watch --job "$JOB" --until-done             # follow it to the end
  greenlight usage ml-research                           # spent / reserved / remaining
  greenlight submit --team ml-research --gpus 1 --gpu-hours 2 --max-cost 10 -- python train.py --lr 3e-4
                                                         # what a node agent runs: everything after --

Each command has its own help: greenlight submit --help
Not installed? From the repository: clients/python/bin/greenlight ... (same commands).
Money is in US dollars and carbon in kilograms CO2e on the command line.
"""

EPILOG = """\
connection (flags win over the environment):
  --target / GREENLIGHT_TARGET         server address (default 127.0.0.1:50051)
  --token / GREENLIGHT_TOKEN           bearer token, sent as "authorization: Bearer <token>"
  --token-file / GREENLIGHT_TOKEN_FILE file holding the token
  --tls-ca / GREENLIGHT_TLS_CA         CA certificate (PEM): use TLS; --tls uses system roots

output:
  --output table (default) is for people; --output json prints JSON (watch: one
  JSON object per line). Money fields end in _usd, carbon fields in _kg,
  times are ISO 8601 UTC. --output id prints only job ids, one a line (submit,
  get, list, cancel): JOB=$(greenlight -o id submit ...).

times and durations:
  TIME is ISO 8601 ("2025-06-01T18:00Z"; no zone = local time), "now" or
  relative "+2h", "+1d12h". Relative times count from the server's clock (one
  Ping), which the demo (`make run`) runs 3600x faster than the wall clock; the
  CLI says on stderr which clock it used when that is not real time.
  DURATION is "90m", "2h30m", "1d", "45s" or seconds.

exit codes:
  0  success                          5  caps cannot be met (CapExceeded) or
  1  other error                         estimate found no feasible placement
  2  bad command line                 6  team budget exhausted
  3  invalid job or request           7  permission denied / not authenticated
  4  not found                        8  already exists (request id reused)
                                      9  server unavailable, overloaded or
                                         timed out: try again later
  130 interrupted
"""


# ---------------------------------------------------------------------------
# Parsing helpers

def parse_duration(text: str) -> timedelta:
    try:
        return _client.parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class RelativeTime:
    """A TIME argument relative to now ("now", "+48h", "+1d12h"), kept as
    given until the command knows the server's clock: the demo server's clock
    runs 3600x, so "+48h" means 48 hours after the *server's* now."""

    __slots__ = ("text", "offset")

    def __init__(self, text: str, offset: timedelta):
        self.text = text
        self.offset = offset

    def __repr__(self) -> str:
        return f"RelativeTime({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, RelativeTime) and other.offset == self.offset

    def __hash__(self) -> int:
        return hash(self.offset)


def parse_time_arg(text: str):
    """argparse type of TIME options: an absolute ISO 8601 time becomes an
    aware datetime now; "now" and "+2h" become a RelativeTime, resolved
    against the server's clock once connected (resolve_relative_times)."""
    text = text.strip()
    try:
        offset = _client.parse_relative_time(text)
        if offset is not None:
            return RelativeTime(text, offset)
        return _client.parse_absolute_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (try 2025-06-01T18:00Z, now, +2h)"
        ) from None


def parse_time(text: str, now: Optional[datetime] = None) -> datetime:
    """TIME text as an aware datetime; relative times count from ``now``
    (default: this machine's clock; the commands use the server's)."""
    value = parse_time_arg(text)
    if isinstance(value, RelativeTime):
        return (now or datetime.now(timezone.utc)) + value.offset
    return value


# The TIME options of each command (argparse dest names).
TIME_OPTIONS = ("not_before", "deadline", "at")


def resolve_relative_times(client: Client, args, out: "Output") -> Optional[ServerClock]:
    """Replaces the RelativeTime options in ``args`` with datetimes on the
    server's clock: one Ping, only when some option is relative. Tells
    stderr which clock was used when it is not this machine's real time."""
    names = [n for n in TIME_OPTIONS if isinstance(getattr(args, n, None), RelativeTime)]
    if not names:
        return None
    clock = client.server_clock()
    now = clock.now()
    for n in names:
        setattr(args, n, now + getattr(args, n).offset)
    note = clock_note(clock, now)
    if note and not out.json:  # JSON mode keeps stderr for machine-readable errors
        print(note, file=sys.stderr, flush=True)
    return clock


def _fmt_span(d: timedelta) -> str:
    secs = int(round(abs(d.total_seconds()) / 60.0)) * 60  # to the minute
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    mins = rem // 60
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if mins and not days:
        parts.append(f"{mins}m")
    return "".join(parts) or f"{secs}s"


def clock_note(clock: ServerClock, now: Optional[datetime] = None) -> Optional[str]:
    """The stderr line naming the clock relative times used, or None when
    that is plainly this machine's real-time clock."""
    now = now or clock.now()
    if not clock.reported:
        return "greenlight: the server reports no clock; relative times use this machine's clock"
    if clock.scaled:
        scale = f"{clock.time_scale:.6g}x"
        return f"greenlight: relative times use the server's clock: {fmt_time(now)} ({scale})"
    skew = clock.offset
    if abs(skew) > timedelta(minutes=5):
        where = "ahead of" if skew > timedelta(0) else "behind"
        return (
            f"greenlight: relative times use the server's clock: {fmt_time(now)} "
            f"({_fmt_span(skew)} {where} this machine's)"
        )
    return None


def parse_decimal(text: str) -> Decimal:
    try:
        value = to_decimal(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def parse_key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env(text: str) -> tuple[str, str]:
    """--env NAME=VALUE: the value is kept exactly (spaces, '=' and all)."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if not _ENV_NAME_RE.fullmatch(name):
        raise argparse.ArgumentTypeError(f"not an environment variable name: {name!r} (letters, digits, _)")
    return name, value


def _split_list(values: Optional[Sequence[str]]) -> list[str]:
    out = []
    for v in values or ():
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


# ---------------------------------------------------------------------------
# Formatting helpers


def fmt_usd(v: Optional[Decimal]) -> str:
    if v is None:
        return "-"
    return f"${v:,.2f}" if abs(v) >= 1 or v == 0 else f"${v:.4f}"


def fmt_kg(v: Optional[Decimal]) -> str:
    if v is None:
        return "-"
    return f"{v:,.2f} kg" if abs(v) >= 1 or v == 0 else f"{v:.4f} kg"


def fmt_energy(wh: Optional[float]) -> str:
    if wh is None:
        return "-"
    return f"{wh / 1000:,.2f} kWh" if abs(wh) >= 1000 else f"{wh:,.1f} Wh"


def fmt_time(v: Optional[datetime], seconds: bool = False) -> str:
    if v is None:
        return "-"
    return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ")


def fmt_budget_usd(v: Optional[Decimal]) -> str:
    return "unlimited" if not v else fmt_usd(v)


def fmt_budget_kg(v: Optional[Decimal]) -> str:
    return "unlimited" if not v else fmt_kg(v)


def table(headers: Sequence[str], rows: Sequence[Sequence], right: Sequence[int] = ()) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = []
        for i, c in enumerate(r):
            last = i == len(r) - 1
            if i in right:
                parts.append(c.rjust(widths[i]))
            else:
                parts.append(c if last else c.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def kv(pairs: Sequence[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in pairs)


class Output:
    def __init__(self, fmt: str, out=None):
        self.fmt = fmt
        self.out = out or sys.stdout

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    @property
    def ids(self) -> bool:
        return self.fmt == "id"

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def dump(self, obj, lines: bool = False) -> None:
        if lines:
            print(json.dumps(obj, sort_keys=True), file=self.out, flush=True)
        else:
            print(json.dumps(obj, indent=2, sort_keys=True), file=self.out, flush=True)


def _spend(job: Job) -> tuple[Optional[Decimal], Optional[Decimal]]:
    return job.predicted_cost_usd, job.predicted_carbon_kg


def render_job(job: Job) -> str:
    p = job.placement
    pairs = [
        ("id", job.id),
        ("state", job.state.name + (f" ({job.pending_reason})" if job.pending_reason else "")),
        ("team", job.team),
    ]
    if job.name:
        pairs.append(("name", job.name))
    pairs.append(("gpus", f"{job.spec.gpus}" + (f" x {','.join(job.spec.gpu_types)}" if job.spec.gpu_types else "")))
    if job.spec.command:
        pairs.append(("command", shlex.join(job.spec.command)))
        if job.spec.env:
            # Names only: values may be secrets (-o json shows the whole spec).
            pairs.append(("env", ", ".join(sorted(job.spec.env))))
        if job.spec.working_dir:
            pairs.append(("workdir", job.spec.working_dir))
    if job.node:
        gpus = ",".join(str(i) for i in job.gpu_indices)
        pairs.append(("node", job.node + (f" (GPUs {gpus})" if gpus else "")))
    if job.lost_nodes:
        pairs.append(("lost nodes", ", ".join(job.lost_nodes)))
    if p is not None:
        pairs += [
            ("placement", f"{p.pool_id} ({p.region}, {p.gpu_type}, {p.nodes} node{'s' if p.nodes != 1 else ''}{', spot' if p.spot else ''})"),
            ("window", f"{fmt_time(p.start)} -> {fmt_time(p.end)}"),
            ("predicted", f"{fmt_usd(p.cost_usd)}, {fmt_kg(p.carbon_kg)} CO2e"),
        ]
    caps = []
    if job.spec.max_cost_usd is not None:
        caps.append(f"cost <= {fmt_usd(job.spec.max_cost_usd)}")
    if job.spec.max_carbon_kg is not None:
        caps.append(f"carbon <= {fmt_kg(job.spec.max_carbon_kg)}")
    if caps:
        pairs.append(("caps", ", ".join(caps)))
    pairs += [
        ("accrued", f"{fmt_usd(job.accrued_cost_usd)}, {fmt_kg(job.accrued_carbon_kg)} CO2e"),
        ("reserved", f"{fmt_usd(job.reserved_cost_usd)}, {fmt_kg(job.reserved_carbon_kg)} CO2e"),
    ]
    if job.accrued_energy_wh or job.node or job.energy_measured:
        energy = f"{fmt_energy(job.accrued_energy_wh)}, {job.energy_basis}"
        if job.energy_measured:
            energy += f" by the node's GPU counters ({fmt_energy(job.measured_energy_wh)} before PUE)"
        else:
            energy += " from the GPU table's power"
        pairs.append(("energy", energy))
    pairs += [
        ("submitted", fmt_time(job.submit_time, seconds=True)),
    ]
    if job.start_time:
        pairs.append(("started", fmt_time(job.start_time, seconds=True)))
    if job.end_time:
        pairs.append(("ended", fmt_time(job.end_time, seconds=True)))
    if job.message:
        pairs.append(("message", job.message))
    if job.quote is not None and job.quote.summary:
        pairs.append(("quote", job.quote.summary))
    pairs.append(("request id", job.spec.request_id or "-"))
    pairs.append(("revision", job.revision))
    if job.deduplicated:
        pairs.append(("deduplicated", "yes (request id matched an existing job; nothing new stored)"))
    return kv(pairs)


def render_quote(q: Quote) -> str:
    lines = []
    verdict = "feasible" if q.feasible else "NOT feasible"
    if q.not_now:
        verdict += " (fits, but not now: capacity or quota)"
    lines.append(f"{verdict}: {q.summary}" if q.summary else verdict)
    lines.append(f"pools considered: {q.pools_considered}")
    rows = []
    for i, p in enumerate(q.ranked, 1):
        why = "chosen" if (i == 1 and q.chosen is not None) else (p.why_not or "-")
        rows.append(
            [
                i,
                p.pool_id,
                p.region,
                p.gpu_type,
                f"{p.nodes}{' spot' if p.spot else ''}",
                fmt_time(p.start),
                fmt_usd(p.cost_usd),
                fmt_kg(p.carbon_kg),
                f"{p.mean_intensity_g_per_kwh:.0f}{'?' if p.unknown_grid else ('*' if p.carbon_estimated else '')}",
                why,
            ]
        )
    if rows:
        lines.append("")
        lines.append(
            table(
                ["#", "POOL", "REGION", "GPU", "NODES", "START", "COST", "CARBON", "gCO2/kWh", "WHY IT LOST"],
                rows,
                right=(0, 6, 7, 8),
            )
        )
        if any(p.carbon_estimated and not p.unknown_grid for p in q.ranked):
            lines.append("* annual-average intensity (no live series for the zone)")
        unknown = [p for p in q.ranked if p.unknown_grid]
        if unknown:
            lines.append(f"? unknown grid: {unknown[0].carbon_basis.removeprefix('unknown grid: ')}")
    if q.baseline is not None:
        b = q.baseline
        lines.append("")
        lines.append(
            f"carbon-blind baseline: {b.pool_id} at {fmt_time(b.start)}: "
            f"{fmt_usd(b.cost_usd)}, {fmt_kg(b.carbon_kg)}"
        )
        if q.carbon_avoided_kg is not None:
            lines.append(f"carbon avoided vs baseline: {fmt_kg(q.carbon_avoided_kg)}")
    if q.rejections:
        lines.append(
            "pools rejected: " + ", ".join(f"{r}={n}" for r, n in sorted(q.rejections.items(), key=lambda x: -x[1]))
        )
    return "\n".join(lines)


def render_jobs(jobs: Sequence[Job]) -> str:
    rows = []
    for j in jobs:
        p = j.placement
        rows.append(
            [
                j.id,
                j.state.name,
                j.team,
                j.name or "-",
                j.spec.gpus,
                p.pool_id if p else "-",
                fmt_time(p.start) if p else "-",
                fmt_usd(j.predicted_cost_usd),
                fmt_kg(j.predicted_carbon_kg),
                fmt_usd(j.accrued_cost_usd),
                fmt_kg(j.accrued_carbon_kg),
            ]
        )
    return table(
        ["ID", "STATE", "TEAM", "NAME", "GPUS", "POOL", "START", "QUOTED", "QUOTED CO2", "SPENT", "SPENT CO2"],
        rows,
        right=(4, 7, 8, 9, 10),
    )


def render_teams(teams) -> str:
    rows = [
        [
            t.name,
            t.parent or "-",
            fmt_budget_usd(t.monthly_cost_budget_usd),
            fmt_budget_kg(t.monthly_carbon_budget_kg),
            t.gpu_quota or "unlimited",
            f"{fmt_usd(t.carbon_price_usd_per_tonne)}/t" if t.carbon_price_usd_per_tonne else "default",
            t.on_budget_exhausted or "finish",
        ]
        for t in teams
    ]
    return table(
        ["TEAM", "PARENT", "COST BUDGET/MONTH", "CARBON BUDGET/MONTH", "GPU QUOTA", "CARBON PRICE", "ON EXHAUSTED"],
        rows,
        right=(2, 3, 4),
    )


def render_team(t) -> str:
    pairs = [
        ("team", t.name),
        ("parent", t.parent or "-"),
        ("cost budget / month", fmt_budget_usd(t.monthly_cost_budget_usd)),
        ("carbon budget / month", fmt_budget_kg(t.monthly_carbon_budget_kg)),
        ("gpu quota", t.gpu_quota or "unlimited"),
    ]
    if t.gpu_quota_by_type:
        pairs.append(("gpu quota by type", ", ".join(f"{k}={v}" for k, v in sorted(t.gpu_quota_by_type.items()))))
    pairs += [
        ("carbon price", f"{fmt_usd(t.carbon_price_usd_per_tonne)} per tonne" if t.carbon_price_usd_per_tonne else "server default"),
        ("alert ratio", t.alert_ratio or "default (0.8)"),
        ("on budget exhausted", t.on_budget_exhausted or "finish"),
        ("unknown grid", t.unknown_grid or "pessimistic"),
    ]
    return kv(pairs)


def render_usage(u) -> str:
    head = f"team {u.team}, period {fmt_time(u.period_start)} .. {fmt_time(u.period_end)}"
    rows = [
        [
            "cost",
            fmt_budget_usd(u.cost_budget_usd),
            fmt_usd(u.cost_spent_usd),
            fmt_usd(u.cost_reserved_usd),
            fmt_usd(u.cost_remaining_usd) if u.cost_budget_usd else "-",
        ],
        [
            "carbon",
            fmt_budget_kg(u.carbon_budget_kg),
            fmt_kg(u.carbon_spent_kg),
            fmt_kg(u.carbon_reserved_kg),
            fmt_kg(u.carbon_remaining_kg) if u.carbon_budget_kg else "-",
        ],
    ]
    body = table(["", "BUDGET", "SPENT", "RESERVED", "REMAINING"], rows, right=(1, 2, 3, 4))
    tail = kv(
        [
            ("gpus running", f"{u.running_gpus} of {u.gpu_quota or 'unlimited'}"),
            ("jobs", f"{u.jobs_running} running, {u.jobs_pending} pending"),
            ("energy spent", f"{u.energy_spent_wh / 1000:,.1f} kWh"),
        ]
    )
    return f"{head}\n\n{body}\n\n{tail}"


_EVENT_COLS = [("REVISION", 8, True), ("TIME", 20, False), ("JOB", 18, False), ("TEAM", 12, False), ("TYPE", 12, False), ("STATE", 16, False)]


def _event_line(values) -> str:
    parts = [str(v).rjust(w) if right else str(v).ljust(w) for v, (_, w, right) in zip(values, _EVENT_COLS)]
    return "  ".join(parts + [str(values[-1])]).rstrip()


def render_event_header() -> str:
    return _event_line([c[0] for c in _EVENT_COLS] + ["MESSAGE"])


def render_event(e) -> str:
    state = e.state.name if e.state else "-"  # UNSPECIFIED is 0
    return _event_line([e.revision, fmt_time(e.time, seconds=True), e.job_id, e.team, e.type, state, e.message])


# ---------------------------------------------------------------------------
# Commands


def _spec_from_args(args) -> JobSpec:
    command = getattr(args, "command_argv", None) or []
    env = dict(args.env or ())
    if (env or args.workdir) and not command:
        raise argparse.ArgumentTypeError(
            "--env and --workdir need the command to run: end the options with -- and give it "
            "(... --env K=V -- python train.py)"
        )
    labels = dict(args.label or ())
    payload = b""
    if args.payload_file:
        with open(args.payload_file, "rb") as f:
            payload = f.read()
    return JobSpec(
        team=args.team or "",
        name=args.name or "",
        gpus=args.gpus,
        gpu_types=_split_list(args.gpu_type),
        reference_gpu_hours=args.gpu_hours,
        duration=args.duration,
        max_cost_usd=args.max_cost,
        max_carbon_kg=args.max_carbon,
        not_before=args.not_before,
        deadline=args.deadline,
        checkpointable=args.checkpointable,
        priority=args.priority,
        regions=_split_list(args.region),
        labels=labels,
        request_id=args.request_id or "",
        payload=payload,
        mode=PlacementMode.parse(args.mode) if args.mode else None,
        carbon_price_usd_per_tonne=args.carbon_price,
        command=command,
        env=env,
        working_dir=args.workdir or "",
    )


def cmd_submit(client: Client, args, out: Output) -> int:
    job = client.submit(_spec_from_args(args))
    if out.json:
        out.dump(job.to_dict())
    elif out.ids:
        out.print(job.id)
    else:
        out.print(render_job(job))
    return EXIT_OK


def cmd_estimate(client: Client, args, out: Output) -> int:
    quote = client.estimate(_spec_from_args(args), top_k=args.top)
    if out.json:
        out.dump(quote.to_dict())
    else:
        out.print(render_quote(quote))
    return EXIT_OK if quote.feasible else EXIT_CAP_EXCEEDED


def cmd_get(client: Client, args, out: Output) -> int:
    jobs = [client.get(j) for j in args.job_ids]
    if out.json:
        out.dump(jobs[0].to_dict() if len(jobs) == 1 else [j.to_dict() for j in jobs])
    elif out.ids:
        out.print("\n".join(j.id for j in jobs))
    else:
        out.print("\n\n".join(render_job(j) for j in jobs))
    return EXIT_OK


def cmd_list(client: Client, args, out: Output) -> int:
    states = [JobState.parse(s) for s in _split_list(args.state)]
    jobs = list(client.list(team=args.team, states=states, page_size=args.page_size, limit=args.limit))
    if out.json:
        out.dump([j.to_dict() for j in jobs])
    elif out.ids:
        if jobs:
            out.print("\n".join(j.id for j in jobs))
    elif jobs:
        out.print(render_jobs(jobs))
    else:
        out.print("no jobs")
    return EXIT_OK


def cmd_cancel(client: Client, args, out: Output) -> int:
    job = client.cancel(args.job_id, reason=args.reason or "")
    if out.json:
        out.dump(job.to_dict())
    elif out.ids:
        out.print(job.id)
    else:
        out.print(render_job(job))
    return EXIT_OK


def cmd_watch(client: Client, args, out: Output) -> int:
    if args.until_done and not args.job:
        raise argparse.ArgumentTypeError("--until-done needs --job")
    if args.until_done:
        # Nothing to wait for when the job is already finished.
        job = client.get(args.job)
        if job.done and args.from_revision >= job.revision:
            if out.json:
                out.dump({"job_id": job.id, "state": job.state.name, "revision": job.revision}, lines=True)
            else:
                out.print(f"{job.id} already {job.state.name}")
            return EXIT_OK
    if not out.json:
        out.print(render_event_header())
    n = 0
    # A follow command should ride out a server restart or upgrade.
    events = client.watch(args.from_revision, team=args.team, job_id=args.job, reconnect_timeout=60)
    try:
        for e in events:
            if out.json:
                out.dump(e.to_dict(), lines=True)
            else:
                out.print(render_event(e))
            n += 1
            if args.count and n >= args.count:
                break
            if args.until_done and e.job_id == args.job and e.state.terminal:
                break
    finally:
        events.close()
    return EXIT_OK


def cmd_teams(client: Client, args, out: Output) -> int:
    action = args.teams_action or "list"
    if action == "list":
        teams = client.list_teams()
        if out.json:
            out.dump([t.to_dict() for t in teams])
        else:
            out.print(render_teams(teams) if teams else "no teams")
        return EXIT_OK
    if action == "get":
        team = client.get_team(args.name)
    else:  # set
        fields = {}
        if args.parent is not None:
            fields["parent"] = args.parent
        if args.cost_budget is not None:
            fields["monthly_cost_budget_usd"] = args.cost_budget or None
        if args.carbon_budget is not None:
            fields["monthly_carbon_budget_kg"] = args.carbon_budget or None
        if args.gpu_quota is not None:
            fields["gpu_quota"] = args.gpu_quota
        if args.gpu_quota_type:
            fields["gpu_quota_by_type"] = {k: int(v) for k, v in args.gpu_quota_type}
        if args.carbon_price is not None:
            fields["carbon_price_usd_per_tonne"] = args.carbon_price or None
        if args.alert_ratio is not None:
            fields["alert_ratio"] = args.alert_ratio
        if args.on_exhausted is not None:
            fields["on_budget_exhausted"] = args.on_exhausted
        if getattr(args, "unknown_grid", None) is not None:
            fields["unknown_grid"] = args.unknown_grid
        if args.replace:
            team = client.set_team(args.name, **fields)
        else:
            team = client.update_team(args.name, **fields)
    if out.json:
        out.dump(team.to_dict())
    else:
        out.print(render_team(team))
    return EXIT_OK


def cmd_usage(client: Client, args, out: Output) -> int:
    usage = client.usage(args.team, at=args.at)
    if out.json:
        out.dump(usage.to_dict())
    else:
        out.print(render_usage(usage))
    return EXIT_OK


def render_pools(pools: Sequence[NodePool]) -> str:
    if not pools:
        return "no pools"
    rows = [
        [
            p.id,
            p.gpu_type,
            p.gpus_per_node,
            p.nodes,
            p.free_nodes,
            fmt_usd(p.price_usd_per_node_hour),
            fmt_usd(p.spot_price_usd_per_node_hour),
            p.region,
            p.grid_zone,
            p.executor.name.lower(),
        ]
        for p in pools
    ]
    text = table(
        ["POOL", "GPU", "GPUS/NODE", "NODES", "FREE", "PRICE/NODE-H", "SPOT/NODE-H", "REGION", "ZONE", "EXECUTOR"],
        rows,
        right=(2, 3, 4, 5, 6),
    )
    agent_pools = [p for p in pools if p.is_agent]
    if agent_pools:
        text += "\n\n" + render_agent_nodes(agent_pools)
    return text


def _gpu_summary(gpus) -> str:
    if not gpus:
        return "none"
    names = sorted({g.name or "?" for g in gpus})
    if len(names) == 1:
        return f"{len(gpus)} x {names[0]}"
    return ", ".join(f"{g.index}:{g.name or '?'}" for g in sorted(gpus, key=lambda g: g.index))


def render_agent_nodes(pools: Sequence[NodePool]) -> str:
    """The registered nodes of agent pools: state, GPUs, energy, heartbeat."""
    rows = [
        [
            p.id,
            n.name,
            n.state.name if n.state else "-",
            _gpu_summary(n.gpus),
            "measured" if n.energy_measured else "modelled",
            fmt_time(n.last_heartbeat, seconds=True),
            n.agent_version or "-",
        ]
        for p in pools
        for n in sorted(p.agent_nodes, key=lambda n: n.slot)
    ]
    if not rows:
        return "agent nodes: none registered (start greenlight-agent with a token for the pool)"
    return "agent nodes:\n" + table(
        ["POOL", "NODE", "STATE", "GPUS", "ENERGY", "LAST HEARTBEAT", "AGENT"], rows
    )


def cmd_pools(client: Client, args, out: Output) -> int:
    pools = client.list_pools(gpu_type=args.gpu_type, region=args.region)
    if out.json:
        out.dump([p.to_dict() for p in pools])
        return EXIT_OK
    out.print(render_pools(pools))
    return EXIT_OK


def cmd_zones(client: Client, args, out: Output) -> int:
    zones = client.list_zones()
    if out.json:
        out.dump([z.to_dict() for z in zones])
        return EXIT_OK
    rows = [
        [z.name, f"{z.current_g_per_kwh:.0f}", f"{z.annual_average_g_per_kwh:.0f}", z.points, fmt_time(z.series_start), fmt_time(z.series_end), z.source]
        for z in zones
    ]
    out.print(
        table(["ZONE", "NOW gCO2/kWh", "ANNUAL AVG", "POINTS", "SERIES FROM", "SERIES TO", "SOURCE"], rows, right=(1, 2, 3))
        if rows
        else "no zones"
    )
    return EXIT_OK


# ---------------------------------------------------------------------------
# Parser


OUTPUT_FORMATS = ("table", "json", "id")
ID_COMMANDS = ("submit", "get", "list", "cancel")


def _connection_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
    g = p.add_argument_group("connection and output (also accepted before the command)")
    g.add_argument("--target", default=d, metavar="HOST:PORT", help=f"server address (env GREENLIGHT_TARGET, default {DEFAULT_TARGET})")
    g.add_argument("--token", default=d, help="bearer token (env GREENLIGHT_TOKEN)")
    g.add_argument("--token-file", default=d, metavar="FILE", help="file holding the bearer token (env GREENLIGHT_TOKEN_FILE)")
    g.add_argument("--tls", action="store_true", default=argparse.SUPPRESS if suppress else False, help="use TLS with the system CA roots")
    g.add_argument("--tls-ca", default=d, metavar="PEM", help="use TLS, trusting this CA certificate (env GREENLIGHT_TLS_CA)")
    g.add_argument("--tls-cert", default=d, metavar="PEM", help="client certificate for mutual TLS")
    g.add_argument("--tls-key", default=d, metavar="PEM", help="client private key for mutual TLS")
    g.add_argument("--tls-server-name", default=d, metavar="NAME", help="expected name in the server certificate")
    g.add_argument("--timeout", type=float, default=argparse.SUPPRESS if suppress else DEFAULT_TIMEOUT, metavar="SECONDS", help=f"per-call timeout (default {DEFAULT_TIMEOUT:g})")
    g.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default=argparse.SUPPRESS if suppress else "table", help="output format (default table); id: job ids only, one a line (submit, get, list, cancel)")


def _job_spec_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the job")
    g.add_argument("--team", default=os.environ.get("GREENLIGHT_TEAM"), help="owning team (env GREENLIGHT_TEAM); see `greenlight teams list`")
    g.add_argument("--gpus", type=int, required=True, help="number of GPUs (1..4096)")
    work = g.add_mutually_exclusive_group(required=True)
    work.add_argument("--gpu-hours", type=float, metavar="H", help="work in GPU-hours on the reference GPU (A100); scaled by GPU speed")
    work.add_argument("--duration", type=parse_duration, metavar="DURATION", help="wall-clock run time on any allowed GPU (e.g. 6h)")
    g.add_argument("--name", help="human-readable job name")
    g.add_argument("--gpu-type", action="append", metavar="TYPE", help="allowed GPU type, repeatable or comma-separated (e.g. H100,A100-80GB); default any")
    g.add_argument("--region", action="append", metavar="REGION", help="allowed cloud region, repeatable or comma-separated; default any")
    g.add_argument("--max-cost", type=parse_decimal, metavar="USD", help="cap on the job's cost in US dollars")
    g.add_argument("--max-carbon", type=parse_decimal, metavar="KG", help="cap on the job's emissions in kg CO2e")
    g.add_argument("--not-before", type=parse_time_arg, metavar="TIME", help="earliest start (default now); +2h etc. count on the server's clock")
    g.add_argument("--deadline", type=parse_time_arg, metavar="TIME", help="latest finish (default none), e.g. +48h on the server's clock; gives the scheduler room to wait for cleaner power")
    g.add_argument("--checkpointable", action="store_true", help="the job can stop and resume: may run in low-carbon slots and on spot")
    g.add_argument("--priority", type=int, default=0, help="-1000..1000, higher first within the team")
    g.add_argument("--mode", choices=("cheapest", "greenest", "balanced"), help="placement objective (default: the team's, balanced)")
    g.add_argument("--carbon-price", type=parse_decimal, metavar="USD_PER_TONNE", help="carbon price for balanced mode (default: the team's)")
    g.add_argument("--label", action="append", type=parse_key_value, metavar="KEY=VALUE", help="label, repeatable")
    g.add_argument("--request-id", help="idempotency key (default: a new UUID); resubmitting the same id returns the same job")
    g.add_argument("--payload-file", metavar="FILE", help="opaque bytes for the executor (at most 64 KiB)")
    g.add_argument("--env", action="append", type=parse_env, metavar="NAME=VALUE", help="environment variable of the command (after --), repeatable; added to the job's clean environment")
    g.add_argument("--workdir", metavar="DIR", help="working directory of the command, relative to the agent's job directory (default: that directory)")


# Examples shown by each command's --help. Each block runs as it stands, in
# order, against the demo server (`make run`: teams acme, ml-research and
# vision; GPUs H100, A100, A100-80GB, L4, L40S, A10G, V100, T4), with
# `greenlight` on PATH (or clients/python/bin/greenlight); the live tests run
# every one of them.
EXAMPLES = {
    "submit": [
        "greenlight submit --team ml-research --gpus 8 --gpu-hours 64 --max-cost 500 --max-carbon 40",
        "greenlight submit --team vision --gpus 4 --gpu-type H100,A100 --gpu-hours 32 --deadline +48h --checkpointable",
        "greenlight submit --team ml-research --gpus 1 --gpu-hours 2 --max-cost 10 --env LR=3e-4 -- python train.py --epochs 3",
    ],
    "estimate": [
        "greenlight estimate --team ml-research --gpus 8 --gpu-hours 64 --deadline +24h --top 10",
        "greenlight estimate --team vision --gpus 1 --gpu-type L4 --duration 6h --mode greenest",
    ],
    "get": [
        "JOB=$(greenlight -o id submit --team vision --gpus 1 --gpu-hours 1 -- python train.py)",
        'greenlight get "$JOB"',
    ],
    "list": [
        "greenlight list --team ml-research",
        "greenlight list --state running,planned,succeeded --limit 20",
    ],
    "cancel": [
        "JOB=$(greenlight -o id submit --team vision --gpus 8 --gpu-hours 64 --not-before +2d)",
        'greenlight cancel "$JOB" --reason "wrong learning rate"',
    ],
    "watch": [
        "JOB=$(greenlight -o id submit --team vision --gpus 1 --gpu-hours 1 --deadline +4h)",
        'greenlight watch --job "$JOB" --until-done      # done within 4 demo hours: 4 s',
        "greenlight watch --team vision --count 3",
    ],
    "teams": [
        "greenlight teams list",
        "greenlight teams get vision",
        "greenlight teams set vision --cost-budget 20000 --carbon-budget 2000 --gpu-quota 16",
    ],
    "teams list": ["greenlight teams list", "greenlight -o json teams list"],
    "teams get": ["greenlight teams get ml-research"],
    "teams set": [
        "greenlight teams set vision --gpu-quota 16 --gpu-quota-type H100=8",
        "greenlight teams set ml-research --cost-budget 100000 --carbon-budget 10000 --carbon-price 150",
    ],
    "usage": ["greenlight usage ml-research", "greenlight -o json usage acme"],
    "pools": ["greenlight pools --gpu-type H100", "greenlight pools --region eu-central-1"],
    "zones": ["greenlight zones", "greenlight -o json zones"],
}


def _examples(name: str) -> str:
    lines = EXAMPLES[name]
    head = "example" if len(lines) == 1 else "examples"
    return f"{head} (against the demo server, `make run`):\n" + "\n".join("  " + line for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenlight",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_options(parser, suppress=False)
    from greenlight import __version__

    parser.add_argument("--version", action="version", version=f"greenlight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def add(name, help_text, func, description=None):
        p = sub.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            epilog=_examples(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = add(
        "submit",
        "submit a job (prints it with its placement and predicted cost and carbon)",
        cmd_submit,
        "Submit a job. The server quotes it, reserves the predicted cost and carbon\n"
        "against the team's budget and places it. Retried safely on UNAVAILABLE with the\n"
        "same request id. Relative times (--deadline +48h) count from the server's clock.\n\n"
        "What to run goes last, after --: greenlight submit OPTIONS -- COMMAND [ARG...].\n"
        "Everything after the first -- is the command's argv, as given (no shell); a node\n"
        "agent (pools whose executor is agent) runs it, with --env and --workdir; simulated\n"
        "pools ignore it.",
    )
    _job_spec_options(p)
    _connection_options(p, suppress=True)
    _usage_with_command(p)

    p = add(
        "estimate",
        "dry run: the ranked placements with cost, carbon and why each lost",
        cmd_estimate,
        "Quote a job without submitting it: the chosen placement, the runners-up with\n"
        "why each lost, and the carbon-blind baseline. Exit code 5 when nothing fits.",
    )
    _job_spec_options(p)
    p.add_argument("--top", type=int, default=5, metavar="N", help="alternatives to show (default 5, at most 50)")
    _connection_options(p, suppress=True)
    _usage_with_command(p)

    p = add("get", "show jobs by id", cmd_get)
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    _connection_options(p, suppress=True)

    p = add("list", "list jobs (all pages)", cmd_list)
    p.add_argument("--team", help="only this team's jobs")
    p.add_argument("--state", action="append", metavar="STATE", help="only these states, repeatable or comma-separated: " + ",".join(s.name.lower() for s in JobState if s.value))
    p.add_argument("--limit", type=int, metavar="N", help="stop after N jobs")
    p.add_argument("--page-size", type=int, default=100, metavar="N", help=argparse.SUPPRESS)
    _connection_options(p, suppress=True)

    p = add("cancel", "cancel a job that has not finished (releases its reservation)", cmd_cancel)
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--reason", help="recorded with the cancellation")
    _connection_options(p, suppress=True)

    p = add(
        "watch",
        "stream job events (reconnects and resumes after restarts)",
        cmd_watch,
        "Stream job events as they happen. The stream survives server restarts: it\n"
        "resumes after the last revision printed, with no gaps and no duplicates.",
    )
    p.add_argument("--team", help="only this team's events")
    p.add_argument("--job", metavar="JOB_ID", help="only this job's events")
    p.add_argument("--from-revision", type=int, default=0, metavar="N", help="start after revision N (default 0: from the beginning)")
    p.add_argument("--until-done", action="store_true", help="with --job: exit when the job reaches a final state")
    p.add_argument("--count", type=int, metavar="N", help="exit after N events")
    _connection_options(p, suppress=True)

    p = add("teams", "list, show or change teams and their budgets", cmd_teams, "Teams and their monthly budgets.")
    _connection_options(p, suppress=True)
    tsub = p.add_subparsers(dest="teams_action", metavar="ACTION", title="actions")

    def add_action(name, help_text, description=None):
        return tsub.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            epilog=_examples(f"teams {name}"),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    tp = add_action("list", "all teams (default)")
    _connection_options(tp, suppress=True)
    tp = add_action("get", "one team")
    tp.add_argument("name", metavar="TEAM")
    _connection_options(tp, suppress=True)
    tp = add_action(
        "set",
        "create a team or change some of its settings",
        "Create a team or change the given settings (others are kept; --replace resets them).\n"
        "Budgets of 0 mean unlimited.",
    )
    tp.add_argument("name", metavar="TEAM")
    tp.add_argument("--cost-budget", type=parse_decimal, metavar="USD", help="monthly cost budget in US dollars (0 = unlimited)")
    tp.add_argument("--carbon-budget", type=parse_decimal, metavar="KG", help="monthly carbon budget in kg CO2e (0 = unlimited)")
    tp.add_argument("--gpu-quota", type=int, metavar="N", help="max concurrent GPUs (0 = unlimited)")
    tp.add_argument("--gpu-quota-type", action="append", type=parse_key_value, metavar="TYPE=N", help="per GPU type quota, repeatable")
    tp.add_argument("--carbon-price", type=parse_decimal, metavar="USD_PER_TONNE", help="carbon price for balanced placement")
    tp.add_argument("--alert-ratio", type=float, metavar="R", help="budget fraction that raises an alert (default 0.8)")
    tp.add_argument("--on-exhausted", choices=("finish", "stop"), help="running jobs when the budget is spent: finish (default) or stop")
    tp.add_argument("--unknown-grid", choices=("pessimistic", "default", "exclude"), help="regions whose grid is unknown: pessimistic (default: highest known figure nearby), default (400 g/kWh) or exclude")
    tp.add_argument("--parent", help="parent team whose budgets also apply")
    tp.add_argument("--replace", action="store_true", help="replace the team: settings not given are reset")
    _connection_options(tp, suppress=True)

    p = add("usage", "a team's spent, reserved and remaining budget this month", cmd_usage)
    p.add_argument("team", metavar="TEAM")
    p.add_argument("--at", type=parse_time_arg, metavar="TIME", help="any time in the wanted month (default now); +31d etc. count on the server's clock")
    _connection_options(p, suppress=True)

    p = add("pools", "GPU node pools with prices and free capacity", cmd_pools)
    p.add_argument("--gpu-type", help="only this GPU type")
    p.add_argument("--region", help="only this region")
    _connection_options(p, suppress=True)

    p = add("zones", "grid zones with their carbon intensity", cmd_zones)
    _connection_options(p, suppress=True)
    return parser


def _usage_with_command(p: argparse.ArgumentParser) -> None:
    """Ends the usage line with the command that parse_args() takes after --."""
    usage = p.format_usage().removeprefix("usage: ").rstrip()
    p.usage = usage.replace("%", "%%") + " [-- COMMAND [ARG ...]]"


def _tls_from_args(args):
    ca = getattr(args, "tls_ca", None)
    cert = getattr(args, "tls_cert", None)
    key = getattr(args, "tls_key", None)
    name = getattr(args, "tls_server_name", None)
    if ca or cert or key or name or getattr(args, "tls", False):
        return TLS(ca=ca or os.environ.get("GREENLIGHT_TLS_CA") or None, cert=cert, key=key, server_name=name)
    return None  # the Client looks at GREENLIGHT_TLS_CA


# API field (as the server names it in errors) -> what to change on the
# command line, per command. Server messages name proto fields
# ("spec.max_cost_micros: must be >= 0"); people typed --max-cost.
JOB_FLAGS = {
    "spec.team": "--team",
    "spec.name": "--name",
    "spec.gpus": "--gpus",
    "spec.gpu_types": "--gpu-type",
    "spec.work": "--gpu-hours or --duration",
    "spec.reference_gpu_hours": "--gpu-hours",
    "spec.duration": "--duration",
    "spec.max_cost_micros": "--max-cost",
    "spec.max_carbon_mg": "--max-carbon",
    "spec.not_before": "--not-before",
    "spec.deadline": "--deadline",
    "spec.checkpointable": "--checkpointable",
    "spec.priority": "--priority",
    "spec.regions": "--region",
    "spec.labels": "--label",
    "spec.request_id": "--request-id",
    "spec.payload": "--payload-file",
    "spec.mode": "--mode",
    "spec.carbon_price_micros_per_tonne": "--carbon-price",
    "spec.command": "-- COMMAND",
    "spec.command.argv": "-- COMMAND",
    "spec.command.env": "--env",
    "spec.command.working_dir": "--workdir",
}
TEAM_FLAGS = {
    "team.name": "TEAM",
    "team.parent": "--parent",
    "team.monthly_cost_budget_micros": "--cost-budget",
    "team.monthly_carbon_budget_mg": "--carbon-budget",
    "team.gpu_quota": "--gpu-quota",
    "team.gpu_quota_by_type": "--gpu-quota-type",
    "team.carbon_price_micros_per_tonne": "--carbon-price",
    "team.alert_ratio": "--alert-ratio",
    "team.on_budget_exhausted": "--on-exhausted",
    "team.unknown_grid": "--unknown-grid",
}
FLAGS_BY_COMMAND = {
    "submit": JOB_FLAGS,
    "estimate": {**JOB_FLAGS, "top_k": "--top"},
    "get": {"job_id": "JOB_ID"},
    "list": {"team": "--team", "states": "--state", "page_size": "--page-size"},
    "cancel": {"job_id": "JOB_ID", "reason": "--reason"},
    "watch": {"team": "--team", "job_id": "--job", "from_revision": "--from-revision"},
    "teams set": TEAM_FLAGS,
    "teams get": {"name": "TEAM"},
    "usage": {"team": "TEAM", "at": "--at"},
    "pools": {"gpu_type": "--gpu-type", "region": "--region"},
}


def _command_key(args) -> str:
    command = getattr(args, "command", None) or ""
    if command == "teams":
        return f"teams {getattr(args, 'teams_action', None) or 'list'}"
    return command


def flag_for(command: str, field: Optional[str]) -> Optional[str]:
    """The command-line flag of an API field in ``command``'s errors:
    flag_for("submit", "spec.max_cost_micros") == "--max-cost". Accepts the
    field with or without its "spec."/"team." prefix, and map keys
    ("spec.labels[k]")."""
    if not field:
        return None
    table = FLAGS_BY_COMMAND.get(command, {})
    field = re.sub(r"\[.*$", "", field)
    head, _, rest = field.partition(".")
    prefixes = [head + "."] if head in ("spec", "team") and rest else ["", "spec.", "team."]
    if head in ("spec", "team") and rest:
        field = rest
    # "spec.command.argv" names its own flag; "spec.labels.x", that of
    # "spec.labels"; never "spec"/"team" itself ("team.gpu_quota" is no --team).
    while field:
        for key in (p + field for p in prefixes):
            if key in table:
                return table[key]
        field = field.rpartition(".")[0]
    return None


# "spec.gpus", "spec.command.env[HOME]": a field path with its map keys or indices.
_FIELD_PATH_RE = re.compile(r"\b(?:spec|team)\.[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*|\[[^\]\s]*\])*")
_LEADING_FIELD_RE = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*|\[[^\]\s]*\])*):")


def annotate_fields(command: str, message: str) -> str:
    """``message`` with the flag after each API field it names:
    "spec.deadline: must be after spec.not_before" ->
    "spec.deadline (--deadline): must be after spec.not_before (--not-before)"."""
    table = FLAGS_BY_COMMAND.get(command)
    if not table or not message:
        return message

    def add(m):
        flag = flag_for(command, m.group(0))
        if flag is None or message[m.end():].startswith(f" ({flag})"):
            return m.group(0)
        return f"{m.group(0)} ({flag})"

    text = _FIELD_PATH_RE.sub(add, message)
    lead = _LEADING_FIELD_RE.match(text)
    if lead:
        flag = flag_for(command, lead.group(1))
        if flag is not None:
            text = f"{lead.group(1)} ({flag}):" + text[lead.end():]
    return text


def _report_error(err: errors.GreenlightError, out: Output, command: str = "") -> None:
    field = err.field if isinstance(err, errors.InvalidJob) else None
    flag = flag_for(command, field)
    if out.json:
        body = {"error": {"type": type(err).__name__, "code": err.code.name, "message": err.message}}
        if isinstance(err, errors.InvalidJob) and err.field:
            body["error"]["field"] = err.field
            body["error"]["argument"] = err.argument
            if flag:
                body["error"]["flag"] = flag
        if isinstance(err, errors.CapExceeded) and err.quote is not None:
            body["error"]["quote"] = err.quote.to_dict()
        print(json.dumps(body, indent=2, sort_keys=True), file=sys.stderr)
        return
    message = annotate_fields(command, err.message)
    print(f"greenlight: {type(err).__name__}: {message} [{err.code.name}]", file=sys.stderr)
    if field:
        print(f"  field: {field}" + (f" (option {flag})" if flag else ""), file=sys.stderr)
        leaf = field.rsplit(".", 1)[-1]
        if leaf in ("deadline", "not_before") and ("future" in err.message or "within" in err.message):
            print(
                "  hint: the server's clock decides what is past and future (`make run` runs it 3600x);"
                " relative times such as --deadline +48h count from it",
                file=sys.stderr,
            )
    if isinstance(err, errors.CapExceeded) and err.quote is not None:
        q = err.quote
        best = q.chosen or (q.alternatives[0] if q.alternatives else None)
        if q.summary:
            print(f"  best quote: {q.summary}", file=sys.stderr)
        if best is not None:
            print(
                f"  cheapest/best placement: {best.pool_id} at {fmt_time(best.start)}: "
                f"{fmt_usd(best.cost_usd)}, {fmt_kg(best.carbon_kg)}",
                file=sys.stderr,
            )
    if isinstance(err, errors.Unauthenticated):
        print("  hint: pass --token, --token-file or set GREENLIGHT_TOKEN", file=sys.stderr)
    elif isinstance(err, errors.Unavailable) and not isinstance(err, errors.DeadlineExceeded):
        print("  hint: is greenlightd running? check --target / GREENLIGHT_TARGET (`make run` starts one)", file=sys.stderr)


# Commands that take the job's command after "--".
COMMAND_TAKERS = ("submit", "estimate")


def _command_index(parser: argparse.ArgumentParser, tokens: Sequence[str]) -> Optional[int]:
    """Where the subcommand's name is in ``tokens``: the first token that is
    neither a top-level option nor an option's value."""
    options = parser._option_string_actions
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "-" or not tok.startswith("-"):
            return i
        name, eq, _ = tok.partition("=")
        action = options.get(name)
        if action is None and name.startswith("--"):
            # argparse accepts unique prefixes (--tim for --timeout).
            matches = {id(a): a for o, a in options.items() if o.startswith(name)}
            action = next(iter(matches.values())) if len(matches) == 1 else None
        attached = eq or (action is None and not name.startswith("--") and len(tok) > 2)  # --x=1, -ojson
        i += 2 if (action is not None and action.nargs != 0 and not attached) else 1
    return None


def parse_args(argv: Optional[Sequence[str]] = None, parser: Optional[argparse.ArgumentParser] = None):
    """argparse, plus the job's command: for submit and estimate everything
    after the first "--" is the command's argv (``args.command_argv``, None
    without "--"), taken as it stands, options and further "--" included.
    Other commands keep argparse's own meaning of "--"."""
    parser = parser or build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command_argv = None
    if "--" in argv:
        cut = argv.index("--")
        at = _command_index(parser, argv[:cut])
        if at is not None and argv[at] in COMMAND_TAKERS:
            argv, command_argv = argv[:cut], argv[cut + 1:]
            if not command_argv:
                _subparser(parser, argv[at]).error(
                    "nothing after --: give the command to run, e.g. -- python train.py --lr 3e-4"
                )
    args = parser.parse_args(argv)
    if getattr(args, "command", None) in COMMAND_TAKERS:
        args.command_argv = command_argv
    return args


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parse_args(argv, parser)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.output == "id" and args.command not in ID_COMMANDS:
        parser.error(f"--output id works with {', '.join(ID_COMMANDS)}, not {args.command}")
    out = Output(args.output)
    try:
        client = Client(
            args.target,
            token=args.token,
            tls=_tls_from_args(args),
            timeout=args.timeout,
            token_file=args.token_file,
            # People at a terminal want "is the server up?" answered quickly;
            # a restart still fits in this window.
            retry=RetryPolicy(max_attempts=5, max_elapsed=min(10.0, max(args.timeout, 1.0))),
        )
    except (OSError, TypeError, ValueError) as e:
        print(f"greenlight: cannot set up the connection: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with client:
            resolve_relative_times(client, args, out)
            return args.func(client, args, out)
    except errors.GreenlightError as e:
        _report_error(e, out, _command_key(args))
        return exit_code_for(e)
    except (argparse.ArgumentTypeError, ValueError) as e:
        parser.error(str(e))  # exits 2
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `greenlight list | head`: stop quietly.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except grpc.RpcError as e:  # pragma: no cover - should all be mapped
        print(f"greenlight: {e}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

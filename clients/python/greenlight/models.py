"""Typed results and inputs over the greenlight.v1 messages.

Units, everywhere in this package:
  * money is ``decimal.Decimal`` US dollars, in fields ending in ``_usd``
    (the API's int64 micro-USD divided by 10**6, exact);
  * carbon is ``decimal.Decimal`` kilograms CO2e, in fields ending in ``_kg``
    (the API's int64 mg CO2e divided by 10**6, exact);
  * energy stays in watt-hours (``energy_wh``, float), intensity in gCO2e/kWh;
  * timestamps are timezone-aware ``datetime`` in UTC (``None`` when unset),
    durations are ``timedelta``.

Every result keeps the message it was built from in ``.proto``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Mapping, Optional, Sequence

from greenlight.v1 import budgets_pb2, inventory_pb2, scheduler_pb2, types_pb2  # noqa: F401

pb = types_pb2

_MILLION = Decimal(1_000_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------
# Unit conversions


def to_decimal(value: Any) -> Decimal:
    """Decimal from int, str, Decimal or float (floats via their shortest repr,
    so 0.1 is 0.1, not 0.1000000000000000055...)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("expected a number, got a bool")
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError) as e:
        raise ValueError(f"not a number: {value!r}") from e


def usd_from_micros(micros: int) -> Decimal:
    return Decimal(int(micros)) / _MILLION


def micros_from_usd(usd: Any) -> int:
    """USD (any number type) -> int micro-USD, rounded half-even to the micro."""
    return int((to_decimal(usd) * _MILLION).to_integral_value(rounding=ROUND_HALF_EVEN))


def kg_from_mg(mg: int) -> Decimal:
    return Decimal(int(mg)) / _MILLION


def mg_from_kg(kg: Any) -> int:
    return int((to_decimal(kg) * _MILLION).to_integral_value(rounding=ROUND_HALF_EVEN))


def datetime_from_timestamp(ts) -> Optional[datetime]:
    """Timestamp -> aware UTC datetime; the zero Timestamp (unset) -> None."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def set_timestamp(ts, when: datetime) -> None:
    """Writes an aware datetime into a Timestamp. Naive datetimes are taken
    as local time (like ``datetime.timestamp()``)."""
    if not isinstance(when, datetime):
        raise TypeError(f"expected a datetime, got {type(when).__name__}")
    if when.tzinfo is None:
        when = when.astimezone()
    delta = when - _EPOCH
    ts.seconds = delta.days * 86400 + delta.seconds
    ts.nanos = delta.microseconds * 1000


def timedelta_from_duration(d) -> timedelta:
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)


def set_duration(d, value: timedelta | float | int) -> None:
    if not isinstance(value, timedelta):
        value = timedelta(seconds=float(value))
    total_us = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    d.seconds, rem = divmod(total_us, 1_000_000)
    if d.seconds < 0 and rem:  # Duration wants seconds and nanos of the same sign
        d.seconds += 1
        rem -= 1_000_000
    d.nanos = rem * 1000


def _has(msg, name: str) -> bool:
    """Field presence, tolerant of fields this client's proto does not know."""
    if name not in msg.DESCRIPTOR.fields_by_name:
        return False
    try:
        return msg.HasField(name)
    except ValueError:  # scalar without presence
        return True


def _ts_field(msg, name: str) -> Optional[datetime]:
    return datetime_from_timestamp(getattr(msg, name)) if _has(msg, name) else None


def _get(msg, name: str, default=None):
    """A field's value, or ``default`` when this client's proto lacks it
    (stubs built from an older proto/). A server too old to send a field
    leaves it at its proto3 default, which each model documents."""
    if name not in msg.DESCRIPTOR.fields_by_name:
        return default
    return getattr(msg, name)


# ---------------------------------------------------------------------------
# Enums


class _ProtoEnum(enum.IntEnum):
    """IntEnum that keeps values newer servers may send (UNKNOWN_<n>)."""

    @classmethod
    def _missing_(cls, value):
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @classmethod
    def parse(cls, value):
        """From a member, an int, or a name in any case, with or without the
        proto prefix ("running", "RUNNING", "JOB_STATE_RUNNING")."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int):
            return cls(value)
        name = str(value).strip().upper().replace("-", "_")
        prefix = cls._proto_prefix()
        if name.startswith(prefix):
            name = name[len(prefix):]
        try:
            return cls[name]
        except KeyError:
            choices = ", ".join(m.name.lower() for m in cls if m.value)
            raise ValueError(f"unknown {cls.__name__} {value!r} (choose from {choices})") from None

    @classmethod
    def _proto_prefix(cls) -> str:
        return ""

    def __str__(self) -> str:
        return self.name


class JobState(_ProtoEnum):
    UNSPECIFIED = 0
    PENDING = 1
    PLANNED = 2
    RUNNING = 3
    SUCCEEDED = 4
    FAILED = 5
    CANCELLED = 6
    BUDGET_EXHAUSTED = 7
    REJECTED = 8
    STARTING = 9

    @classmethod
    def _proto_prefix(cls) -> str:
        return "JOB_STATE_"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.BUDGET_EXHAUSTED,
        JobState.REJECTED,
    }
)
TERMINAL_STATES = _TERMINAL


class PlacementMode(_ProtoEnum):
    UNSPECIFIED = 0
    CHEAPEST = 1
    GREENEST = 2
    BALANCED = 3

    @classmethod
    def _proto_prefix(cls) -> str:
        return "PLACEMENT_MODE_"


class PoolExecutor(_ProtoEnum):
    """Who runs a pool's jobs: SIMULATED (the demo's cloud pools, the replay)
    or AGENT (greenlight-agent processes on real nodes). Servers from before
    agents send UNSPECIFIED, which NodePool reads as SIMULATED."""

    UNSPECIFIED = 0
    SIMULATED = 1
    AGENT = 2

    @classmethod
    def _proto_prefix(cls) -> str:
        return "POOL_EXECUTOR_"


class NodeState(_ProtoEnum):
    """An agent node: READY (heartbeating, counts as capacity) or LOST (no
    heartbeat within the lease; its jobs were requeued or failed)."""

    UNSPECIFIED = 0
    READY = 1
    LOST = 2

    @classmethod
    def _proto_prefix(cls) -> str:
        return "NODE_STATE_"


# ---------------------------------------------------------------------------
# Base


class _Model:
    """to_dict() for JSON: Decimal -> float, datetime -> ISO 8601 (Z),
    timedelta -> seconds, enums -> names, bytes -> length, nested models."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "proto":
                continue
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(v):
    if isinstance(v, _Model):
        return v.to_dict()
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": len(v)}
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


_proto_field = dict(default=None, repr=False, compare=False)


# ---------------------------------------------------------------------------
# Placement and quotes



# Team.on_budget_exhausted text -> BudgetPolicy value ("" = server default).
_BUDGET_POLICIES = {"": 0, "finish": 1, "stop": 2}


def _enum_text(m, enum_field: str, prefix: str, legacy_field: str) -> str:
    """The name of an enum field without its prefix ("QUOTA"), or the
    deprecated text twin when the server is older and left the enum unset."""
    value = getattr(m, enum_field)
    if value:
        known = m.DESCRIPTOR.fields_by_name[enum_field].enum_type.values_by_number.get(value)
        return known.name[len(prefix):] if known else str(value)
    return getattr(m, legacy_field)

@dataclass
class TimeSlot(_Model):
    start: Optional[datetime]
    end: Optional[datetime]


@dataclass
class Placement(_Model):
    """A placement option with its predicted figures."""

    pool_id: str
    provider: str
    region: str
    grid_zone: str
    instance_type: str
    gpu_type: str
    nodes: int
    spot: bool
    start: Optional[datetime]
    end: Optional[datetime]
    slots: list[TimeSlot]
    cost_usd: Decimal
    carbon_kg: Decimal
    energy_wh: float
    objective_usd: Decimal
    mean_intensity_g_per_kwh: float
    carbon_estimated: bool
    why_not: str
    # The pool's grid is unknown; carbon_basis says what the team's policy assumed.
    unknown_grid: bool = False
    carbon_basis: str = ""
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "Placement":
        return cls(
            pool_id=m.pool_id,
            provider=m.provider,
            region=m.region,
            grid_zone=m.grid_zone,
            instance_type=m.instance_type,
            gpu_type=m.gpu_type,
            nodes=m.nodes,
            spot=m.spot,
            start=_ts_field(m, "start"),
            end=_ts_field(m, "end"),
            slots=[TimeSlot(_ts_field(s, "start"), _ts_field(s, "end")) for s in m.slots],
            cost_usd=usd_from_micros(m.cost_micros),
            carbon_kg=kg_from_mg(m.carbon_mg),
            energy_wh=m.energy_wh,
            objective_usd=usd_from_micros(m.objective_micros),
            mean_intensity_g_per_kwh=m.mean_intensity_g_per_kwh,
            carbon_estimated=m.carbon_estimated,
            why_not=m.why_not,
            unknown_grid=m.unknown_grid,
            carbon_basis=m.carbon_basis,
            proto=m,
        )


@dataclass
class Quote(_Model):
    """The placement engine's answer: the chosen placement, ranked runners-up
    (each with ``why_not``), the carbon-blind baseline and the rejections."""

    feasible: bool
    chosen: Optional[Placement]
    alternatives: list[Placement]
    baseline: Optional[Placement]
    rejections: dict[str, int]
    summary: str
    pools_considered: int
    not_now: bool
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "Quote":
        rejections: dict[str, int] = {}
        for r in m.rejections:
            rejections[r.reason] = rejections.get(r.reason, 0) + r.pools
        return cls(
            feasible=m.feasible,
            chosen=Placement.from_proto(m.chosen) if _has(m, "chosen") else None,
            alternatives=[Placement.from_proto(p) for p in m.alternatives],
            baseline=Placement.from_proto(m.baseline) if _has(m, "baseline") else None,
            rejections=rejections,
            summary=m.summary,
            pools_considered=m.pools_considered,
            not_now=m.not_now,
            proto=m,
        )

    @property
    def ranked(self) -> list[Placement]:
        """The chosen placement first, then the alternatives, best first."""
        return ([self.chosen] if self.chosen else []) + list(self.alternatives)

    @property
    def cost_usd(self) -> Optional[Decimal]:
        return self.chosen.cost_usd if self.chosen else None

    @property
    def carbon_kg(self) -> Optional[Decimal]:
        return self.chosen.carbon_kg if self.chosen else None

    @property
    def carbon_avoided_kg(self) -> Optional[Decimal]:
        """Carbon saved versus the carbon-blind baseline (may be negative)."""
        if self.chosen is None or self.baseline is None:
            return None
        return self.baseline.carbon_kg - self.chosen.carbon_kg


# ---------------------------------------------------------------------------
# Jobs


@dataclass
class JobSpec(_Model):
    """What to run. Give exactly one of ``reference_gpu_hours`` (GPU-hours on
    the reference A100; alias ``gpu_hours``) or ``duration``.

    ``max_cost_usd`` / ``max_carbon_kg``: per-job caps, ``None`` = no cap.
    ``mode``: "cheapest", "greenest", "balanced" or a PlacementMode.
    ``request_id``: idempotency key; Client.submit generates one when empty.

    What a node agent runs (pools whose executor is AGENT; other pools ignore
    it): ``command``, the argv (``["python", "train.py", "--lr", "3e-4"]``:
    a list, never one shell string; argv[0] is looked up in the job's PATH),
    ``env``, added to the job's clean environment, and ``working_dir``
    (alias ``workdir``), relative to the agent's job directory ("" = that
    directory). ``env`` and ``working_dir`` need a ``command``.
    """

    team: str = ""
    gpus: int = 0
    name: str = ""
    gpu_types: Sequence[str] = ()
    reference_gpu_hours: Optional[float] = None
    duration: Optional[timedelta] = None
    max_cost_usd: Optional[Decimal] = None
    max_carbon_kg: Optional[Decimal] = None
    not_before: Optional[datetime] = None
    deadline: Optional[datetime] = None
    checkpointable: bool = False
    priority: int = 0
    regions: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    request_id: str = ""
    payload: bytes = b""
    mode: Optional[PlacementMode] = None
    carbon_price_usd_per_tonne: Optional[Decimal] = None
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    proto: Any = field(**_proto_field)

    _ALIASES = {
        "gpu_hours": "reference_gpu_hours",
        "gpu_type": "gpu_types",
        "region": "regions",
        "workdir": "working_dir",
    }

    @classmethod
    def build(cls, **fields) -> "JobSpec":
        """JobSpec from keyword arguments, accepting the aliases gpu_hours,
        gpu_type and region (a single string or a list)."""
        kwargs = {}
        for key, value in fields.items():
            key = cls._ALIASES.get(key, key)
            if key in ("gpu_types", "regions") and isinstance(value, str):
                value = [value]
            if key in kwargs:
                raise TypeError(f"JobSpec: {key} given twice")
            kwargs[key] = value
        known = {f.name for f in dataclasses.fields(cls)} - {"proto"}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"JobSpec: unknown field(s) {', '.join(unknown)}")
        return cls(**kwargs)

    def to_proto(self):
        m = pb.JobSpec(
            team=self.team,
            name=self.name,
            gpus=int(self.gpus),
            gpu_types=list(self.gpu_types),
            checkpointable=bool(self.checkpointable),
            priority=int(self.priority),
            regions=list(self.regions),
            request_id=self.request_id or "",
            payload=bytes(self.payload or b""),
        )
        for k, v in (self.labels or {}).items():
            m.labels[str(k)] = str(v)
        if self.reference_gpu_hours is not None and self.duration is not None:
            raise ValueError("JobSpec: give reference_gpu_hours or duration, not both")
        if self.reference_gpu_hours is not None:
            m.reference_gpu_hours = float(self.reference_gpu_hours)
        if self.duration is not None:
            set_duration(m.duration, self.duration)
        if self.max_cost_usd is not None:
            m.max_cost_micros = micros_from_usd(self.max_cost_usd)
        if self.max_carbon_kg is not None:
            m.max_carbon_mg = mg_from_kg(self.max_carbon_kg)
        if self.not_before is not None:
            set_timestamp(m.not_before, self.not_before)
        if self.deadline is not None:
            set_timestamp(m.deadline, self.deadline)
        if self.mode is not None:
            m.mode = int(PlacementMode.parse(self.mode))
        if self.carbon_price_usd_per_tonne is not None:
            m.carbon_price_micros_per_tonne = micros_from_usd(self.carbon_price_usd_per_tonne)
        argv = _argv(self.command)
        if argv:
            m.command.argv.extend(argv)
            for k, v in (self.env or {}).items():
                m.command.env[str(k)] = str(v)
            m.command.working_dir = os.fspath(self.working_dir or "")
        elif self.env or self.working_dir:
            raise ValueError("JobSpec: env and working_dir need a command (the argv to run)")
        return m

    @classmethod
    def from_proto(cls, m) -> "JobSpec":
        work = m.WhichOneof("work")
        command = m.command if _has(m, "command") else None
        return cls(
            team=m.team,
            gpus=m.gpus,
            name=m.name,
            gpu_types=list(m.gpu_types),
            reference_gpu_hours=m.reference_gpu_hours if work == "reference_gpu_hours" else None,
            duration=timedelta_from_duration(m.duration) if work == "duration" else None,
            max_cost_usd=usd_from_micros(m.max_cost_micros) if m.max_cost_micros else None,
            max_carbon_kg=kg_from_mg(m.max_carbon_mg) if m.max_carbon_mg else None,
            not_before=_ts_field(m, "not_before"),
            deadline=_ts_field(m, "deadline"),
            checkpointable=m.checkpointable,
            priority=m.priority,
            regions=list(m.regions),
            labels=dict(m.labels),
            request_id=m.request_id,
            payload=bytes(m.payload),
            mode=PlacementMode(m.mode) if m.mode else None,
            carbon_price_usd_per_tonne=(
                usd_from_micros(m.carbon_price_micros_per_tonne)
                if m.carbon_price_micros_per_tonne
                else None
            ),
            command=list(command.argv) if command is not None else [],
            env=dict(command.env) if command is not None else {},
            working_dir=command.working_dir if command is not None else "",
            proto=m,
        )


def _argv(command) -> list[str]:
    """JobSpec.command as a list of strings (paths and numbers converted);
    one string is refused, since splitting it would guess at quoting."""
    if command is None:
        return []
    if isinstance(command, (str, bytes, bytearray)):
        raise TypeError(
            "JobSpec: command is the argv list, e.g. ['python', 'train.py'], not one string "
            "(shlex.split() splits a shell line)"
        )
    argv = []
    for arg in command:
        if isinstance(arg, (bytes, bytearray)):
            raise TypeError(f"JobSpec: command arguments are strings, got {arg!r}")
        argv.append(os.fspath(arg) if isinstance(arg, os.PathLike) else str(arg))
    return argv


@dataclass
class Job(_Model):
    """A job as the scheduler stores it. ``deduplicated`` is True when a
    submit matched an existing job by request_id (only set by submit).

    On an agent pool: ``node`` runs it (STARTING, then RUNNING) on its GPUs
    ``gpu_indices``; ``measured_energy_wh`` is what those GPUs' counters
    measured since the start (Wh, before the pool's PUE, as last charged) and
    ``energy_measured`` says whether ``accrued_energy_wh`` rests on that
    (True) or is modelled from the GPU table's power (False: every job on a
    simulated pool, a node without energy counters, or a server from before
    agents). ``lost_nodes``: nodes it was taken from when they went silent.
    """

    id: str
    spec: JobSpec
    state: JobState
    pending_reason: str
    quote: Optional[Quote]
    submit_time: Optional[datetime]
    start_time: Optional[datetime]
    end_time: Optional[datetime]
    accrued_cost_usd: Decimal
    accrued_carbon_kg: Decimal
    accrued_energy_wh: float
    reserved_cost_usd: Decimal
    reserved_carbon_kg: Decimal
    message: str
    revision: int
    placement: Optional[Placement] = None
    deduplicated: bool = False
    node: str = ""
    gpu_indices: list[int] = field(default_factory=list)
    measured_energy_wh: float = 0.0
    energy_measured: bool = False
    lost_nodes: list[str] = field(default_factory=list)
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "Job":
        placement = None
        if _has(m, "placement"):
            placement = Placement.from_proto(m.placement)
        elif _has(m, "quote") and _has(m.quote, "chosen"):
            placement = Placement.from_proto(m.quote.chosen)
        return cls(
            id=m.id,
            spec=JobSpec.from_proto(m.spec),
            state=JobState(m.state),
            pending_reason=_enum_text(m, "pending", "PENDING_REASON_", "pending_reason"),
            quote=Quote.from_proto(m.quote) if _has(m, "quote") else None,
            submit_time=_ts_field(m, "submit_time"),
            start_time=_ts_field(m, "start_time"),
            end_time=_ts_field(m, "end_time"),
            accrued_cost_usd=usd_from_micros(m.accrued_cost_micros),
            accrued_carbon_kg=kg_from_mg(m.accrued_carbon_mg),
            accrued_energy_wh=m.accrued_energy_wh,
            reserved_cost_usd=usd_from_micros(m.reserved_cost_micros),
            reserved_carbon_kg=kg_from_mg(m.reserved_carbon_mg),
            message=m.message,
            revision=m.revision,
            placement=placement,
            node=_get(m, "node", ""),
            gpu_indices=list(_get(m, "gpu_indices", ())),
            measured_energy_wh=_get(m, "measured_energy_wh", 0.0),
            energy_measured=_get(m, "energy_measured", False),
            lost_nodes=list(_get(m, "lost_nodes", ())),
            proto=m,
        )

    @property
    def team(self) -> str:
        return self.spec.team

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def done(self) -> bool:
        """True in a terminal state (succeeded, failed, cancelled,
        budget exhausted, rejected)."""
        return self.state.terminal

    @property
    def predicted_cost_usd(self) -> Optional[Decimal]:
        return self.placement.cost_usd if self.placement else None

    @property
    def predicted_carbon_kg(self) -> Optional[Decimal]:
        return self.placement.carbon_kg if self.placement else None

    @property
    def energy_basis(self) -> str:
        """"measured" (the node's GPU counters) or "modelled" (the GPU
        table's power): how ``accrued_energy_wh`` was obtained."""
        return "measured" if self.energy_measured else "modelled"


@dataclass
class JobEvent(_Model):
    """One change of one job. ``revision`` is server-wide, monotonic, gapless."""

    revision: int
    job_id: str
    team: str
    type: str
    state: JobState
    time: Optional[datetime]
    message: str
    job: Optional[Job]
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "JobEvent":
        return cls(
            revision=m.revision,
            job_id=m.job_id,
            team=m.team,
            type=_enum_text(m, "event_type", "JOB_EVENT_TYPE_", "type"),
            state=JobState(m.state),
            time=_ts_field(m, "time"),
            message=m.message,
            job=Job.from_proto(m.job) if _has(m, "job") else None,
            proto=m,
        )


# ---------------------------------------------------------------------------
# Teams and usage


@dataclass
class Team(_Model):
    """A team's monthly budgets and quotas. ``None`` budgets and a 0 quota
    mean unlimited."""

    name: str
    parent: str = ""
    monthly_cost_budget_usd: Optional[Decimal] = None
    monthly_carbon_budget_kg: Optional[Decimal] = None
    gpu_quota: int = 0
    gpu_quota_by_type: Mapping[str, int] = field(default_factory=dict)
    carbon_price_usd_per_tonne: Optional[Decimal] = None
    alert_ratio: float = 0.0
    on_budget_exhausted: str = ""
    # How placement treats regions whose grid is unknown: "pessimistic"
    # (server default), "default" or "exclude" (docs/PLACEMENT.md).
    unknown_grid: str = ""
    proto: Any = field(**_proto_field)

    def to_proto(self):
        m = pb.Team(
            name=self.name,
            parent=self.parent or "",
            gpu_quota=int(self.gpu_quota or 0),
            alert_ratio=float(self.alert_ratio or 0.0),
            # The enum; text it does not know goes in the deprecated field,
            # so the server's error names it (team.on_budget_exhausted).
            budget_policy=_BUDGET_POLICIES.get(self.on_budget_exhausted or "", 0),
            on_budget_exhausted=(
                "" if (self.on_budget_exhausted or "") in _BUDGET_POLICIES else self.on_budget_exhausted
            ),
            unknown_grid=self.unknown_grid or "",
        )
        if self.monthly_cost_budget_usd is not None:
            m.monthly_cost_budget_micros = micros_from_usd(self.monthly_cost_budget_usd)
        if self.monthly_carbon_budget_kg is not None:
            m.monthly_carbon_budget_mg = mg_from_kg(self.monthly_carbon_budget_kg)
        if self.carbon_price_usd_per_tonne is not None:
            m.carbon_price_micros_per_tonne = micros_from_usd(self.carbon_price_usd_per_tonne)
        for k, v in (self.gpu_quota_by_type or {}).items():
            m.gpu_quota_by_type[str(k)] = int(v)
        return m

    @classmethod
    def from_proto(cls, m) -> "Team":
        return cls(
            name=m.name,
            parent=m.parent,
            monthly_cost_budget_usd=(
                usd_from_micros(m.monthly_cost_budget_micros) if m.monthly_cost_budget_micros else None
            ),
            monthly_carbon_budget_kg=(
                kg_from_mg(m.monthly_carbon_budget_mg) if m.monthly_carbon_budget_mg else None
            ),
            gpu_quota=m.gpu_quota,
            gpu_quota_by_type=dict(m.gpu_quota_by_type),
            carbon_price_usd_per_tonne=(
                usd_from_micros(m.carbon_price_micros_per_tonne)
                if m.carbon_price_micros_per_tonne
                else None
            ),
            alert_ratio=m.alert_ratio,
            on_budget_exhausted=(
                _enum_text(m, "budget_policy", "BUDGET_POLICY_", "on_budget_exhausted").lower()
            ),
            unknown_grid=m.unknown_grid,
            proto=m,
        )


@dataclass
class Usage(_Model):
    """Spend of a team in one period (a UTC calendar month). Budgets of 0
    mean unlimited; ``*_remaining_*`` is only meaningful with a budget."""

    team: str
    period_start: Optional[datetime]
    period_end: Optional[datetime]
    cost_budget_usd: Decimal
    cost_spent_usd: Decimal
    cost_reserved_usd: Decimal
    cost_remaining_usd: Decimal
    carbon_budget_kg: Decimal
    carbon_spent_kg: Decimal
    carbon_reserved_kg: Decimal
    carbon_remaining_kg: Decimal
    running_gpus: int
    gpu_quota: int
    jobs_running: int
    jobs_pending: int
    energy_spent_wh: float
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "Usage":
        return cls(
            team=m.team,
            period_start=_ts_field(m, "period_start"),
            period_end=_ts_field(m, "period_end"),
            cost_budget_usd=usd_from_micros(m.cost_budget_micros),
            cost_spent_usd=usd_from_micros(m.cost_spent_micros),
            cost_reserved_usd=usd_from_micros(m.cost_reserved_micros),
            cost_remaining_usd=usd_from_micros(m.cost_remaining_micros),
            carbon_budget_kg=kg_from_mg(m.carbon_budget_mg),
            carbon_spent_kg=kg_from_mg(m.carbon_spent_mg),
            carbon_reserved_kg=kg_from_mg(m.carbon_reserved_mg),
            carbon_remaining_kg=kg_from_mg(m.carbon_remaining_mg),
            running_gpus=m.running_gpus,
            gpu_quota=m.gpu_quota,
            jobs_running=m.jobs_running,
            jobs_pending=m.jobs_pending,
            energy_spent_wh=m.energy_spent_wh,
            proto=m,
        )


# ---------------------------------------------------------------------------
# Inventory


@dataclass
class GpuDevice(_Model):
    """A GPU of an agent node, as the agent discovered it (NVML) or as
    declared on its command line (uuid ``declared-<i>``)."""

    index: int
    uuid: str
    name: str
    memory_bytes: int
    power_limit_w: float
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "GpuDevice":
        return cls(
            index=m.index,
            uuid=m.uuid,
            name=m.name,
            memory_bytes=m.memory_bytes,
            power_limit_w=m.power_limit_mw / 1000.0,
            proto=m,
        )


@dataclass
class AgentNode(_Model):
    """One registered node of an AGENT pool. ``energy_measured``: its GPUs
    have energy counters (NVML); False = energy is modelled.
    ``last_heartbeat`` is None when greenlightd has seen none since it
    started (it keeps heartbeats in memory only)."""

    name: str
    slot: int
    state: NodeState
    hostname: str
    gpus: list[GpuDevice]
    agent_version: str
    energy_measured: bool
    token_id: str
    registered: Optional[datetime]
    last_heartbeat: Optional[datetime]
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "AgentNode":
        return cls(
            name=m.name,
            slot=m.slot,
            state=NodeState(m.state),
            hostname=m.hostname,
            gpus=[GpuDevice.from_proto(g) for g in m.gpus],
            agent_version=m.agent_version,
            energy_measured=m.energy_measured,
            token_id=m.token_id,
            registered=_ts_field(m, "registered"),
            last_heartbeat=_ts_field(m, "last_heartbeat"),
            proto=m,
        )


@dataclass
class NodePool(_Model):
    """A pool of interchangeable GPU nodes. ``executor``: who runs its jobs
    (SIMULATED, or AGENT: real processes on registered ``agent_nodes``, and
    ``nodes`` counts them)."""

    id: str
    provider: str
    region: str
    grid_zone: str
    instance_type: str
    gpu_type: str
    gpus_per_node: int
    nodes: int
    price_usd_per_node_hour: Decimal
    spot_price_usd_per_node_hour: Optional[Decimal]
    gpu_power_w: float
    pue: float
    free_nodes: int
    executor: PoolExecutor = PoolExecutor.SIMULATED
    agent_nodes: list[AgentNode] = field(default_factory=list)
    proto: Any = field(**_proto_field)

    @property
    def is_agent(self) -> bool:
        return self.executor == PoolExecutor.AGENT

    @classmethod
    def from_proto(cls, m) -> "NodePool":
        return cls(
            id=m.id,
            provider=m.provider,
            region=m.region,
            grid_zone=m.grid_zone,
            instance_type=m.instance_type,
            gpu_type=m.gpu_type,
            gpus_per_node=m.gpus_per_node,
            nodes=m.nodes,
            price_usd_per_node_hour=usd_from_micros(m.price_micros_per_node_hour),
            spot_price_usd_per_node_hour=(
                usd_from_micros(m.spot_price_micros_per_node_hour)
                if m.spot_price_micros_per_node_hour
                else None
            ),
            gpu_power_w=m.gpu_power_w,
            pue=m.pue,
            free_nodes=m.free_nodes,
            # UNSPECIFIED (and every pool of a server from before agents) is simulated.
            executor=PoolExecutor(_get(m, "executor", 0) or PoolExecutor.SIMULATED),
            agent_nodes=[AgentNode.from_proto(n) for n in _get(m, "agent_nodes", ())],
            proto=m,
        )


@dataclass
class GridZone(_Model):
    name: str
    annual_average_g_per_kwh: float
    step: Optional[timedelta]
    series_start: Optional[datetime]
    series_end: Optional[datetime]
    points: int
    source: str
    updated: Optional[datetime]
    current_g_per_kwh: float
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m) -> "GridZone":
        return cls(
            name=m.name,
            annual_average_g_per_kwh=m.annual_average_g_per_kwh,
            step=timedelta_from_duration(m.step) if _has(m, "step") else None,
            series_start=_ts_field(m, "series_start"),
            series_end=_ts_field(m, "series_end"),
            points=m.points,
            source=m.source,
            updated=_ts_field(m, "updated"),
            current_g_per_kwh=m.current_g_per_kwh,
            proto=m,
        )


# ---------------------------------------------------------------------------
# Admin


@dataclass
class Token(_Model):
    """An API token: a team's, the admin role's (``admin``) or a node
    agent's (``agent_pool``: it may only register and heartbeat nodes of
    that AGENT pool). ``secret`` is set only by Client.create_token, the
    one time the server reveals it (it stores a hash)."""

    id: str
    team: str = ""
    admin: bool = False
    agent_pool: str = ""
    description: str = ""
    created: Optional[datetime] = None
    revoked: bool = False
    secret: str = field(default="", repr=False)
    proto: Any = field(**_proto_field)

    @classmethod
    def from_proto(cls, m, secret: str = "") -> "Token":
        return cls(
            id=m.id,
            team=m.team,
            admin=m.admin,
            agent_pool=_get(m, "agent_pool", ""),
            description=m.description,
            created=_ts_field(m, "created"),
            revoked=m.revoked,
            secret=secret,
            proto=m,
        )

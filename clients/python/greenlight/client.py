"""greenlight.Client: the Python face of the greenlight.v1 gRPC API."""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Optional, Sequence, Union

import grpc

from greenlight import errors
from greenlight.models import (
    GridZone,
    Job,
    JobEvent,
    JobSpec,
    JobState,
    NodePool,
    Quote,
    Team,
    Token,
    Usage,
    datetime_from_timestamp,
    set_timestamp,
)
from greenlight.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    budgets_pb2,
    budgets_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 30.0

_U = grpc.StatusCode.UNAVAILABLE
_D = grpc.StatusCode.DEADLINE_EXCEEDED
SUBMIT_RETRY_CODES = frozenset({_U, _D})
READ_RETRY_CODES = frozenset({_U})
# A watch stream ends for many transient reasons (restart, a slow watcher
# dropped with RESOURCE_EXHAUSTED, proxies); resuming is always safe.
WATCH_RETRY_CODES = frozenset(
    {
        _U,
        _D,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and time.

    The n-th retry sleeps uniformly in [d/2, d] with
    d = min(max_backoff, initial_backoff * multiplier**n); no attempt starts
    after ``max_elapsed`` seconds from the first one.
    """

    max_attempts: int = 6
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0
    max_elapsed: float = 30.0

    def delay(self, retry_number: int, rng=random) -> float:
        d = min(self.max_backoff, self.initial_backoff * (self.multiplier ** retry_number))
        return rng.uniform(d / 2, d)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class TLS:
    """TLS settings: ``ca`` (PEM path or bytes; None = system roots), an
    optional client certificate for mTLS (``cert``, ``key``) and
    ``server_name`` to override the name checked in the server certificate."""

    ca: Union[str, bytes, None] = None
    cert: Union[str, bytes, None] = None
    key: Union[str, bytes, None] = None
    server_name: Optional[str] = None


def _read_pem(value) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    with open(os.fspath(value), "rb") as f:
        return f.read()


def resolve_token(token: Optional[str] = None, token_file: Optional[str] = None) -> Optional[str]:
    """The bearer secret: the argument, else the file, else $GREENLIGHT_TOKEN,
    else the file named by $GREENLIGHT_TOKEN_FILE. Empty string = no token."""
    if token is not None:
        return token.strip() or None
    if token_file is None:
        env = os.environ.get("GREENLIGHT_TOKEN")
        if env is not None:
            return env.strip() or None
        token_file = os.environ.get("GREENLIGHT_TOKEN_FILE") or None
    if token_file:
        with open(os.path.expanduser(token_file), encoding="utf-8") as f:
            return f.read().strip() or None
    return None


def _credentials(tls) -> tuple[Optional[grpc.ChannelCredentials], list]:
    """(channel credentials or None for plaintext, extra channel options)."""
    if tls is None:
        ca = os.environ.get("GREENLIGHT_TLS_CA")
        tls = TLS(ca=ca) if ca else False
    if tls is False:
        return None, []
    if isinstance(tls, grpc.ChannelCredentials):
        return tls, []
    if tls is True:
        tls = TLS()
    elif isinstance(tls, (str, bytes, os.PathLike)):
        tls = TLS(ca=tls)
    if not isinstance(tls, TLS):
        raise TypeError("tls must be None/False, True, a CA path or PEM bytes, TLS(...) or grpc.ChannelCredentials")
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read_pem(tls.ca),
        private_key=_read_pem(tls.key),
        certificate_chain=_read_pem(tls.cert),
    )
    options = []
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return creds, options


# -- times -----------------------------------------------------------------

_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_DUR_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """"90m", "2h30m", "1d", "45s", "1.5h" or plain seconds ("3600") -> timedelta.
    Raises ValueError."""
    text = str(text).strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    compact = text.replace(" ", "")
    for m in _DUR_RE.finditer(compact):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_UNITS[m.group(2).lower()]
        pos = m.end()
    if pos != len(compact) or pos == 0:
        raise ValueError(f"not a duration: {text!r} (try 90m, 2h30m, 1d)")
    return timedelta(seconds=total)


def parse_relative_time(text: str) -> Optional[timedelta]:
    """"now" -> timedelta(0), "+48h" / "+1d12h" -> that offset; anything else
    (an absolute time) -> None. Raises ValueError for a bad offset."""
    text = str(text).strip()
    if text.lower() == "now":
        return timedelta(0)
    if text.startswith("+"):
        return parse_duration(text[1:])
    return None


def parse_absolute_time(text: str) -> datetime:
    """ISO 8601 ("2025-06-01T18:00Z", "2025-06-01T20:00+02:00") -> aware
    datetime; without a zone it is local time. Raises ValueError."""
    text = str(text).strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (try 2025-06-01T18:00Z, now, +2h)") from None
    return value if value.tzinfo else value.astimezone()


# What the client accepts for a point in time: a datetime (absolute), a
# timedelta (that far from the server's now), or a string: "now", "+48h",
# "+1d12h" (relative to the server's clock) or ISO 8601 (absolute).
TimeLike = Union[datetime, timedelta, str]


def is_relative_time(value) -> bool:
    """True when ``value`` needs the server's clock to become a datetime."""
    if isinstance(value, timedelta):
        return True
    if isinstance(value, str):
        return parse_relative_time(value) is not None
    return False


@dataclass(frozen=True)
class ServerClock:
    """The server's clock as Ping reported it (``Client.server_clock()``).

    A demo server runs its clock faster than the wall clock (clock.time_scale:
    3600 in `make run`), so "in 48 hours" means 48 hours of *server* time,
    which may be far from this machine's now. ``time``: the server's clock
    when it answered; ``time_scale``: server seconds per wall second (1 = real
    time, 0 = not reported); ``local_time``: this machine's clock then.
    ``now()`` extrapolates from the answer at ``time_scale``.
    """

    time: datetime
    time_scale: float
    revision: int
    local_time: datetime
    reported: bool = True  # False: the server sent no server_time (this machine's clock is used)
    _monotonic: float = field(default_factory=time.monotonic, repr=False, compare=False)

    @property
    def scaled(self) -> bool:
        """The server's clock does not run at real time."""
        return self.time_scale not in (0.0, 1.0)

    @property
    def offset(self) -> timedelta:
        """How far the server's clock was ahead of this machine's."""
        return self.time - self.local_time

    def now(self) -> datetime:
        """The server's clock now, extrapolated from the Ping answer."""
        rate = self.time_scale if self.time_scale > 0 else 1.0
        return self.time + timedelta(seconds=(time.monotonic() - self._monotonic) * rate)

    def resolve(self, value: Optional[TimeLike], now: Optional[datetime] = None) -> Optional[datetime]:
        """A TimeLike as an aware datetime: relative values from the server's
        now (or ``now``), absolute ones unchanged; None stays None."""
        if value is None or isinstance(value, datetime):
            return value
        base = now if now is not None else self.now()
        if isinstance(value, timedelta):
            return base + value
        if isinstance(value, str):
            delta = parse_relative_time(value)
            return base + delta if delta is not None else parse_absolute_time(value)
        raise TypeError(f"expected a datetime, timedelta or time string, got {type(value).__name__}")


def _absolute(value: Optional[TimeLike]) -> Optional[datetime]:
    """An absolute TimeLike (datetime or ISO string) as a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_absolute_time(value)
    raise TypeError(f"expected a datetime, timedelta or time string, got {type(value).__name__}")


def _version() -> str:
    from greenlight import __version__

    return __version__


class Client:
    """A connection to greenlightd.

    >>> with Client("127.0.0.1:50051") as gl:
    ...     job = gl.submit(team="vision", gpus=8, gpu_hours=64, max_cost_usd=500)

    ``target``: host:port; default $GREENLIGHT_TARGET or 127.0.0.1:50051.
    ``token``: bearer secret (default $GREENLIGHT_TOKEN, or the file named by
    ``token_file`` / $GREENLIGHT_TOKEN_FILE), sent as ``authorization: Bearer``.
    ``tls``: None (plaintext unless $GREENLIGHT_TLS_CA is set), True (system
    roots), a CA PEM path or bytes, a TLS(...) or grpc.ChannelCredentials.
    ``timeout``: seconds per call attempt. ``retry``: RetryPolicy for submit
    (UNAVAILABLE, DEADLINE_EXCEEDED) and reads (UNAVAILABLE).
    """

    def __init__(
        self,
        target: Optional[str] = None,
        token: Optional[str] = None,
        tls=None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        token_file: Optional[str] = None,
        retry: RetryPolicy = RetryPolicy(),
        options: Sequence[tuple] = (),
        channel: Optional[grpc.Channel] = None,
    ):
        self.target = target or os.environ.get("GREENLIGHT_TARGET") or DEFAULT_TARGET
        self.timeout = timeout
        self.retry = retry
        self._sleep = time.sleep  # replaced in tests
        self._rng = random.Random()
        token = resolve_token(token, token_file)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if channel is None:
            creds, tls_options = _credentials(tls)
            opts = [
                # Reconnect quickly after a server restart (gRPC's default
                # backoff grows to 2 minutes).
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2000),
                ("grpc.primary_user_agent", f"greenlight-python/{_version()}"),
                ("grpc.max_receive_message_length", 64 << 20),
                *tls_options,
                *options,
            ]
            if creds is None:
                channel = grpc.insecure_channel(self.target, options=opts)
            else:
                channel = grpc.secure_channel(self.target, creds, options=opts)
            self._owns_channel = True
        else:
            self._owns_channel = False
        self._channel = channel
        self._scheduler = scheduler_pb2_grpc.SchedulerStub(channel)
        self._budgets = budgets_pb2_grpc.BudgetsStub(channel)
        self._inventory = inventory_pb2_grpc.InventoryStub(channel)
        self._admin = admin_pb2_grpc.AdminStub(channel)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r})"

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the server answers (e.g. right after starting it);
        raises Unavailable after ``timeout`` seconds."""
        if not self._wait_ready(timeout):
            raise errors.Unavailable(f"greenlightd at {self.target} not reachable within {timeout}s")

    # -- plumbing ----------------------------------------------------------

    def _wait_ready(self, timeout: float) -> bool:
        """Waits up to timeout for the channel to (re)connect.

        After failed connection attempts, grpcio 1.51 keeps failing new calls
        fast for several seconds even once the server is back; a
        wait_for_ready Ping goes through as soon as the server accepts
        connections. (grpc.channel_ready_future would do, but its polling
        thread raises when the channel is closed later.)
        """
        if timeout <= 0:
            return False
        try:
            self._scheduler.Ping(
                scheduler_pb2.PingRequest(), timeout=timeout, wait_for_ready=True, metadata=self._metadata
            )
        except grpc.RpcError as e:
            return e.code() not in (_U, _D)  # e.g. UNIMPLEMENTED: connected anyway
        return True

    def _call(self, method, name: str, request, retry_codes=frozenset(), timeout=None):
        policy = self.retry if retry_codes else NO_RETRY
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                code = e.code() if hasattr(e, "code") else None
                if code in retry_codes and attempt < policy.max_attempts:
                    delay = policy.delay(attempt - 1, self._rng)
                    if time.monotonic() - start + delay <= policy.max_elapsed:
                        self._sleep(delay)
                        if code == _U:
                            remaining = policy.max_elapsed - (time.monotonic() - start)
                            self._wait_ready(min(remaining, timeout or self.timeout))
                        continue
                raise errors.from_rpc_error(e, name) from None

    def _spec(self, spec, fields) -> JobSpec:
        if spec is None:
            spec = JobSpec.build(**fields)
        elif fields:
            spec = replace(spec, **{JobSpec._ALIASES.get(k, k): v for k, v in fields.items()})
        if not isinstance(spec, JobSpec):
            raise TypeError("spec must be a greenlight.JobSpec")
        return self.resolve_times(spec)

    def resolve_times(self, spec: JobSpec) -> JobSpec:
        """``spec`` with ``not_before`` and ``deadline`` as datetimes.

        Relative values (a ``timedelta``, "now", "+48h") are taken from the
        server's clock, fetched with one Ping (only when one is relative);
        ISO 8601 strings are parsed; datetimes are kept. submit() and
        estimate() call this once, before any retry, so a retried submit
        sends the same spec."""
        times = {"not_before": spec.not_before, "deadline": spec.deadline}
        if all(v is None or isinstance(v, datetime) for v in times.values()):
            return spec
        if any(is_relative_time(v) for v in times.values()):
            clock = self.server_clock()
            now = clock.now()
            resolved = {k: clock.resolve(v, now) for k, v in times.items()}
        else:
            resolved = {k: _absolute(v) for k, v in times.items()}
        return replace(spec, **resolved)

    # -- scheduler ---------------------------------------------------------

    def submit(self, spec: Optional[JobSpec] = None, /, **fields) -> Job:
        """Admits a job and returns it (``job.deduplicated`` when the
        request_id matched an existing job). Pass a JobSpec or its fields:
        ``submit(team="nlp", gpus=8, gpu_hours=100, max_cost_usd=300)``.

        ``not_before`` and ``deadline`` take a datetime, or a time relative to
        the *server's* clock: ``deadline=timedelta(hours=48)`` or
        ``deadline="+48h"`` (also "now", "+1d12h"); see resolve_times().

        A request_id is generated when absent, and the call is retried with
        the same request_id on UNAVAILABLE and DEADLINE_EXCEEDED, so a retry
        never admits the job twice. Raises InvalidJob, CapExceeded (with
        ``.quote``), BudgetExhausted, AlreadyExists, Unavailable, ...
        """
        spec = self._spec(spec, fields)
        if not spec.request_id:
            spec = replace(spec, request_id=str(uuid.uuid4()))
        request = scheduler_pb2.SubmitJobRequest(spec=spec.to_proto())
        resp = self._call(self._scheduler.SubmitJob, "SubmitJob", request, SUBMIT_RETRY_CODES)
        job = Job.from_proto(resp.job)
        job.deduplicated = resp.deduplicated
        return job

    def estimate(self, spec: Optional[JobSpec] = None, /, *, top_k: int = 5, **fields) -> Quote:
        """Dry run of submit: the quote with up to ``top_k`` ranked
        alternatives (``quote.ranked``). Nothing is stored. Relative
        ``not_before`` / ``deadline`` as in submit()."""
        spec = self._spec(spec, fields)
        request = scheduler_pb2.EstimateJobRequest(spec=spec.to_proto(), top_k=top_k)
        resp = self._call(self._scheduler.EstimateJob, "EstimateJob", request, READ_RETRY_CODES)
        return Quote.from_proto(resp.quote)

    def get(self, job_id: str) -> Job:
        resp = self._call(
            self._scheduler.GetJob, "GetJob", scheduler_pb2.GetJobRequest(job_id=job_id), READ_RETRY_CODES
        )
        return Job.from_proto(resp.job)

    def list(
        self,
        team: Optional[str] = None,
        states: Optional[Iterable[Union[JobState, str, int]]] = None,
        *,
        page_size: int = 100,
        limit: Optional[int] = None,
    ) -> Iterator[Job]:
        """Iterates over all jobs (following every page), optionally of one
        team and in some states, up to ``limit`` jobs."""
        if isinstance(states, (str, int, JobState)):
            states = [states]
        state_values = [int(JobState.parse(s)) for s in (states or ())]
        token = ""
        seen = 0
        while True:
            request = scheduler_pb2.ListJobsRequest(
                team=team or "", states=state_values, page_size=page_size, page_token=token
            )
            resp = self._call(self._scheduler.ListJobs, "ListJobs", request, READ_RETRY_CODES)
            for m in resp.jobs:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield Job.from_proto(m)
            token = resp.next_page_token
            if not token or (limit is not None and seen >= limit):
                return

    def cancel(self, job_id: str, reason: str = "") -> Job:
        """Cancels a job that has not finished and releases its reservation."""
        resp = self._call(
            self._scheduler.CancelJob,
            "CancelJob",
            scheduler_pb2.CancelJobRequest(job_id=job_id, reason=reason),
        )
        return Job.from_proto(resp.job)

    def watch(
        self,
        from_revision: int = 0,
        *,
        team: Optional[str] = None,
        job_id: Optional[str] = None,
        reconnect: bool = True,
        reconnect_timeout: Optional[float] = None,
    ) -> Iterator[JobEvent]:
        """Yields job events with revision > from_revision, forever.

        When the stream breaks (server restart, a dropped slow watcher), it
        reconnects with backoff and resumes after the last revision it
        yielded: no gaps, no duplicates. Gives up with Unavailable after
        ``reconnect_timeout`` seconds (default: retry.max_elapsed) without a
        healthy stream. Close the generator (or break out of the loop) to stop.
        """
        last = int(from_revision)
        give_up_after = self.retry.max_elapsed if reconnect_timeout is None else reconnect_timeout
        failing_since = None
        failures = 0
        while True:
            request = scheduler_pb2.WatchJobsRequest(
                from_revision=last, team=team or "", job_id=job_id or ""
            )
            started = time.monotonic()
            call = self._scheduler.WatchJobs(request, metadata=self._metadata)
            error = None
            try:
                for m in call:
                    if m.revision <= last:
                        continue  # already delivered before a reconnect
                    last = m.revision
                    failing_since, failures = None, 0
                    yield JobEvent.from_proto(m)
            except grpc.RpcError as e:
                if not reconnect or e.code() not in WATCH_RETRY_CODES:
                    raise errors.from_rpc_error(e, "WatchJobs") from None
                error = e
            finally:
                call.cancel()
            if not reconnect:
                return
            now = time.monotonic()
            if now - started > self.retry.max_backoff:
                failing_since, failures = None, 0  # the stream was healthy for a while
            if failing_since is None:
                failing_since = now
            delay = self.retry.delay(failures, self._rng)
            failures += 1
            if now - failing_since + delay > give_up_after:
                if error is not None:
                    raise errors.from_rpc_error(error, "WatchJobs") from None
                raise errors.Unavailable(
                    f"watch stream keeps closing; gave up after {give_up_after:.0f}s "
                    f"(resume with from_revision={last})",
                    method="WatchJobs",
                )
            self._sleep(delay)
            self._wait_ready(give_up_after - (time.monotonic() - failing_since))

    def ping(self) -> int:
        """The server's current revision (a cheap liveness check)."""
        resp = self._call(self._scheduler.Ping, "Ping", scheduler_pb2.PingRequest(), READ_RETRY_CODES)
        return resp.revision

    def server_clock(self) -> ServerClock:
        """The server's clock (one Ping): its time, its time scale (3600 on
        the demo) and how far it is from this machine's clock. A server that
        reports no time gives this machine's clock (``reported`` False)."""
        resp = self._call(self._scheduler.Ping, "Ping", scheduler_pb2.PingRequest(), READ_RETRY_CODES)
        local = datetime.now(timezone.utc)
        mono = time.monotonic()
        server_time = datetime_from_timestamp(resp.server_time) if resp.HasField("server_time") else None
        scale = float(getattr(resp, "time_scale", 0.0) or 0.0)
        if server_time is None:
            return ServerClock(local, scale, resp.revision, local, reported=False, _monotonic=mono)
        return ServerClock(server_time, scale, resp.revision, local, _monotonic=mono)

    # -- budgets -----------------------------------------------------------

    def set_team(self, team: Union[Team, str, None] = None, /, **fields) -> Team:
        """Creates or replaces a team (fields not given are reset to their
        defaults; see update_team to change some fields only).
        ``set_team("nlp", monthly_cost_budget_usd=1000, monthly_carbon_budget_kg=50)``."""
        if isinstance(team, str):
            team = Team(name=team, **fields)
        elif team is None:
            team = Team(**fields)
        elif fields:
            team = replace(team, **fields)
        resp = self._call(
            self._budgets.SetTeam, "SetTeam", budgets_pb2.SetTeamRequest(team=team.to_proto()), READ_RETRY_CODES
        )
        return Team.from_proto(resp.team)

    def update_team(self, name: str, **fields) -> Team:
        """Changes some fields of a team, creating it if absent (read,
        modify, SetTeam)."""
        try:
            current = self.get_team(name)
        except errors.NotFound:
            current = Team(name=name)
        return self.set_team(replace(current, **fields))

    def get_team(self, name: str) -> Team:
        resp = self._call(
            self._budgets.GetTeam, "GetTeam", budgets_pb2.GetTeamRequest(name=name), READ_RETRY_CODES
        )
        return Team.from_proto(resp.team)

    def list_teams(self) -> list[Team]:
        resp = self._call(
            self._budgets.ListTeams, "ListTeams", budgets_pb2.ListTeamsRequest(), READ_RETRY_CODES
        )
        return [Team.from_proto(t) for t in resp.teams]

    def usage(self, team: str, at: Optional[TimeLike] = None) -> Usage:
        """Spent, reserved and remaining of a team for the month containing
        ``at`` (default: the server's now). ``at`` may be relative to the
        server's clock (``timedelta(days=31)``, "+31d")."""
        request = budgets_pb2.GetUsageRequest(team=team)
        if is_relative_time(at):
            at = self.server_clock().resolve(at)
        else:
            at = _absolute(at)
        if at is not None:
            set_timestamp(request.at, at)
        resp = self._call(self._budgets.GetUsage, "GetUsage", request, READ_RETRY_CODES)
        return Usage.from_proto(resp.usage)

    # -- inventory ---------------------------------------------------------

    def list_pools(self, gpu_type: Optional[str] = None, region: Optional[str] = None) -> list[NodePool]:
        request = inventory_pb2.ListPoolsRequest(gpu_type=gpu_type or "", region=region or "")
        resp = self._call(self._inventory.ListPools, "ListPools", request, READ_RETRY_CODES)
        return [NodePool.from_proto(p) for p in resp.pools]

    def list_zones(self) -> list[GridZone]:
        resp = self._call(
            self._inventory.ListZones, "ListZones", inventory_pb2.ListZonesRequest(), READ_RETRY_CODES
        )
        return [GridZone.from_proto(z) for z in resp.zones]

    # -- admin -------------------------------------------------------------

    def create_token(
        self,
        team: Optional[str] = None,
        *,
        admin: bool = False,
        agent_pool: Optional[str] = None,
        description: str = "",
    ) -> Token:
        """Creates a bearer token (needs an admin token) for exactly one of:
        a ``team``, the admin role (``admin=True``), or the node agents of an
        AGENT pool (``agent_pool``: such a token may only register and
        heartbeat that pool's nodes; give it to greenlight-agent
        --token-file). The secret is in ``token.secret``, returned this once.

        Not retried: a retry after a lost answer would make a second token
        whose secret nobody saw."""
        chosen = [name for name, given in (("team", team), ("admin", admin), ("agent_pool", agent_pool)) if given]
        if len(chosen) != 1:
            raise ValueError(
                "create_token: give exactly one of team, admin=True or agent_pool"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        request = admin_pb2.CreateTokenRequest(
            team=team or "", admin=bool(admin), description=description or ""
        )
        if agent_pool:
            if "agent_pool" not in request.DESCRIPTOR.fields_by_name:  # pragma: no cover - stubs from an old proto/
                raise ValueError("create_token: this client's stubs predate agent tokens; regenerate them")
            request.agent_pool = agent_pool
        resp = self._call(self._admin.CreateToken, "CreateToken", request)
        token = Token.from_proto(resp.token, secret=resp.secret)
        if agent_pool and token.agent_pool != agent_pool:
            # A server from before agent tokens ignores the field it does not
            # know and would have made some other token.
            raise errors.GreenlightError(
                f"the server ignored agent_pool (it predates agent tokens) and made token "
                f"{token.id} instead; revoke it",
                method="CreateToken",
            )
        return token

"""gRPC statuses as exceptions.

    GreenlightError                  any failed call (code, message, details)
    ├── InvalidJob                   INVALID_ARGUMENT (.field names the bad field)
    ├── FailedPrecondition           FAILED_PRECONDITION
    │   └── CapExceeded              ... no placement fits the job's caps (.quote)
    ├── BudgetExhausted              RESOURCE_EXHAUSTED (the team budget cannot cover the job)
    │   └── CannotStartNow           ... only-if-it-can-start-now and the job would wait
    ├── Overloaded                   RESOURCE_EXHAUSTED when the server sheds load
    │                                (per-team submit rate, full queue): retry later
    ├── NotFound                     NOT_FOUND
    ├── AlreadyExists                ALREADY_EXISTS (request_id reused with another spec)
    ├── PermissionDenied             PERMISSION_DENIED
    │   └── Unauthenticated          UNAUTHENTICATED (no or bad token)
    └── Unavailable                  UNAVAILABLE (server down, restarting, shedding)
        └── DeadlineExceeded         DEADLINE_EXCEEDED (no answer in time)

Every exception keeps ``code`` (grpc.StatusCode), ``message`` (the server's
text), ``details`` (google.protobuf.Any list from the grpc-status-details-bin
trailer), ``reason`` and ``metadata`` (the google.rpc.ErrorInfo greenlightd
attaches to every refusal: "TEAM_BUDGET_EXHAUSTED", "QUEUE_FULL",
"TEAM_RATE_LIMITED", "CANNOT_START_NOW", "CAP_EXCEEDED", "GPU_TYPE_QUOTA", ...;
"" when the server sent none) and ``method``. The class is chosen from the
reason, never from the message text.
"""

from __future__ import annotations

import re
from typing import Optional

import grpc

from greenlight import _status
from greenlight.models import Quote
from greenlight.v1 import types_pb2


class GreenlightError(Exception):
    """A greenlight call failed."""

    default_code = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        code: Optional[grpc.StatusCode] = None,
        details=(),
        method: str = "",
        debug: str = "",
    ):
        super().__init__(message)
        self.code = code if code is not None else self.default_code
        self.message = message
        self.details = list(details)
        self.method = method
        self.debug = debug
        self.reason, self.metadata = _status.error_info(self.details)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" if self.code else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, message={self.message!r})"


# API field names (micro-USD, mg) -> the names this package uses (USD, kg).
PYTHON_NAMES = {
    "max_cost_micros": "max_cost_usd",
    "max_carbon_mg": "max_carbon_kg",
    "carbon_price_micros_per_tonne": "carbon_price_usd_per_tonne",
    "monthly_cost_budget_micros": "monthly_cost_budget_usd",
    "monthly_carbon_budget_mg": "monthly_carbon_budget_kg",
    "work": "reference_gpu_hours",
    # JobSpec.command is Command.argv; Command.env and working_dir keep their names.
    "argv": "command",
}


class InvalidJob(GreenlightError):
    """The request is malformed. ``field`` is the offending API field as the
    server names it ("gpus", "max_cost_micros", "deadline"; None when the
    server does not say), ``argument`` the same field by its name in this
    package (JobSpec / Team: "max_cost_usd")."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        violations = _status.bad_request_fields(self.details)
        self.violations = violations
        field = violations[0][0] if violations else _field_from_message(self.message)
        # "spec.gpus" / "team.parent" -> "gpus" / "parent": the field of the
        # request object, as before BadRequest details named the full path.
        if field and field.split(".", 1)[0] in ("spec", "team") and "." in field:
            field = field.split(".", 1)[1]
        self.field = field
        # "command.env[HOME]" -> "env": the argument, not the map key.
        leaf = re.sub(r"\[.*$", "", self.field).rsplit(".", 1)[-1] if self.field else None
        self.argument = PYTHON_NAMES.get(leaf, leaf) if leaf else None


class FailedPrecondition(GreenlightError):
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class CapExceeded(FailedPrecondition):
    """No placement fits the job's cost/carbon caps. ``quote`` is the
    server's best quote (a greenlight Quote) when it sent one."""

    def __init__(self, *args, quote: Optional[Quote] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.quote = quote if quote is not None else _quote_from_details(self.details)


class BudgetExhausted(GreenlightError):
    """The team's budget for the period cannot cover the job."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class CannotStartNow(BudgetExhausted):
    """The job would have to wait (``metadata["cause"]``: CAPACITY or QUOTA)
    and the caller asked for it to start at once or not at all."""


class Overloaded(GreenlightError):
    """RESOURCE_EXHAUSTED that is about load, not budget: the team is over its
    submit rate or the server's queue is full (reason QUEUE_FULL,
    SERVER_OVERLOADED or TEAM_RATE_LIMITED). Retry later with backoff (the
    same request_id keeps it idempotent)."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(GreenlightError):
    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(GreenlightError):
    default_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(GreenlightError):
    default_code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(PermissionDenied):
    default_code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(GreenlightError):
    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(Unavailable):
    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidJob,
    grpc.StatusCode.OUT_OF_RANGE: InvalidJob,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BudgetExhausted,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

# Methods whose FAILED_PRECONDITION means "the caps can never be met".
_CAP_METHODS = ("SubmitJob", "EstimateJob")

_FIELD_RE = re.compile(r"^\s*(?:(?:spec|team)\.(?=[A-Za-z_]))?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]*\])*)\s*:")
_FIELD_WORD_RE = re.compile(r"\b(?:field|spec)\s*[`'\"]?([a-z_][a-z0-9_.]*)", re.IGNORECASE)


def _field_from_message(message: str) -> Optional[str]:
    """"gpus: must be 1..4096" -> "gpus"; "spec.max_cost_micros: ..." ->
    "max_cost_micros"; "team.parent: ..." -> "parent"; "invalid field
    'deadline' ..." -> "deadline"."""
    m = _FIELD_RE.match(message or "")
    if m:
        return m.group(1)
    m = _FIELD_WORD_RE.search(message or "")
    return m.group(1).removeprefix("spec.") if m else None


def _quote_from_details(details) -> Optional[Quote]:
    for d in details:
        if _status.type_name(d) == "greenlight.v1.Quote":
            try:
                return Quote.from_proto(types_pb2.Quote.FromString(d.value))
            except Exception:
                return None
    return None


def from_rpc_error(err: grpc.RpcError, method: str = "") -> GreenlightError:
    """The exception for a failed gRPC call (a grpc.RpcError that is a Call)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    debug = err.debug_error_string() if hasattr(err, "debug_error_string") else ""
    return from_status(code, message or "", trailing, method=method, debug=debug or "")


# ErrorInfo reasons that pick a subclass (common/error_details.h in greenlightd).
_BY_REASON = {
    "QUEUE_FULL": Overloaded,
    "SERVER_OVERLOADED": Overloaded,
    "TEAM_RATE_LIMITED": Overloaded,
    "TEAM_BUDGET_EXHAUSTED": BudgetExhausted,
    "CANNOT_START_NOW": CannotStartNow,
    "CAP_EXCEEDED": CapExceeded,
    "INVALID_FIELD": InvalidJob,
}


def from_status(code, message, trailing_metadata=None, method: str = "", debug: str = "") -> GreenlightError:
    _, details = _status.decode_details(trailing_metadata)
    short = method.rsplit("/", 1)[-1]
    reason, _ = _status.error_info(details)
    cls = _BY_CODE.get(code, GreenlightError)
    by_reason = _BY_REASON.get(reason)
    if by_reason is not None and issubclass(by_reason, cls):
        cls = by_reason
    elif by_reason is Overloaded and cls is BudgetExhausted:
        cls = Overloaded
    elif cls is FailedPrecondition and not reason and (
        short in _CAP_METHODS or _quote_from_details(details) is not None
    ):
        cls = CapExceeded  # a server without ErrorInfo (before 2026-12)
    return cls(message, code=code, details=details, method=short, debug=debug)

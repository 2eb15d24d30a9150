"""greenlight: Python client and CLI for the greenlight scheduler.

    import greenlight
    with greenlight.Client("127.0.0.1:50051") as gl:
        job = gl.submit(team="vision", gpus=8, gpu_hours=64, max_cost_usd=500)
        print(job.id, job.state, job.predicted_cost_usd, job.predicted_carbon_kg)

Money is Decimal USD (``*_usd``), carbon Decimal kg CO2e (``*_kg``),
timestamps timezone-aware UTC datetimes. See README.md.
"""

import os as _os

from greenlight import _codegen

__version__ = "0.1.0"

# The generated stubs import each other as ``greenlight.v1.*_pb2``; they live
# in _gen/greenlight/v1, which becomes greenlight.v1 through __path__.
_codegen.ensure_stubs()

try:
    import google.protobuf  # noqa: F401
    import grpc  # noqa: F401
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"greenlight needs grpcio and protobuf, and {_e.name} is missing: on Debian "
        "`apt-get install python3-grpcio python3-protobuf` and use /usr/bin/python3, or a "
        "virtual environment made with `python3 -m venv --system-site-packages`"
    ) from _e
__path__.append(_os.path.join(_codegen.GEN_DIR, "greenlight"))  # noqa: F821

from greenlight.models import (  # noqa: E402
    AgentNode,
    GpuDevice,
    GridZone,
    Job,
    JobEvent,
    JobSpec,
    JobState,
    NodePool,
    NodeState,
    Placement,
    PlacementMode,
    PoolExecutor,
    Quote,
    Team,
    TimeSlot,
    Token,
    Usage,
)
from greenlight.errors import (  # noqa: E402
    AlreadyExists,
    BudgetExhausted,
    CannotStartNow,
    CapExceeded,
    DeadlineExceeded,
    FailedPrecondition,
    GreenlightError,
    InvalidJob,
    NotFound,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from greenlight.client import TLS, Client, RetryPolicy  # noqa: E402

__all__ = [
    "Client",
    "RetryPolicy",
    "TLS",
    "JobSpec",
    "Job",
    "JobEvent",
    "JobState",
    "PlacementMode",
    "Placement",
    "Quote",
    "TimeSlot",
    "Team",
    "Usage",
    "NodePool",
    "PoolExecutor",
    "AgentNode",
    "NodeState",
    "GpuDevice",
    "Token",
    "GridZone",
    "GreenlightError",
    "InvalidJob",
    "FailedPrecondition",
    "CapExceeded",
    "BudgetExhausted",
    "CannotStartNow",
    "Overloaded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
    "DeadlineExceeded",
]

"""google.rpc.Status (the ``grpc-status-details-bin`` trailer) without googleapis.

Debian ships no googleapis-common-protos for Python, so the messages this
client reads (google.rpc.Status, google.rpc.ErrorInfo and google.rpc.BadRequest)
are declared here
from their published field numbers, in a private descriptor pool so they
cannot clash with a real google.rpc installed next to us.
"""

from __future__ import annotations

from typing import Iterable

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

STATUS_DETAILS_KEY = "grpc-status-details-bin"

_F = descriptor_pb2.FieldDescriptorProto


def _build():
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)

    fd = descriptor_pb2.FileDescriptorProto(
        name="greenlight_client/google_rpc.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    status = fd.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=_F.TYPE_INT32, label=_F.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    status.field.add(
        name="details",
        number=3,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    bad = fd.message_type.add(name="BadRequest")
    violation = bad.nested_type.add(name="FieldViolation")
    violation.field.add(name="field", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    violation.field.add(name="description", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    bad.field.add(
        name="field_violations",
        number=1,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".google.rpc.BadRequest.FieldViolation",
    )
    info = fd.message_type.add(name="ErrorInfo")
    info.field.add(name="reason", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    info.field.add(name="domain", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry = info.nested_type.add(name="MetadataEntry")
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry.options.map_entry = True
    info.field.add(
        name="metadata",
        number=3,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".google.rpc.ErrorInfo.MetadataEntry",
    )
    pool.Add(fd)

    def cls(name):
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    return cls("google.rpc.Status"), cls("google.rpc.BadRequest"), cls("google.rpc.ErrorInfo")


Status, BadRequest, ErrorInfo = _build()


def type_name(detail: any_pb2.Any) -> str:
    """"type.googleapis.com/greenlight.v1.Quote" -> "greenlight.v1.Quote"."""
    return detail.type_url.rsplit("/", 1)[-1]


def decode_details(trailing_metadata: Iterable | None) -> tuple[object | None, list[any_pb2.Any]]:
    """Returns (Status or None, details as google.protobuf.Any list)."""
    if not trailing_metadata:
        return None, []
    for key, value in trailing_metadata:
        if key != STATUS_DETAILS_KEY:
            continue
        if isinstance(value, str):  # not expected for -bin keys; be lenient
            value = value.encode("latin-1")
        try:
            status = Status.FromString(value)
        except Exception:  # a malformed trailer must not hide the real error
            return None, []
        details = [any_pb2.Any(type_url=d.type_url, value=d.value) for d in status.details]
        return status, details
    return None, []


def encode_status(code: int, message: str, details: Iterable = ()) -> bytes:
    """Serializes a google.rpc.Status; details are messages or Any.

    Used by test servers to produce what greenlightd sends.
    """
    status = Status(code=int(code), message=message)
    for d in details:
        if isinstance(d, any_pb2.Any):
            status.details.add(type_url=d.type_url, value=d.value)
        else:
            packed = any_pb2.Any()
            packed.Pack(d)
            status.details.add(type_url=packed.type_url, value=packed.value)
    return status.SerializeToString()


def bad_request_fields(details: Iterable[any_pb2.Any]) -> list[tuple[str, str]]:
    """(field, description) pairs of any google.rpc.BadRequest detail."""
    out = []
    for d in details:
        if type_name(d) == "google.rpc.BadRequest":
            try:
                br = BadRequest.FromString(d.value)
            except Exception:
                continue
            out.extend((v.field, v.description) for v in br.field_violations)
    return out


def encode_bad_request(violations: Iterable[tuple[str, str]]) -> any_pb2.Any:
    br = BadRequest()
    for field, description in violations:
        br.field_violations.add(field=field, description=description)
    return any_pb2.Any(
        type_url="type.googleapis.com/google.rpc.BadRequest", value=br.SerializeToString()
    )


def error_info(details: Iterable[any_pb2.Any]) -> tuple[str, dict[str, str]]:
    """(reason, metadata) of the first google.rpc.ErrorInfo detail, or ("", {})."""
    for d in details:
        if type_name(d) == "google.rpc.ErrorInfo":
            try:
                info = ErrorInfo.FromString(d.value)
            except Exception:
                continue
            return info.reason, dict(info.metadata)
    return "", {}


def encode_error_info(reason: str, metadata: dict | None = None, domain: str = "greenlight.dev") -> any_pb2.Any:
    info = ErrorInfo(reason=reason, domain=domain)
    for k, v in (metadata or {}).items():
        info.metadata[k] = v
    return any_pb2.Any(
        type_url="type.googleapis.com/google.rpc.ErrorInfo", value=info.SerializeToString()
    )

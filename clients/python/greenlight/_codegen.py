"""Generation of the gRPC stubs from proto/ (protoc + grpc_python_plugin).

The stubs are build output: never edited, never committed. They live in
``greenlight/_gen/greenlight/v1/*_pb2*.py`` so that the generated imports
(``from greenlight.v1 import types_pb2``) resolve once ``greenlight/__init__``
appends ``_gen/greenlight`` to the package's ``__path__``; the descriptors keep
their canonical names (``greenlight/v1/types.proto``), so Any type URLs and
other greenlight.v1 code interoperate.

Used three ways:
  * lazily on ``import greenlight`` from a source tree (stale or missing stubs),
  * by the build backend (``_build_backend/greenlight_build.py``) when the
    package is built or pip-installed,
  * by ``clients/python/gen_stubs.py`` by hand.

Staleness is decided by a SHA-256 over the names and contents of the proto
files and the generator versions, recorded in ``_gen/STAMP`` (mtimes are
unreliable across git checkouts and copies).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
GEN_DIR = os.path.join(PACKAGE_DIR, "_gen")
STAMP_NAME = "STAMP"
LOCK_NAME = ".lock"


class CodegenError(RuntimeError):
    """Stubs cannot be generated (no protoc, no proto files, protoc failed)."""


def source_proto_root() -> str | None:
    """The repository's proto/ when running from a source tree, else None.

    An installed package (site-packages/greenlight) has no proto/ next to it;
    a source tree has clients/python/pyproject.toml and proto/greenlight/v1.
    GREENLIGHT_PROTO_DIR overrides the search (used by builds from a copy).
    """
    env = os.environ.get("GREENLIGHT_PROTO_DIR")
    if env:
        return os.path.abspath(env)
    client_dir = os.path.dirname(PACKAGE_DIR)
    root = os.path.join(os.path.dirname(os.path.dirname(client_dir)), "proto")
    if os.path.isfile(os.path.join(client_dir, "pyproject.toml")) and os.path.isdir(
        os.path.join(root, "greenlight", "v1")
    ):
        return root
    return None


def proto_files(proto_root: str) -> list[str]:
    """Proto files relative to proto_root, sorted ("greenlight/v1/x.proto")."""
    paths = glob.glob(os.path.join(proto_root, "greenlight", "v1", "*.proto"))
    return sorted(os.path.relpath(p, proto_root).replace(os.sep, "/") for p in paths)


def _find_tool(env_name: str, name: str) -> str | None:
    env = os.environ.get(env_name)
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    fallback = os.path.join("/usr/bin", name)
    return fallback if os.access(fallback, os.X_OK) else None


def find_protoc() -> str | None:
    return _find_tool("PROTOC", "protoc")


def find_grpc_plugin() -> str | None:
    return _find_tool("GRPC_PYTHON_PLUGIN", "grpc_python_plugin")


def fingerprint(proto_root: str) -> str:
    h = hashlib.sha256()
    h.update(b"greenlight-stubs-v1\0")
    for rel in proto_files(proto_root):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(proto_root, rel), "rb") as f:
            h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


def _read_stamp(gen_dir: str) -> str | None:
    try:
        with open(os.path.join(gen_dir, STAMP_NAME), encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def has_stubs(gen_dir: str = GEN_DIR) -> bool:
    return os.path.isfile(os.path.join(gen_dir, "greenlight", "v1", "scheduler_pb2_grpc.py"))


def is_stale(proto_root: str, gen_dir: str = GEN_DIR) -> bool:
    return not has_stubs(gen_dir) or _read_stamp(gen_dir) != fingerprint(proto_root)


def _run_protoc(proto_root: str, out_dir: str) -> None:
    protoc = find_protoc()
    plugin = find_grpc_plugin()
    if not protoc or not plugin:
        raise CodegenError(
            "cannot generate the greenlight gRPC stubs: need protoc and grpc_python_plugin "
            "(Debian: apt-get install protobuf-compiler protobuf-compiler-grpc), "
            "or set PROTOC / GRPC_PYTHON_PLUGIN"
        )
    files = proto_files(proto_root)
    if not files:
        raise CodegenError(f"no proto files under {proto_root}/greenlight/v1")
    cmd = [
        protoc,
        f"--proto_path={proto_root}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-grpc_python={plugin}",
        *files,
    ]
    # Debian's protoc finds the well-known types (google/protobuf/*.proto) in
    # /usr/include by itself; name it explicitly when it exists in case
    # another protoc is first on PATH.
    if os.path.isfile("/usr/include/google/protobuf/timestamp.proto"):
        cmd.insert(2, "--proto_path=/usr/include")
    proc = subprocess.run(cmd, cwd=proto_root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CodegenError(f"protoc failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    # Regular packages (not namespace ones) so setuptools and importers agree.
    for sub in ("greenlight", os.path.join("greenlight", "v1")):
        path = os.path.join(out_dir, sub, "__init__.py")
        if not os.path.exists(path):
            with open(path, "w", encoding="ascii") as f:
                f.write("# Generated by greenlight/_codegen.py; do not edit.\n")


def generate(proto_root: str, gen_dir: str = GEN_DIR) -> None:
    """Regenerates gen_dir from proto_root unconditionally (atomically swaps
    gen_dir/greenlight and writes the stamp last)."""
    gen_dir = os.path.abspath(gen_dir)
    proto_root = os.path.abspath(proto_root)
    os.makedirs(gen_dir, exist_ok=True)
    stamp = fingerprint(proto_root)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=gen_dir)
    try:
        _run_protoc(proto_root, tmp)
        target = os.path.join(gen_dir, "greenlight")
        old = None
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=".old-", dir=gen_dir)
            os.rename(target, os.path.join(old, "greenlight"))
        os.rename(os.path.join(tmp, "greenlight"), target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        with open(os.path.join(gen_dir, STAMP_NAME + ".tmp"), "w", encoding="ascii") as f:
            f.write(stamp + "\n")
        os.replace(os.path.join(gen_dir, STAMP_NAME + ".tmp"), os.path.join(gen_dir, STAMP_NAME))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _locked(gen_dir: str):
    """Serializes check-and-generate across processes (pytest workers, CLIs)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux
        yield
        return
    os.makedirs(gen_dir, exist_ok=True)
    fd = os.open(os.path.join(gen_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_stubs(gen_dir: str = GEN_DIR, proto_root: str | None = None, force: bool = False) -> bool:
    """Makes sure current stubs exist in gen_dir. Returns True when it generated.

    From a source tree, regenerates when the protos changed. From an install,
    uses what the build put there. Raises CodegenError when there are no
    usable stubs.
    """
    if proto_root is None:
        proto_root = source_proto_root()
    if proto_root is None:
        if has_stubs(gen_dir):
            return False
        raise CodegenError(
            f"greenlight stubs are missing in {gen_dir} and no proto/ directory was found; "
            "reinstall the package (pip install ./clients/python) or "
            "set GREENLIGHT_PROTO_DIR to the repository's proto/ directory"
        )
    if not force and not is_stale(proto_root, gen_dir):
        return False
    try:
        with _locked(gen_dir):
            if not force and not is_stale(proto_root, gen_dir):
                return False  # another process generated them meanwhile
            generate(proto_root, gen_dir)
            return True
    except OSError as e:
        # Read-only source tree: fall back to what is there, if anything.
        if has_stubs(gen_dir):
            print(f"greenlight: warning: cannot refresh stubs in {gen_dir}: {e}", file=sys.stderr)
            return False
        raise CodegenError(f"cannot write the greenlight stubs to {gen_dir}: {e}") from e
    except CodegenError:
        if has_stubs(gen_dir) and not force:
            print(
                "greenlight: warning: stubs are older than proto/ and cannot be regenerated "
                "(no protoc?); using the old ones",
                file=sys.stderr,
            )
            return False
        raise

"""PEP 517 / PEP 660 build backend of the greenlight package, standard library only.

Why not setuptools: pip builds a pyproject.toml project in an isolated
environment and first installs the backend's requirements into it from an
index. Where there is none (no PyPI here, and many a cluster login node) a
setuptools backend makes the plain

    python3 -m venv --system-site-packages .venv && .venv/bin/pip install ./clients/python

fail with "No matching distribution found for setuptools". This backend
needs nothing that pip would download (build-system.requires is empty on
Python 3.11+, which has tomllib), so that command works offline.

What it builds:
  * a wheel (py3-none-any): greenlight/*.py, the gRPC stubs generated from
    proto/ into greenlight/_gen by greenlight/_codegen.py (protoc and
    grpc_python_plugin, as for the source tree), and the dist-info with the
    `greenlight` console script;
  * an editable wheel (pip install -e): a .pth naming this directory, so the
    source tree is imported and generates its stubs itself;
  * an sdist that carries proto/greenlight/v1, so it builds anywhere.

The metadata comes from pyproject.toml's [project] table (static fields
only: name, version, description, readme, requires-python, classifiers,
dependencies, scripts). The proto directory: $GREENLIGHT_PROTO_DIR, else
./proto (an sdist), else the repository's proto/ (../../proto).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "greenlight"
WHEEL_TAG = "py3-none-any"
# Left out of the wheel and the sdist: build output and caches.
SKIP_DIRS = {"_gen", "__pycache__", "build", "dist"}
SKIP_SUFFIXES = (".pyc", ".pyo")


# ---------------------------------------------------------------------------
# Metadata


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11: build-system.requires brings tomli
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def _project() -> dict:
    project = _load_toml(os.path.join(ROOT, "pyproject.toml")).get("project", {})
    for key in ("name", "version"):
        if not project.get(key):
            raise ValueError(f"pyproject.toml: [project] {key} is required")
    dynamic = project.get("dynamic") or []
    if dynamic:
        raise ValueError(f"pyproject.toml: dynamic fields are not supported by this backend: {dynamic}")
    return project


def _dist_name(project: dict) -> str:
    # Wheel file names use the normalized name with "_" for runs of -_. (PEP 427/503).
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _dist_info(project: dict) -> str:
    return f"{_dist_name(project)}-{project['version']}.dist-info"


def _readme(project: dict) -> tuple[str, str]:
    """(content type, text) of [project] readme, or ("", "")."""
    readme = project.get("readme")
    if not readme:
        return "", ""
    if isinstance(readme, dict):
        if "text" in readme:
            return readme.get("content-type", "text/plain"), readme["text"]
        readme = readme["file"]
    with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
        text = f.read()
    kind = "text/markdown" if readme.lower().endswith(".md") else "text/x-rst" if readme.lower().endswith(".rst") else "text/plain"
    return kind, text


def metadata_text(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    for c in project.get("classifiers", ()):
        lines.append(f"Classifier: {c}")
    for d in project.get("dependencies", ()):
        lines.append(f"Requires-Dist: {d}")
    kind, text = _readme(project)
    if kind:
        lines.append(f"Description-Content-Type: {kind}")
    return "\n".join(lines) + "\n\n" + text


def _entry_points(project: dict) -> str:
    scripts = project.get("scripts") or {}
    if not scripts:
        return ""
    return "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(scripts.items()))


def _wheel_file() -> str:
    return (
        "Wheel-Version: 1.0\n"
        "Generator: greenlight_build\n"
        "Root-Is-Purelib: true\n"
        f"Tag: {WHEEL_TAG}\n"
    )


def _dist_info_files(project: dict) -> dict[str, bytes]:
    files = {
        "METADATA": metadata_text(project).encode("utf-8"),
        "WHEEL": _wheel_file().encode("ascii"),
    }
    entry_points = _entry_points(project)
    if entry_points:
        files["entry_points.txt"] = entry_points.encode("utf-8")
    files["top_level.txt"] = f"{PACKAGE}\n".encode("ascii")
    return files


# ---------------------------------------------------------------------------
# Files


def _walk(base: str, prefix: str):
    """(absolute path, archive name) of the files under base, sorted, without build output."""
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith(SKIP_SUFFIXES):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            out.append((path, f"{prefix}/{rel}" if prefix else rel))
    return out


def _codegen():
    # greenlight/_codegen.py alone: importing the package would need the very
    # stubs being built (and grpc, which the build does not need).
    spec = importlib.util.spec_from_file_location("_greenlight_codegen", os.path.join(ROOT, PACKAGE, "_codegen.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _proto_root(codegen) -> str:
    env = os.environ.get("GREENLIGHT_PROTO_DIR")
    if env:
        root = os.path.abspath(env)
    elif os.path.isdir(os.path.join(ROOT, "proto", "greenlight", "v1")):
        root = os.path.join(ROOT, "proto")  # an sdist
    else:
        root = codegen.source_proto_root()
    if not root or not os.path.isdir(os.path.join(root, "greenlight", "v1")):
        raise SystemExit(
            "greenlight: cannot find proto/greenlight/v1 (expected at ../../proto); "
            "set GREENLIGHT_PROTO_DIR to the repository's proto/ directory"
        )
    return root


def _timestamp() -> tuple:
    # Reproducible archives: SOURCE_DATE_EPOCH when set, else the zip epoch.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return time.gmtime(max(int(epoch), 315532800))[:6]
    return (1980, 1, 1, 0, 0, 0)


class _WheelWriter:
    def __init__(self, path: str):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records: list[str] = []
        self.date = _timestamp()

    def add(self, name: str, data: bytes, mode: int = 0o644) -> None:
        info = zipfile.ZipInfo(name, date_time=self.date)
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
        self.records.append(f"{name},sha256={digest},{len(data)}")

    def add_file(self, path: str, name: str) -> None:
        with open(path, "rb") as f:
            self.add(name, f.read())

    def close(self, dist_info: str) -> None:
        record = f"{dist_info}/RECORD"
        self.records.append(f"{record},,")
        info = zipfile.ZipInfo(record, date_time=self.date)
        info.external_attr = (0o100000 | 0o644) << 16
        self.zip.writestr(info, "\n".join(self.records) + "\n", compress_type=zipfile.ZIP_DEFLATED)
        self.zip.close()


def _write_metadata_dir(metadata_directory: str, project: dict) -> str:
    name = _dist_info(project)
    target = os.path.join(metadata_directory, name)
    os.makedirs(target, exist_ok=True)
    for fname, data in _dist_info_files(project).items():
        with open(os.path.join(target, fname), "wb") as f:
            f.write(data)
    return name


def _wheel_name(project: dict) -> str:
    return f"{_dist_name(project)}-{project['version']}-{WHEEL_TAG}.whl"


# ---------------------------------------------------------------------------
# PEP 517 hooks


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _write_metadata_dir(metadata_directory, _project())


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return _write_metadata_dir(metadata_directory, _project())


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    codegen = _codegen()
    proto_root = _proto_root(codegen)
    name = _wheel_name(project)
    os.makedirs(wheel_directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="greenlight-build-")
    try:
        gen_dir = os.path.join(tmp, "_gen")
        codegen.generate(proto_root, gen_dir)  # always fresh: never ship stale stubs
        out = _WheelWriter(os.path.join(tmp, name))
        for path, arc in _walk(os.path.join(ROOT, PACKAGE), PACKAGE):
            out.add_file(path, arc)
        for path, arc in _walk(gen_dir, f"{PACKAGE}/_gen"):
            if os.path.basename(path) != codegen.LOCK_NAME:
                out.add_file(path, arc)
        dist_info = _dist_info(project)
        for fname, data in _dist_info_files(project).items():
            out.add(f"{dist_info}/{fname}", data)
        out.close(dist_info)
        shutil.move(os.path.join(tmp, name), os.path.join(wheel_directory, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"greenlight_build: {name} with stubs generated from {proto_root}", file=sys.stderr)
    return name


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel holding only a .pth that puts this directory on sys.path: the
    package is imported from the source tree, which generates its stubs on
    first import and again whenever proto/ changes."""
    project = _project()
    name = _wheel_name(project)
    os.makedirs(wheel_directory, exist_ok=True)
    path = os.path.join(wheel_directory, name)
    out = _WheelWriter(path)
    out.add(f"__editable__.{_dist_name(project)}.pth", (ROOT + "\n").encode("utf-8"))
    dist_info = _dist_info(project)
    for fname, data in _dist_info_files(project).items():
        out.add(f"{dist_info}/{fname}", data)
    out.close(dist_info)
    return name


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    codegen = _codegen()
    proto_root = _proto_root(codegen)
    base = f"{_dist_name(project)}-{project['version']}"
    name = f"{base}.tar.gz"
    os.makedirs(sdist_directory, exist_ok=True)
    members = []
    for rel in ("pyproject.toml", "README.md", "gen_stubs.py"):
        if os.path.exists(os.path.join(ROOT, rel)):
            members.append((os.path.join(ROOT, rel), f"{base}/{rel}"))
    for sub in (PACKAGE, "_build_backend", "bin", "examples"):
        if os.path.isdir(os.path.join(ROOT, sub)):
            members += _walk(os.path.join(ROOT, sub), f"{base}/{sub}")
    for rel in codegen.proto_files(proto_root):
        members.append((os.path.join(proto_root, rel), f"{base}/proto/{rel}"))
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH") or 315532800)

    def add(tar, arcname, data: bytes, mode: int):
        info = tarfile.TarInfo(arcname)
        info.size, info.mtime, info.mode = len(data), mtime, mode
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(data))

    path = os.path.join(sdist_directory, name)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        add(tar, f"{base}/PKG-INFO", metadata_text(project).encode("utf-8"), 0o644)
        for src, arc in members:
            with open(src, "rb") as f:
                data = f.read()
            add(tar, arc, data, 0o755 if os.access(src, os.X_OK) and not src.endswith(".proto") else 0o644)
    return name

"""Build hook: generate the gRPC stubs from ../../proto into the build.

pyproject.toml holds the metadata; this file only adds a build_py step that
runs protoc + grpc_python_plugin (greenlight/_codegen.py) and puts the stubs
in build/lib/greenlight/_gen, so the installed package never needs protoc.
Set GREENLIGHT_PROTO_DIR when building from a copy outside the repository.
"""

import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _codegen():
    # Load greenlight/_codegen.py alone: importing the package would need
    # the very stubs being built.
    spec = importlib.util.spec_from_file_location(
        "_greenlight_codegen", os.path.join(HERE, "greenlight", "_codegen.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        codegen = _codegen()
        proto_root = codegen.source_proto_root()
        if proto_root is None:
            raise SystemExit(
                "greenlight: cannot find proto/greenlight/v1 (expected at ../../proto); "
                "set GREENLIGHT_PROTO_DIR to the repository's proto/ directory"
            )
        gen_dir = os.path.join(self.build_lib, "greenlight", "_gen")
        # Never ship stale stubs copied from the source tree.
        if os.path.isdir(gen_dir):
            import shutil

            shutil.rmtree(gen_dir)
        codegen.generate(proto_root, gen_dir)
        lock = os.path.join(gen_dir, codegen.LOCK_NAME)
        if os.path.exists(lock):
            os.remove(lock)
        self.announce(f"generated greenlight stubs from {proto_root} into {gen_dir}", level=2)


setup(cmdclass={"build_py": BuildPyWithStubs})

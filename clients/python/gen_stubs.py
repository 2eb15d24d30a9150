#!/usr/bin/python3
"""Regenerates the gRPC stubs of the greenlight package from proto/.

    /usr/bin/python3 clients/python/gen_stubs.py            # only when proto/ changed
    /usr/bin/python3 clients/python/gen_stubs.py --force    # always
    /usr/bin/python3 clients/python/gen_stubs.py --check    # exit 1 when stale

Output: clients/python/greenlight/_gen/greenlight/v1/*_pb2*.py (gitignored,
never edited by hand). `import greenlight` runs the same check by itself, so
this script is only needed to regenerate ahead of time or in a build step.
Needs protoc and grpc_python_plugin (Debian: protobuf-compiler,
protobuf-compiler-grpc); PROTOC and GRPC_PYTHON_PLUGIN override their paths,
GREENLIGHT_PROTO_DIR the proto/ directory.
"""

import argparse
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="regenerate even when up to date")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 when stale or missing")
    parser.add_argument("--out", help="output directory (default: greenlight/_gen)")
    args = parser.parse_args()

    spec = importlib.util.spec_from_file_location("_greenlight_codegen", os.path.join(HERE, "greenlight", "_codegen.py"))
    codegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codegen)

    proto_root = codegen.source_proto_root()
    if proto_root is None:
        print("gen_stubs: proto/greenlight/v1 not found; set GREENLIGHT_PROTO_DIR", file=sys.stderr)
        return 2
    gen_dir = os.path.abspath(args.out) if args.out else codegen.GEN_DIR
    if args.check:
        stale = codegen.is_stale(proto_root, gen_dir)
        print(f"{gen_dir}: {'stale or missing' if stale else 'up to date'}")
        return 1 if stale else 0
    try:
        generated = codegen.ensure_stubs(gen_dir, proto_root, force=args.force)
    except codegen.CodegenError as e:
        print(f"gen_stubs: {e}", file=sys.stderr)
        return 1
    print(f"{gen_dir}: {'generated' if generated else 'up to date'} from {proto_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

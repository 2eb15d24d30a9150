#!/usr/bin/env bash
# Starts greenlightd in the foreground on the bundled demo config and prints
# how to talk to it. Used by `make run`.
set -euo pipefail
BUILD_DIR=${1:-build}
CONFIG=${2:-deploy/config/demo.yaml}
cd "$(dirname "$0")/.."
mkdir -p .demo
cat <<MSG

  greenlightd (demo) starting: gRPC 127.0.0.1:50051, metrics http://127.0.0.1:9464/metrics
  config: $CONFIG   store: .demo/greenlight.db   time runs 3600x (1 s = 1 simulated hour)

  In another terminal, submit a job (8 x H100, 192 reference GPU-hours, cap \$2,000):
    PYTHONPATH=clients/python /usr/bin/python3 -m greenlight submit --team ml-research \\
        --gpus 8 --gpu-type H100 --gpu-hours 192 --max-cost 2000
  then:  ... -m greenlight list   |   ... -m greenlight usage ml-research   |   ... -m greenlight watch

  Stop with Ctrl-C (SIGTERM/SIGINT drain and exit cleanly).

MSG
# Further arguments go to greenlightd (the tests move the ports: --grpc_address=...).
exec "$BUILD_DIR/services/scheduler/greenlightd" --config "$CONFIG" "${@:3}"

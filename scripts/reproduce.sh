#!/usr/bin/env bash
# Reproduces Let's Wait Awhile (Wiesner et al., Middleware 2021), ML-training
# scenario: builds greenlight-lwa (Release) and prints, for DE, GB and FR and
# both forecast variants, our savings in the stated and compatibility modes
# beside the published figures, what each difference between the modes is
# worth, and the run time. See docs/REPRODUCE.md.
#   scripts/reproduce.sh                        # the report
#   scripts/reproduce.sh --job_seed_spread=20   # plus the spread over job draws
# BUILD_DIR (default build) and JOBS (default nproc) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
JOBS="${JOBS:-$(nproc)}"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

if ! { cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD_DIR" -j "$JOBS" --target greenlight-lwa; } >"$LOG" 2>&1; then
  tail -n 50 "$LOG" >&2
  echo "reproduce: building greenlight-lwa failed (full log above)" >&2
  exit 1
fi
"$BUILD_DIR/services/sim/greenlight-lwa" --report --data_dir=data/carbon "$@"

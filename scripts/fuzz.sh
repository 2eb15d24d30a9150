#!/usr/bin/env bash
# Builds greenlight's libFuzzer targets with clang (ASan + UBSan, separate
# build tree from tests/fuzz/CMakeLists.txt) and runs each for a while on its
# seed corpus (tests/fuzz/corpus/<target>) plus the crash regressions
# (tests/fuzz/regressions/<target>).
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh --seconds 600        # the long run of docs/RELIABILITY.md
#   scripts/fuzz.sh --smoke              # 10 s each, seed 1 (what `make test` runs)
#   scripts/fuzz.sh --build-only         # just build
#   scripts/fuzz.sh csv_fuzzer ...       # some targets
#
# Options: --build DIR (default build-fuzz), --jobs N (default 2), --seconds S,
# --runs N (instead of time), --seed N (default random; --smoke uses 1 so that
# every CI run walks the same input sequence and a red smoke points at the
# change, not at luck; the long runs keep exploring with random seeds).
# Exit: 0 no crash, 1 a crash (input kept under DIR/artifacts/), 77
# clang/libFuzzer not available (ctest: skipped).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
JOBS="${JOBS:-2}"
SECONDS_EACH=60
RUNS=""
SEED="${FUZZ_SEED:-}"
BUILD_ONLY=0
TARGETS=()
ALL_TARGETS=(csv_fuzzer carbon_csv_fuzzer catalog_fuzzer live_json_fuzzer submit_request_fuzzer
             admission_review_fuzzer)

while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SECONDS_EACH=10; SEED="${SEED:-1}"; shift ;;
    --seed) SEED="$2"; shift 2 ;;
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("${ALL_TARGETS[@]}")

CLANG="${CC_FUZZ:-clang}"
CLANGXX="${CXX_FUZZ:-clang++}"
if ! command -v "$CLANGXX" >/dev/null; then
  echo "fuzz.sh: $CLANGXX not found; install clang and libclang-rt-14-dev (skipped)" >&2
  exit 77
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cc"
if ! "$CLANGXX" -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz.sh: $CLANGXX cannot link -fsanitize=fuzzer (libclang-rt-14-dev missing?) (skipped):" >&2
  cat "$probe/err" >&2
  exit 77
fi

# -O1 and line tables only: the libraries build twice as fast as
# RelWithDebInfo and stack traces still name file:line.
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  CC="$CLANG" CXX="$CLANGXX" cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -DCMAKE_BUILD_TYPE=Fuzz \
    -DCMAKE_CXX_FLAGS_FUZZ="-O1 -gline-tables-only" -DCMAKE_C_FLAGS_FUZZ="-O1 -gline-tables-only" >/dev/null
fi
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("$t" "${t}_replay"); done
echo "fuzz.sh: building ${TARGETS[*]} in $BUILD (-j$JOBS)"
cmake --build "$BUILD" -j "$JOBS" --target "${build_targets[@]}" >"$BUILD/build.log" 2>&1 || {
  tail -50 "$BUILD/build.log" >&2
  echo "fuzz.sh: build failed (log: $BUILD/build.log)" >&2
  exit 2
}
[[ $BUILD_ONLY -eq 1 ]] && exit 0

export GREENLIGHT_ROOT="$ROOT"
mkdir -p "$BUILD/artifacts"
status=0
printf '%-26s %12s %10s %8s %8s %s\n' target executions exec/s corpus crashes seconds
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t"
  mkdir -p "$work"
  seeds=("$ROOT/tests/fuzz/corpus/$t")
  [[ -d "$ROOT/tests/fuzz/regressions/$t" ]] && seeds+=("$ROOT/tests/fuzz/regressions/$t")
  # Every regression first, outside libFuzzer (a crash here is a regression).
  if [[ -d "$ROOT/tests/fuzz/regressions/$t" ]] &&
     ! "$BUILD/${t}_replay" "$ROOT/tests/fuzz/regressions/$t" >"$BUILD/$t.replay.log" 2>&1; then
    echo "fuzz.sh: $t: a regression input crashes again (log: $BUILD/$t.replay.log)" >&2
    status=1
  fi
  limit=(-max_total_time="$SECONDS_EACH")
  [[ -n "$RUNS" ]] && limit=(-runs="$RUNS")
  [[ -n "$SEED" ]] && limit+=(-seed="$SEED")
  start=$(date +%s)
  # Crashes, leaks, OOMs and timeouts count; slow-unit files are only kept.
  count_failures() { find "$BUILD/artifacts" -type f \( -name "$t-crash-*" -o -name "$t-leak-*" -o -name "$t-oom-*" -o -name "$t-timeout-*" \) | wc -l; }
  before=$(count_failures)
  set +e
  "$BUILD/$t" "${limit[@]}" -timeout=25 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$t-" "$work" "${seeds[@]}" >"$BUILD/$t.log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/$t.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$BUILD/$t.log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  crashes=$(( $(count_failures) - before ))
  printf '%-26s %12s %10s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" "$secs"
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "fuzz.sh: $t failed (exit $rc); log: $BUILD/$t.log; input kept in $BUILD/artifacts/" >&2
    grep -E 'ERROR|SUMMARY|runtime error|GL_FUZZ_CHECK|what\(\)' "$BUILD/$t.log" | head -10 >&2 || true
  fi
done
exit $status

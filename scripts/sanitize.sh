#!/usr/bin/env bash
# Runs greenlight's tests under sanitizers (docs/RELIABILITY.md):
#   asan: every test except the stress label, built with
#         GREENLIGHT_SANITIZE=address,undefined in build-asan;
#   tsan: the concurrency tests (scheduler core, daemon, security,
#         reliability) built with GREENLIGHT_SANITIZE=thread in build-tsan.
# Every process (test binaries and the greenlightd they start) writes its
# sanitizer reports to <build>/sanitizer-reports/; any report fails the run.
#
#   scripts/sanitize.sh [asan|tsan|all] [--jobs N] [-- extra ctest args]
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="all"
JOBS="${JOBS:-$(nproc)}"
CTEST_EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    asan|tsan|all) MODE="$1"; shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --) shift; CTEST_EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Tests whose figures are about memory scale their bounds by this.
export GREENLIGHT_SANITIZED=1

configure() {  # dir sanitizers
  cmake -S "$ROOT" -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREENLIGHT_SANITIZE="$2" \
    -DGREENLIGHT_WERROR=OFF -DGREENLIGHT_BENCH=OFF -DGREENLIGHT_FUZZ_SMOKE=OFF >/dev/null
}

# Counts report files; prints the first lines of each.
check_reports() {  # dir name
  local n
  n=$(find "$1" -type f -size +0 2>/dev/null | wc -l)
  if [[ $n -gt 0 ]]; then
    echo "sanitize.sh: $2: $n sanitizer report(s) in $1:" >&2
    for f in $(find "$1" -type f -size +0 | head -20); do
      echo "--- $f" >&2
      grep -m 3 -E 'ERROR|WARNING|runtime error|SUMMARY' "$f" >&2 || head -5 "$f" >&2
    done
    return 1
  fi
  echo "sanitize.sh: $2: no sanitizer reports"
}

status=0

if [[ $MODE == asan || $MODE == all ]]; then
  B="$ROOT/build-asan"
  configure "$B" "address,undefined" || exit 2
  echo "sanitize.sh: building ASan+UBSan tree in $B (-j$JOBS)"
  cmake --build "$B" -j "$JOBS" >"$B/build.log" 2>&1 || { tail -40 "$B/build.log"; exit 2; }
  R="$B/sanitizer-reports"
  rm -rf "$R" && mkdir -p "$R"
  # Small quarantine: the memory-bound tests compare RSS with and without load.
  export ASAN_OPTIONS="log_path=$R/asan:detect_leaks=1:quarantine_size_mb=16:detect_stack_use_after_return=0:abort_on_error=0:suppressions=$ROOT/scripts/sanitizers/asan.supp"
  export LSAN_OPTIONS="suppressions=$ROOT/scripts/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$R/ubsan:print_stacktrace=1:halt_on_error=1"
  start=$(date +%s)
  (cd "$B" && ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE stress -E '^fuzz_(smoke|long)$' "${CTEST_EXTRA[@]}")
  rc=$?
  echo "sanitize.sh: asan: ctest exit $rc in $(( $(date +%s) - start )) s"
  [[ $rc -ne 0 ]] && status=1
  check_reports "$R" asan || status=1
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
fi

# ThreadSanitizer only sees synchronization in instrumented code. Debian's
# abseil is not instrumented, so every absl::Mutex is invisible to it and each
# guarded access is reported as a race. Build the same abseil (Debian's
# source package: same version, patches, inline namespace and sonames) with
# -fsanitize=thread once, and put it first on LD_LIBRARY_PATH for the tests.
build_tsan_abseil() {  # prefix
  local prefix="$1" src="$1/src"
  [[ -f "$prefix/.done" ]] && return 0
  rm -rf "$prefix" && mkdir -p "$src"
  if ! apt-get source --print-uris abseil >/dev/null 2>&1 || [[ -z "$(apt-get source --print-uris abseil 2>/dev/null | grep dsc)" ]]; then
    echo "sanitize.sh: adding Debian source indexes (deb-src) to fetch abseil's source"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      >/etc/apt/sources.list.d/greenlight-deb-src.sources
    apt-get update -qq >/dev/null
  fi
  (cd "$src" && apt-get source -qq abseil >/dev/null) || return 1
  local dir
  dir=$(find "$src" -maxdepth 1 -type d -name 'abseil-*' | head -1)
  cmake -S "$dir" -B "$prefix/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON \
    -DCMAKE_CXX_STANDARD=17 -DABSL_PROPAGATE_CXX_STD=ON -DBUILD_TESTING=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null || return 1
  cmake --build "$prefix/build" -j "$JOBS" >"$prefix/build.log" 2>&1 || return 1
  cmake --install "$prefix/build" >/dev/null || return 1
  touch "$prefix/.done"
}

if [[ $MODE == tsan || $MODE == all ]]; then
  B="$ROOT/build-tsan"
  configure "$B" "thread" || exit 2
  ABSL_TSAN="$B/absl-tsan"
  echo "sanitize.sh: building a TSan-instrumented abseil in $ABSL_TSAN"
  build_tsan_abseil "$ABSL_TSAN" || { echo "sanitize.sh: cannot build abseil with TSan (see $ABSL_TSAN/build.log)" >&2; exit 2; }
  ABSL_LIBDIR=$(dirname "$(find "$ABSL_TSAN" -name 'libabsl_synchronization.so.*' -path '*lib*' | grep -v /build/ | head -1)")
  export LD_LIBRARY_PATH="$ABSL_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The concurrency tests and what they start.
  TARGETS=(greenlightd scheduler_core_test scheduler_stress_test daemon_test security_limits_test security_watch_test
           security_auth_test reliability_crash_loop reliability_overload)
  echo "sanitize.sh: building TSan tree in $B (-j$JOBS): ${TARGETS[*]}"
  have=()
  help="$(cmake --build "$B" --target help 2>/dev/null)"
  for t in "${TARGETS[@]}"; do
    if grep -qx "\.\.\. $t" <<<"$help"; then have+=("$t"); fi
  done
  cmake --build "$B" -j "$JOBS" --target "${have[@]}" >"$B/build.log" 2>&1 || { tail -40 "$B/build.log"; exit 2; }
  R="$B/sanitizer-reports"
  rm -rf "$R" && mkdir -p "$R"
  export TSAN_OPTIONS="log_path=$R/tsan:halt_on_error=0:second_deadlock_stack=1:suppressions=$ROOT/scripts/sanitizers/tsan.supp"
  regex="$(IFS='|'; echo "^(${have[*]})$")"
  start=$(date +%s)
  (cd "$B" && ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE stress -R "$regex" "${CTEST_EXTRA[@]}")
  rc=$?
  echo "sanitize.sh: tsan: ctest exit $rc in $(( $(date +%s) - start )) s"
  [[ $rc -ne 0 ]] && status=1
  check_reports "$R" tsan || status=1
  unset TSAN_OPTIONS
fi
exit $status

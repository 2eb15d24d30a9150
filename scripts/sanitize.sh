#!/usr/bin/env bash
# Runs greenlight's tests under sanitizers (docs/RELIABILITY.md), built with
# clang (5x faster than GCC with -fsanitize=address,undefined):
#   asan: every test except the stress label, built with
#         GREENLIGHT_SANITIZE=address,undefined in build-asan;
#   tsan: the concurrency tests (scheduler core, daemon, security,
#         reliability) built with GREENLIGHT_SANITIZE=thread in build-tsan,
#         against a TSan-instrumented abseil cached (built once per abseil
#         version and compiler) in ${XDG_CACHE_HOME:-~/.cache}/greenlight/.
# Every process (test binaries and the greenlightd they start) writes its
# sanitizer reports to <build>/sanitizer-reports/; any report fails the run.
#
#   scripts/sanitize.sh [asan|tsan|all] [--jobs N] [-- extra ctest args]
#
# Env: SANITIZE_CC, SANITIZE_CXX (default clang, clang++). Exit: 0 clean,
# 1 a test failed or a sanitizer reported, 2 could not build.
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
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

die() { echo "sanitize.sh: $*" >&2; exit 2; }
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

TMP_DIRS=()
cleanup() { [[ ${#TMP_DIRS[@]} -gt 0 ]] && rm -rf "${TMP_DIRS[@]}"; }
trap cleanup EXIT

# Tests whose figures are about memory or time scale their bounds by this.
export GREENLIGHT_SANITIZED=1

# clang: GCC takes ~5x longer to compile with ASan+UBSan (docs/RELIABILITY.md).
CC_SAN="$(command -v "${SANITIZE_CC:-clang}")" ||
  die "${SANITIZE_CC:-clang} not found: run 'make deps' (installs clang, libclang-rt-14-dev)"
CXX_SAN="$(command -v "${SANITIZE_CXX:-clang++}")" ||
  die "${SANITIZE_CXX:-clang++} not found: run 'make deps' (installs clang, libclang-rt-14-dev)"
if "$CXX_SAN" --version 2>/dev/null | grep -q clang; then
  COMPILER_KEY="clang$("$CXX_SAN" -dumpversion | cut -d. -f1)"
else
  COMPILER_KEY="$(basename "$CXX_SAN" | tr -cd 'a-z')$("$CXX_SAN" -dumpversion | cut -d. -f1)"
fi

# The sanitizer runtimes are in libclang-rt-14-dev: fail here, not after a build.
probe_link() {  # sanitizers
  local d
  d="$(mktemp -d)" && TMP_DIRS+=("$d")
  echo 'int main() { return 0; }' >"$d/p.cc"
  "$CXX_SAN" -fsanitize="$1" "$d/p.cc" -o "$d/p" 2>"$d/err" ||
    { cat "$d/err" >&2; die "$CXX_SAN cannot link -fsanitize=$1 (libclang-rt-14-dev missing? run 'make deps')"; }
}

configure() {  # dir sanitizers
  local dir="$1" cached
  # A tree configured with another compiler (GCC before) cannot be switched
  # in place: start it afresh.
  if [[ -f "$dir/CMakeCache.txt" ]]; then
    cached="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")"
    if [[ "$cached" != "$CXX_SAN" ]]; then
      echo "sanitize.sh: $dir was configured with ${cached:-another compiler}; reconfiguring it with $CXX_SAN"
      rm -rf "$dir"
    fi
  fi
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREENLIGHT_SANITIZE="$2" \
    -DCMAKE_C_COMPILER="$CC_SAN" -DCMAKE_CXX_COMPILER="$CXX_SAN" \
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
  probe_link "address,undefined"
  configure "$B" "address,undefined" || die "cannot configure $B"
  echo "sanitize.sh: building ASan+UBSan tree in $B with $(basename "$CXX_SAN") (-j$JOBS)"
  t=$(date +%s)
  cmake --build "$B" -j "$JOBS" >"$B/build.log" 2>&1 ||
    { tail -40 "$B/build.log" >&2; die "asan build failed (log: $B/build.log)"; }
  echo "sanitize.sh: asan: built in $(elapsed "$t")"
  R="$B/sanitizer-reports"
  rm -rf "$R" && mkdir -p "$R"
  # Small quarantine: the memory-bound tests compare RSS with and without load.
  export ASAN_OPTIONS="log_path=$R/asan:detect_leaks=1:quarantine_size_mb=16:detect_stack_use_after_return=0:abort_on_error=0:suppressions=$ROOT/scripts/sanitizers/asan.supp"
  export LSAN_OPTIONS="suppressions=$ROOT/scripts/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$R/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/scripts/sanitizers/ubsan.supp"
  t=$(date +%s)
  (cd "$B" && ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE stress -E '^fuzz_(smoke|long)$' "${CTEST_EXTRA[@]}")
  rc=$?
  echo "sanitize.sh: asan: ctest exit $rc in $(elapsed "$t")"
  [[ $rc -ne 0 ]] && status=1
  check_reports "$R" asan || status=1
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
fi

# ThreadSanitizer only sees synchronization in instrumented code. Debian's
# abseil is not instrumented, so every absl::Mutex is invisible to it and each
# guarded access is reported as a race. Build the same abseil (Debian's
# source package of the installed version: same patches, inline namespace and
# sonames) with the same compiler and -fsanitize=thread, once per abseil
# version and compiler, outside the clone (CI starts from a clean clone), and
# put it first on LD_LIBRARY_PATH for the tests.
ABSL_VERSION="$(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/greenlight"
ABSL_TSAN="$CACHE_ROOT/absl-tsan-${ABSL_VERSION//:/_}-$COMPILER_KEY"

# Built in a temporary directory next to the cache entry and renamed into
# place when complete, so an interrupted build is never used.
build_tsan_abseil() {  # prefix
  local final="$1" tmp src dir
  [[ -f "$final/.done" ]] && return 0
  [[ -n "$ABSL_VERSION" ]] || { echo "sanitize.sh: libabsl-dev is not installed (make deps)" >&2; return 1; }
  mkdir -p "$(dirname "$final")" || return 1
  # Leftovers of builds killed before their trap ran (a day is ample).
  find "$(dirname "$final")" -maxdepth 1 -name "$(basename "$final").tmp.*" -mmin +1440 -exec rm -rf {} + 2>/dev/null
  tmp="$(mktemp -d "$final.tmp.XXXXXX")" || return 1
  TMP_DIRS+=("$tmp")
  ABSL_LOG="$tmp/build.log"
  src="$tmp/src" && mkdir -p "$src"
  if [[ -z "$(apt-get source --print-uris "abseil=$ABSL_VERSION" 2>/dev/null | grep '\.dsc')" ]]; then
    [[ "$(id -u)" == 0 ]] || { echo "sanitize.sh: abseil's source needs deb-src entries in apt's sources; run as root once" >&2; return 1; }
    echo "sanitize.sh: adding Debian source indexes (deb-src) to fetch abseil's source"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      >/etc/apt/sources.list.d/greenlight-deb-src.sources
    apt-get update -qq >/dev/null
  fi
  (cd "$src" && apt-get source -qq "abseil=$ABSL_VERSION") >>"$ABSL_LOG" 2>&1 ||
    { echo "sanitize.sh: apt-get source abseil=$ABSL_VERSION failed (is libabsl-dev up to date? apt-get upgrade)" >&2; return 1; }
  dir=$(find "$src" -maxdepth 1 -type d -name 'abseil-*' | head -1)
  [[ -n "$dir" ]] || return 1
  cmake -S "$dir" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON \
    -DCMAKE_C_COMPILER="$CC_SAN" -DCMAKE_CXX_COMPILER="$CXX_SAN" \
    -DCMAKE_CXX_STANDARD=17 -DABSL_PROPAGATE_CXX_STD=ON -DBUILD_TESTING=OFF \
    -DCMAKE_C_FLAGS="-fsanitize=thread" -DCMAKE_CXX_FLAGS="-fsanitize=thread" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    -DCMAKE_INSTALL_PREFIX="$tmp/prefix" >>"$ABSL_LOG" 2>&1 || return 1
  cmake --build "$tmp/build" -j "$JOBS" >>"$ABSL_LOG" 2>&1 || return 1
  cmake --install "$tmp/build" >>"$ABSL_LOG" 2>&1 || return 1
  cp "$ABSL_LOG" "$tmp/prefix/build.log" && touch "$tmp/prefix/.done" || return 1
  rm -rf "$final"  # never a complete entry here (checked above), at most debris
  mv -T "$tmp/prefix" "$final" || [[ -f "$final/.done" ]]  # a concurrent run may have won
}

# Fails unless every abseil library of the binary resolves to the
# instrumented build and that build really calls into the TSan runtime.
verify_tsan_abseil() {  # binary
  local libs sync bad
  libs="$(ldd "$1" 2>&1 | grep 'libabsl_')"
  sync="$(awk '/libabsl_synchronization\.so/ {print $3}' <<<"$libs")"
  bad="$(awk -v d="$ABSL_LIBDIR/" 'index($3, d) != 1' <<<"$libs")"
  if [[ -z "$sync" || "$sync" != "$ABSL_LIBDIR"/* || -n "$bad" ]]; then
    echo "sanitize.sh: $1 does not load the TSan abseil from $ABSL_LIBDIR:" >&2
    echo "${libs:-(no abseil library at all)}" >&2
    return 1
  fi
  nm -D --undefined-only "$sync" | grep -q '__tsan_func_entry' ||
    { echo "sanitize.sh: $sync is not TSan-instrumented" >&2; return 1; }
}

if [[ $MODE == tsan || $MODE == all ]]; then
  B="$ROOT/build-tsan"
  probe_link "thread"
  configure "$B" "thread" || die "cannot configure $B"
  if [[ -f "$ABSL_TSAN/.done" ]]; then
    echo "sanitize.sh: TSan-instrumented abseil: $ABSL_TSAN (cached)"
  else
    echo "sanitize.sh: building a TSan-instrumented abseil $ABSL_VERSION with $(basename "$CXX_SAN") into $ABSL_TSAN"
    t=$(date +%s)
    ABSL_LOG=""
    build_tsan_abseil "$ABSL_TSAN" || {
      [[ -n "$ABSL_LOG" && -f "$ABSL_LOG" ]] && tail -30 "$ABSL_LOG" >&2
      die "cannot build abseil with TSan"
    }
    echo "sanitize.sh: tsan: abseil built in $(elapsed "$t")"
  fi
  ABSL_LIBDIR="$(dirname "$(find "$ABSL_TSAN" -name 'libabsl_synchronization.so*' -type f | head -1)")"
  [[ "$ABSL_LIBDIR" == "$ABSL_TSAN"/* ]] || die "no libabsl_synchronization in $ABSL_TSAN"
  export LD_LIBRARY_PATH="$ABSL_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The concurrency tests and what they start.
  TARGETS=(greenlightd scheduler_core_test scheduler_stress_test daemon_test security_limits_test security_watch_test
           security_auth_test reliability_crash_loop reliability_overload)
  echo "sanitize.sh: building TSan tree in $B with $(basename "$CXX_SAN") (-j$JOBS): ${TARGETS[*]}"
  have=()
  help="$(cmake --build "$B" --target help 2>/dev/null)"
  for tg in "${TARGETS[@]}"; do
    if grep -qx "\.\.\. $tg" <<<"$help"; then have+=("$tg"); fi
  done
  t=$(date +%s)
  cmake --build "$B" -j "$JOBS" --target "${have[@]}" >"$B/build.log" 2>&1 ||
    { tail -40 "$B/build.log" >&2; die "tsan build failed (log: $B/build.log)"; }
  echo "sanitize.sh: tsan: built in $(elapsed "$t")"
  for tg in "${have[@]}"; do
    bin="$(find "$B" -type f -name "$tg" -perm -u+x -not -path '*/CMakeFiles/*' | head -1)"
    [[ -n "$bin" ]] || die "no $tg binary in $B"
    verify_tsan_abseil "$bin" || die "refusing to run TSan without an instrumented abseil"
  done
  echo "sanitize.sh: tsan: every binary loads abseil from $ABSL_LIBDIR"
  R="$B/sanitizer-reports"
  rm -rf "$R" && mkdir -p "$R"
  export TSAN_OPTIONS="log_path=$R/tsan:halt_on_error=0:second_deadlock_stack=1:suppressions=$ROOT/scripts/sanitizers/tsan.supp"
  regex="$(IFS='|'; echo "^(${have[*]})$")"
  t=$(date +%s)
  (cd "$B" && ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE stress -R "$regex" "${CTEST_EXTRA[@]}")
  rc=$?
  echo "sanitize.sh: tsan: ctest exit $rc in $(elapsed "$t")"
  [[ $rc -ne 0 ]] && status=1
  check_reports "$R" tsan || status=1
  unset TSAN_OPTIONS
fi
echo "sanitize.sh: $MODE: $([[ $status -eq 0 ]] && echo passed || echo FAILED) in $(elapsed "$T0")"
exit $status

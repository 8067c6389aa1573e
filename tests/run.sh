#!/usr/bin/env bash
# The whole test suite: unit + integration tests, on a normal build (build/) and on
# an AddressSanitizer/UBSan build (build-asan/). Installs what is missing first.
#
#   tests/run.sh                       # both passes
#   MULTIVAC_TEST_QUICK=1 tests/run.sh # normal build only (local iteration)
#
# The last line printed is ctest's summary of the last pass run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)
say() { printf 'tests: %s\n' "$*"; }

bash deps/install.sh

# LeakSanitizer needs ptrace-like access that some sandboxes forbid: check once.
lsan_works() {
  local dir rc=0
  dir=$(mktemp -d)
  printf '#include <stdlib.h>\nint main(void) { void *volatile p = malloc(8); free(p); return 0; }\n' >"$dir/t.c"
  if cc -fsanitize=address "$dir/t.c" -o "$dir/t" 2>/dev/null; then
    ASAN_OPTIONS=detect_leaks=1 "$dir/t" >/dev/null 2>&1 || rc=$?
  else
    rc=1
  fi
  rm -rf "$dir"
  return "$rc"
}

# build_and_test DIR [cmake args...]: configure, build, ctest (its output also in DIR/ctest.log).
# Called from `||`, where set -e does not apply: every step checks its own status.
last_summary=""
build_and_test() {
  local dir=$1 rc=0
  shift
  last_summary="tests: $dir: build failed"
  say "configure + build $dir ${*:-}"
  cmake -S . -B "$dir" -DMULTIVAC_WERROR=ON "$@" >/dev/null || return
  cmake --build "$dir" -j"$jobs" || return
  say "ctest in $dir"
  rm -f "$dir/faults-report.txt"
  ctest --test-dir "$dir" --output-on-failure 2>&1 | tee "$dir/ctest.log" || rc=$?
  if [[ -f $dir/faults-report.txt ]]; then
    say "fault injection report ($dir):"
    cat "$dir/faults-report.txt"
  fi
  last_summary=$(grep -E '^[0-9]+% tests passed' "$dir/ctest.log" | tail -n 1 || true)
  [[ -n $last_summary ]] || last_summary="tests: ctest in $dir printed no summary (status $rc)"
  return "$rc"
}

status=0
build_and_test build || status=$?

if ((status == 0)) && [[ ${MULTIVAC_TEST_QUICK:-0} != 1 ]]; then
  if [[ -z ${ASAN_OPTIONS:-} ]]; then
    if lsan_works; then
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    else
      say "warning: LeakSanitizer cannot run here; ASan pass runs with detect_leaks=0"
      export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
    fi
  fi
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  build_and_test build-asan -DMULTIVAC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug || status=$?
elif ((status != 0)); then
  say "normal pass failed: ASan pass not run"
else
  say "MULTIVAC_TEST_QUICK=1: ASan pass skipped"
fi

printf '%s\n' "$last_summary"
exit "$status"

#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a bounded time, on a temporary
# copy of its seed corpus (the repository stays clean), and fails on any crash,
# leak, timeout or out-of-memory. Builds build-fuzz/ first (clang, the whole
# project with -fsanitize=fuzzer-no-link,address,undefined).
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]   # default 20
#   FUZZ_TARGETS="fuzz_conn" tests/fuzz/run.sh 600
#
# A crashing input is kept in build-fuzz/fuzz-artifacts/<target>/; replay it
# with build-fuzz/tests/<target> <file>.
set -euo pipefail

secs=${1:-20}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
build=build-fuzz
targets=${FUZZ_TARGETS:-fuzz_request fuzz_conn fuzz_form fuzz_config}
say() { printf 'fuzz: %s\n' "$*"; }

command -v clang >/dev/null || { say "clang is missing (deps/install.sh installs it)"; exit 1; }

log=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$log"' EXIT

# Configure once, build every time (incremental), quietly unless it fails.
if [ ! -f "$build/CMakeCache.txt" ]; then
  if ! cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DMULTIVAC_FUZZ=ON -DMULTIVAC_SANITIZE=OFF -DMULTIVAC_WERROR=ON \
    "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    >"$log" 2>&1; then
    cat "$log" >&2
    say "configure failed"
    exit 1
  fi
fi
# shellcheck disable=SC2086
if ! cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target $targets >"$log" 2>&1; then
  cat "$log" >&2
  say "build failed"
  exit 1
fi

# LeakSanitizer needs ptrace-like access that some sandboxes forbid.
detect_leaks=1
printf 'int main(void) { return 0; }\n' >"$tmp/t.c"
if ! { clang -fsanitize=address "$tmp/t.c" -o "$tmp/t" 2>/dev/null &&
  ASAN_OPTIONS=detect_leaks=1 "$tmp/t" >/dev/null 2>&1; }; then
  detect_leaks=0
  say "LeakSanitizer does not work here: leaks are not checked"
fi
export ASAN_OPTIONS="detect_leaks=$detect_leaks:abort_on_error=0:allocator_may_return_null=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

max_len() {
  case $1 in
    fuzz_request | fuzz_conn) echo 8192 ;;
    fuzz_form) echo 4096 ;;
    *) echo 1024 ;;
  esac
}

# A fixed seed makes a run repeatable: CI explores the same inputs every time, a
# prefix of what a longer run with the same seed explored before landing (so CI
# fails on a regression, not on luck). FUZZ_SEED=0 asks libFuzzer for a random one.
seed=${FUZZ_SEED:-20261123}

failed=0
for t in $targets; do
  corpus="$tmp/corpus-$t"
  artifacts="$root/$build/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  # Past findings replay as seeds: a fixed bug that comes back fails at once.
  if [ "$t" = fuzz_request ] && compgen -G "tests/fuzz/crashes/request_*" >/dev/null; then
    cp tests/fuzz/crashes/request_* "$corpus"/
  fi
  rc=0
  "$build/tests/$t" "$corpus" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=5 -seed="$seed" \
    -rss_limit_mb=2048 -detect_leaks="$detect_leaks" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" </dev/null >"$tmp/$t.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log" | tail -n 1)
  cov=$(grep -aE '^#[0-9]+' "$tmp/$t.log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  if [ "$rc" -ne 0 ]; then
    failed=1
    tail -n 60 "$tmp/$t.log" >&2
    say "$t: FAILED (exit $rc) after ${execs:-?} executions; input kept in $build/fuzz-artifacts/$t/"
  else
    say "$t: ok, ${execs:-?} executions in ${secs}s (${cov:-no coverage line})"
  fi
done
exit "$failed"

#!/usr/bin/env bash
# MultiVAC against its peers, every scenario of the benchmark in one run, on loopback.
#
#   bench/run.sh            full run (about 15 minutes): table, bench/results/latest.json,
#                           chart bench/results/latest.png
#   bench/run.sh --smoke    seconds-long run of every scenario at tiny scale; exits non-zero
#                           on any error (non-2xx, socket error, a peer that did not start),
#                           never on speed
#   bench/run.sh --soak     5 minutes of constant mixed load on `serve`, RSS sampled
#   MULTIVAC_BIN=build-asan/multivac bench/run.sh    any build (default: build/multivac,
#                           configured and built here when MULTIVAC_BIN is unset)
#
# Knobs (environment): DURATION (s per wrk run), REPEAT (alternating runs per figure),
# CONNS (e.g. 100,1000), LAT_DURATION, CPU_DURATION, RSS_CONNS, DRAIN_JOBS,
# SOAK_SECONDS, SOAK_SAMPLE, SOAK_RATE, BENCH_KEEP_TMP=1 (keep the servers' logs),
# BENCH_STRICT=1 (a full run fails on errors too). See bench/README.md.
#
# The driver runs on /usr/bin/python3 on purpose: Flask, RQ, pymongo, redis-py and
# gunicorn come from Debian's packages, which are installed for that interpreter.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'bench: %s\n' "$*" >&2; }

# --- tools: installed when missing (Debian packages, vegeta with go install) -----------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v gunicorn >/dev/null || need+=(gunicorn)
command -v rq >/dev/null || need+=(python3-rq)
command -v strace >/dev/null || need+=(strace)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
/usr/bin/python3 -c 'import flask' 2>/dev/null || need+=(python3-flask)
/usr/bin/python3 -c 'import pymongo, redis' 2>/dev/null || need+=(python3-pymongo python3-redis)
h2o_wanted=0
command -v h2o >/dev/null || { h2o_wanted=1; }
if ((${#need[@]} || h2o_wanted)); then
  say "installing ${need[*]}$( ((h2o_wanted)) && echo " h2o")"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  ((${#need[@]})) && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # h2o is a peer, not a requirement: without it the run says so and goes on.
  ((h2o_wanted)) && { apt-get install -y -qq --no-install-recommends h2o >/dev/null 2>&1 ||
    say "h2o could not be installed: its rows are left out"; }
fi
# A package perf may lack: CPU time then comes from /proc/<pid>/stat.
vegeta=$(command -v vegeta || echo "$HOME/go/bin/vegeta")
if [[ ! -x $vegeta ]]; then
  say "installing vegeta v12.12.0 (go install)"
  PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod go install github.com/tsenart/vegeta/v12@v12.12.0
fi
export PATH=$HOME/go/bin:$PATH

# --- multivac ---------------------------------------------------------------------------
if [[ -z ${MULTIVAC_BIN:-} ]]; then
  say "building build/multivac"
  cmake -S "$root" -B "$root/build" >/dev/null
  cmake --build "$root/build" -j"$(nproc)" --target multivac >/dev/null
  export MULTIVAC_BIN=$root/build/multivac
fi

# Connections are file descriptors: 10,000 held by the client and as many by each server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec /usr/bin/python3 "$root/bench/bench.py" "$@"

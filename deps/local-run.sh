#!/usr/bin/env bash
# Quick start: install what is missing, build, start Redis and a MongoDB-compatible
# store (or reuse ones already running), then run `multivac serve` in the foreground.
# Ctrl-C (or SIGTERM) stops multivac first, then the servers this script started.
#
# Environment (all optional):
#   REDIS_PORT (6379), MONGO_PORT (27017)  where to find or start the servers
#   REDIS_URL, MONGO_URL                   use these servers instead (none is started)
#   MULTIVAC_LISTEN (0.0.0.0:5000) and any other MULTIVAC_* setting
# Data and logs of the servers started here: .local/ in the checkout (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=$root/.local
redis_port=${REDIS_PORT:-6379}
mongo_port=${MONGO_PORT:-27017}
start_timeout=30 # seconds for a started server to answer

say() { printf 'local-run: %s\n' "$*"; }
die() { printf 'local-run: error: %s\n' "$*" >&2; exit 1; }

# --- processes we started, stopped in reverse order on exit ---------------------------
started_pids=()
started_names=()
mv_pid=""

stop_pid() { # name pid: SIGTERM, wait up to 10 s, then SIGKILL
  local name=$1 pid=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "$name did not stop in 10 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local i
  trap - INT TERM
  [[ -n $mv_pid ]] && stop_pid multivac "$mv_pid"
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${started_names[i]}" "${started_pids[i]}"
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Servers run in their own session (setsid), so a Ctrl-C in the terminal reaches only
# this script, which then stops them in order: multivac first, the servers last.
start_bg() { # name logfile argv...
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  started_pids+=("$!")
  started_names+=("$name")
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
redis_pings() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

wait_until() { # name logfile check-command...: bounded wait for a server we started
  local name=$1 log=$2 pid=${started_pids[-1]} i
  shift 2
  for ((i = 0; i < start_timeout * 10; i++)); do
    "$@" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      printf 'local-run: error: %s exited during start; last lines of %s:\n' "$name" "$log" >&2
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  printf 'local-run: error: %s did not answer within %s s; last lines of %s:\n' \
    "$name" "$start_timeout" "$log" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
}

# --- install and build (no-ops when up to date) ----------------------------------------
bash deps/install.sh
say "building build/multivac"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

# --- Redis ------------------------------------------------------------------------------------
if [[ -n ${REDIS_URL:-} ]]; then
  say "Redis: using REDIS_URL=$REDIS_URL (none started)"
elif redis_pings "$redis_port"; then
  say "Redis: reusing the one already answering on 127.0.0.1:$redis_port"
else
  mkdir -p "$state/redis"
  log=$state/redis/redis.log
  say "Redis: starting on 127.0.0.1:$redis_port (data and log in .local/redis/)"
  start_bg redis-server "$log" redis-server --port "$redis_port" --bind 127.0.0.1 \
    --dir "$state/redis" --appendonly yes --appendfsync everysec
  wait_until redis-server "$log" redis_pings "$redis_port"
fi
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$redis_port/0}

# --- MongoDB-compatible store -------------------------------------------------------------------
if [[ -n ${MONGO_URL:-} ]]; then
  say "MongoDB: using MONGO_URL=$MONGO_URL (none started)"
elif port_open "$mongo_port"; then
  say "MongoDB: reusing the server already listening on 127.0.0.1:$mongo_port"
elif command -v mongod >/dev/null 2>&1; then
  mkdir -p "$state/mongod"
  log=$state/mongod/mongod.log
  say "MongoDB: starting mongod on 127.0.0.1:$mongo_port (data and log in .local/mongod/)"
  start_bg mongod "$log" mongod --port "$mongo_port" --bind_ip 127.0.0.1 --dbpath "$state/mongod"
  wait_until mongod "$log" port_open "$mongo_port"
else
  ferretdb=$(command -v ferretdb 2>/dev/null || true)
  [[ -n $ferretdb ]] || ferretdb=${MULTIVAC_TOOLS_DIR:-/usr/local/bin}/ferretdb
  [[ -x $ferretdb ]] || die "no mongod on PATH and no ferretdb at $ferretdb (deps/install.sh builds it)"
  mkdir -p "$state/ferretdb"
  log=$state/ferretdb/ferretdb.log
  say "MongoDB: starting FerretDB (SQLite) on 127.0.0.1:$mongo_port (data and log in .local/ferretdb/)"
  start_bg ferretdb "$log" "$ferretdb" --handler=sqlite --sqlite-url="file:$state/ferretdb/" \
    --state-dir="$state/ferretdb" --listen-addr="127.0.0.1:$mongo_port" --debug-addr=- \
    --telemetry=disable --log-level=warn
  wait_until ferretdb "$log" port_open "$mongo_port"
fi
export MONGO_URL=${MONGO_URL:-mongodb://127.0.0.1:$mongo_port}

# --- multivac in the foreground -----------------------------------------------------------------
export MULTIVAC_LISTEN=${MULTIVAC_LISTEN:-0.0.0.0:5000}
say "multivac: serving on $MULTIVAC_LISTEN (Ctrl-C stops it)"
forward() {
  say "stopping multivac (SIG$1)"
  kill -"$1" "$mv_pid" 2>/dev/null || true
}
setsid build/multivac serve </dev/null &
mv_pid=$!
trap 'forward INT' INT
trap 'forward TERM' TERM
status=0
while :; do
  # wait returns early (status > 128) when a trapped signal arrives: wait again.
  if wait "$mv_pid"; then status=0; else status=$?; fi
  kill -0 "$mv_pid" 2>/dev/null || break
done
mv_pid=""
say "multivac exited with status $status"
exit "$status"

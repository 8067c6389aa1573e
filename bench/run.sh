#!/usr/bin/env bash
# Side-by-side throughput: MultiVAC against nginx (one worker process, fixed
# string) in the same run, on loopback, with wrk. Prints req/s and ratios.
#
#   bench/run.sh                 # 5 s per case, 1 wrk thread, 100 connections
#   DURATION=10 CONNS=1000 bench/run.sh
#
# Absolute numbers drift between machines and runs; compare the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
CONNS=${CONNS:-100}
THREADS=${THREADS:-1}
bin=${MULTIVAC_BIN:-$root/build/multivac}
[[ -x $bin ]] || { echo "bench: build first (cmake -S . -B build && cmake --build build)" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "bench: needs wrk and nginx (deps/install.sh)" >&2; exit 1; }
ferretdb=$(command -v mongod || command -v ferretdb || echo "${MULTIVAC_TOOLS_DIR:-/usr/local/bin}/ferretdb")

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "bench: port $1 never opened" >&2; exit 1; }

redis_port=$(free_port); mongo_port=$(free_port); mv_port=$(free_port); nginx_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 & pids+=($!)
if [[ $(basename "$ferretdb") == mongod ]]; then
  mkdir "$tmp/mongo"; "$ferretdb" --port "$mongo_port" --bind_ip 127.0.0.1 --dbpath "$tmp/mongo" >"$tmp/mongo.log" 2>&1 & pids+=($!)
else
  "$ferretdb" --handler=sqlite --sqlite-url="file:$tmp/" --listen-addr="127.0.0.1:$mongo_port" --log-level=error >"$tmp/mongo.log" 2>&1 & pids+=($!)
fi
wait_port "$redis_port"; wait_port "$mongo_port"

MULTIVAC_LISTEN=127.0.0.1:$mv_port REDIS_URL=redis://127.0.0.1:$redis_port/0 \
  MONGO_URL=mongodb://127.0.0.1:$mongo_port MULTIVAC_LOG_LEVEL=warn \
  "$bin" serve 2>"$tmp/multivac.log" & pids+=($!)

body="INSUFFICIENT DATA FOR MEANINGFUL ANSWER."
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $tmp/nginx-error.log;
pid $tmp/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!)
wait_port "$mv_port"; wait_port "$nginx_port"

rps() { # url [script]
  local args=(-t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency)
  [[ -n ${2:-} ]] && args+=(-s "$2")
  wrk "${args[@]}" "$1" >"$tmp/wrk.out" 2>&1
  grep -q "Non-2xx" "$tmp/wrk.out" && { echo "bench: non-2xx responses:" >&2; cat "$tmp/wrk.out" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out"
}

echo "wrk: $THREADS thread(s), $CONNS connections, ${DURATION}s per case"
nginx_get=$(rps "http://127.0.0.1:$nginx_port/multivac")
mv_get=$(rps "http://127.0.0.1:$mv_port/multivac")
mv_post=$(rps "http://127.0.0.1:$mv_port/multivac/data" "$root/bench/post.lua")
printf '%-40s %12s req/s\n' "nginx fixed string (1 worker)" "$nginx_get"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-40s %12s req/s   %sx nginx\n' "multivac GET /multivac" "$mv_get" "$(ratio "$mv_get" "$nginx_get")"
printf '%-40s %12s req/s   %sx nginx GET\n' "multivac POST /multivac/data" "$mv_post" "$(ratio "$mv_post" "$nginx_get")"

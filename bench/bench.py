"""MultiVAC benchmark driver (bench/run.sh calls it with /usr/bin/python3, the
interpreter Debian's python3-flask, -rq, -pymongo and -redis are installed for).

Starts its own Redis and MongoDB-compatible store on free loopback ports, MultiVAC
and every peer, runs each scenario against MultiVAC and its peers in the same run
(alternating the order run by run, medians), prints one table, writes it as JSON
and draws a chart. Every load goes to 127.0.0.1 and is bounded in count and time.

    bench.py [--smoke | --soak] [--out FILE] [--chart FILE]

--smoke: seconds long, every scenario at tiny scale; exits 1 on any error (non-2xx,
socket error, a peer that does not start), never on speed.
--soak: MultiVAC `serve` under a constant mixed load for SOAK_SECONDS (300), RSS of
multivac, Redis and the store sampled every SOAK_SAMPLE seconds (10).
"""
import argparse
import base64
import csv
import io
import json
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import pymongo
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
BODY = "INSUFFICIENT DATA FOR MEANINGFUL ANSWER."
START_TIMEOUT = 30.0


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def env_num(name, default, cast=int):
    v = os.environ.get(name)
    return cast(v) if v else default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(port, path, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1]


def job_id(ms, rnd, i):
    """An id as MultiVAC makes them (src/queue/job.c): 12 hex digits of the millisecond,
    16 of the process's random, 4 of a sequence; so ids grow with time, as in service."""
    return f"{(ms + (i >> 16)) & 0xffffffffffff:012x}{rnd:016x}{i & 0xffff:04x}"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """utime + stime of every thread of pid, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


# --- processes ------------------------------------------------------------------------


class Proc:
    """A child in its own session, output in a log file, stopped by pid."""

    def __init__(self, name, argv, logdir, env=None, cwd=None):
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=full_env, cwd=cwd, start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=10.0):
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.tmp = tempfile.mkdtemp(prefix="multivac-bench-")
        self.procs = []
        self.errors = []  # error strings: fail the smoke run
        self.rows = []
        self.extra = {}
        s = self.smoke
        self.duration = env_num("DURATION", 1 if s else 5, float)
        self.repeat = env_num("REPEAT", 1 if s else 3)
        self.conns = [int(c) for c in os.environ.get("CONNS", "10,50" if s else "100,1000").split(",")]
        self.lat_duration = env_num("LAT_DURATION", 1 if s else 5, float)
        self.rss_conns = env_num("RSS_CONNS", 200 if s else 10000)
        self.drain_jobs = env_num("DRAIN_JOBS", 2000 if s else 100000)
        # MultiVAC's default batch; the raw insert peer uses the same.
        self.batch = env_num("BATCH", 1000)
        self.cpu_duration = env_num("CPU_DURATION", 1 if s else 3, float)
        self.mv_bin = os.environ.get("MULTIVAC_BIN", os.path.join(ROOT, "build", "multivac"))
        self.vegeta = shutil.which("vegeta") or os.path.expanduser("~/go/bin/vegeta")

    # --- lifecycle ------------------------------------------------------------------

    def start(self, name, argv, port, env=None, cwd=None, check=None):
        p = Proc(name, argv, self.tmp, env, cwd)
        self.procs.append(p)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not p.alive():
                raise BenchError(f"{name} did not start (exit {p.proc.returncode}):\n{p.tail()}")
            try:
                if (check or (lambda: port_open(port)))():
                    return p
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not answer within {START_TIMEOUT:.0f}s:\n{p.tail()}")
            time.sleep(0.1)

    def stop(self, p):
        p.stop()
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()
        if os.environ.get("BENCH_KEEP_TMP"):
            log(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def error(self, msg):
        self.errors.append(msg)
        log(f"ERROR: {msg}")

    # --- servers ----------------------------------------------------------------------

    def start_stores(self):
        self.redis_port = free_port()
        self.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", self.tmp,
                             "--maxclients", "20000"], self.redis_port)
        self.redis = redis.Redis(host="127.0.0.1", port=self.redis_port)
        self.redis_proc = self.procs[-1]
        self.mongo_port = free_port()
        mongod = shutil.which("mongod")
        if mongod:
            os.mkdir(os.path.join(self.tmp, "mongo"))
            argv = [mongod, "--port", str(self.mongo_port), "--bind_ip", "127.0.0.1", "--dbpath",
                    os.path.join(self.tmp, "mongo"), "--quiet"]
        else:
            ferretdb = next((c for c in (os.environ.get("FERRETDB"), shutil.which("ferretdb"),
                                         os.environ.get("MULTIVAC_TOOLS_DIR", "/usr/local/bin") + "/ferretdb")
                             if c and os.access(c, os.X_OK)), None)
            if not ferretdb:
                raise BenchError("no mongod and no ferretdb (deps/install.sh builds it)")
            argv = [ferretdb, "--handler=sqlite", f"--sqlite-url=file:{self.tmp}/", f"--state-dir={self.tmp}",
                    f"--listen-addr=127.0.0.1:{self.mongo_port}", "--debug-addr=-", "--telemetry=disable",
                    "--log-level=error"]
        self.mongo_url = f"mongodb://127.0.0.1:{self.mongo_port}"
        self.mongo = pymongo.MongoClient(self.mongo_url, serverSelectionTimeoutMS=2000)
        self.start("store", argv, self.mongo_port, check=lambda: self.mongo.admin.command("ping"))
        self.store_proc = self.procs[-1]

    def mv_env(self, prefix, db, port, **extra):
        env = {"MULTIVAC_LISTEN": f"127.0.0.1:{port}", "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
               "MONGO_URL": self.mongo_url, "MONGO_DB_NAME": db, "MULTIVAC_PREFIX": prefix,
               "MULTIVAC_LOG_LEVEL": "warn", "MULTIVAC_ACCESS_LOG": "0",
               "MULTIVAC_MAX_CONNECTIONS": "30000", "MULTIVAC_QUEUE_MAX": "100000000",
               "MULTIVAC_BATCH": str(self.batch)}
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start_multivac(self, name, mode, prefix, db, port=None, **extra):
        port = port or free_port()

        def ready():
            return http_get(port, "/healthz")[0] == 200

        p = self.start(name, [self.mv_bin, mode], port, env=self.mv_env(prefix, db, port, **extra),
                       check=ready if mode != "worker" else (lambda: True))
        p.port = port
        return p

    def seed_answer(self, db):
        """The answer GET /multivac returns: the same bytes as the fixed-string peers."""
        now = time.time()
        import datetime
        ts = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        self.mongo[db].entropy.insert_one({"_id": "0" * 32, "data": BODY, "received_at": ts,
                                           "processed_at": ts})

    def start_nginx(self):
        port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
worker_rlimit_nofile 30000;
daemon off;
error_log {self.tmp}/nginx-error.log;
pid {self.tmp}/nginx.pid;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  server {{
    listen 127.0.0.1:{port} backlog=1024;
    location / {{ default_type "text/plain; charset=utf-8"; return 200 "{BODY}"; }}
  }}
}}
""")
        p = self.start("nginx", ["nginx", "-c", conf, "-p", self.tmp], port)
        p.port = port
        for _ in range(50):
            if children(p.pid):
                break
            time.sleep(0.1)
        p.worker = children(p.pid)[0]
        return p

    def start_h2o(self):
        h2o = shutil.which("h2o")
        if not h2o:
            self.extra["h2o"] = "not installed (Debian package h2o)"
            return None
        port = free_port()
        docroot = os.path.join(self.tmp, "h2o-root")
        os.makedirs(docroot, exist_ok=True)
        conf = os.path.join(self.tmp, "h2o.conf")
        with open(conf, "w") as f:
            f.write(f"""num-threads: 1
max-connections: 30000
listen:
  host: 127.0.0.1
  port: {port}
access-log: /dev/null
error-log: {self.tmp}/h2o-error.log
hosts:
  default:
    paths:
      /:
        mruby.handler: |
          Proc.new do |env|
            [200, {{"content-type" => "text/plain; charset=utf-8"}}, ["{BODY}"]]
          end
""")
        p = self.start("h2o", [h2o, "-c", conf], port)
        p.port = port
        return p

    def start_flask(self):
        port = free_port()
        self.flask_env = {"REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/1",
                          "MONGO_SERVER": f"127.0.0.1:{self.mongo_port}", "MONGO_DB_NAME": "peer"}
        gunicorn = shutil.which("gunicorn") or shutil.which("gunicorn3")
        if not gunicorn:
            raise BenchError("gunicorn not installed (Debian package gunicorn)")
        p = self.start("flask", [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--backlog", "2048",
                                 "--chdir", os.path.join(BENCH, "peer"), "app:app"], port,
                       env=self.flask_env, check=lambda: http_get(port, "/")[0] == 200)
        p.port = port
        return p

    # --- load generators -------------------------------------------------------------

    def wrk(self, url, conns, duration, script=None, label=""):
        argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s", "--latency"]
        if script:
            argv += ["-s", script]
        argv.append(url)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        n = re.search(r"(\d+) requests in", out)
        if not m or not n:
            raise BenchError(f"wrk output not understood ({label}):\n{out}")
        non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        sock_errors = sum(int(x) for x in sock.groups()) if sock else 0
        if non2xx or sock_errors:
            msg = f"{label}: {non2xx} non-2xx responses, {sock_errors} socket errors ({sock.group(0) if sock else ''})"
            if self.smoke or non2xx:
                self.error(msg)
            else:
                log(f"warning: {msg}")
        if int(n[1]) == 0:
            self.error(f"{label}: no request completed")
        return {"rps": float(m[1]), "requests": int(n[1]), "non2xx": non2xx, "socket_errors": sock_errors}

    def post_script(self):
        return os.path.join(BENCH, "post.lua")

    # --- table --------------------------------------------------------------------------

    def row(self, scenario, unit, value, peer, peer_value, target=None, met=None, lower_better=False,
            note=None):
        ratio = (value / peer_value) if (value is not None and peer_value) else None
        r = {"scenario": scenario, "unit": unit, "value": value, "peer": peer, "peer_value": peer_value,
             "ratio": ratio, "lower_is_better": lower_better, "target": target, "met": met}
        if note:
            r["note"] = note
        self.rows.append(r)
        return r

    # --- scenarios ----------------------------------------------------------------------

    def alternate(self, runs, label):
        """runs: {name: callable -> figure}; order alternates run by run. Medians."""
        names = list(runs)
        got = {n: [] for n in names}
        for rep in range(self.repeat):
            order = names if rep % 2 == 0 else list(reversed(names))
            for n in order:
                got[n].append(runs[n]())
        med = {n: statistics.median(v) for n, v in got.items()}
        log(f"{label}: " + ", ".join(f"{n} {med[n]:,.0f}" for n in names))
        return med, got

    def scen_throughput(self):
        mv, run, ng, h2, fl = self.mv_serve, self.mv_run, self.nginx, self.h2o, self.flask
        post = self.post_script()
        self.peak = {}
        for c in self.conns:
            d = self.duration
            get_runs = {"multivac": lambda: self.wrk(f"http://127.0.0.1:{mv.port}/multivac", c, d, label=f"mv GET c{c}")["rps"],
                        "nginx": lambda: self.wrk(f"http://127.0.0.1:{ng.port}/multivac", c, d, label=f"nginx GET c{c}")["rps"]}
            if h2:
                get_runs["h2o"] = lambda: self.wrk(f"http://127.0.0.1:{h2.port}/multivac", c, d, label=f"h2o GET c{c}")["rps"]
            get_runs["flask"] = lambda: self.wrk(f"http://127.0.0.1:{fl.port}/multivac", c, d, label=f"flask GET c{c}")["rps"]
            med, raw = self.alternate(get_runs, f"GET c{c}")
            self.extra[f"get_c{c}_runs"] = raw
            self.peak[("get", c)] = med["multivac"]
            self.peak[("nginx", c)] = med["nginx"]
            self.row(f"GET /multivac, {c} conns", "req/s", med["multivac"], "nginx 1 worker", med["nginx"],
                     target=">= 1.0x nginx", met=med["multivac"] >= med["nginx"])
            if h2:
                self.row(f"GET /multivac, {c} conns", "req/s", med["multivac"], "h2o 1 thread (mruby)", med["h2o"])
            self.row(f"GET /multivac, {c} conns", "req/s", med["multivac"], "Flask+RQ, gunicorn 2 sync", med["flask"])

            def mv_run_post():
                self.redis.config_resetstat()
                r = self.wrk(f"http://127.0.0.1:{run.port}/multivac/data", c, d, post, label=f"mv runserver POST c{c}")
                usec = sum(v["usec"] for v in self.redis.info("commandstats").values())
                self.redis.delete("mvr:jobs")
                self.enqueue_usec.append(usec / max(1, r["requests"]))
                return r["rps"]

            def lpush():
                out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.redis_port), "-c", str(c),
                                      "-n", str(int(self.lpush_n)), "-t", "lpush", "--csv", "-P", "1"],
                                     capture_output=True, text=True, timeout=120).stdout
                m = re.search(r'"LPUSH[^"]*","([\d.]+)"', out)
                if not m:
                    self.error(f"redis-benchmark output not understood: {out!r}")
                    return 0.0
                self.redis.delete("mylist")
                return float(m[1])

            self.lpush_n = max(1000, self.peak[("nginx", c)] * d * 0.3)
            med, raw = self.alternate({"multivac": mv_run_post, "lpush": lpush}, f"POST runserver c{c}")
            self.row(f"POST, runserver, {c} conns", "req/s", med["multivac"], "nginx GET (same run)",
                     self.peak[("nginx", c)], target=">= 0.9x nginx GET",
                     met=med["multivac"] >= 0.9 * self.peak[("nginx", c)])
            self.row(f"POST, runserver, {c} conns", "req/s", med["multivac"], "redis-benchmark LPUSH -P1", med["lpush"])

            def mv_serve_post():
                return self.wrk(f"http://127.0.0.1:{mv.port}/multivac/data", c, d, post, label=f"mv serve POST c{c}")["rps"]

            def flask_post():
                return self.wrk(f"http://127.0.0.1:{fl.port}/multivac/data", c, d, post, label=f"flask POST c{c}")["rps"]

            med, raw = self.alternate({"multivac": mv_serve_post, "flask": flask_post}, f"POST serve c{c}")
            self.peak[("post", c)] = med["multivac"]
            self.row(f"POST, serve (drain on same cores), {c} conns", "req/s", med["multivac"], "nginx GET (same run)",
                     self.peak[("nginx", c)], target=">= 0.65x nginx GET",
                     met=med["multivac"] >= 0.65 * self.peak[("nginx", c)])
            self.row(f"POST, serve (drain on same cores), {c} conns", "req/s", med["multivac"],
                     "Flask+RQ, gunicorn 2 sync (no RQ worker running)", med["flask"], target=">= 25x Flask+RQ",
                     met=med["multivac"] >= 25 * med["flask"])
            self.wait_queue_empty("mvs:", 60)

    def wait_queue_empty(self, prefix, limit):
        deadline = time.monotonic() + limit
        while self.redis.llen(f"{prefix}jobs") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)

    def vegeta_attack(self, port, rate, duration, post, label):
        targets = os.path.join(self.tmp, "targets.txt")
        body = os.path.join(self.tmp, "post.body")
        with open(body, "w") as f:
            f.write("data=vegeta+datum")
        with open(targets, "w") as f:
            if post:
                f.write(f"POST http://127.0.0.1:{port}/multivac/data\n"
                        f"Content-Type: application/x-www-form-urlencoded\n@{body}\n")
            else:
                f.write(f"GET http://127.0.0.1:{port}/multivac\n")
        res = os.path.join(self.tmp, "vegeta.bin")
        subprocess.run([self.vegeta, "attack", "-format=http", f"-targets={targets}", f"-rate={int(rate)}/s",
                        f"-duration={duration}s", "-timeout=5s", "-max-workers=2000", f"-output={res}"],
                       check=True, timeout=duration + 60, capture_output=True)
        out = subprocess.run([self.vegeta, "encode", "-to", "csv", res], check=True, capture_output=True,
                             timeout=120, text=True).stdout
        lat, bad, first, last = [], 0, None, None
        for rec in csv.reader(io.StringIO(out)):
            ts, code, ns = int(rec[0]), int(rec[1]), int(rec[2])
            if not 200 <= code < 300:
                bad += 1
            lat.append(ns / 1e6)
            end = ts + int(ns)
            first = ts if first is None else min(first, ts)
            last = end if last is None else max(last, end)
        lat.sort()
        if not lat:
            self.error(f"{label}: vegeta sent nothing")
            return {"p50": 0, "p99": 0, "p999": 0, "rate": 0}
        if bad:
            self.error(f"{label}: {bad} of {len(lat)} vegeta requests not 2xx")

        def pct(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))]

        achieved = len(lat) / max(1e-9, (last - first) / 1e9)
        r = {"p50": pct(0.50), "p99": pct(0.99), "p999": pct(0.999), "rate": achieved, "requests": len(lat),
             "non2xx": bad, "max": lat[-1]}
        log(f"{label}: rate {achieved:,.0f}/s p50 {r['p50']:.3f} p99 {r['p99']:.3f} p99.9 {r['p999']:.3f} ms")
        return r

    def scen_latency(self):
        c = self.conns[0]
        cap = env_num("LAT_MAX_RATE", 10000)  # vegeta shares the 2 cores: above this it, not the server, queues
        get_rate = 200 if self.smoke else min(cap, self.peak[("get", c)] / 2)
        post_rate = 200 if self.smoke else min(cap, self.peak[("post", c)] / 2)
        res = {}
        for rep in range(1 if self.smoke else 2):
            order = ["mv", "nginx"] if rep % 2 == 0 else ["nginx", "mv"]
            for who in order:
                port = self.mv_serve.port if who == "mv" else self.nginx.port
                res.setdefault(who, []).append(self.vegeta_attack(port, get_rate, self.lat_duration, False, f"latency GET {who}"))
        post = self.vegeta_attack(self.mv_serve.port, post_rate, self.lat_duration, True, "latency POST mv serve")
        self.wait_queue_empty("mvs:", 60)
        # The same rate without the drain on the same cores: what the HTTP + Redis path costs alone.
        post_run = self.vegeta_attack(self.mv_run.port, post_rate, self.lat_duration, True, "latency POST mv runserver")
        self.redis.delete("mvr:jobs")
        med = {w: {k: statistics.median(x[k] for x in v) for k in ("p50", "p99", "p999", "rate")} for w, v in res.items()}
        self.extra["latency"] = {"get_rate": get_rate, "post_rate": post_rate, "get": res, "post": post,
                                 "post_runserver": post_run}
        for k, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            tgt = {"p99": "<= 1 ms"}.get(k)
            self.row(f"GET latency {name} at {get_rate:,.0f}/s", "ms", med["mv"][k], "nginx, same rate",
                     med["nginx"][k], target=tgt, met=(med["mv"][k] <= 1.0) if tgt else None, lower_better=True)
        for k, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            tgt = {"p99": "<= 2 ms"}.get(k)
            self.row(f"POST (serve) latency {name} at {post_rate:,.0f}/s", "ms", post[k], "target",
                     2.0 if k == "p99" else None, target=tgt, met=(post[k] <= 2.0) if tgt else None, lower_better=True)
        for k, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            tgt = {"p99": "<= 2 ms"}.get(k)
            self.row(f"POST (runserver) latency {name} at {post_rate:,.0f}/s", "ms", post_run[k], "target",
                     2.0 if k == "p99" else None, target=tgt, met=(post_run[k] <= 2.0) if tgt else None,
                     lower_better=True)

    def measure_cpu_syscalls(self, pid, url, script, label):
        """CPU us/request (perf stat task-clock, else /proc stat) and syscalls per request (strace -c -f)."""
        c = self.conns[0]
        d = self.cpu_duration
        out = {}
        perf = shutil.which("perf")
        pf = os.path.join(self.tmp, "perf.txt")
        cpu0 = cpu_seconds(pid)
        pp = None
        if perf:
            pp = subprocess.Popen([perf, "stat", "-x,", "-e", "task-clock", "-p", str(pid), "-o", pf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
        r = self.wrk(url, c, d, script, label=f"{label} cpu")
        cpu1 = cpu_seconds(pid)
        ms = None
        if pp:
            pp.send_signal(signal.SIGINT)
            pp.wait(timeout=10)
            try:
                with open(pf) as f:
                    for line in f:
                        parts = line.strip().split(",")
                        if len(parts) > 2 and parts[2] == "task-clock" and parts[0] not in ("", "<not counted>", "<not supported>"):
                            ms = float(parts[0])
            except OSError:
                pass
        out["cpu_source"] = "perf stat task-clock" if ms is not None else "/proc/<pid>/stat"
        cpu_s = ms / 1000 if ms is not None else cpu1 - cpu0
        out["cpu_us_per_req"] = cpu_s * 1e6 / r["requests"]
        out["cpu_requests"] = r["requests"]
        # Syscalls: strace slows the server, but what it does per request stays the same.
        sf = os.path.join(self.tmp, "strace.txt")
        sp = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", sf],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = self.wrk(url, c, d, script, label=f"{label} strace")
        sp.send_signal(signal.SIGINT)
        sp.wait(timeout=20)
        calls = {}
        with open(sf) as f:
            for line in f:
                m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
                if m and m[2] != "total":
                    calls[m[2]] = int(m[1])
        n = max(1, r["requests"])
        out["syscall_requests"] = r["requests"]
        out["syscalls_per_req"] = {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}
        out["syscalls_total_per_req"] = sum(calls.values()) / n
        log(f"{label}: {out['cpu_us_per_req']:.2f} us/req, {out['syscalls_total_per_req']:.2f} syscalls/req "
            + ", ".join(f"{k} {v:.3f}" for k, v in list(out["syscalls_per_req"].items())[:6]))
        return out

    def scen_cpu(self):
        mv = self.measure_cpu_syscalls(self.mv_serve.pid, f"http://127.0.0.1:{self.mv_serve.port}/multivac", None, "mv GET")
        ng = self.measure_cpu_syscalls(self.nginx.worker, f"http://127.0.0.1:{self.nginx.port}/multivac", None, "nginx GET")
        mvp = self.measure_cpu_syscalls(self.mv_run.pid, f"http://127.0.0.1:{self.mv_run.port}/multivac/data",
                                        self.post_script(), "mv runserver POST")
        self.redis.delete("mvr:jobs")
        self.extra["cpu_syscalls"] = {"multivac_get": mv, "nginx_get": ng, "multivac_post_runserver": mvp}
        c = self.conns[0]
        self.row(f"CPU per GET, {c} conns", "us/req", mv["cpu_us_per_req"], "nginx", ng["cpu_us_per_req"],
                 target="<= nginx", met=mv["cpu_us_per_req"] <= ng["cpu_us_per_req"], lower_better=True)
        self.row(f"syscalls per GET, {c} conns", "calls/req", mv["syscalls_total_per_req"], "nginx",
                 ng["syscalls_total_per_req"], lower_better=True,
                 note=", ".join(f"{k} {v:.3f}" for k, v in list(mv["syscalls_per_req"].items())[:5]))
        ep_mv = mv["syscalls_per_req"].get("epoll_ctl", 0.0)
        ep_ng = ng["syscalls_per_req"].get("epoll_ctl", 0.0)
        self.row(f"epoll_ctl per GET, {c} conns", "calls/req", ep_mv, "nginx", ep_ng, target="~0 (<= 0.05)",
                 met=ep_mv <= 0.05, lower_better=True)
        self.row(f"CPU per POST (runserver), {c} conns", "us/req", mvp["cpu_us_per_req"], "nginx GET",
                 ng["cpu_us_per_req"], lower_better=True)
        self.row(f"syscalls per POST (runserver), {c} conns", "calls/req", mvp["syscalls_total_per_req"], "nginx GET",
                 ng["syscalls_total_per_req"], lower_better=True,
                 note=", ".join(f"{k} {v:.3f}" for k, v in list(mvp["syscalls_per_req"].items())[:6]))
        ep_p = mvp["syscalls_per_req"].get("epoll_ctl", 0.0)
        self.row(f"epoll_ctl per POST (runserver), {c} conns", "calls/req", ep_p, "nginx GET", ep_ng,
                 target="~0 (<= 0.05)", met=ep_p <= 0.05, lower_better=True)

    def hold_connections(self, port, n):
        """Opens n keep-alive connections, one GET each, read fully; returns (sockets, errors)."""
        sel = selectors.DefaultSelector()
        socks, errors = [], 0
        req = b"GET /multivac HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        batch = 500
        deadline = time.monotonic() + 60
        for start in range(0, n, batch):
            pending = {}
            for _ in range(min(batch, n - start)):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                sel.register(s, selectors.EVENT_WRITE)
                pending[s] = b""
            while pending and time.monotonic() < deadline:
                for key, ev in sel.select(timeout=1.0):
                    s = key.fileobj
                    if ev & selectors.EVENT_WRITE:
                        try:
                            s.send(req)
                            sel.modify(s, selectors.EVENT_READ)
                        except OSError:
                            errors += 1
                            sel.unregister(s)
                            s.close()
                            pending.pop(s)
                        continue
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        errors += 1
                        sel.unregister(s)
                        s.close()
                        pending.pop(s)
                        continue
                    buf = pending[s] + data
                    pending[s] = buf
                    head, sep, body = buf.partition(b"\r\n\r\n")
                    if sep:
                        m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                        if m and len(body) >= int(m[1]):
                            if not head.startswith(b"HTTP/1.1 200"):
                                errors += 1
                            sel.unregister(s)
                            pending.pop(s)
                            socks.append(s)
            for s in pending:
                errors += 1
                sel.unregister(s)
                s.close()
        sel.close()
        return socks, errors

    def scen_rss(self):
        n = self.rss_conns
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if n + 200 > soft:
            n = max(100, soft - 200)
            log(f"RSS: fd limit {soft}: {n} connections instead of {self.rss_conns}")
        res = {}
        targets = [("multivac", self.mv_serve, self.mv_serve.pid), ("nginx", self.nginx, self.nginx.worker)]
        if self.h2o:
            targets.append(("h2o", self.h2o, self.h2o.pid))
        for name, p, pid in targets:
            time.sleep(0.5)
            base = rss_kb(pid)
            socks, errors = self.hold_connections(p.port, n)
            time.sleep(1.0)
            held = rss_kb(pid)
            for s in socks:
                s.close()
            time.sleep(2.0)
            after = rss_kb(pid)
            if errors:
                self.error(f"RSS {name}: {errors} of {n} connections failed")
            per = (held - base) * 1024 / max(1, len(socks))
            res[name] = {"conns": len(socks), "errors": errors, "base_kb": base, "held_kb": held, "after_kb": after,
                         "per_conn_bytes": per}
            log(f"RSS {name}: base {base} KB, {len(socks)} conns {held} KB ({per:.0f} B/conn), after close {after} KB")
        self.extra["rss"] = res
        mv, ng = res["multivac"], res["nginx"]
        self.row(f"RSS per idle keep-alive conn, {n:,} conns", "KB/conn", mv["per_conn_bytes"] / 1024, "nginx",
                 ng["per_conn_bytes"] / 1024, target="<= 2 KB", met=mv["per_conn_bytes"] <= 2048, lower_better=True)
        if "h2o" in res:
            self.row(f"RSS per idle keep-alive conn, {n:,} conns", "KB/conn", mv["per_conn_bytes"] / 1024, "h2o",
                     res["h2o"]["per_conn_bytes"] / 1024, lower_better=True)
        growth = lambda r: (r["after_kb"] - r["base_kb"]) / r["base_kb"] * 100  # noqa: E731
        # Against the target, not nginx: a ratio of two near-zero growths says nothing.
        self.row("RSS after the connections close, vs idle baseline", "% growth", growth(mv), "target", 10.0,
                 target="<= 10 %", met=growth(mv) <= 10, lower_better=True,
                 note=f"multivac {mv['base_kb']} -> {mv['held_kb']} -> {mv['after_kb']} KB; "
                      f"nginx {growth(ng):+.1f} %")

    def prefill(self, prefix, n, tag, key=None):
        now = int(time.time() * 1000)
        rnd = random.getrandbits(64)
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, n, 1000):
            jobs = [f"1:{job_id(now, rnd, i)}:{now}:{tag} datum {i}".encode()
                    for i in range(start, min(n, start + 1000))]
            pipe.lpush(key or f"{prefix}jobs", *jobs)
            if len(pipe) >= 20:
                pipe.execute()
        pipe.publish(f"{prefix}wake", "1")
        pipe.execute()

    def stored_total(self, port):
        st, body = http_get(port, "/metrics")
        m = re.search(rb"^multivac_jobs_stored_total(?:\{[^}]*\})? (\d+)", body, re.M)
        return int(m[1]) if st == 200 and m else 0

    def count(self, db):
        return self.mongo[db].command("count", "entropy")["n"]

    def scen_drain(self):
        n = self.drain_jobs
        # Peer first: the store's limit with a raw 2-thread batched insert.
        out = subprocess.run([sys.executable, os.path.join(BENCH, "rawinsert.py"), self.mongo_url, "rawinsert",
                              str(n), "2", str(self.batch)], capture_output=True, text=True, timeout=600)
        try:
            raw = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raw = {"error": out.stdout + out.stderr}
        if "error" in raw:
            self.error(f"raw insert failed: {raw['error']}")
            raw["rate"] = 0
        log(f"raw insert: {raw.get('rate', 0):,.0f} docs/s")
        # MultiVAC worker on a pre-filled queue.
        self.prefill("mvd:", n, "drain")
        self.redis.config_resetstat()
        w = self.start_multivac("worker", "worker", "mvd:", "drain")
        t0 = None
        deadline = time.monotonic() + (60 if self.smoke else 600)
        while time.monotonic() < deadline:
            if t0 is None and self.redis.llen("mvd:jobs") < n:
                t0 = time.monotonic()
            if t0 is not None and self.redis.llen("mvd:jobs") == 0 and not any(
                    self.redis.llen(k) for k in self.redis.scan_iter("mvd:processing:*")):
                break
            time.sleep(0.05 if self.smoke else 0.25)
        t1 = time.monotonic()
        stored = self.count("drain")
        if stored < n:
            self.error(f"drain: only {stored} of {n} jobs stored in time")
        rate = stored / max(1e-9, t1 - (t0 or t1))
        stats = self.redis.info("commandstats")
        claim_usec = sum(v["usec"] for v in stats.values()) / max(1, stored)
        self.stop(w)
        enqueue_usec = statistics.median(self.enqueue_usec) if self.enqueue_usec else 0
        log(f"drain: {stored} jobs at {rate:,.0f}/s; Redis {enqueue_usec:.2f} us/job enqueue + {claim_usec:.2f} claim/ack")
        self.extra["drain"] = {"jobs": n, "stored": stored, "rate": rate, "raw_insert": raw,
                               "redis_commandstats": {k: v for k, v in stats.items()}}
        self.row(f"drain of {n:,} queued jobs (worker, batch {self.batch})", "jobs/s", rate, "raw insert_many, 2 threads",
                 raw["rate"], target=">= 1.0x raw insert", met=raw["rate"] > 0 and rate >= raw["rate"])
        rq = self.extra.get("rq_drain")
        if rq:
            self.row(f"drain of {n:,} queued jobs (worker, batch {self.batch})", "jobs/s", rate, "RQ worker (1, forking)",
                     rq["rate"])
        total = enqueue_usec + claim_usec
        self.row("Redis CPU per job (enqueue + claim + ack)", "us/job", total, "target", 1.0, target="<= 1 us",
                 met=total <= 1.0, lower_better=True,
                 note=f"enqueue {enqueue_usec:.2f} (LPUSH) + claim/ack {claim_usec:.2f}")
        # Drain inside `serve`, at rest and while it serves POSTs on the most connections.
        win = self.duration
        c = self.conns[-1]
        rest, left1 = self.serve_drain_rate(n, win, "serve-drain")
        load, left2 = self.serve_drain_rate(n, win, "serve-drain-load", lambda: self.wrk(
            f"http://127.0.0.1:{self.mv_serve.port}/multivac/data", c, win + 1, self.post_script(),
            label=f"drain under POST c{c}"))
        if not left1 or not left2:
            log("warning: the serve queue ran empty during a drain window: raise DRAIN_JOBS")
        log(f"serve drain: {rest:,.0f}/s at rest, {load:,.0f}/s under {c} conns")
        self.row(f"drain in serve under POST load, {c} conns", "jobs/s", load, "same, at rest", rest,
                 target=">= 0.8x at rest", met=rest > 0 and load >= 0.8 * rest)

    def serve_drain_rate(self, n, win, tag, load=None):
        """Jobs/s that `serve` stores from a pre-filled queue over `win` seconds (or until
        the queue runs empty), optionally under a load run alongside. Returns (rate, left)."""
        self.redis.delete("mvs:jobs")
        # Filled aside and renamed into place at once, so the drain starts at a known time.
        self.prefill("mvs:", n, tag, key="bench:prefill")
        th = threading.Thread(target=load) if load else None
        if th:
            th.start()
            time.sleep(min(0.5, win / 4))  # connections open, load established
        samples = [(time.monotonic(), self.stored_total(self.mv_serve.port))]
        self.redis.rename("bench:prefill", "mvs:jobs")
        self.redis.publish("mvs:wake", "1")
        t_end = time.monotonic() + win
        while True:
            time.sleep(0.25)
            left = self.redis.llen("mvs:jobs")
            samples.append((time.monotonic(), self.stored_total(self.mv_serve.port)))
            if left == 0 or time.monotonic() >= t_end:
                break
        if th:
            th.join()
        self.redis.delete("mvs:jobs")
        (t0, a), (t1, b) = samples[0], samples[-1]
        return (b - a) / max(1e-9, t1 - t0), left

    def scen_rq_drain(self):
        """The peer's worker: one forking RQ worker on what the POST runs queued, for a bounded time."""
        rconn = redis.Redis(host="127.0.0.1", port=self.redis_port, db=1)
        queued = rconn.llen("rq:queue:default")
        if not queued:
            self.error("Flask+RQ: POST runs queued no job")
            return
        win = self.duration if not self.smoke else 2
        a = self.count("peer")
        rq = shutil.which("rq")
        p = Proc("rq-worker", [rq, "worker", "--url", self.flask_env["REDIS_URL"], "default"], self.tmp,
                 self.flask_env, cwd=os.path.join(BENCH, "peer"))
        self.procs.append(p)
        deadline = time.monotonic() + 20
        while self.count("peer") == a and p.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        a = self.count("peer")
        t0 = time.monotonic()
        time.sleep(win)
        b = self.count("peer")
        rate = (b - a) / (time.monotonic() - t0)
        self.stop(p)
        rconn.flushdb()
        if b == a:
            self.error(f"RQ worker stored nothing in {win}s:\n{p.tail()}")
        log(f"RQ drain: {rate:,.0f} jobs/s")
        self.extra["rq_drain"] = {"rate": rate, "window_s": win, "queued": queued}

    def scen_reuseport(self):
        c = self.conns[-1]
        one = self.start_multivac("reuse1", "runserver", "mvr:", "mv", MULTIVAC_REUSEPORT=1)
        port = free_port()
        two = [self.start_multivac(f"reuse2-{i}", "runserver", "mvr:", "mv", port=port, MULTIVAC_REUSEPORT=1)
               for i in range(2)]
        cpu0 = [cpu_seconds(p.pid) for p in two]

        med, raw = self.alternate({
            "one": lambda: self.wrk(f"http://127.0.0.1:{one.port}/multivac", c, self.duration, label="reuseport 1")["rps"],
            "two": lambda: self.wrk(f"http://127.0.0.1:{port}/multivac", c, self.duration, label="reuseport 2")["rps"],
        }, f"SO_REUSEPORT GET c{c}")
        cpu = [cpu_seconds(p.pid) - c0 for p, c0 in zip(two, cpu0)]
        if min(cpu) <= 0:
            self.error(f"SO_REUSEPORT: one of the two processes got no load (cpu {cpu})")
        for p in [one] + two:
            self.stop(p)
        self.extra["reuseport"] = {"one": raw["one"], "two": raw["two"], "cpu_s_each_of_two": cpu}
        self.row(f"GET, 2 runserver processes on one port (SO_REUSEPORT), {c} conns", "req/s", med["two"],
                 "1 process", med["one"], note=f"CPU seconds per process: {cpu[0]:.1f} / {cpu[1]:.1f}")

    # --- soak -------------------------------------------------------------------------

    def soak(self):
        secs = env_num("SOAK_SECONDS", 5 if self.smoke else 300)
        step = env_num("SOAK_SAMPLE", 1 if self.smoke else 10)
        rate = env_num("SOAK_RATE", 200 if self.smoke else 4000)
        targets = os.path.join(self.tmp, "soak-targets.txt")
        body = os.path.join(self.tmp, "soak.body")
        with open(body, "w") as f:
            f.write("data=soak+datum")
        port = self.mv_serve.port
        with open(targets, "w") as f:
            f.write(f"GET http://127.0.0.1:{port}/multivac\n\n"
                    f"POST http://127.0.0.1:{port}/multivac/data\nContent-Type: application/x-www-form-urlencoded\n@{body}\n")
        res = os.path.join(self.tmp, "soak.bin")
        samples = []
        va = subprocess.Popen([self.vegeta, "attack", "-format=http", f"-targets={targets}", f"-rate={rate}/s",
                               f"-duration={secs}s", "-timeout=5s", "-max-workers=2000", f"-output={res}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while True:
            t = time.monotonic() - t0
            samples.append({"t": round(t, 1), "multivac_kb": rss_kb(self.mv_serve.pid),
                            "redis_kb": rss_kb(self.redis_proc.pid), "store_kb": rss_kb(self.store_proc.pid),
                            "queue": self.redis.llen("mvs:jobs")})
            log(f"soak t={t:5.0f}s RSS multivac {samples[-1]['multivac_kb']} KB, queue {samples[-1]['queue']}")
            if va.poll() is not None:
                break
            time.sleep(min(step, max(0.1, secs + 1 - t)))
            if time.monotonic() - t0 > secs + 60:
                va.kill()
                break
        va.wait()
        rep = json.loads(subprocess.run([self.vegeta, "report", "-type=json", res], capture_output=True,
                                        text=True, timeout=120).stdout)
        codes = rep.get("status_codes", {})
        bad = sum(v for k, v in codes.items() if not k.startswith("2"))
        if bad:
            self.error(f"soak: {bad} non-2xx responses ({codes})")
        rss = [s["multivac_kb"] for s in samples]
        result = {"seconds": secs, "rate": rate, "requests": rep.get("requests"), "status_codes": codes,
                  "latency_ms": {k: rep["latencies"][k] / 1e6 for k in ("50th", "99th", "max")},
                  "samples": samples, "rss_first_kb": rss[0], "rss_max_kb": max(rss), "rss_last_kb": rss[-1]}
        log(f"soak: {rep.get('requests')} requests, codes {codes}, multivac RSS {rss[0]} -> max {max(rss)} -> {rss[-1]} KB")
        return result

    # --- main -------------------------------------------------------------------------

    def run(self):
        if not os.access(self.mv_bin, os.X_OK):
            raise BenchError(f"no executable {self.mv_bin}: build first or set MULTIVAC_BIN")
        if not os.access(self.vegeta, os.X_OK):
            raise BenchError("vegeta not found (bench/run.sh installs it)")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.enqueue_usec = []
        self.start_stores()
        for db in ("mv", "peer"):
            self.seed_answer(db)
        if self.args.soak:
            self.mv_serve = self.start_multivac("multivac-serve", "serve", "mvs:", "mv")
            return {"soak": self.soak()}
        self.mv_serve = self.start_multivac("multivac-serve", "serve", "mvs:", "mv")
        self.mv_run = self.start_multivac("multivac-runserver", "runserver", "mvr:", "mv")
        self.nginx = self.start_nginx()
        try:
            self.h2o = self.start_h2o()
        except BenchError as e:
            self.h2o = None
            self.extra["h2o"] = f"did not start: {e}"
            self.error(f"h2o: {e}")
        self.flask = self.start_flask()
        # Every server answers the same body before anything is measured.
        for name, p in (("multivac", self.mv_serve), ("nginx", self.nginx), ("h2o", self.h2o), ("flask", self.flask)):
            if p is None:
                continue
            st, body = http_get(p.port, "/multivac")
            if st != 200 or body.decode(errors="replace") != BODY:
                self.error(f"{name}: GET /multivac answered {st} {body[:80]!r}, not 200 {BODY!r}")
        steps = [("throughput", self.scen_throughput), ("rq drain", self.scen_rq_drain),
                 ("latency", self.scen_latency), ("cpu+syscalls", self.scen_cpu), ("rss", self.scen_rss),
                 ("drain", self.scen_drain), ("reuseport", self.scen_reuseport)]
        only = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
        if only:
            # The latency step needs the peaks of a throughput step that did not run.
            self.peak = {("get", self.conns[0]): env_num("PEAK_GET", 100000, float),
                         ("post", self.conns[0]): env_num("PEAK_POST", 36000, float)}
            steps = [st for st in steps if st[0] in only]
        for name, fn in steps:
            log(f"--- {name}")
            fn()
            for p in self.procs:
                if not p.alive():
                    raise BenchError(f"{p.name} exited during {name}:\n{p.tail()}")
        return {"rows": self.rows, "details": self.extra}


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("req/s", "jobs/s"):
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def print_table(rows, out=sys.stdout):
    head = ("scenario", "figure", "peer", "peer figure", "ratio", "target", "met")
    lines = []
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append((r["scenario"], f"{fmt(r['value'], r['unit'])} {r['unit']}", r["peer"],
                      fmt(r["peer_value"], r["unit"]) if r["peer_value"] is not None else "-",
                      f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-", r["target"] or "", met))
    widths = [max(len(str(x[i])) for x in lines + [head]) for i in range(len(head))]
    for ln in [head, tuple("-" * w for w in widths)] + lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(ln, widths)).rstrip(), file=out)


def chart(rows, path, tmp):
    gp = shutil.which("gnuplot")
    if not gp:
        log("no gnuplot: chart skipped")
        return False
    data = os.path.join(tmp, "chart.dat")
    with open(data, "w") as f:
        for i, r in enumerate(x for x in rows if x["ratio"] and x["ratio"] > 0):
            # Shown so that right of 1 is MultiVAC ahead, whatever the unit.
            adv = 1 / r["ratio"] if r["lower_is_better"] else r["ratio"]
            label = f"{r['scenario']} vs {r['peer']}".replace('"', "'")
            if len(label) > 78:
                label = label[:75] + "..."
            f.write(f'{i} {adv:.6g} {min(128.0, max(1 / 64, adv)):.6g} "{label}"\n')
    n = sum(1 for _ in open(data))
    script = f"""set terminal pngcairo size 1400,{160 + 26 * n} font "DejaVu Sans,10"
set output "{path}"
set title "MultiVAC against its peers: advantage (figure / peer, inverted where lower is better); right of 1 = MultiVAC ahead"
set termoption noenhanced
set logscale x 2
set xrange [1.0/64:256]
set yrange [-1:{n}]
set xlabel "MultiVAC advantage over the peer (log scale)"
set ytics scale 0
unset key
set grid xtics
set style fill solid 0.8
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "black"
plot "{data}" using (1):({n}-1-$1):(($3<1)?$3:1):(($3>1)?$3:1):({n}-1.35-$1):({n}-0.65-$1):ytic(4) with boxxyerrorbars lc rgb "#3b7dd8", \\
     "{data}" using (($3>1)?$3*1.08:1.08):({n}-1-$1):(sprintf("%.2fx", $2)) with labels font ",9" left
"""
    sp = os.path.join(tmp, "chart.gp")
    with open(sp, "w") as f:
        f.write(script)
    r = subprocess.run([gp, sp], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr}")
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--soak", action="store_true")
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "latest.json"))
    ap.add_argument("--chart", default=None)
    args = ap.parse_args()
    b = Bench(args)
    stopping = []

    def on_signal(sig, _frame):
        stopping.append(sig)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.time()
    result, failed = None, False
    try:
        result = b.run()
    except BenchError as e:
        b.error(str(e))
        failed = True
    except KeyboardInterrupt:
        log("interrupted")
        failed = True
    finally:
        b.cleanup()
    if result:
        meta = {"mode": "smoke" if args.smoke else "soak" if args.soak else "full",
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "seconds": round(time.time() - started, 1), "multivac_bin": b.mv_bin,
                "git": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                      text=True).stdout.strip(),
                "host": {"cpus": os.cpu_count(), "kernel": os.uname().release},
                "settings": {"duration_s": b.duration, "repeat": b.repeat, "conns": b.conns,
                             "rss_conns": b.rss_conns, "drain_jobs": b.drain_jobs, "wrk_threads": 1},
                "errors": b.errors}
        result = {"meta": meta, **result}
        out = args.out if not args.soak else args.out.replace("latest.json", "soak.json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
        if "rows" in result:
            print_table(result["rows"])
            tmp = tempfile.mkdtemp(prefix="multivac-chart-")
            path = args.chart or os.path.join(BENCH, "results", "latest.png")
            if chart(result["rows"], path, tmp):
                log(f"chart: {path}")
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"results: {out}")
    if b.errors:
        log(f"{len(b.errors)} error(s):")
        for e in b.errors:
            log(f"  {e.splitlines()[0] if e else e}")
    if failed or (b.errors and (args.smoke or os.environ.get("BENCH_STRICT"))):
        sys.exit(1)


if __name__ == "__main__":
    main()

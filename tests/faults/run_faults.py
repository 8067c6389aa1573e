#!/usr/bin/python3
"""Fault injection for MultiVAC (issue #3, "never lose a datum").

Promise under test: every POST /multivac/data answered 200 is stored in MongoDB
exactly once, whatever crashes in between. Each scenario runs real processes
(the multivac binary, redis-server, FerretDB), injects one kind of fault, and
then checks the MongoDB contents against every id the clients were given.

    MULTIVAC_BIN=build/multivac /usr/bin/python3 tests/faults/run_faults.py [N ...]

Arguments choose scenarios by number (default: all). Environment:
  MULTIVAC_BIN            the binary under test (required)
  MULTIVAC_FAULTS_SCALE   float, scales the POST counts (default 1.0)
  MULTIVAC_FAULTS_REPORT  also write the report to this file
  MULTIVAC_FAULTS_SEED    random seed (default: time-based, printed)
  MULTIVAC_FAULTS_KEEP    1: keep the temporary directory (logs, data) afterwards

Scenarios:
  1 worker-kill         kill -9 of worker processes mid-batch; the reaper requeues
  2 redis-kill          kill -9 of an AOF Redis under POST load (frozen 0.2 s first, so
                        commands are in flight), restart on the same port and dir
  3 store-outage        FerretDB killed for 20 s while workers drain a backlog
  4 sigterm-under-load  graceful shutdown while clients POST and GET on keep-alive
  5 backpressure        MULTIVAC_QUEUE_MAX: 503 + Retry-After, memory flat
  6 store-refusal       FerretDB answering every insert InternalError (its full-disk answer,
                        made by capping its SQLite files with _pragma=max_page_count): 0 dead-
                        lettered, mongo_ready 0, all stored within 1 s of room returning
  7 redis-freeze        Redis SIGSTOPped 8 s under load: first document stored <= 1 s after
                        SIGCONT

Output: one figures line per scenario, its verdict, and finally "N passed, M failed";
exit status 0 only if every scenario passed.
"""

import collections
import ctypes
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import pymongo
import redis

START_TIMEOUT = 20.0  # seconds for a server to answer after start (busy machine)
CLIENT_TIMEOUT = 20.0  # seconds a client waits on one HTTP exchange
STORE_DEADLINE = 180.0  # seconds for a backlog to be stored once nothing blocks it
DRAIN_S = 0.5  # MULTIVAC_SHUTDOWN_DRAIN_MS of the SIGTERM scenario: accepting, then the listener closes
CONFIG_PREFIXES = ("MULTIVAC_", "REDIS_URL", "MONGO_")
ID_RE = re.compile(r"^[0-9a-f]{32}$")


def env_float(name, default):
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        sys.exit(f"run_faults: {name}={raw!r} is not a number")


SCALE = env_float("MULTIVAC_FAULTS_SCALE", 1.0)


def scaled(n, minimum=50):
    return max(minimum, int(round(n * SCALE)))


class ScenarioFailed(Exception):
    """A setup step of a scenario failed (not a checked figure)."""


# --- report -------------------------------------------------------------------------


class Report:
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()

    def line(self, text=""):
        with self.lock:
            self.lines.append(text)
            print(text, flush=True)

    def write_file(self):
        path = os.environ.get("MULTIVAC_FAULTS_REPORT")
        if not path:
            return
        try:
            with open(path, "w") as f:
                f.write("\n".join(self.lines) + "\n")
        except OSError as e:
            print(f"run_faults: cannot write report {path}: {e}", file=sys.stderr)


REPORT = Report()
INTERRUPTED = threading.Event()


def note(text):
    """A progress/detail line, indented under the scenario."""
    REPORT.line("    " + text)


# --- processes ------------------------------------------------------------------------

_libc = None


def _die_with_parent():
    """preexec_fn: SIGKILL this child if the runner dies (even by SIGKILL).

    PR_SET_PDEATHSIG fires when the forking *thread* exits, so children are only
    ever started from the main thread."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process with stdout+stderr in a log file."""

    def __init__(self, harness, name, argv, log_path, env=None):
        assert threading.current_thread() is threading.main_thread()
        self.name, self.argv, self.log_path = name, argv, log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, preexec_fn=_die_with_parent)
        self.pid = self.popen.pid
        self.started = time.monotonic()
        harness.procs.append(self)

    def alive(self):
        return self.popen.poll() is None

    def kill9(self):
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def terminate(self, timeout=15.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def log_tail(self, lines=30):
        return f"--- {self.name} (pid {self.pid}) {self.log_path} ---\n{tail(self.log_path, lines)}"


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ScenarioFailed(f"no VmRSS for pid {pid}")


def wait_until(check, timeout, what, interval=0.05):
    """Poll check() until truthy; return its value or raise ScenarioFailed."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - "not yet", reported on timeout
            last = e
        if time.monotonic() >= deadline:
            raise ScenarioFailed(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(interval)


class Harness:
    """Owns every process and the temporary directory; cleans up on any exit."""

    def __init__(self):
        self.bin = os.environ.get("MULTIVAC_BIN", "")
        if not self.bin or not os.access(self.bin, os.X_OK):
            sys.exit(f"run_faults: MULTIVAC_BIN={self.bin!r} is not an executable")
        self.bin = os.path.abspath(self.bin)
        self.redis_exe = shutil.which("redis-server")
        if not self.redis_exe:
            sys.exit("run_faults: redis-server not found on PATH")
        self.ferretdb = next((c for c in (os.environ.get("FERRETDB"), shutil.which("ferretdb"),
                                          "/usr/local/bin/ferretdb")
                              if c and os.access(c, os.X_OK)), None)
        if not self.ferretdb:
            sys.exit("run_faults: no ferretdb ($FERRETDB, PATH, /usr/local/bin)")
        self.tmp = tempfile.mkdtemp(prefix="multivac-faults-")
        self.procs = []
        self.clients = []  # redis / pymongo clients to close
        self.shared_redis = None
        self.shared_mongo = None
        self.counter = itertools.count()

    def path(self, *parts):
        """A path under the temporary directory; its parent directory exists."""
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def cleanup(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup runs to its end
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not INTERRUPTED.is_set():
            for c in self.clients:  # before their servers go
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass
        for p in reversed(self.procs):
            try:
                if p.alive():
                    p.popen.kill()
                p.popen.wait(timeout=10)
            except Exception:  # noqa: BLE001 - best effort
                pass
        if os.environ.get("MULTIVAC_FAULTS_KEEP") == "1":
            print(f"run_faults: kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- redis ------------------------------------------------------------------

    def start_redis(self, name, port=None, datadir=None, aof=False, ns=None):
        port = port or free_port()
        datadir = datadir or self.path(name)
        os.makedirs(datadir, exist_ok=True)
        argv = [self.redis_exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--dir", datadir, "--daemonize", "no"]
        if aof:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        proc = Proc(self, name, argv, os.path.join(datadir, "redis.log"))
        proc.port, proc.datadir = port, datadir
        if ns is not None:
            ns.servers.append(proc)
        proc.url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                             socket_connect_timeout=2)

        def up():
            if not proc.alive():
                raise ScenarioFailed(f"{name} exited ({proc.popen.returncode})\n"
                                     + proc.log_tail())
            try:
                return client.ping()
            except redis.RedisError:
                return False
        try:
            wait_until(up, START_TIMEOUT, f"{name} PING")
        finally:
            client.close()
        return proc

    def redis_client(self, server):
        c = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10,
                        socket_connect_timeout=5)
        self.clients.append(c)
        return c

    # -- mongo (FerretDB) ---------------------------------------------------------

    def start_mongo(self, name, port=None, datadir=None, ns=None, max_pages=None):
        """max_pages: cap every SQLite database file at that many 4 KiB pages, so the
        store answers each insert past it {ok: 0, code: 1, InternalError: database or
        disk is full}, exactly as FerretDB does on a full disk (no root, no mount)."""
        port = port or free_port()
        datadir = datadir or self.path(name)
        os.makedirs(datadir, exist_ok=True)
        url = f"file:{datadir}/"
        if max_pages:
            url += f"?_pragma=max_page_count({int(max_pages)})"
        argv = [self.ferretdb, "--handler=sqlite", f"--sqlite-url={url}",
                f"--listen-addr=127.0.0.1:{port}", "--log-level=error"]
        proc = Proc(self, name, argv, os.path.join(datadir, "ferretdb.log"))
        proc.port, proc.datadir = port, datadir
        if ns is not None:
            ns.servers.append(proc)
        proc.url = f"mongodb://127.0.0.1:{port}"
        client = pymongo.MongoClient(proc.url, serverSelectionTimeoutMS=500,
                                     connectTimeoutMS=500)

        def up():
            if not proc.alive():
                raise ScenarioFailed(f"{name} exited ({proc.popen.returncode})\n"
                                     + proc.log_tail())
            client.admin.command("ping")
            return True
        try:
            wait_until(up, 2 * START_TIMEOUT, f"{name} ping", interval=0.1)
        finally:
            client.close()
        return proc

    def mongo_client(self, server):
        # A short selection timeout: close() waits that long for a server that is gone.
        c = pymongo.MongoClient(server.url, serverSelectionTimeoutMS=3000,
                                socketTimeoutMS=60000, connectTimeoutMS=5000)
        self.clients.append(c)
        return c

    def shared(self, need_redis=True, need_mongo=True):
        """The Redis and FerretDB servers scenarios share (started on first use)."""
        if need_redis and not self.shared_redis:
            self.shared_redis = self.start_redis("redis-shared")
        if need_mongo and not self.shared_mongo:
            self.shared_mongo = self.start_mongo("ferretdb-shared")
        return self.shared_redis, self.shared_mongo

    # -- multivac ---------------------------------------------------------------

    def multivac(self, mode, redis_srv, mongo_srv, ns, extra=None, wait_ready=True):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
        env["MONGOC_DISABLE_SHM"] = "1"  # as in the image: no /dev/shm files to leave behind
        env.update({
            "MULTIVAC_LISTEN": f"127.0.0.1:{port}",
            "REDIS_URL": redis_srv.url,
            "MONGO_URL": mongo_srv.url,
            "MONGO_DB_NAME": ns.db,
            "MULTIVAC_PREFIX": ns.prefix,
            "MULTIVAC_LEASE_MS": "2000",
            "MULTIVAC_LOG_LEVEL": "info",
        })
        env.update(extra or {})
        n = next(self.counter)
        name = f"multivac-{mode}-{n}"
        proc = Proc(self, name, [self.bin, mode], self.path(ns.tag, f"{name}.log"), env=env)
        proc.port = port
        ns.procs.append(proc)
        if mode != "worker":
            def up(path):
                if not proc.alive():
                    raise ScenarioFailed(f"{name} exited ({proc.popen.returncode}) during start\n"
                                         + proc.log_tail())
                try:
                    return http_get(port, path, timeout=2)[0] == 200
                except OSError:
                    return False
            wait_until(lambda: up("/healthz"), START_TIMEOUT, f"{name} /healthz")
            if wait_ready:
                wait_until(lambda: up("/readyz"), START_TIMEOUT, f"{name} /readyz")
        return proc


class Namespace:
    """One scenario's Redis key prefix, MongoDB database and processes."""

    def __init__(self, number, name):
        tag = f"s{number}-{os.getpid()}-{random.getrandbits(32):08x}"
        self.tag = tag
        self.prefix = f"faults:{tag}:"
        self.db = "faults_" + tag.replace("-", "_")
        self.procs = []  # multivac processes
        self.servers = []  # Redis / FerretDB servers of this scenario only


# --- HTTP client ------------------------------------------------------------------------


class Outcome:
    """What happened to one request."""
    HTTP = "http"  # a complete response; see status
    REFUSED = "refused"  # connect(): ECONNREFUSED, or reset before it completed
    CONNECT_ERROR = "connect-error"  # connect() failed otherwise
    SEND_ERROR = "send-error"  # the request could not be written
    NO_RESPONSE = "no-response"  # fully sent, then reset/EOF before a complete response
    TIMEOUT = "timeout"  # no complete response within CLIENT_TIMEOUT
    BAD_RESPONSE = "bad-response"  # unparseable


class Result:
    __slots__ = ("kind", "status", "headers", "body", "t0", "t1", "fresh", "data", "error")

    def __init__(self, kind, t0, fresh, status=None, headers=None, body=b"", error=None):
        self.kind, self.t0, self.fresh = kind, t0, fresh
        self.status, self.headers, self.body, self.error = status, headers, body, error
        self.t1 = time.monotonic()
        self.data = None

    @property
    def latency(self):
        return self.t1 - self.t0


class Client:
    """One keep-alive HTTP/1.1 connection, reopened after Connection: close or errors.

    Raw sockets rather than http.client: faster, and every failure is classified
    (refused / reset before the request was written / reset after it was)."""

    def __init__(self, port, timeout=CLIENT_TIMEOUT):
        self.port, self.timeout = port, timeout
        self.sock = None
        self.buf = b""
        self.closes = 0  # connections closed because the server said so

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def exchange(self, raw):
        t0 = time.monotonic()
        fresh = self.sock is None
        if fresh:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                s.connect(("127.0.0.1", self.port))
            except (ConnectionRefusedError, ConnectionResetError) as e:
                # Reset during connect(): the handshake was still in the listen
                # queue when the listener closed. No request was sent, so like a
                # refusal it is a connection not made, not a request lost.
                s.close()
                return Result(Outcome.REFUSED, t0, fresh, error=e)
            except socket.timeout as e:
                s.close()
                return Result(Outcome.CONNECT_ERROR, t0, fresh, error=e)
            except OSError as e:
                s.close()
                return Result(Outcome.CONNECT_ERROR, t0, fresh, error=e)
            self.sock = s
            self.buf = b""
        try:
            self.sock.sendall(raw)
        except socket.timeout as e:
            self.close()
            return Result(Outcome.TIMEOUT, t0, fresh, error=e)
        except OSError as e:
            self.close()
            return Result(Outcome.SEND_ERROR, t0, fresh, error=e)
        try:
            status, headers, body = self._read_response()
        except socket.timeout as e:
            self.close()
            return Result(Outcome.TIMEOUT, t0, fresh, error=e)
        except (OSError, EOFError) as e:
            self.close()
            return Result(Outcome.NO_RESPONSE, t0, fresh, error=e)
        except ValueError as e:
            self.close()
            return Result(Outcome.BAD_RESPONSE, t0, fresh, error=e)
        if headers.get("connection", "").lower() == "close":
            self.closes += 1
            self.close()
        return Result(Outcome.HTTP, t0, fresh, status, headers, body)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server before a complete response")
        self.buf += chunk

    def _read_response(self):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > 65536:
                raise ValueError("response head too large")
            self._fill()
        head = self.buf[:end].decode("latin-1").split("\r\n")
        self.buf = self.buf[end + 4:]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line {head[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raise ValueError("chunked response not expected")
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def post_request(value):
    body = urllib.parse.urlencode({"data": value}).encode()
    return (b"POST /multivac/data HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


GET_ANSWER = b"GET /multivac HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def http_get(port, path, timeout=5.0):
    c = Client(port, timeout)
    try:
        r = c.exchange(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                       .encode())
    finally:
        c.close()
    if r.kind != Outcome.HTTP:
        raise OSError(f"GET {path}: {r.kind} {r.error}")
    return r.status, r.headers, r.body


def post(client, value):
    r = client.exchange(post_request(value))
    r.data = value
    return r


def acked_id(r):
    """The job id of a 200 answer, or None (a 200 without a valid id is a failure)."""
    if r.kind != Outcome.HTTP or r.status != 200:
        return None
    try:
        doc = json.loads(r.body)
    except ValueError:
        return None
    job_id = doc.get("id") if isinstance(doc, dict) else None
    if doc.get("response") != "MultiVAC updated!" or not isinstance(job_id, str) \
            or not ID_RE.match(job_id):
        return None
    return job_id


class Load:
    """Client threads running fn(thread_index, client, results) until it returns False."""

    def __init__(self, port, threads, fn):
        self.port, self.fn = port, fn
        self.stop = threading.Event()
        self.results = [[] for _ in range(threads)]
        self.errors = []
        self.clients = [Client(port) for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def _run(self, i):
        try:
            while not self.stop.is_set():
                if self.fn(i, self.clients[i], self.results[i]) is False:
                    break
        except Exception:  # noqa: BLE001 - a test bug; reported
            self.errors.append(traceback.format_exc())
        finally:
            self.clients[i].close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self.threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            raise ScenarioFailed("client threads did not finish")
        if self.errors:
            raise ScenarioFailed("client thread crashed:\n" + self.errors[0])
        return [r for rs in self.results for r in rs]

    def finish(self, timeout=2 * CLIENT_TIMEOUT + 10):
        self.stop.set()
        return self.join(timeout)


def post_n(port, tag, count, threads=8, start=0):
    """POST data=<tag>-<n> for n in [start, start+count) from `threads` keep-alive clients."""
    seq = itertools.count(start)
    end = start + count

    def fn(i, client, out):
        n = next(seq)
        if n >= end:
            return False
        out.append(post(client, f"{tag}-{n}"))
        return True
    return Load(port, threads, fn).start().join(timeout=600)


def summarize_kinds(results):
    c = collections.Counter()
    for r in results:
        c[r.kind if r.kind != Outcome.HTTP else f"http {r.status}"] += 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))


# --- MongoDB checks ---------------------------------------------------------------------


class StoreCheck:
    def __init__(self, acked, docs):
        """acked: {id: data} of 200 answers; docs: [(id, data)] found in the collection."""
        by_id = collections.Counter(d[0] for d in docs)
        by_data = collections.Counter(d[1] for d in docs)
        stored = {d[0]: d[1] for d in docs}
        acked_data = set(acked.values())
        self.acknowledged = len(acked)
        self.stored = len(docs)
        self.lost = sum(1 for i in acked if i not in stored)
        self.duplicates = (sum(n - 1 for n in by_data.values() if n > 1)
                           + sum(n - 1 for n in by_id.values() if n > 1))
        self.mismatched = sum(1 for i, d in acked.items() if i in stored and stored[i] != d)
        # Stored documents whose POST got no 200 (its reply was lost, or a bug).
        self.unacked_stored = sum(1 for i, d in stored.items()
                                  if i not in acked and d not in acked_data)
        self.lost_examples = [i for i in acked if i not in stored][:5]
        self.duplicate_examples = [d for d, n in by_data.items() if n > 1][:5]


def fetch_docs(coll):
    return [(d["_id"], d.get("data")) for d in coll.find({}, {"data": 1}, batch_size=5000)]


def wait_stored(coll, acked, timeout=STORE_DEADLINE, alive=None, pending=None):
    """Wait until every acked id is in coll; return (StoreCheck, seconds waited, done).

    alive() raises if a process that should be storing has died. pending() counts the
    jobs still in Redis: once it is 0 and the count has not moved for 10 s (several
    leases), nothing more can come and the wait ends early."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    want = len(acked)
    last_n, last_change = None, t0
    while True:
        try:
            n = coll.count_documents({})
        except pymongo.errors.PyMongoError:
            n = -1
        now = time.monotonic()
        if n != last_n:
            last_n, last_change = n, now
        if n >= want:
            check = StoreCheck(acked, fetch_docs(coll))
            if check.lost == 0:
                return check, time.monotonic() - t0, True
        if alive is not None:
            alive()
        settled = (pending is not None and n >= 0 and now - last_change > 10
                   and pending() == 0)
        if settled or now >= deadline:
            return StoreCheck(acked, fetch_docs(coll)), time.monotonic() - t0, False
        time.sleep(0.1 if n < 0 or want - n > 1000 else 0.05)


def redis_residue(r, ns):
    """Jobs still in Redis: pending plus every processing list."""
    total = r.llen(ns.prefix + "jobs")
    for key in r.scan_iter(match=ns.prefix + "processing:*", count=1000):
        total += r.llen(key)
    return total


def wait_residue(r, ns, timeout=30.0):
    """Jobs left in Redis once the workers had time to acknowledge (and reap)."""
    deadline = time.monotonic() + timeout
    while True:
        n = redis_residue(r, ns)
        if n == 0 or time.monotonic() >= deadline:
            return n
        time.sleep(0.1)


def requeued_from_logs(procs):
    """Jobs the reapers say they requeued (informational: parsed from their logs)."""
    total = 0
    for p in procs:
        try:
            with open(p.log_path, "rb") as f:
                for line in f:
                    if b"requeued jobs" not in line:
                        continue
                    try:
                        total += int(json.loads(line).get("jobs", "0"))
                    except (ValueError, AttributeError):
                        pass
        except OSError:
            pass
    return total


# --- scenarios --------------------------------------------------------------------------


class Verdict:
    def __init__(self, number, name):
        self.number, self.name = number, name
        self.failures = []

    def require(self, ok, why):
        if not ok:
            self.failures.append(why)
        return ok


def check_store_figures(v, check, done, r, ns, *, unacked_allowed=False):
    if not (done and check.lost == 0):
        try:
            where = (f"; in Redis: {redis_residue(r, ns)} queued, "
                     f"{r.llen(ns.prefix + 'dead')} dead-lettered")
        except redis.RedisError as e:
            where = f"; Redis: {e}"
        v.failures.append(f"lost {check.lost} acknowledged data (ids not in MongoDB, e.g. "
                          f"{check.lost_examples}){where}")
    v.require(check.duplicates == 0,
              f"{check.duplicates} duplicate documents (e.g. data {check.duplicate_examples})")
    v.require(check.mismatched == 0, f"{check.mismatched} stored ids carry other data")
    if not unacked_allowed:
        v.require(check.unacked_stored == 0,
                  f"{check.unacked_stored} documents stored for POSTs that were never "
                  f"acknowledged")


def collect_acked(results, v):
    acked = {}
    for r in results:
        if r.kind == Outcome.HTTP and r.status == 200:
            job_id = acked_id(r)
            if not v.require(job_id is not None, f"200 without a valid id: {r.body[:200]!r}"):
                continue
            if not v.require(job_id not in acked, f"id {job_id} returned twice"):
                continue
            acked[job_id] = r.data
    return acked


def scenario_worker_kill(h, ns, v):
    redis_srv, mongo_srv = h.shared()
    r = h.redis_client(redis_srv)
    coll = h.mongo_client(mongo_srv)[ns.db]["entropy"]
    total = scaled(20000)
    server = h.multivac("runserver", redis_srv, mongo_srv, ns)
    t0 = time.monotonic()
    results = post_n(server.port, ns.tag, total)
    post_s = time.monotonic() - t0
    acked = collect_acked(results, v)
    note(f"posted {len(results)} in {post_s:.1f} s ({len(results) / post_s:.0f}/s): "
         f"{summarize_kinds(results)}")
    v.require(len(acked) == total, f"only {len(acked)} of {total} POSTs acknowledged "
              f"({summarize_kinds(results)})")
    pending = r.llen(ns.prefix + "jobs")
    v.require(pending == len(acked), f"{pending} jobs in Redis after {len(acked)} acks")

    worker_env = {"MULTIVAC_BATCH": "16", "MULTIVAC_WORKERS": "2"}
    kills, in_flight_at_kills, rng = 5, [], random.Random(random.random())
    workers = []
    last_kill = None
    for k in range(kills):
        w = h.multivac("worker", redis_srv, mongo_srv, ns, worker_env)
        workers.append(w)
        marker = f":{w.pid}:"

        def claiming():
            if not w.alive():
                raise ScenarioFailed(f"worker exited ({w.popen.returncode})\n" + w.log_tail())
            return any(marker in key.decode()
                       for key in r.scan_iter(match=ns.prefix + "processing:*", count=1000))
        wait_until(claiming, START_TIMEOUT, f"worker {k + 1} to claim jobs", interval=0.01)
        # A worker drains thousands of jobs a second even in batches of 16 (one
        # Redis round trip per batch): kill within 0.15 s, sooner at small scales,
        # so all five kills land before the queue runs dry.
        time.sleep(rng.uniform(0.02, min(0.15, max(0.05, 0.15 * SCALE))))
        remaining = redis_residue(r, ns)
        if not v.require(remaining > 0, f"kill {k + 1}: no jobs left to kill mid-drain "
                         f"(drain too fast for this scale)"):
            break
        w.kill9()
        last_kill = time.monotonic()
        held = sum(r.llen(key) for key in r.scan_iter(match=ns.prefix + "processing:*",
                                                      count=1000)
                   if marker in key.decode())
        in_flight_at_kills.append(held)
        note(f"kill {k + 1}: worker pid {w.pid} killed -9 holding {held} jobs, "
             f"{remaining} jobs left in Redis")
    v.require(any(in_flight_at_kills),
              "no kill landed while a worker held a batch (test did not exercise the reaper)")
    final = h.multivac("worker", redis_srv, mongo_srv, ns, worker_env)
    workers.append(final)

    def final_alive():
        if not final.alive():
            raise ScenarioFailed(f"last worker exited ({final.popen.returncode})\n"
                                 + final.log_tail())
    check, _, done = wait_stored(coll, acked, alive=final_alive,
                                 pending=lambda: redis_residue(r, ns))
    recovery = time.monotonic() - (last_kill or time.monotonic())
    residue = wait_residue(r, ns) if done else redis_residue(r, ns)
    v.require(residue == 0, f"{residue} jobs still in Redis after everything was stored")
    requeued = requeued_from_logs(workers)
    v.require(check.stored == len(acked), f"{check.stored} documents for {len(acked)} acks")
    check_store_figures(v, check, done, r, ns)
    status = final.terminate()
    v.require(status == 0, f"last worker exited {status} on SIGTERM")
    return (f"acknowledged {len(acked)}, stored {check.stored}, lost {check.lost}, "
            f"duplicates {check.duplicates}, recovery {recovery:.1f} s, kills {len(in_flight_at_kills)}, "
            f"held at kills {sum(in_flight_at_kills)}, requeued {requeued}, left in redis {residue}")


def paced_posts(port, tag, threads, rate, seconds_fn, extra=None, pace=None):
    """Load: `threads` clients POSTing <tag>-<n> at `rate` requests/s in total until
    seconds_fn() is False (as fast as they can while pace() is False); extra(i, client,
    out) may replace a POST (e.g. a GET)."""
    seq = itertools.count()
    interval = threads / rate
    next_at = [None] * threads

    def fn(i, client, out):
        if not seconds_fn():
            return False
        now = time.monotonic()
        if next_at[i] is None:
            next_at[i] = now + random.uniform(0, interval)
        if next_at[i] > now and (pace is None or pace()):
            time.sleep(next_at[i] - now)
        next_at[i] = max(next_at[i] + interval, time.monotonic() - 10 * interval)
        if extra is None or not extra(i, client, out):
            out.append(post(client, f"{tag}-{next(seq)}"))
        return True
    return Load(port, threads, fn).start()


def scenario_redis_kill(h, ns, v):
    _, mongo_srv = h.shared(need_redis=False)
    coll = h.mongo_client(mongo_srv)[ns.db]["entropy"]
    rs = h.start_redis(f"redis-aof-{ns.tag}", datadir=h.path(ns.tag, "redis-aof"), aof=True,
                       ns=ns)
    server = h.multivac("serve", rs, mongo_srv, ns)
    load_s, kill_at, down_s = 8.0, 2.0, 2.0
    t0 = time.monotonic()
    load = paced_posts(server.port, ns.tag, 6, scaled(30000) / load_s,
                       lambda: time.monotonic() - t0 < load_s)
    time.sleep(max(0.0, t0 + kill_at - time.monotonic()))
    # Frozen for a moment first, so that the kill always finds commands in flight:
    # unread requests in its sockets (the kernel then resets the connections rather
    # than closing them cleanly) and replies never sent.
    rs.popen.send_signal(signal.SIGSTOP)
    time.sleep(0.2)
    rs.kill9()
    t_kill = time.monotonic()
    note(f"redis stopped at {kill_at:.2f} s, killed -9 at {t_kill - t0:.2f} s")
    time.sleep(max(0.0, t_kill + down_s - time.monotonic()))
    t_restart = time.monotonic()
    rs2 = h.start_redis(f"redis-aof-{ns.tag}-restarted", port=rs.port, datadir=rs.datadir,
                        aof=True, ns=ns)
    r = h.redis_client(rs2)
    note(f"redis restarted at {t_restart - t0:.2f} s (answering PING after "
         f"{time.monotonic() - t_restart:.2f} s)")
    results = load.join(timeout=load_s + 2 * CLIENT_TIMEOUT + 10)
    alive = server.alive()
    v.require(alive, f"multivac exited ({server.popen.returncode}) during the Redis outage")

    acked = collect_acked(results, v)
    ok = [r for r in results if r.kind == Outcome.HTTP and r.status == 200]
    unavailable = [r for r in results if r.kind == Outcome.HTTP and r.status == 503]
    other = [r for r in results if not (r.kind == Outcome.HTTP and r.status in (200, 503))]
    max_503 = max((r.latency for r in unavailable), default=0.0)
    slow_503 = sum(1 for r in unavailable if r.latency >= 1.0)
    no_retry_after = sum(1 for r in unavailable if "retry-after" not in r.headers)
    during = [r for r in ok if r.t0 > t_kill and r.t1 < t_restart]
    after = [r.t1 - t_restart for r in ok if r.t1 > t_restart]
    first_200 = min(after) if after else None
    note(f"outcomes: {summarize_kinds(results)}")
    v.require(not other, f"{len(other)} requests neither 200 nor 503: "
              f"{summarize_kinds(other)}; first: {other[0].kind if other else ''} "
              f"{other[0].status if other else ''} {other[0].error if other else ''}")
    v.require(unavailable, "no 503 at all: the Redis outage was not observed")
    v.require(max_503 < 1.0, f"slowest 503 took {max_503:.2f} s (limit 1 s; {slow_503} of "
              f"{len(unavailable)} took 1 s or more)")
    v.require(no_retry_after == 0, f"{no_retry_after} 503s without Retry-After")
    v.require(not during, f"{len(during)} POSTs acknowledged while Redis was dead")
    v.require(first_200 is not None and first_200 < 2.0,
              f"first 200 after the Redis restart came after {first_200} s (limit 2 s)")

    def server_alive():
        if not server.alive():
            raise ScenarioFailed(f"multivac exited ({server.popen.returncode})\n"
                                 + server.log_tail())
    check, waited, done = wait_stored(coll, acked, alive=server_alive,
                                      pending=lambda: redis_residue(r, ns))
    check_store_figures(v, check, done, r, ns, unacked_allowed=True)
    status = server.terminate()
    v.require(status == 0, f"multivac exited {status} on SIGTERM")
    first = f"{first_200:.2f} s" if first_200 is not None else "never"
    return (f"acknowledged {len(acked)}, 503 {len(unavailable)} (slowest {max_503 * 1000:.0f} ms), "
            f"other {len(other)}, stored {check.stored}, lost {check.lost}, "
            f"duplicates {check.duplicates}, unacked but stored {check.unacked_stored}, "
            f"first 200 after restart {first}, stored all after {waited:.1f} s")


def scenario_store_outage(h, ns, v):
    redis_srv, _ = h.shared(need_mongo=False)
    r = h.redis_client(redis_srv)
    ms = h.start_mongo(f"ferretdb-{ns.tag}", datadir=h.path(ns.tag, "ferretdb"), ns=ns)
    mc = h.mongo_client(ms)
    coll = mc[ns.db]["entropy"]
    server = h.multivac("serve", redis_srv, ms, ns, {"MULTIVAC_BATCH": "16"})
    total, outage_s = scaled(5000), 20.0
    # The store dies halfway through the POSTs while the workers drain: the second
    # half is accepted during the outage, so a backlog exists at any scale.
    seq = itertools.count()

    def fn(i, client, out):
        n = next(seq)
        if n >= total:
            return False
        out.append(post(client, f"{ns.tag}-{n}"))
        return True
    load = Load(server.port, 8, fn).start()
    wait_until(lambda: sum(len(x) for x in load.results) >= total // 2 or load.errors,
               120, "half of the POSTs", interval=0.005)
    stored_before = coll.count_documents({})
    ms.kill9()
    t_down = time.monotonic()
    results = load.join(timeout=600)
    # CPU is measured from the end of the POSTs to the end of the outage.
    cpu0, t_cpu0 = proc_cpu_seconds(server.pid), time.monotonic()
    backlog = redis_residue(r, ns)
    note(f"FerretDB killed -9 after {stored_before} documents stored; posted {len(results)} "
         f"({summarize_kinds(results)}); {backlog} jobs waiting in Redis")
    v.require(all(x.kind == Outcome.HTTP and x.status == 200 for x in results),
              f"not every POST acknowledged (Redis is up): {summarize_kinds(results)}")
    v.require(backlog > 0, "no backlog during the outage (test did not exercise it)")
    time.sleep(max(0.0, t_down + outage_s - time.monotonic()))
    v.require(server.alive(), f"multivac exited ({server.popen.returncode}) during the outage")
    cpu = proc_cpu_seconds(server.pid) - cpu0
    window = time.monotonic() - t_cpu0
    outage = time.monotonic() - t_down
    held = redis_residue(r, ns)
    note(f"after {outage:.1f} s of outage: multivac used {cpu:.2f} s CPU in the last "
         f"{window:.1f} s; {held} jobs in Redis")
    v.require(cpu <= 2.0, f"multivac used {cpu:.2f} s of CPU in {window:.0f} s of store "
              f"outage (limit 2 s: busy loop?)")
    t_up = time.monotonic()
    h.start_mongo(f"ferretdb-{ns.tag}-restarted", port=ms.port, datadir=ms.datadir, ns=ns)
    acked = collect_acked(results, v)

    def server_alive():
        if not server.alive():
            raise ScenarioFailed(f"multivac exited ({server.popen.returncode})\n"
                                 + server.log_tail())
    check, _, done = wait_stored(coll, acked, alive=server_alive,
                                 pending=lambda: redis_residue(r, ns))
    recovery = time.monotonic() - t_up
    residue = wait_residue(r, ns) if done else redis_residue(r, ns)
    v.require(residue == 0, f"{residue} jobs still in Redis after everything was stored")
    v.require(check.stored == len(acked), f"{check.stored} documents for {len(acked)} acks")
    check_store_figures(v, check, done, r, ns)
    status = server.terminate()
    v.require(status == 0, f"multivac exited {status} on SIGTERM")
    return (f"acknowledged {len(acked)}, backlog at outage {backlog}, outage {outage:.1f} s, "
            f"CPU during outage {cpu:.2f} s, stored {check.stored}, lost {check.lost}, "
            f"duplicates {check.duplicates}, recovery {recovery:.1f} s")


def scenario_sigterm(h, ns, v):
    redis_srv, mongo_srv = h.shared()
    r = h.redis_client(redis_srv)
    coll = h.mongo_client(mongo_srv)[ns.db]["entropy"]
    limit = 10.0
    server = h.multivac("serve", redis_srv, mongo_srv, ns,
                        {"MULTIVAC_SHUTDOWN_TIMEOUT": str(int(limit)),
                         "MULTIVAC_SHUTDOWN_DRAIN_MS": str(int(DRAIN_S * 1000))})
    threads, getters, term_at = 8, 2, 3.0
    stop_at = [None]  # set once the process has exited

    def running():
        return stop_at[0] is None or time.monotonic() < stop_at[0]

    def maybe_get(i, client, out):
        if i >= getters:
            return False
        res = client.exchange(GET_ANSWER)
        out.append(res)
        return True
    t0 = time.monotonic()
    # Paced until SIGTERM, then flat out: the most connection churn at the drain's end.
    load = paced_posts(server.port, ns.tag, threads, scaled(5000), running, extra=maybe_get,
                       pace=lambda: time.monotonic() < t0 + term_at)
    time.sleep(max(0.0, t0 + term_at - time.monotonic()))
    t_term = time.monotonic()
    server.popen.send_signal(signal.SIGTERM)
    try:
        status = server.popen.wait(timeout=limit + 20)
    except subprocess.TimeoutExpired:
        status = None
    exit_s = time.monotonic() - t_term
    stop_at[0] = time.monotonic() + 0.5  # clients meet the closed port for a moment
    results = load.join(timeout=2 * CLIENT_TIMEOUT + 10)
    v.require(status == 0, f"multivac exit status {status} after SIGTERM (want 0)")
    v.require(exit_s < limit, f"exit took {exit_s:.1f} s (limit {limit:.0f} s)")

    posts = [x for x in results if x.data is not None]
    gets = [x for x in results if x.data is None]
    ok = [x for x in results if x.kind == Outcome.HTTP and 200 <= x.status < 300]
    five = [x for x in results if x.kind == Outcome.HTTP and x.status >= 500]
    other_status = [x for x in results if x.kind == Outcome.HTTP and not 200 <= x.status < 300
                    and x.status < 500]
    refused_after = [x for x in results if x.kind == Outcome.REFUSED and x.t0 >= t_term]
    refused_before = [x for x in results if x.kind == Outcome.REFUSED and x.t0 < t_term]
    resets = [x for x in results if x.kind in (Outcome.NO_RESPONSE, Outcome.SEND_ERROR)]
    # The listener closes when the drain ends: the server first accepts every connection
    # the kernel has completed, but one completed between that last accept() and close()
    # is reset by the kernel, request unread (no listening socket can close without this
    # window). Such a reset can only hit a fresh connection opened at that moment; any
    # other reset is the server's fault. The acknowledged/stored check below still holds.
    close_race = [x for x in resets if x.fresh and abs(x.t0 - t_term - DRAIN_S) < 0.1]
    resets = [x for x in resets if x not in close_race]
    errors = [x for x in results if x.kind in (Outcome.CONNECT_ERROR, Outcome.TIMEOUT,
                                              Outcome.BAD_RESPONSE)]
    closes = sum(c.closes for c in load.clients)
    note(f"outcomes: {summarize_kinds(results)}; {closes} connections closed by the server "
         f"(Connection: close)")
    for x in (resets + errors + refused_before)[:8]:
        note(f"{x.kind}: {'fresh' if x.fresh else 'reused'} connection, "
             f"{'POST' if x.data else 'GET'} started {x.t0 - t_term:+.3f} s after SIGTERM: "
             f"{x.error!r}")
    v.require(not five, f"{len(five)} 5xx answers: {[x.body[:100] for x in five[:3]]}")
    v.require(not other_status, f"{len(other_status)} unexpected statuses: "
              f"{summarize_kinds(other_status)}")
    for x in close_race:
        note(f"listener-close race: fresh connection, {'POST' if x.data else 'GET'} started "
             f"{x.t0 - t_term:+.3f} s after SIGTERM (drain ends at +{DRAIN_S:.3f} s): {x.error!r}")
    v.require(len(close_race) <= 2, f"{len(close_race)} fresh connections reset as the listener "
              f"closed (at most 2 expected in that instant)")
    v.require(not resets, f"{len(resets)} requests reset after being sent "
              f"({sum(1 for x in resets if x.fresh)} on fresh connections, "
              f"{sum(1 for x in resets if not x.fresh)} on reused ones)")
    v.require(not refused_before, f"{len(refused_before)} connections refused before SIGTERM")
    v.require(not errors, f"{len(errors)} other client errors: {summarize_kinds(errors)}")
    acked = collect_acked(posts, v)
    after_term = sum(1 for x in posts if acked_id(x) and x.t0 >= t_term)
    left = redis_residue(r, ns)
    note(f"{len(acked)} acknowledged ({after_term} sent after SIGTERM); {left} left in Redis; "
         f"draining with a worker")
    worker = h.multivac("worker", redis_srv, mongo_srv, ns)

    def worker_alive():
        if not worker.alive():
            raise ScenarioFailed(f"worker exited ({worker.popen.returncode})\n"
                                 + worker.log_tail())
    check, _, done = wait_stored(coll, acked, alive=worker_alive,
                                 pending=lambda: redis_residue(r, ns))
    check_store_figures(v, check, done, r, ns, unacked_allowed=True)
    wstatus = worker.terminate()
    v.require(wstatus == 0, f"worker exited {wstatus} on SIGTERM")
    return (f"requests {len(results)} ({len(posts)} POST, {len(gets)} GET), 2xx {len(ok)}, "
            f"5xx {len(five)}, reset {len(resets)}, reset as the listener closed {len(close_race)}, "
            f"refused after stop {len(refused_after)}, "
            f"other {len(other_status) + len(errors) + len(refused_before)}, "
            f"exit {status} after {exit_s:.2f} s, acknowledged {len(acked)}, "
            f"stored {check.stored}, lost {check.lost}, duplicates {check.duplicates}")


def scenario_backpressure(h, ns, v):
    redis_srv, mongo_srv = h.shared()
    r = h.redis_client(redis_srv)
    coll = h.mongo_client(mongo_srv)[ns.db]["entropy"]
    qmax, slack = 1000, 1024
    server = h.multivac("runserver", redis_srv, mongo_srv, ns,
                        {"MULTIVAC_QUEUE_MAX": str(qmax)})
    seq = itertools.count()
    full = []

    def fill(i, client, out):
        if len(full) >= 200:
            return False
        res = post(client, f"{ns.tag}-{next(seq)}")
        out.append(res)
        if res.kind == Outcome.HTTP and res.status == 503:
            full.append(res)
        return len(out) < 10 * (qmax + slack)  # a bound, should the 503 never come
    results = Load(server.port, 8, fill).start().join(timeout=300)
    acked = collect_acked(results, v)
    unavailable = [x for x in results if x.kind == Outcome.HTTP and x.status == 503]
    other = [x for x in results if not (x.kind == Outcome.HTTP and x.status in (200, 503))]
    first_full = min((x.t1 for x in unavailable), default=None)
    late_ok = [x for x in results if acked_id(x) and first_full is not None
               and x.t0 > first_full]
    no_retry = [x for x in unavailable if not x.headers.get("retry-after", "").isdigit()]
    note(f"fill: {summarize_kinds(results)}; {len(late_ok)} 200s sent after the first 503")
    v.require(unavailable, "no 503 while the queue only grew")
    v.require(qmax <= len(acked) <= qmax + slack,
              f"{len(acked)} acknowledged before 503s (want {qmax}..{qmax + slack})")
    v.require(not late_ok, f"{len(late_ok)} POSTs acknowledged after the queue was full")
    v.require(not no_retry, f"{len(no_retry)} 503s without a numeric Retry-After")
    v.require(not other, f"other outcomes: {summarize_kinds(other)}")
    depth = r.llen(ns.prefix + "jobs")
    v.require(depth == len(acked), f"{depth} jobs in Redis for {len(acked)} acks")

    # Memory under a flood of refused POSTs with 1 KiB bodies.
    rss0 = proc_rss_kb(server.pid)
    flood = scaled(20000)
    pad = "x" * 1000
    seq2 = itertools.count()

    def flood_fn(i, client, out):
        n = next(seq2)
        if n >= flood:
            return False
        out.append(post(client, f"{ns.tag}-flood-{n}-{pad}"))
        return True
    t0 = time.monotonic()
    flood_results = Load(server.port, 8, flood_fn).start().join(timeout=600)
    flood_s = time.monotonic() - t0
    rss1 = proc_rss_kb(server.pid)
    bad = [x for x in flood_results if not (x.kind == Outcome.HTTP and x.status == 503
                                            and x.headers.get("retry-after", "").isdigit())]
    growth_mb = (rss1 - rss0) / 1024
    note(f"flood: {len(flood_results)} POSTs in {flood_s:.1f} s: {summarize_kinds(flood_results)}")
    v.require(not bad, f"{len(bad)} of the flood were not 503 + Retry-After: "
              f"{summarize_kinds(bad)}")
    v.require(growth_mb < 10, f"RSS grew {growth_mb:.1f} MB under {len(flood_results)} refused "
              f"POSTs (limit 10 MB)")
    v.require(server.alive(), "multivac exited during the flood")
    worker = h.multivac("worker", redis_srv, mongo_srv, ns)

    def worker_alive():
        if not worker.alive():
            raise ScenarioFailed(f"worker exited ({worker.popen.returncode})\n"
                                 + worker.log_tail())
    check, _, done = wait_stored(coll, acked, alive=worker_alive,
                                 pending=lambda: redis_residue(r, ns))
    residue = wait_residue(r, ns) if done else redis_residue(r, ns)
    v.require(residue == 0, f"{residue} jobs still in Redis after everything was stored")
    v.require(check.stored == len(acked), f"{check.stored} documents for {len(acked)} acks")
    check_store_figures(v, check, done, r, ns)
    for p in (worker, server):
        status = p.terminate()
        v.require(status == 0, f"{p.name} exited {status} on SIGTERM")
    return (f"acknowledged {len(acked)} (queue max {qmax}), 503 {len(unavailable)} + "
            f"{len(flood_results)} flood, RSS {rss0 / 1024:.1f} MB -> {rss1 / 1024:.1f} MB "
            f"(+{growth_mb:.1f} MB), stored {check.stored}, lost {check.lost}, "
            f"duplicates {check.duplicates}")


def metrics_values(port):
    """{name: value} of the unlabelled lines of GET /metrics."""
    status, _, body = http_get(port, "/metrics")
    if status != 200:
        raise ScenarioFailed(f"GET /metrics -> {status}")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def first_growth(coll, base, since, timeout=60.0):
    """Seconds from `since` until coll holds more than `base` documents (or None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if coll.count_documents({}) > base:
                return time.monotonic() - since
        except pymongo.errors.PyMongoError:
            pass
        time.sleep(0.02)
    return None


def scenario_store_refusal(h, ns, v):
    """The store refuses every write with a command-level error (FerretDB's answer on a
    full disk, {ok: 0, code: 1, InternalError}): an outage, not dead letters."""
    redis_srv, _ = h.shared(need_mongo=False)
    r = h.redis_client(redis_srv)
    datadir = h.path(ns.tag, "ferretdb-full")
    ms = h.start_mongo(f"ferretdb-full-{ns.tag}", datadir=datadir, ns=ns, max_pages=48)
    coll = h.mongo_client(ms)[ns.db]["entropy"]
    # Two attempts would dead-letter a refused document within a second.
    server = h.multivac("serve", redis_srv, ms, ns,
                        {"MULTIVAC_BATCH": "16", "MULTIVAC_MAX_ATTEMPTS": "2"})
    total, refusing_s = scaled(3000), 8.0
    pad = "r" * 150
    results = []
    seq = itertools.count()

    def fn(i, client, out):
        n = next(seq)
        if n >= total:
            return False
        out.append(post(client, f"{ns.tag}-{n}-{pad}"))
        return True
    results = Load(server.port, 8, fn).start().join(timeout=600)
    acked = collect_acked(results, v)
    v.require(len(acked) == total, f"only {len(acked)} of {total} POSTs acknowledged "
              f"({summarize_kinds(results)})")
    # The disk fills while the workers drain, then every insert is refused.
    wait_until(lambda: metrics_values(server.port).get("multivac_store_unavailable_total", 0) > 0,
               60, "the store to refuse writes (multivac_store_unavailable_total > 0)")
    t_full = time.monotonic()
    stored_full = coll.count_documents({})
    time.sleep(refusing_s)
    m = metrics_values(server.port)
    dead_during = r.llen(ns.prefix + "dead")
    held = redis_residue(r, ns)
    stored_full = coll.count_documents({})
    note(f"store full after {stored_full} documents; refusing for {time.monotonic() - t_full:.1f}"
         f" s: {held} jobs held in Redis, {dead_during} dead-lettered, multivac_mongo_ready "
         f"{m.get('multivac_mongo_ready')}, multivac_store_unavailable_total "
         f"{m.get('multivac_store_unavailable_total'):.0f}, dead_lettered_total "
         f"{m.get('multivac_jobs_dead_lettered_total'):.0f}")
    v.require(stored_full < len(acked), "the store never filled (test did not exercise it)")
    v.require(dead_during == 0, f"{dead_during} jobs dead-lettered while the store refused "
              f"every write")
    v.require(m.get("multivac_mongo_ready") == 0, "multivac_mongo_ready not 0 while the store "
              "refused every write")
    # At least every unstored job; a batch the disk filled in the middle of is
    # partly stored and still held whole (its re-insert skips those).
    v.require(held >= len(acked) - stored_full,
              f"{held} jobs in Redis, want at least {len(acked) - stored_full}")
    # Space returns: the same store without the cap, on the same port and data.
    ms.terminate()
    ms2 = h.start_mongo(f"ferretdb-{ns.tag}-roomy", port=ms.port, datadir=datadir, ns=ns)
    t_up = time.monotonic()
    first = first_growth(coll, stored_full, t_up)

    def server_alive():
        if not server.alive():
            raise ScenarioFailed(f"multivac exited ({server.popen.returncode})\n"
                                 + server.log_tail())
    check, _, done = wait_stored(coll, acked, alive=server_alive,
                                 pending=lambda: redis_residue(r, ns))
    recovery = time.monotonic() - t_up
    residue = wait_residue(r, ns) if done else redis_residue(r, ns)
    dead = r.llen(ns.prefix + "dead")
    m = metrics_values(server.port)
    v.require(dead == 0, f"{dead} jobs dead-lettered")
    v.require(residue == 0, f"{residue} jobs still in Redis after everything was stored")
    v.require(check.stored == len(acked), f"{check.stored} documents for {len(acked)} acks")
    v.require(m.get("multivac_mongo_ready") == 1, "multivac_mongo_ready not back to 1")
    v.require(first is not None and first <= 1.0,
              f"first document stored {first} s after the store had room again (limit 1 s)")
    check_store_figures(v, check, done, r, ns)
    status = server.terminate()
    v.require(status == 0, f"multivac exited {status} on SIGTERM")
    del ms2
    first_s = f"{first:.2f} s" if first is not None else "never"
    return (f"acknowledged {len(acked)}, stored before full {stored_full}, refused for "
            f"{refusing_s:.0f} s, dead-lettered {dead}, stored {check.stored}, lost {check.lost}, "
            f"duplicates {check.duplicates}, first store after room {first_s}, all stored after "
            f"{recovery:.1f} s")


def scenario_redis_freeze(h, ns, v):
    """Redis frozen (SIGSTOP) 8 s under a paced POST load: workers must resume within
    1 s of SIGCONT, not wait out their backoff."""
    _, mongo_srv = h.shared(need_redis=False)
    coll = h.mongo_client(mongo_srv)[ns.db]["entropy"]
    rs = h.start_redis(f"redis-freeze-{ns.tag}", datadir=h.path(ns.tag, "redis-freeze"), ns=ns)
    server = h.multivac("serve", rs, mongo_srv, ns)
    load_s, freeze_at, freeze_s = 16.0, 3.0, 8.0
    t0 = time.monotonic()
    load = paced_posts(server.port, ns.tag, 4, scaled(2000) / load_s,
                       lambda: time.monotonic() - t0 < load_s)
    time.sleep(max(0.0, t0 + freeze_at - time.monotonic()))
    rs.popen.send_signal(signal.SIGSTOP)
    t_stop = time.monotonic()
    time.sleep(freeze_s)
    base = coll.count_documents({})
    rs.popen.send_signal(signal.SIGCONT)
    t_cont = time.monotonic()
    first = first_growth(coll, base, t_cont, timeout=30)
    results = load.join(timeout=load_s + 2 * CLIENT_TIMEOUT + 10)
    ok_after = [x.t1 - t_cont for x in results if acked_id(x) and x.t1 > t_cont]
    first_200 = min(ok_after) if ok_after else None
    acked = collect_acked(results, v)
    r = h.redis_client(rs)
    note(f"redis frozen {t_cont - t_stop:.1f} s; outcomes: {summarize_kinds(results)}")

    def server_alive():
        if not server.alive():
            raise ScenarioFailed(f"multivac exited ({server.popen.returncode})\n"
                                 + server.log_tail())
    check, _, done = wait_stored(coll, acked, alive=server_alive,
                                 pending=lambda: redis_residue(r, ns))
    v.require(first is not None and first <= 1.0,
              f"first document stored {first} s after SIGCONT (limit 1 s)")
    check_store_figures(v, check, done, r, ns, unacked_allowed=True)
    status = server.terminate()
    v.require(status == 0, f"multivac exited {status} on SIGTERM")
    first_s = f"{first:.2f} s" if first is not None else "never"
    f200 = f"{first_200:.2f} s" if first_200 is not None else "never"
    return (f"acknowledged {len(acked)}, frozen {freeze_s:.0f} s, first 200 after SIGCONT "
            f"{f200}, first document stored after SIGCONT {first_s}, stored {check.stored}, "
            f"lost {check.lost}, duplicates {check.duplicates}")


SCENARIOS = {
    1: ("worker-kill", scenario_worker_kill),
    2: ("redis-kill", scenario_redis_kill),
    3: ("store-outage", scenario_store_outage),
    4: ("sigterm-under-load", scenario_sigterm),
    5: ("backpressure", scenario_backpressure),
    6: ("store-refusal", scenario_store_refusal),
    7: ("redis-freeze", scenario_redis_freeze),
}


# --- main -----------------------------------------------------------------------------


def run_scenario(h, number):
    name, fn = SCENARIOS[number]
    v = Verdict(number, name)
    ns = Namespace(number, name)
    REPORT.line(f"--- scenario {number} {name}")
    t0 = time.monotonic()
    figures = None
    try:
        figures = fn(h, ns, v)
    except ScenarioFailed as e:
        v.failures.append(str(e))
    except Exception as e:  # noqa: BLE001 - a client/server error, or a bug here
        v.failures.append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        # Interrupted: everything is killed at once by the harness cleanup.
        if not INTERRUPTED.is_set():
            # Clients first: pymongo's close() talks to the server if it can.
            for c in h.clients:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - best effort
                    pass
            h.clients.clear()
            for p in ns.procs + ns.servers:
                if p.alive():
                    p.terminate(timeout=5)
    took = time.monotonic() - t0
    REPORT.line(f"scenario {number} {name}: {figures or 'no figures (aborted)'}")
    if v.failures:
        for why in v.failures:
            REPORT.line(f"scenario {number} {name}: FAIL: {why}")
        for p in ns.procs:
            REPORT.line(p.log_tail(15))
    else:
        REPORT.line(f"scenario {number} {name}: PASS ({took:.1f} s)")
    return not v.failures


def main(argv):
    chosen = []
    for a in argv:
        if not a.isdigit() or int(a) not in SCENARIOS:
            sys.exit(f"usage: run_faults.py [{' '.join(map(str, SCENARIOS))}]...")
        chosen.append(int(a))
    chosen = chosen or sorted(SCENARIOS)
    seed = os.environ.get("MULTIVAC_FAULTS_SEED") or str(int(time.time()))
    random.seed(seed)

    def on_signal(signum, frame):
        if not INTERRUPTED.is_set():
            INTERRUPTED.set()
            raise KeyboardInterrupt(f"signal {signum}")
    # SIGINT explicitly too: a background job of a non-interactive shell starts
    # with SIGINT ignored, and Python then installs no handler of its own.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    h = Harness()
    passed = failed = 0
    t0 = time.monotonic()
    try:
        REPORT.line(f"multivac fault injection: binary {h.bin}, scale {SCALE:g}, seed {seed}, "
                    f"scenarios {' '.join(map(str, chosen))}")
        for number in chosen:
            if run_scenario(h, number):
                passed += 1
            else:
                failed += 1
    except KeyboardInterrupt:
        REPORT.line("interrupted")
        failed = len(chosen) - passed
    finally:
        h.cleanup()
        REPORT.line(f"total {time.monotonic() - t0:.1f} s")
        REPORT.line(f"{passed} passed, {failed} failed")
        REPORT.write_file()
    return 0 if failed == 0 and passed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

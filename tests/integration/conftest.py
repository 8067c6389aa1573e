"""Integration harness: real Redis, a real MongoDB-compatible server, the real binary.

The session starts its own redis-server and mongod (or FerretDB on SQLite) on free
loopback ports; each test gets its own Redis key prefix and MongoDB database, so
tests never see each other's data. Run with MULTIVAC_BIN=<path to multivac>.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pymongo
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
INSUFFICIENT = "INSUFFICIENT DATA FOR MEANINGFUL ANSWER."
START_TIMEOUT = 10.0  # seconds for a server or multivac to answer after start
STOP_TIMEOUT = 15.0  # seconds for multivac to exit after SIGTERM
# Variables of ours that must not leak from the caller's environment into tests.
CONFIG_VARS = ("MULTIVAC_", "REDIS_URL", "MONGO_")


# --- small helpers ----------------------------------------------------------------


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(check, timeout, what, interval=0.05):
    """Call check() until it returns a truthy value; return it, or fail after timeout.

    Exceptions from check() count as "not yet"; the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - reported below
            last = e
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def request(port, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection: (status, {lowercase header: value}, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def form(value):
    """An application/x-www-form-urlencoded body with field data=value."""
    return urllib.parse.urlencode({"data": value}).encode()


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def raw_exchange(port, payload, timeout=5.0):
    """Send raw bytes, read until the server closes; fail if it does not close in time."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        except socket.timeout:
            pytest.fail(f"connection not closed by server within {timeout}s; got {b''.join(chunks)!r}")


def read_response(f, head=False):
    """Read one HTTP response from a binary file object (sock.makefile('rb'))."""
    status_line = f.readline()
    if not status_line:
        raise EOFError("connection closed before a response")
    version, status, _ = (status_line.decode("latin-1").rstrip("\r\n") + " ").split(" ", 2)
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if not head and int(status) not in (204, 304):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(f.readline().split(b";")[0], 16)
                chunk = f.read(size + 2)[:size]
                if size == 0:
                    break
                body += chunk
        else:
            body = f.read(int(headers.get("content-length", "0")))
    return version, int(status), headers, body


# --- external servers ---------------------------------------------------------------


class Server:
    """A child process with its output in a log file."""

    def __init__(self, name, argv, port, log_path):
        self.name, self.argv, self.port, self.log_path = name, argv, port, Path(log_path)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def fail_start(self, why):
        self.kill()
        pytest.fail(
            f"{self.name} did not start ({why}): {' '.join(self.argv)}\n"
            f"--- {self.log_path} ---\n{tail(self.log_path)}"
        )

    def kill(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis(workdir, port=None):
    """Start a private redis-server and wait until it answers PING."""
    exe = shutil.which("redis-server")
    if not exe:
        pytest.fail("redis-server not found on PATH: run deps/install.sh")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]
    server = Server("redis-server", argv, port, workdir / "redis.log")
    deadline = time.monotonic() + START_TIMEOUT
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    while True:
        if server.proc.poll() is not None:
            server.fail_start(f"exited with status {server.proc.returncode}")
        try:
            if client.ping():
                break
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            server.fail_start(f"no PING answer within {START_TIMEOUT}s")
        time.sleep(0.05)
    client.close()
    server.url = f"redis://127.0.0.1:{port}/0"
    return server


def mongo_argv(workdir, port):
    """mongod if on PATH, else FerretDB ($FERRETDB, PATH, or the tools dir)."""
    mongod = shutil.which("mongod")
    if mongod:
        return "mongod", [mongod, "--port", str(port), "--bind_ip", "127.0.0.1",
                          "--dbpath", str(workdir), "--quiet"]
    tools_dir = os.environ.get("MULTIVAC_TOOLS_DIR", "/usr/local/bin")
    candidates = [os.environ.get("FERRETDB"), shutil.which("ferretdb"), f"{tools_dir}/ferretdb"]
    ferretdb = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if not ferretdb:
        pytest.fail("no MongoDB-compatible server: no mongod on PATH and no ferretdb "
                    f"($FERRETDB, PATH, {tools_dir}/ferretdb): run deps/install.sh")
    return "ferretdb", [ferretdb, "--handler=sqlite", f"--sqlite-url=file:{workdir}/",
                        f"--state-dir={workdir}", f"--listen-addr=127.0.0.1:{port}",
                        "--debug-addr=-", "--telemetry=disable", "--log-level=error"]


def start_mongo(workdir, port=None):
    """Start a private mongod/FerretDB and wait until it answers ping."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    name, argv = mongo_argv(workdir, port)
    server = Server(name, argv, port, workdir / f"{name}.log")
    url = f"mongodb://127.0.0.1:{port}"
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
    deadline = time.monotonic() + 3 * START_TIMEOUT
    while True:
        if server.proc.poll() is not None:
            server.fail_start(f"exited with status {server.proc.returncode}")
        try:
            client.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            pass
        if time.monotonic() > deadline:
            server.fail_start(f"no ping answer within {3 * START_TIMEOUT}s")
        time.sleep(0.1)
    client.close()
    server.url = url
    return server


class ExternalServer:
    """A shared server the harness did not start (CI service containers): given by
    MULTIVAC_TEST_REDIS_URL / MULTIVAC_TEST_MONGO_URL, never killed. Tests stay apart
    by their own Redis prefix and MongoDB database, as on the harness's servers."""

    def __init__(self, url):
        self.url = url

    def kill(self, sig=signal.SIGTERM):
        pass


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    url = os.environ.get("MULTIVAC_TEST_REDIS_URL")
    server = ExternalServer(url) if url else start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.kill()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    url = os.environ.get("MULTIVAC_TEST_MONGO_URL")
    server = ExternalServer(url) if url else start_mongo(tmp_path_factory.mktemp("mongo"))
    yield server
    server.kill()


@pytest.fixture
def private_redis(tmp_path):
    """Factory for a test's own redis-server: private_redis(port=None) -> Server.

    Request it before `multivac` so that multivac is stopped first at teardown."""
    servers = []

    def start(port=None):
        server = start_redis(tmp_path / f"redis-{len(servers)}", port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def private_mongo(tmp_path):
    """Factory for a test's own MongoDB-compatible server: private_mongo(port=None).

    Restarting on the same port keeps the data (one data directory per test)."""
    servers = []

    def start(port=None):
        server = start_mongo(tmp_path / "private-mongo", port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture(scope="session")
def redis_client(redis_server):
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="session")
def mongo_client(mongo_server):
    client = pymongo.MongoClient(mongo_server.url, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


# --- the service under test -------------------------------------------------------------


def multivac_bin():
    path = os.environ.get("MULTIVAC_BIN") or str(ROOT / "build" / "multivac")
    if not os.access(path, os.X_OK):
        pytest.fail(f"multivac binary not found at {path}: build it or set MULTIVAC_BIN")
    return path


def clean_env(extra=None):
    """The caller's environment without our config variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_VARS)}
    # As in the image (Containerfile): no mongoc counter files in /dev/shm, which a
    # killed process leaves behind and a later one with the same pid warns about on
    # stderr, outside the JSON log, before main() runs.
    env["MONGOC_DISABLE_SHM"] = "1"
    env.update(extra or {})
    return env


def metric(mv, name):
    """The value of an unlabelled sample (or the first labelled one) in mv's /metrics."""
    status, _, body = mv.get("/metrics")
    assert status == 200, body
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


class Namespace:
    """One test's slice of the shared servers: a Redis prefix and a MongoDB database."""

    def __init__(self, mongo_client):
        tag = uuid.uuid4().hex[:12]
        self.prefix = f"mvtest:{tag}:"
        self.db_name = f"mvtest_{tag}"
        self.collection = mongo_client[self.db_name]["entropy"]


class Multivac:
    """A running multivac process started by the `multivac` fixture."""

    def __init__(self, argv, env, port, log_path):
        self.argv, self.port, self.log_path = argv, port, Path(log_path)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)

    def stderr(self, lines=60):
        return tail(self.log_path, lines)

    def request(self, method, path, body=None, headers=None, timeout=10):
        return request(self.port, method, path, body, headers, timeout)

    def get(self, path, timeout=10):
        status, headers, body = self.request("GET", path, timeout=timeout)
        return status, headers, body.decode("utf-8", errors="replace")

    def answer(self):
        status, _, body = self.get("/multivac")
        assert status == 200, f"GET /multivac -> {status} {body!r}"
        return body

    def post(self, value, timeout=10):
        """POST data=value (urlencoded); returns (status, parsed JSON or raw body)."""
        status, headers, body = self.request("POST", "/multivac/data", form(value),
                                             FORM_HEADERS, timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def post_ok(self, value):
        """POST data=value, assert it was accepted, return the job id."""
        status, reply = self.post(value)
        assert status == 200, f"POST {value!r} -> {status} {reply!r}\n{self.stderr(20)}"
        return reply["id"]

    def wait_answer(self, expected, timeout=20):
        wait_for(lambda: self.answer() == expected, timeout, f"GET /multivac == {expected!r}")

    def wait_http(self, path, status=200):
        def ok():
            if self.proc.poll() is not None:
                pytest.fail(f"multivac exited with status {self.proc.returncode} during "
                            f"start: {' '.join(self.argv)}\n--- stderr ---\n{self.stderr()}")
            try:
                return self.request("GET", path, timeout=2)[0] == status
            except (OSError, http.client.HTTPException):  # not listening yet
                return False
        deadline = time.monotonic() + START_TIMEOUT
        while not ok():
            if time.monotonic() > deadline:
                self.stop(check=False)
                pytest.fail(f"GET {path} != {status} within {START_TIMEOUT}s after start: "
                            f"{' '.join(self.argv)}\n--- stderr ---\n{self.stderr()}")
            time.sleep(0.05)

    def stop(self, check=True):
        """SIGTERM, wait, and (if check) assert a clean exit: status 0 (ASan leaks fail it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    pytest.fail(f"multivac did not exit within {STOP_TIMEOUT}s of SIGTERM\n"
                                f"--- stderr ---\n{self.stderr()}")
        if check:
            assert self.proc.returncode == 0, (
                f"multivac exited with status {self.proc.returncode} (ASan/UBSan report or "
                f"unclean stop?)\n--- stderr ---\n{self.stderr()}")


@pytest.fixture
def ns(mongo_client):
    """This test's Redis prefix and MongoDB database (dropped afterwards)."""
    namespace = Namespace(mongo_client)
    yield namespace
    mongo_client.drop_database(namespace.db_name)


class Launcher:
    """Starts multivac processes in one namespace and stops them all at the end."""

    def __init__(self, redis_server, mongo_server, ns, logdir):
        self.redis_server, self.mongo_server, self.ns = redis_server, mongo_server, ns
        self.logdir = Path(logdir)
        self.started = []

    def start(self, mode="serve", env=None, args=(), ready=True, port=None):
        port = port or free_port()
        config = {
            "MULTIVAC_LISTEN": f"127.0.0.1:{port}",
            "REDIS_URL": self.redis_server.url,
            "MONGO_URL": self.mongo_server.url,
            "MONGO_DB_NAME": self.ns.db_name,
            "MULTIVAC_PREFIX": self.ns.prefix,
        }
        config.update(env or {})
        argv = [multivac_bin(), mode, *args]
        mv = Multivac(argv, clean_env(config), port,
                      self.logdir / f"multivac-{len(self.started)}-{mode}.log")
        self.started.append(mv)
        if mode != "worker":
            mv.wait_http("/healthz")
            if ready:
                mv.wait_http("/readyz")
        return mv

    def stop_all(self):
        errors = []
        for mv in self.started:
            try:
                mv.stop()
            except (AssertionError, pytest.fail.Exception) as e:
                errors.append(str(e))
        assert not errors, "\n\n".join(errors)


@pytest.fixture
def multivac(redis_server, mongo_server, ns, tmp_path):
    """Factory: multivac(mode="serve", env={...}, args=[...]) -> a started Multivac.

    It listens on a free port (or `port`, when args choose the address themselves).
    Processes share this test's namespace unless env overrides it. HTTP modes are
    waited for until /healthz and (unless ready=False) /readyz answer 200. Every
    process is stopped at the end and must exit with status 0.
    """
    launcher = Launcher(redis_server, mongo_server, ns, tmp_path)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def shared_multivac(redis_server, mongo_server, mongo_client, tmp_path_factory):
    """One `serve` process for a module's tests that store nothing (saves start/stop time)."""
    namespace = Namespace(mongo_client)
    launcher = Launcher(redis_server, mongo_server, namespace, tmp_path_factory.mktemp("shared"))
    yield launcher.start()
    launcher.stop_all()
    mongo_client.drop_database(namespace.db_name)

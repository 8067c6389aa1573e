"""Redis >= 7.2 for the tests that need WAITAOF (MULTIVAC_DURABILITY=replica).

Debian 12's redis-server is 7.0; deps/redis8.sh unpacks Debian 13's Redis 8 with its
own libraries into .local/redis8 (or $REDIS8_DIR), and this module starts it:

    from redis8 import redis8_pair          # the fixture (import it into the test module)

    def test_something(redis8_pair):        # skipped, with the reason, without Redis 8
        redis8_pair.primary.url             # redis://127.0.0.1:<port>/0, for REDIS_URL
        redis8_pair.client().execute_command("WAITAOF", 1, 1, 1000)

Outside pytest fixtures: redis8_server() -> path or None, redis8_unavailable() -> the
reason or None, start_redis8_pair(workdir=None) -> Redis8Pair (a context manager).

Timing: with appendfsync everysec a replica fsyncs up to 1 s after a write and reports
it in its next once-a-second REPLCONF ACK, so WAITAOF 1 1 can take up to ~2 s (measured
up to 1.9 s here); tests should give WAITAOF at least WAITAOF_TIMEOUT_MS.
"""

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from conftest import ROOT, START_TIMEOUT, Server, free_port, tail

MIN_VERSION = (7, 2)  # WAITAOF
WAITAOF_TIMEOUT_MS = 5000  # ample for "WAITAOF 1 1" with appendfsync everysec (~2 s worst)
READY_KEY = "redis8-harness:ready"  # written and deleted once at start (see _wait_ready)


def redis8_dir():
    """Where deps/redis8.sh puts Redis 8: $REDIS8_DIR or <repo>/.local/redis8."""
    return Path(os.environ.get("REDIS8_DIR") or ROOT / ".local" / "redis8")


@functools.lru_cache(maxsize=None)
def _probe(path):
    """(path, None) if `path --version` runs and is >= MIN_VERSION, else (None, reason)."""
    if not os.access(path, os.X_OK):
        return None, f"{path} not found: run deps/redis8.sh (or deps/install.sh)"
    try:
        out = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=START_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{path} --version failed: {e}; run deps/redis8.sh again"
    text = (out.stdout + out.stderr).strip()
    match = re.search(r"\bv=(\d+)\.(\d+)", out.stdout)
    if out.returncode != 0 or not match:
        return None, (f"{path} --version exited with {out.returncode}: {text[:200]!r}; "
                      "run deps/redis8.sh again (REDIS8_REFRESH=1 to unpack anew)")
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_VERSION:
        return None, f"{path} is Redis {version[0]}.{version[1]}, WAITAOF needs >= 7.2"
    return str(path), None


def redis8_server():
    """Path of the Redis 8 redis-server wrapper, or None if it is absent or does not run."""
    return _probe(str(redis8_dir() / "bin" / "redis-server"))[0]


def redis8_unavailable():
    """Why redis8_server() is None (one line), or None if it is available."""
    return _probe(str(redis8_dir() / "bin" / "redis-server"))[1]


def require_redis8():
    """redis8_server(), or pytest.skip with the reason."""
    path = redis8_server()
    if path is None:
        pytest.skip(f"Redis >= 7.2 not available: {redis8_unavailable()}")
    return path


def _kill_all(servers):
    for server in reversed(servers):  # the replica before its primary
        server.kill()


def _start(name, workdir, extra=()):
    """Start one AOF-on redis-server in workdir and wait for PING (fail the test with
    its log if it does not answer)."""
    exe = redis8_server()
    if exe is None:
        pytest.fail(f"Redis 8 is not available: {redis8_unavailable()}")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--repl-diskless-sync-delay", "0", "--dir", str(workdir), *extra]
    server = Server(name, argv, port, workdir / "redis.log")
    server.url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if server.proc.poll() is not None:
                why = f"exited with status {server.proc.returncode}"
            else:
                try:
                    if client.ping():
                        return server
                except redis.RedisError:
                    pass
                why = None if time.monotonic() <= deadline else f"no PING answer within {START_TIMEOUT}s"
            if why:
                server.fail_start(why)
            time.sleep(0.05)
    finally:
        client.close()


class Redis8Pair:
    """A Redis 8 primary and its replica, AOF on (appendfsync everysec), on free loopback
    ports, in workdir/primary and workdir/replica. Attributes: primary, replica (conftest
    Server objects: .port, .url, .proc, .log_path), workdir. stop() ends both.

    Started means: the replica reports master_link_status:up and both have fsynced one
    write (WAITAOF 1 1 answered [1, 1]), so WAITAOF works from the first command on."""

    def __init__(self, workdir=None):
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="redis8-") if workdir is None else workdir)
        self.primary = self.replica = None
        self._clients = []
        try:
            self.primary = _start("redis8 primary", self.workdir / "primary")
            self.replica = _start("redis8 replica", self.workdir / "replica",
                                  ("--replicaof", "127.0.0.1", str(self.primary.port)))
            self._wait_link()
            self._wait_ready()
        except BaseException:  # pytest.fail included: stop what did start
            self.stop()
            raise

    def _wait_link(self):
        client = self.client("replica")
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while True:
            try:
                last = client.info("replication")
                if last.get("master_link_status") == "up":
                    return
            except redis.RedisError as e:
                last = e
            if time.monotonic() > deadline or self.replica.proc.poll() is not None:
                logs = "\n".join(f"--- {s.log_path} ---\n{tail(s.log_path)}"
                                 for s in (self.primary, self.replica))
                self.stop()
                pytest.fail(f"Redis 8 replica not linked to its primary within {START_TIMEOUT}s "
                            f"(INFO replication: {last!r})\n{logs}")
            time.sleep(0.05)

    def _wait_ready(self):
        """Right after the initial sync the replica rewrites its AOF and acknowledges no
        fsync until that is done: one write (set and deleted again) that both have fsynced."""
        client = self.client(socket_timeout=START_TIMEOUT + 5)
        try:
            client.set(READY_KEY, "1")
            client.delete(READY_KEY)
            acks = client.execute_command("WAITAOF", 1, 1, int(START_TIMEOUT * 1000))
        except redis.RedisError as e:
            acks = e
        if acks != [1, 1]:
            logs = "\n".join(f"--- {s.log_path} ---\n{tail(s.log_path)}"
                             for s in (self.primary, self.replica))
            self.stop()
            pytest.fail(f"Redis 8 pair: WAITAOF 1 1 {int(START_TIMEOUT * 1000)} after a write "
                        f"gave {acks!r}, not [1, 1]\n{logs}")

    def client(self, which="primary", **kwargs):
        """A redis.Redis for "primary" or "replica" (closed by stop())."""
        server = {"primary": self.primary, "replica": self.replica}[which]
        client = redis.Redis(host="127.0.0.1", port=server.port,
                             **{"socket_timeout": 5, **kwargs})
        self._clients.append(client)
        return client

    def stop(self):
        """SIGTERM (SIGKILL after 10 s) the replica, then the primary; remove the
        temporary directory if this pair made it. Safe to call twice."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        _kill_all([s for s in (self.primary, self.replica) if s is not None])
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_redis8_pair(workdir=None):
    """Start a Redis8Pair (in a new temporary directory if workdir is None) and wait
    until the replica reports master_link_status:up and WAITAOF 1 1 works (see
    Redis8Pair). Fails the test if they do not start; call require_redis8() first
    to skip instead when Redis 8 is absent."""
    return Redis8Pair(workdir)


@pytest.fixture
def redis8_pair(tmp_path):
    """A started Redis8Pair in this test's tmp_path, stopped at teardown; the test is
    skipped (with the reason) when Redis >= 7.2 is not available."""
    require_redis8()
    pair = start_redis8_pair(tmp_path / "redis8")
    yield pair
    pair.stop()

"""MULTIVAC_DURABILITY: a 200 waits for the fsyncs it promises (WAITAOF), or is a 503.

`local` and `replica` need Redis >= 7.2 with AOF on. The replica tests run against a
Redis 8 primary + replica that the harness starts (tests/integration/redis8.py,
deps/redis8.sh); where that runtime is missing they are reported SKIPPED with the
reason, never passed. The refusal test runs everywhere: a Redis with AOF off (any
version) cannot confirm an fsync.
"""

import os
import signal
import subprocess
import time

import redis

from conftest import clean_env, metric, multivac_bin, wait_for
from redis8 import redis8_pair  # noqa: F401  (the fixture)


def test_durability_local_without_aof_refuses_posts_and_says_why(private_redis, multivac, ns):
    # Requested before `multivac`, so multivac stops first.
    r = private_redis()
    mv = multivac("runserver", env={"REDIS_URL": r.url, "MULTIVAC_DURABILITY": "local"},
                  ready=False)
    wait_for(lambda: "cannot confirm fsyncs" in mv.stderr(), 10, "the refusal logged")
    status, _, _ = mv.get("/readyz")
    assert status == 503, "ready although no 200 could keep its promise"
    status, reply = mv.post("not durable here")
    assert status == 503, reply
    assert redis.Redis.from_url(r.url).llen(f"{ns.prefix}jobs") == 0
    assert metric(mv, "multivac_redis_ready") == 0


def test_durability_setting_rejects_unknown_values():
    out = subprocess.run([multivac_bin(), "runserver"], env=clean_env({"MULTIVAC_DURABILITY": "disk"}),
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2, out
    assert "MULTIVAC_DURABILITY" in out.stderr and "redis, local or replica" in out.stderr


def test_durability_replica_200_only_once_the_replica_has_it(redis8_pair, multivac, ns):
    pair = redis8_pair
    # fsync on every write: a confirmation then takes a round trip, not up to
    # appendfsync everysec's second.
    for server in (pair.primary, pair.replica):
        redis.Redis.from_url(server.url).config_set("appendfsync", "always")
    # The replica's first confirmation after the change comes with its once-a-second ACK.
    primary = redis.Redis.from_url(pair.primary.url)
    primary.set("warm-up", "1")
    assert primary.execute_command("WAITAOF", 1, 1, 5000) == [1, 1]
    env = {"REDIS_URL": pair.primary.url, "MULTIVAC_DURABILITY": "replica",
           "MULTIVAC_DURABILITY_TIMEOUT_MS": "300"}
    mv = multivac("runserver", env=env)
    t0 = time.monotonic()
    ids = [mv.post_ok(f"replicated {i}") for i in range(20)]
    per_post = (time.monotonic() - t0) / len(ids)
    replica = redis.Redis.from_url(pair.replica.url)
    # Every acknowledged job is on the replica already: WAITAOF waited for it.
    assert replica.llen(f"{ns.prefix}jobs") == 20
    print(f"\nFIGURE durability=replica: 20 POSTs acknowledged, {per_post * 1000:.1f} ms each; "
          f"replica holds 20 of 20")

    # The replica stops answering: a POST is queued on the primary but cannot be
    # confirmed, so it is 503 ("may or may not"), not 200.
    os.kill(pair.replica.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        status, reply = mv.post("unconfirmed")
        waited = time.monotonic() - t0
    finally:
        os.kill(pair.replica.proc.pid, signal.SIGCONT)
    assert status == 503, reply
    assert 0.25 <= waited < 5, waited
    assert primary.llen(f"{ns.prefix}jobs") == 21  # queued all the same
    print(f"FIGURE durability=replica, replica frozen: 503 after {waited * 1000:.0f} ms "
          f"(timeout 300 ms), job kept in the primary's queue")

    # Back: 200 again.
    wait_for(lambda: mv.post("confirmed again")[0] == 200, 10, "a confirmed POST after SIGCONT")

"""Redis going away and coming back, with a private redis-server."""

import json
import signal
import time

from conftest import wait_for


def test_redis_outage_503_then_recovers(private_redis, multivac, ns):
    redis = private_redis()
    mv = multivac(env={"REDIS_URL": redis.url})
    mv.post_ok("before outage")
    mv.wait_answer("before outage")

    redis.kill(signal.SIGKILL)
    start = time.monotonic()
    status, reply = mv.post("during outage", timeout=5)
    elapsed = time.monotonic() - start
    assert status == 503, f"POST with Redis down -> {status} {reply!r}"
    assert "error" in reply, reply
    assert elapsed < 1.0, f"503 took {elapsed:.2f}s"
    status, headers, body = mv.get("/readyz")
    assert status == 503, body
    assert headers["content-type"].startswith("application/json")
    json.loads(body)
    assert mv.get("/healthz")[0] == 200  # alive, just not ready
    assert mv.answer() == "before outage"  # answers still come from MongoDB

    private_redis(redis.port)  # same port: multivac reconnects on its own
    job_id = wait_for(lambda: mv.post("after outage", timeout=5)[1].get("id"), 10,
                      "POST accepted again after Redis restart")
    wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "datum stored after restart")
    wait_for(lambda: mv.get("/readyz")[0] == 200, 10, "/readyz 200 again")


def test_script_flush_reloads_scripts(private_redis, multivac, ns):
    """Redis forgetting its scripts (SCRIPT FLUSH, a restart without persistence, a
    failover to a replica that never loaded them) answers EVALSHA with NOSCRIPT: the
    push and the claim load the scripts again and re-send, losing and repeating nothing."""
    import redis as redis_py

    server = private_redis()
    client = redis_py.Redis.from_url(server.url, socket_timeout=5)
    mv = multivac(env={"REDIS_URL": server.url})
    ids = [mv.post_ok(f"before flush {i}") for i in range(5)]
    wait_for(lambda: ns.collection.count_documents({}) == 5, 20, "5 documents stored")

    assert client.script_flush() is True
    for i in range(3):
        ids.append(mv.post_ok(f"after flush {i}"))
    assert client.script_flush() is True  # again, with the claim the next to run a script
    for i in range(3):
        ids.append(mv.post_ok(f"after second flush {i}"))
    wait_for(lambda: ns.collection.count_documents({}) == len(ids), 20, f"{len(ids)} documents stored")
    stored = sorted(d["_id"] for d in ns.collection.find({}, {"_id": 1}))
    assert stored == sorted(ids)
    assert "redis lost the scripts" in mv.stderr(400), mv.stderr()
    client.close()

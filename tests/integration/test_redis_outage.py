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

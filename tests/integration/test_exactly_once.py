"""Exactly once from the client's retry to the store (issue 10): Idempotency-Key,
queue depth known from the first /metrics, a restarted worker reclaiming its list."""

import json
import re
import signal
import time

import pytest

from conftest import FORM_HEADERS, form, metric, wait_for


def post_keyed(mv, value, key, headers=None, timeout=10):
    h = dict(FORM_HEADERS, **{"Idempotency-Key": key}, **(headers or {}))
    status, _, body = mv.request("POST", "/multivac/data", form(value), h, timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def test_idempotency_key_retried_across_a_redis_kill_stores_one_document(
        private_redis, multivac, ns):
    redis_srv = private_redis()
    mv = multivac(env={"REDIS_URL": redis_srv.url})
    key, value = "order-7f3a", "exactly once, whatever the retries"
    ids, statuses = [], []

    def attempt():
        status, reply = post_keyed(mv, value, key)
        statuses.append(status)
        if status == 200:
            ids.append(reply["id"])
        return status

    assert attempt() == 200
    # Redis dies (its data with it: no persistence) and comes back on the same port.
    redis_srv.kill(signal.SIGKILL)
    assert attempt() == 503
    redis_srv = private_redis(redis_srv.port)
    wait_for(lambda: mv.get("/readyz")[0] == 200, 20, "/readyz 200 after the Redis restart")
    while len(statuses) < 5:
        assert attempt() == 200
    print(f"\n5 attempts with one Idempotency-Key across a Redis kill: statuses {statuses}, "
          f"ids {sorted(set(ids))}")
    assert len(set(ids)) == 1, ids
    assert re.fullmatch(r"[0-9a-f]{32}", ids[0])
    doc = wait_for(lambda: ns.collection.find_one({"_id": ids[0]}), 20, "the document stored")
    assert doc["data"] == value
    time.sleep(1.0)  # any duplicate would have been stored by now
    assert ns.collection.count_documents({}) == 1
    assert ns.collection.count_documents({"data": value}) == 1

    status, reply = post_keyed(mv, "other data", key)
    assert status == 422, reply
    assert "Idempotency-Key" in reply["error"]
    assert ns.collection.count_documents({}) == 1
    # Another key is another datum; no key keeps the group-committed path.
    status, other = post_keyed(mv, value, "order-7f3b")
    assert status == 200 and other["id"] != ids[0]
    assert mv.post_ok("no key") not in ids


@pytest.mark.parametrize("key", ["", "a" * 256, "has space", "caf\u00e9"])
def test_invalid_idempotency_key_is_400(shared_multivac, key):
    status, _, body = shared_multivac.request(
        "POST", "/multivac/data", form("x"),
        dict(FORM_HEADERS, **{"Idempotency-Key": key.encode("utf-8").decode("latin-1")}))
    assert status == 400, body
    assert "Idempotency-Key" in json.loads(body)["error"]


def test_idempotency_key_is_scoped_by_the_writer(multivac, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("token-one\ntoken-two\n")
    mv = multivac(env={"MULTIVAC_WRITE_TOKENS_FILE": str(tokens)})
    one = {"Authorization": "Bearer token-one"}
    two = {"Authorization": "Bearer token-two"}
    s1, r1 = post_keyed(mv, "d", "k1", one)
    s2, r2 = post_keyed(mv, "d", "k1", one)
    s3, r3 = post_keyed(mv, "other", "k1", two)  # another writer's k1: no conflict
    assert (s1, s2, s3) == (200, 200, 200), (r1, r2, r3)
    assert r1["id"] == r2["id"] != r3["id"]
    assert post_keyed(mv, "x", "k1")[0] == 401


def test_first_metrics_after_a_restart_show_the_backlog(multivac, ns, redis_client):
    backlog = 50
    redis_client.lpush(f"{ns.prefix}jobs",
                       *[f"1:{i:032x}:1700000000000:backlog {i}" for i in range(backlog)])
    mv = multivac("runserver", env={"MULTIVAC_QUEUE_MAX": "10"})
    depth = metric(mv, "multivac_queue_depth")
    status, reply = mv.post("over the limit")
    print(f"\nfirst /metrics after start with {backlog} pending: multivac_queue_depth {depth}; "
          f"POST -> {status}")
    assert depth == backlog
    assert status == 503 and "queue full" in reply["error"], reply


def test_restarted_worker_with_the_same_identity_reclaims_its_list(multivac, ns, redis_client):
    # A process killed -9 while holding a job: its processing list and a lease
    # that has not expired yet. Restarted with the same MULTIVAC_WORKER_ID, it
    # takes the job back at once, without waiting for the reaper (1.5 leases).
    job_id = "0" * 20 + "deadbeef0002"
    redis_client.lpush(f"{ns.prefix}processing:pod-7:0",
                       f"1:{job_id}:1700000000000:held by a killed worker")
    redis_client.sadd(f"{ns.prefix}workers", "pod-7:0")
    redis_client.set(f"{ns.prefix}lease:pod-7:0", "1", px=60000)
    t0 = time.monotonic()
    multivac("worker", env={"MULTIVAC_WORKER_ID": "pod-7", "MULTIVAC_WORKERS": "1",
                            "MULTIVAC_LEASE_MS": "60000"})
    wait_for(lambda: ns.collection.find_one({"_id": job_id}), 10, "the held job stored")
    took = time.monotonic() - t0
    print(f"\nheld job stored {took:.2f} s after the restart (lease 60 s)")
    assert took < 5
    wait_for(lambda: not redis_client.exists(f"{ns.prefix}processing:pod-7:0"), 5, "acknowledged")

"""Leases and the reaper, dead letters, backpressure, metrics, the original's MONGO_*."""

import json
import subprocess

from conftest import FORM_HEADERS, clean_env, form, multivac_bin, wait_for


def cli(redis_server, ns, *args):
    env = clean_env({"REDIS_URL": redis_server.url, "MULTIVAC_PREFIX": ns.prefix})
    return subprocess.run([multivac_bin(), *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_reaper_requeues_the_batch_of_a_dead_worker(multivac, ns, redis_client):
    # A worker that died holding a job: its processing list and registration
    # remain, its lease is gone. The job must be stored exactly once.
    job_id = "0" * 20 + "deadbeef0001"
    entry = f"1:{job_id}:1700000000000:orphaned datum"
    redis_client.lpush(f"{ns.prefix}processing:ghost", entry)
    redis_client.sadd(f"{ns.prefix}workers", "ghost")

    multivac("worker", env={"MULTIVAC_LEASE_MS": "1000"})
    doc = wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "orphaned job stored")
    assert doc["data"] == "orphaned datum"
    assert not redis_client.exists(f"{ns.prefix}processing:ghost")
    assert not redis_client.sismember(f"{ns.prefix}workers", "ghost")
    assert ns.collection.count_documents({"data": "orphaned datum"}) == 1


def test_refused_document_is_dead_lettered_and_requeueable(multivac, ns, redis_server):
    # MongoDB refuses documents over 16 MiB for good; with the body limit raised,
    # such a datum is accepted, then dead-lettered while the rest is stored.
    web = multivac("serve", env={"MULTIVAC_MAX_BODY": "20000000", "MULTIVAC_MAX_ATTEMPTS": "2"})
    big = "a" * (17 * 1024 * 1024)
    big_id = web.post_ok(big)
    small_id = web.post_ok("small enough")
    wait_for(lambda: ns.collection.find_one({"_id": small_id}), 20, "small datum stored")

    def dead_letters():
        out = cli(redis_server, ns, "dead-letters", "list")
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    letters = wait_for(dead_letters, 30, "the big datum dead-lettered")
    assert len(letters) == 1
    assert letters[0]["id"] == big_id
    assert letters[0]["attempts"] == 2
    assert "too large" in letters[0]["error"]
    assert letters[0]["job"].startswith(f"1:{big_id}:")
    assert ns.collection.count_documents({"_id": big_id}) == 0

    status, _, body = web.get("/metrics")
    assert status == 200
    assert "multivac_jobs_dead_lettered_total 1" in body

    out = cli(redis_server, ns, "dead-letters", "requeue")
    assert (out.returncode, out.stdout.strip()) == (0, "requeued 1"), out.stderr
    # Refused again after its attempts: back in the dead-letter list, never stored.
    wait_for(lambda: len(dead_letters()) == 1, 30, "dead-lettered again")
    assert ns.collection.count_documents({"_id": big_id}) == 0


def test_queue_full_answers_503_with_retry_after(multivac):
    web = multivac("runserver", env={"MULTIVAC_QUEUE_MAX": "5"})
    statuses = []
    for i in range(40):
        status, headers, body = web.request("POST", "/multivac/data", form(f"p{i}"),
                                            FORM_HEADERS)
        statuses.append(status)
        if status == 503:
            assert headers.get("retry-after") == "1"
            assert "queue full" in json.loads(body)["error"]
    assert statuses.count(200) >= 5
    assert 503 in statuses, statuses
    status, _, body = web.get("/metrics")
    assert "multivac_data_throttled_total 0" not in body


def test_original_mongo_variables(multivac, ns, mongo_server):
    host_port = mongo_server.url.split("//", 1)[1].rstrip("/")
    web = multivac("serve", env={"MONGO_URL": "", "MONGO_SERVER": host_port,
                                 "MONGO_USERNAME": "nobody", "MONGO_PASSWORD": ""})
    job_id = web.post_ok("via MONGO_SERVER")
    wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "stored via MONGO_SERVER")


def test_metrics_count_what_happened(multivac):
    web = multivac("serve")
    web.post_ok("counted")
    web.request("POST", "/multivac/data", b"nodata=1", FORM_HEADERS)
    status, headers, body = web.get("/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "multivac_data_accepted_total 1" in body
    assert "multivac_data_rejected_total 1" in body
    assert "multivac_redis_ready 1" in body

"""serve, runserver and worker processes sharing one Redis and MongoDB."""

from conftest import INSUFFICIENT, wait_for


def queued_jobs(redis_client, prefix):
    """Total length of the Redis lists under the prefix."""
    total = 0
    for key in redis_client.scan_iter(match=prefix + "*", count=1000):
        if redis_client.type(key) == b"list":
            total += redis_client.llen(key)
    return total


def test_runserver_queues_and_worker_stores(multivac, ns, redis_client):
    web = multivac("runserver")
    job_id = web.post_ok("queued datum")
    wait_for(lambda: queued_jobs(redis_client, ns.prefix) > 0, 5, "a job in a Redis list under the prefix")
    status, _, body = web.get("/multivac?wait=1")  # no worker: nothing gets stored
    assert (status, body) == (200, INSUFFICIENT)
    assert ns.collection.count_documents({}) == 0

    multivac("worker")
    doc = wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "worker stored the job")
    assert doc["data"] == "queued datum"
    web.wait_answer("queued datum")
    wait_for(lambda: queued_jobs(redis_client, ns.prefix) == 0, 10, "queue drained")


def test_two_processes_share_the_answer(multivac, ns):
    web = multivac("runserver")
    full = multivac("serve")
    assert web.answer() == INSUFFICIENT
    assert full.answer() == INSUFFICIENT
    web.post_ok("shared")
    full.wait_answer("shared")
    web.wait_answer("shared")

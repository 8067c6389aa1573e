"""MongoDB going away and coming back, with a private server: no datum is lost."""

import json
import re
import signal

import pymongo

from conftest import wait_for


def mongo_gauge(mv):
    status, _, body = mv.get("/metrics")
    assert status == 200, body
    return int(re.search(r"^multivac_mongo_ready (\d+)$", body, re.M).group(1))


def test_mongo_outage_keeps_serving_and_loses_no_data(private_mongo, multivac, ns):
    """A MongoDB outage does not make the process unready (answers come from
    memory, POSTs are queued): /readyz stays 200 and reports MongoDB, and the
    multivac_mongo_ready gauge drops to 0 for the alert."""
    mongo = private_mongo()
    mv = multivac(env={"MONGO_URL": mongo.url, "MULTIVAC_ANSWER_REFRESH_MS": "300"})
    mv.post_ok("before outage")
    mv.wait_answer("before outage")
    wait_for(lambda: mongo_gauge(mv) == 1, 10, "multivac_mongo_ready 1")

    mongo.kill(signal.SIGKILL)
    wait_for(lambda: mongo_gauge(mv) == 0, 15, "multivac_mongo_ready 0 with MongoDB down")
    status, headers, body = mv.get("/readyz", timeout=10)
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"status": "ready", "redis": "ok", "mongo": "unavailable"}
    assert mv.answer() == "before outage"  # known answer still served
    job_id = mv.post_ok("during outage")  # queued in Redis meanwhile

    mongo = private_mongo(mongo.port)  # same data, same port
    wait_for(lambda: mongo_gauge(mv) == 1, 20, "multivac_mongo_ready 1 again")
    with pymongo.MongoClient(mongo.url) as client:
        entropy = client[ns.db_name]["entropy"]
        doc = wait_for(lambda: entropy.find_one({"_id": job_id}), 30,
                       "datum posted during the outage stored after MongoDB is back")
    assert doc["data"] == "during outage"
    assert mv.answer() == "before outage"

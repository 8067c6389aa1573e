"""MongoDB going away and coming back, with a private server: no datum is lost."""

import json
import signal

import pymongo

from conftest import wait_for


def test_mongo_outage_readyz_503_and_no_data_lost(private_mongo, multivac, ns):
    mongo = private_mongo()
    mv = multivac(env={"MONGO_URL": mongo.url})
    mv.post_ok("before outage")
    mv.wait_answer("before outage")

    mongo.kill(signal.SIGKILL)
    wait_for(lambda: mv.get("/readyz", timeout=10)[0] == 503, 15, "/readyz 503 with MongoDB down")
    status, headers, body = mv.get("/readyz")
    assert status == 503, body
    assert headers["content-type"].startswith("application/json")
    json.loads(body)
    assert mv.answer() == "before outage"  # known answer still served
    job_id = mv.post_ok("during outage")  # queued in Redis meanwhile

    mongo = private_mongo(mongo.port)  # same data, same port
    wait_for(lambda: mv.get("/readyz")[0] == 200, 20, "/readyz 200 again")
    with pymongo.MongoClient(mongo.url) as client:
        entropy = client[ns.db_name]["entropy"]
        doc = wait_for(lambda: entropy.find_one({"_id": job_id}), 30,
                       "datum posted during the outage stored after MongoDB is back")
    assert doc["data"] == "during outage"
    assert mv.answer() == "before outage"

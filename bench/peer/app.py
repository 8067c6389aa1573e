"""The original MultiVAC (Flask + RQ + pymongo), rebuilt from
../../../shared/reference/original-multivac.md as the benchmark's baseline peer.

Same endpoints and answers as the original, including its weak points (two
database round trips per GET /multivac, text/html answers, no limits): it is
measured as it was, not improved. Settings as in the original's .env:
REDIS_URL, MONGO_SERVER, MONGO_USERNAME, MONGO_PASSWORD; MONGO_DB_NAME
(default multivac) lets the benchmark keep it apart from MultiVAC's data.

    gunicorn -w 2 -b 127.0.0.1:5000 --chdir bench/peer app:app   # runserver
    rq worker --url "$REDIS_URL" default                           # worker
"""
from flask import Flask, jsonify, request
from redis import Redis
from rq import Queue

import tasks

app = Flask(__name__)
queue = Queue(connection=Redis.from_url(tasks.REDIS_URL))


@app.route("/")
def index():
    return "Welcome to MultiVAC!"


@app.route("/multivac")
def multivac():
    entropy = tasks.collection()
    if entropy.count_documents({}) == 0:
        return "INSUFFICIENT DATA FOR MEANINGFUL ANSWER."
    return entropy.find_one()["data"]


@app.route("/multivac/data", methods=["POST"])
def data():
    value = request.form.get("data")
    if value is None:
        return jsonify({"error": "missing data"}), 400
    queue.enqueue(tasks.store, value)
    return jsonify({"response": "MultiVAC updated!"})


@app.route("/zzz")
def zzz():
    return "LET THERE BE LIGHT!!!"

"""The original's job: insert {"data": value} into <db>.entropy."""
import os

from pymongo import MongoClient

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
DB_NAME = os.environ.get("MONGO_DB_NAME", "multivac")
_client = None


def collection():
    # Created lazily, after gunicorn's or RQ's fork, as pymongo requires.
    global _client
    if _client is None:
        server = os.environ.get("MONGO_SERVER", "127.0.0.1:27017")
        user, password = os.environ.get("MONGO_USERNAME"), os.environ.get("MONGO_PASSWORD")
        if password:
            _client = MongoClient(server, username=user, password=password)
        else:
            _client = MongoClient(server)
    return _client[DB_NAME].entropy


def store(value):
    collection().insert_one({"data": value})

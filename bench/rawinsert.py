"""The storage limit: a raw batched insert of MultiVAC's document shape
({_id: 32 hex chars, data, received_at, processed_at}) into the same store,
with N threads, unordered insert_many of BATCH documents, as MultiVAC's workers do.

    python3 rawinsert.py MONGO_URL DB COUNT [THREADS=2] [BATCH=64]
Prints one JSON line: {"docs": n, "seconds": s, "rate": docs/s}.
"""
import datetime
import json
import os
import sys
import threading
import time

from pymongo import MongoClient


def main():
    url, db, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    client = MongoClient(url)
    coll = client[db].entropy
    now = datetime.datetime.now(datetime.timezone.utc)
    prefix = os.urandom(8).hex()
    docs = [{"_id": f"{prefix}{i:016x}", "data": f"raw insert datum {i}",
             "received_at": now, "processed_at": now} for i in range(count)]
    chunks = [docs[i:i + batch] for i in range(0, count, batch)]
    errors = []

    def run(part):
        try:
            for chunk in part:
                coll.insert_many(chunk, ordered=False)
        except Exception as e:  # reported below: the benchmark fails on it
            errors.append(repr(e))

    parts = [chunks[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=run, args=(p,)) for p in parts]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.monotonic() - t0
    if errors:
        print(json.dumps({"error": errors[0]}))
        sys.exit(1)
    print(json.dumps({"docs": count, "seconds": seconds, "rate": count / seconds}))


if __name__ == "__main__":
    main()

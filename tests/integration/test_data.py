"""POST /multivac/data and the answer: validation, storage, ordering, exactly-once."""

import datetime
import http.client
import json
import re
import socket
import urllib.parse

import pytest

from conftest import FORM_HEADERS, INSUFFICIENT, form, read_response, wait_for

ID_RE = re.compile(r"[0-9a-f]{32}")


def multipart(fields, boundary="mvtestBoundary7MA4YWxk"):
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
             + value + b"\r\n" for name, value in fields.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_seed_procedure(multivac, ns):
    """The original's procedure: no answer, post, ask until the workers have stored it."""
    mv = multivac()
    assert mv.answer() == INSUFFICIENT
    datum = "<script>alert(1)</script> 42 ✓"
    status, headers, body = mv.request("POST", "/multivac/data", form(datum), FORM_HEADERS)
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    reply = json.loads(body)
    assert reply["response"] == "MultiVAC updated!"
    assert ID_RE.fullmatch(reply["id"]), reply
    mv.wait_answer(datum)
    status, headers, _ = mv.get("/multivac")
    assert headers["content-type"] == "text/plain; charset=utf-8"  # never HTML: no stored XSS

    doc = ns.collection.find_one({"_id": reply["id"]})
    assert doc is not None and doc["data"] == datum, doc
    assert isinstance(doc["received_at"], datetime.datetime), doc
    assert isinstance(doc["processed_at"], datetime.datetime), doc
    assert doc["received_at"] <= doc["processed_at"], doc


def test_answer_stays_the_oldest(multivac, ns):
    mv = multivac()
    mv.post_ok("first")
    mv.wait_answer("first")
    for value in ("second", "third", "fourth"):
        mv.post_ok(value)
    wait_for(lambda: ns.collection.count_documents({}) == 4, 20, "4 documents stored")
    assert mv.answer() == "first"
    mv.stop()

    fresh = multivac()  # a new process reads the answer from MongoDB, not from memory
    assert fresh.answer() == "first"
    fresh.post_ok("fifth")
    wait_for(lambda: ns.collection.count_documents({}) == 5, 20, "5 documents stored")
    assert fresh.answer() == "first"


def test_answer_from_existing_data(multivac, ns):
    """Data already in MongoDB (e.g. the original's documents) is answered at once."""
    ns.collection.insert_one({"data": "from the original"})
    mv = multivac()
    assert mv.answer() == "from the original"


def test_multipart_post_is_stored(multivac, ns):
    mv = multivac()
    datum = "multi\r\npart ✓ & = +"
    body, headers = multipart({"other": b"x", "data": datum.encode()})
    status, _, reply = mv.request("POST", "/multivac/data", body, headers)
    assert status == 200, reply
    job_id = json.loads(reply)["id"]
    doc = wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "multipart datum stored")
    assert doc["data"] == datum


def test_chunked_post_is_stored(multivac, ns):
    mv = multivac()
    conn = http.client.HTTPConnection("127.0.0.1", mv.port, timeout=10)
    try:
        chunks = iter([b"da", b"ta=chunk", b"ed%20value%E2%9C%93"])
        conn.request("POST", "/multivac/data", body=chunks, encode_chunked=True,
                     headers={**FORM_HEADERS, "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        reply = resp.read()
        assert resp.status == 200, reply
    finally:
        conn.close()
    job_id = json.loads(reply)["id"]
    doc = wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "chunked datum stored")
    assert doc["data"] == "chunked value✓"


def test_urlencoded_plus_and_escapes(multivac, ns):
    mv = multivac()
    job_id = mv.post_ok("a+b c%d&e=f")  # urlencode turns the space into '+'
    doc = wait_for(lambda: ns.collection.find_one({"_id": job_id}), 20, "datum stored")
    assert doc["data"] == "a+b c%d&e=f"


@pytest.mark.parametrize("body, content_type", [
    (b"other=1", "application/x-www-form-urlencoded"),
    (b"", "application/x-www-form-urlencoded"),
    (b"data=%G1", "application/x-www-form-urlencoded"),
    (b"data=abc%", "application/x-www-form-urlencoded"),
    (b"data=%FF", "application/x-www-form-urlencoded"),
    (b"data=%C3%28", "application/x-www-form-urlencoded"),
    (b"data=x", "text/plain"),
    (b'{"data": "x"}', "application/json"),
    (b"data=x", None),
    (b"--b\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\nx", "multipart/form-data; boundary=b"),
    (b"no boundary here", "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data"),
    (b"--b\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n\xff\r\n--b--\r\n",
     "multipart/form-data; boundary=b"),
], ids=["missing-field", "empty-body", "bad-escape", "truncated-escape", "invalid-utf8",
        "invalid-utf8-seq", "text-plain", "json", "no-content-type", "multipart-unterminated",
        "multipart-garbage", "multipart-no-boundary", "multipart-invalid-utf8"])
def test_bad_post_400(shared_multivac, body, content_type):
    mv = shared_multivac
    headers = {"Content-Type": content_type} if content_type else {}
    status, resp_headers, reply = mv.request("POST", "/multivac/data", body, headers)
    assert status == 400, reply
    assert resp_headers["content-type"].startswith("application/json")
    assert "error" in json.loads(reply)
    assert mv.answer() == INSUFFICIENT  # nothing was stored


def test_body_too_large_413(multivac, ns):
    mv = multivac(env={"MULTIVAC_MAX_BODY": "1024"})
    status, _, reply = mv.request("POST", "/multivac/data", form("x" * 2048), FORM_HEADERS)
    assert status == 413, reply
    mv.post_ok("y" * 900)  # under the limit: accepted
    assert mv.get("/zzz")[0] == 200


def test_body_too_large_413_chunked(multivac, ns):
    mv = multivac(env={"MULTIVAC_MAX_BODY": "1024"})
    chunks = b"5\r\ndata=\r\n" + b"100\r\n" + b"x" * 256 + b"\r\n"
    with socket.create_connection(("127.0.0.1", mv.port), timeout=5) as s:
        s.sendall(b"POST /multivac/data HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunks * 8 + b"0\r\n\r\n")
        assert read_response(s.makefile("rb"))[1] == 413
    assert mv.get("/zzz")[0] == 200


def test_declared_length_too_large_413_without_body(multivac, ns):
    """Rejected from the headers alone: the server does not wait for 100 MB."""
    mv = multivac()
    with socket.create_connection(("127.0.0.1", mv.port), timeout=5) as s:
        s.sendall(b"POST /multivac/data HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 100000000\r\n\r\ndata=")
        assert read_response(s.makefile("rb"))[1] == 413


def test_each_datum_stored_exactly_once(multivac, ns):
    """300 posts, competing workers in two processes: each datum stored once."""
    mv = multivac(env={"MULTIVAC_WORKERS": "3", "MULTIVAC_BATCH": "8"})
    multivac("worker", env={"MULTIVAC_WORKERS": "2", "MULTIVAC_BATCH": "8"})
    count = 300
    sent = {}  # id -> value
    conn = http.client.HTTPConnection("127.0.0.1", mv.port, timeout=10)
    try:
        for i in range(count):  # one keep-alive connection
            value = f"datum-{i:04d}"
            conn.request("POST", "/multivac/data", urllib.parse.urlencode({"data": value}),
                         FORM_HEADERS)
            resp = conn.getresponse()
            reply = resp.read()
            assert resp.status == 200, (i, reply)
            sent[json.loads(reply)["id"]] = value
    finally:
        conn.close()
    assert len(sent) == count, "ids returned by POST are not unique"
    assert all(ID_RE.fullmatch(i) for i in sent)

    wait_for(lambda: ns.collection.count_documents({}) >= count, 60, f"{count} documents stored")
    docs = list(ns.collection.find({}, {"_id": 1, "data": 1}))
    assert len(docs) == count, f"{len(docs)} documents for {count} posts"
    assert {d["_id"]: d["data"] for d in docs} == sent

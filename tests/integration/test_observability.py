"""Request ids, the access log and the request-duration histogram."""

import json
import re

from conftest import FORM_HEADERS, form, raw_exchange, wait_for


def log_lines(mv):
    lines = mv.log_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def access_lines(mv):
    return [rec for rec in log_lines(mv) if rec.get("msg") == "request"]


def test_request_id_is_echoed_or_made(multivac):
    mv = multivac()
    status, headers, _ = mv.request("GET", "/", headers={"X-Request-Id": "abc-123.x"})
    assert status == 200 and headers["x-request-id"] == "abc-123.x"
    status, headers, _ = mv.request("GET", "/")
    assert re.fullmatch(r"[0-9a-f]{16}", headers["x-request-id"]), headers
    # An id that could break a header or a log line is replaced, not echoed.
    status, headers, _ = mv.request("GET", "/", headers={"X-Request-Id": "a b\"c"})
    assert re.fullmatch(r"[0-9a-f]{16}", headers["x-request-id"]), headers
    # Refusals of the http layer carry one too.
    reply = raw_exchange(mv.port, b"GET / HTTP/1.1\r\n\r\n")
    assert b" 400 " in reply.split(b"\r\n", 1)[0] and b"\r\nX-Request-Id: " in reply


def test_access_log_line_per_response_with_job_id(multivac):
    mv = multivac()
    status, headers, body = mv.request("POST", "/multivac/data", form("logged"), FORM_HEADERS)
    assert status == 200, body
    job_id = json.loads(body)["id"]
    rid = headers["x-request-id"]
    raw_exchange(mv.port, b"GET /nope%0a\x1b[31m HTTP/1.1\r\nHost: x\r\n\r\n")
    recs = wait_for(lambda: [r for r in access_lines(mv) if r.get("request_id") == rid], 5,
                    "access-log line of the POST")
    rec = recs[0]
    assert rec["method"] == "POST" and rec["path"] == "/multivac/data"
    assert rec["status"] == "200" and rec["job_id"] == job_id
    assert float(rec["duration_ms"]) >= 0 and int(rec["bytes"]) > 0
    # Every line is JSON (log_lines parsed them all); the client's bytes are escaped.
    raw = mv.log_path.read_bytes()
    assert b"\x1b" not in raw


def test_access_log_can_be_switched_off(multivac):
    mv = multivac(env={"MULTIVAC_ACCESS_LOG": "0"})
    for _ in range(3):
        assert mv.get("/")[0] == 200
    assert access_lines(mv) == []


def test_duration_histogram_by_route_and_class(multivac):
    mv = multivac()
    assert mv.get("/zzz")[0] == 200
    assert mv.get("/nope")[0] == 404
    _, _, text = mv.get("/metrics")
    name = "multivac_http_request_duration_seconds"
    assert f"# TYPE {name} histogram" in text
    count = re.search(rf'^{name}_count{{route="/zzz",class="2xx"}} (\d+)$', text, re.M)
    assert count and int(count.group(1)) >= 1, text
    assert re.search(rf'^{name}_bucket{{route="other",class="4xx",le="\+Inf"}} 1$', text, re.M)
    buckets = [int(v) for v in re.findall(
        rf'^{name}_bucket{{route="/zzz",class="2xx",le="[^"]+"}} (\d+)$', text, re.M)]
    assert buckets == sorted(buckets) and buckets[-1] == int(count.group(1))


def test_build_info_and_dead_letter_gauges(multivac):
    mv = multivac()
    _, _, text = mv.get("/metrics")
    assert re.search(r'^multivac_build_info\{version="\d+\.\d+\.\d+"\} 1$', text, re.M), text
    assert re.search(r"^multivac_dead_letters 0$", text, re.M), text


def test_job_age_and_store_insert_histograms(multivac):
    mv = multivac()
    mv.post_ok("aged")
    mv.wait_answer("aged")

    def count(name):
        _, _, text = mv.get("/metrics")
        m = re.search(rf"^{name}_count (\d+)$", text, re.M)
        return int(m.group(1)) if m else -1
    wait_for(lambda: count("multivac_job_age_seconds") >= 1, 10, "job age observed")
    assert count("multivac_store_insert_seconds") >= 1
    _, _, text = mv.get("/metrics")
    assert re.search(r'^multivac_job_age_seconds_bucket\{le="\+Inf"\} \d+$', text, re.M), text


def test_redis_command_histogram_by_kind(multivac):
    mv = multivac()
    name = "multivac_redis_command_seconds"

    def scrape():
        _, _, text = mv.get("/metrics")
        assert f"# TYPE {name} histogram" in text, text
        counts = {k: int(v) for k, v in re.findall(
            rf'^{name}_count{{command="(\w+)"}} (\d+)$', text, re.M)}
        return counts, text

    mv.post_ok("timed 0")
    before, _ = scrape()
    for i in range(1, 4):
        mv.post_ok(f"timed {i}")
    # The workers claim what was pushed; the depth is polled every 500 ms.
    wait_for(lambda: scrape()[0].get("claim", 0) > before.get("claim", 0)
             and scrape()[0].get("depth", 0) > before.get("depth", 0), 10, "claims and polls timed")
    after, text = scrape()
    assert after["push"] >= before["push"] + 3, (before, after)
    assert after["ping"] >= 1  # /readyz, which the harness waited for
    assert set(after) <= {"push", "wait", "claim", "ack", "heartbeat", "release", "reap",
                          "depth", "ping"}, after
    for kind, count in after.items():
        buckets = [int(v) for v in re.findall(
            rf'^{name}_bucket{{command="{kind}",le="[^"]+"}} (\d+)$', text, re.M)]
        assert len(buckets) == 17 and buckets == sorted(buckets) and buckets[-1] == count, kind
        total = float(re.search(rf'^{name}_sum{{command="{kind}"}} (\S+)$', text, re.M).group(1))
        # Loopback Redis: well under a second per command on average.
        assert 0 < total / count < 1, (kind, total, count)

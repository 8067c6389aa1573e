"""The Redis queue under large bodies: bounded commands, a watchdog that tells a slow
transfer from a hung server, and a bound on the bytes waiting for Redis."""

import http.client
import json
import signal
import socket
import threading
import time

import redis as redis_py

from conftest import read_response, wait_for

POSTS = 300
DATUM_BYTES = 900_000  # near the 1 MiB body limit


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post_body(size):
    return b"data=" + b"a" * size


def open_post(port, size):
    """Send a whole POST on a fresh socket without waiting for the answer."""
    body = post_body(size)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /multivac/data HTTP/1.1\r\nHost: t\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return s


def finish_post(s):
    with s, s.makefile("rb") as f:
        _, status, headers, body = read_response(f)
    return status, headers, body


def test_300_concurrent_large_posts_all_accepted(private_redis, multivac, ns):
    """300 × 900 KB at once: every one acknowledged, the queue connection never dropped."""
    rs = private_redis()
    # HTTP only: the jobs stay in Redis, where they are counted. The in-flight byte bound
    # is raised past the burst (~270 MB): this is about the queue connection, and with the
    # default 64 MiB most of a simultaneous burst rightly gets 503 + Retry-After.
    mv = multivac("runserver", env={"REDIS_URL": rs.url,
                                    "MULTIVAC_INFLIGHT_BYTES": str(512 << 20)})
    body = post_body(DATUM_BYTES)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    results = [None] * POSTS
    start = threading.Barrier(POSTS + 1)

    def one(i):
        start.wait()
        conn = http.client.HTTPConnection("127.0.0.1", mv.port, timeout=45)
        try:
            conn.request("POST", "/multivac/data", body=body, headers=headers)
            resp = conn.getresponse()
            results[i] = (resp.status, resp.read())
        except (OSError, http.client.HTTPException) as e:
            results[i] = (None, repr(e).encode())
        finally:
            conn.close()

    rss_before = rss_kb(mv.proc.pid)
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(POSTS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(timeout=max(0.1, t0 + 50 - time.monotonic()))
    elapsed = time.monotonic() - t0
    statuses = {}
    for r in results:
        key = r[0] if r else "unanswered"
        statuses[key] = statuses.get(key, 0) + 1
    print(f"\n{POSTS} x {DATUM_BYTES} B POSTs: {statuses} in {elapsed:.1f} s; "
          f"server RSS {rss_before // 1024} MB before, {rss_kb(mv.proc.pid) // 1024} MB after")
    assert statuses == {200: POSTS}, (
        f"statuses {statuses}; first failure: "
        f"{next((r for r in results if not r or r[0] != 200), None)!r:.300}\n{mv.stderr(20)}")
    ids = {json.loads(r[1])["id"] for r in results}
    assert len(ids) == POSTS
    assert "redis unavailable" not in mv.stderr(200), mv.stderr(20)

    r = redis_py.Redis(host="127.0.0.1", port=rs.port, socket_timeout=10)
    try:
        assert r.llen(f"{ns.prefix}jobs") == POSTS
    finally:
        r.flushall()
        r.close()


def test_inflight_bytes_bound_with_redis_frozen(private_redis, multivac, ns):
    """Past MULTIVAC_INFLIGHT_BYTES waiting on a frozen Redis: 503 + Retry-After at once;
    what was admitted is acknowledged once Redis resumes."""
    rs = private_redis()
    mv = multivac("runserver", env={"REDIS_URL": rs.url, "MULTIVAC_INFLIGHT_BYTES": "1048576"})
    mv.post_ok("warm-up")  # connection and depth known
    r = redis_py.Redis(host="127.0.0.1", port=rs.port, socket_timeout=10)
    r.delete(f"{ns.prefix}jobs")

    rs.proc.send_signal(signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        # 2 × 400 KB wait on Redis (800 KB of the 1 MiB bound)...
        admitted = [open_post(mv.port, 400_000) for _ in range(2)]
        time.sleep(0.1)
        # ...so 400 KB more is refused at once,
        t = time.monotonic()
        status, headers, body = finish_post(open_post(mv.port, 400_000))
        refused_in = time.monotonic() - t
        assert status == 503, (status, body)
        assert headers.get("retry-after") == "1", headers
        assert refused_in < 0.5, f"503 took {refused_in:.2f} s"
        # ...while 100 KB still fits.
        admitted.append(open_post(mv.port, 100_000))
        time.sleep(0.1)
        # Resume well before the watchdog could call the frozen Redis dead (1 s).
        assert time.monotonic() - frozen_at < 0.8, "too slow to test before the watchdog"
    finally:
        rs.proc.send_signal(signal.SIGCONT)
    answers = [finish_post(s) for s in admitted]
    assert [a[0] for a in answers] == [200, 200, 200], [(a[0], a[2][:200]) for a in answers]
    assert r.llen(f"{ns.prefix}jobs") == 3
    # Acknowledged bytes no longer count: a full-size datum is accepted again.
    status, _ = mv.post("b" * 900_000)
    assert status == 200
    r.close()


def test_watchdog_still_drops_a_frozen_redis(private_redis, multivac):
    """Progress tracking must not hide a hung server: POSTs to a frozen Redis fail within
    the watchdog's 1-2 s, those sent (LPUSH written) and those held back behind the 8 MiB
    output window alike; then service resumes."""
    rs = private_redis()
    mv = multivac("runserver", env={"REDIS_URL": rs.url})
    mv.post_ok("warm-up")
    rs.proc.send_signal(signal.SIGSTOP)
    try:
        t = time.monotonic()
        # 12 × 900 KB: more than the output window, so some wait in the queue's list.
        socks = [open_post(mv.port, 900_000) for _ in range(12)]
        answers = [finish_post(s) for s in socks]
        took = time.monotonic() - t
    finally:
        rs.proc.send_signal(signal.SIGCONT)
    assert [a[0] for a in answers] == [503] * 12, [(a[0], a[2][:120]) for a in answers]
    assert all("retry-after" in a[1] for a in answers)
    assert took < 3.0, f"503s took {took:.2f} s"
    wait_for(lambda: mv.post("after")[0] == 200, 10, "POST accepted after SIGCONT")

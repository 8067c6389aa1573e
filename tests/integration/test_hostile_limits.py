"""Hostile clients against the limits of issue 6: timeouts, caps, memory, over raw sockets.

Each test starts its own multivac with small settings through the environment.
The memory test (test_MEMORY_per_connection_900k_posts) prints the cost per connection
in MB; it is also in its assertion message.
"""

import os
import select
import signal
import socket
import time

import pytest

import hostile_cases as hc
import rawhttp
from conftest import INSUFFICIENT, Multivac, clean_env, free_port, multivac_bin
from rawhttp import SPLIT_MODES


def elapsed_until_closed_or_answered(sock, t0, limit):
    """Seconds from t0 until the socket is readable (data or EOF), or None after limit."""
    while True:
        left = t0 + limit - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if r:
            return time.monotonic() - t0


# --- timeouts ---------------------------------------------------------------------------


@pytest.fixture
def slow_server(multivac):
    return multivac(env={"MULTIVAC_HEADER_TIMEOUT_MS": "1000", "MULTIVAC_BODY_TIMEOUT_MS": "1000",
                         "MULTIVAC_IDLE_TIMEOUT_MS": "60000"})


def test_header_drip_timeout(slow_server):
    """One header byte every 200 ms: 408 (or a close) ~1 s after the first byte."""
    mv = slow_server
    payload = b"GET / HTTP/1.1\r\nHost: t\r\nX-Drip: " + b"d" * 200
    with rawhttp.connect(mv.port, timeout=3) as s:
        t0 = None
        took = None
        for i in range(len(payload)):
            if not rawhttp.send(s, payload[i:i + 1]):
                took = time.monotonic() - t0
                break
            if t0 is None:
                t0 = time.monotonic()
            deadline = min(time.monotonic() + 0.2, t0 + 3.0)
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
            if r:
                took = time.monotonic() - t0
                break
            if time.monotonic() - t0 >= 3.0:
                break
        assert took is not None, "a client dripping a header byte every 200 ms was not cut off " \
                                 "within 3 s of its first byte (MULTIVAC_HEADER_TIMEOUT_MS=1000)"
        rd = rawhttp.Reader(s)
        resp = rd.response(0.5)
        closed = rd.wait_close(1.0)
    assert resp is None or resp.status == 408, f"want 408 or a plain close, got {resp!r}"
    assert closed, f"not closed after the header timeout ({resp!r})"
    assert 0.8 <= took <= 1.6, f"cut off {took:.2f}s after the first byte, want ~1.0 (<= 1.6)"
    assert rawhttp.alive(mv.port)[0]


@pytest.mark.parametrize("mode", SPLIT_MODES)
def test_body_stall_timeout(slow_server, mode):
    """A POST announcing 100 bytes that sends 10 and stops: 408 + close within ~1.5 s."""
    mv = slow_server
    head = hc.post(b"Content-Length: 100\r\n") + b"data=aaaaa"
    with rawhttp.connect(mv.port, timeout=3) as s:
        assert rawhttp.send(s, head, mode, rawhttp.seed_for(f"body-stall/{mode}"))
        t0 = time.monotonic()
        took = elapsed_until_closed_or_answered(s, t0, 3.0)
        rd = rawhttp.Reader(s)
        resp = rd.response(0.5)
        closed = rd.wait_close(1.0)
    assert took is not None, "stalled body not answered within 3 s (MULTIVAC_BODY_TIMEOUT_MS=1000)"
    assert resp is not None and resp.status == 408, f"want 408, got {resp!r} after {took:.2f}s"
    assert closed, "not closed after 408"
    assert 0.8 <= took <= 1.6, f"408 after {took:.2f}s of stall, want ~1.0 (<= 1.6)"
    assert rawhttp.alive(mv.port)[0]


def test_body_progress_does_not_hit_header_timeout(slow_server):
    """Headers at once, then a body at full speed: served (no timeout on a live body)."""
    mv = slow_server
    body = b"data=" + b"p" * 20000
    payload = hc.post_cl(body)
    responses, closed, extra, _ = rawhttp.exchange(mv.port, payload, "random", 5, close_timeout=0.2)
    assert responses and responses[0].status == 200, responses


@pytest.fixture
def idle_server(multivac):
    return multivac(env={"MULTIVAC_IDLE_TIMEOUT_MS": "1000"})


def test_idle_keepalive_closed(idle_server):
    mv = idle_server
    with rawhttp.connect(mv.port, timeout=3) as s:
        s.sendall(hc.GOOD)
        rd = rawhttp.Reader(s)
        r = rd.response(2.0)
        assert r is not None and r.status == 200, r
        t0 = time.monotonic()
        closed = rd.wait_close(3.0)
        took = time.monotonic() - t0
    assert closed, "idle keep-alive connection not closed within 3 s (MULTIVAC_IDLE_TIMEOUT_MS=1000)"
    assert rd.buf == b"", f"idle close sent bytes: {rd.buf[:200]!r}"
    assert 0.8 <= took <= 1.6, f"closed after {took:.2f}s idle, want ~1.0"


def test_idle_silent_connection_closed(idle_server):
    mv = idle_server
    with rawhttp.connect(mv.port, timeout=3) as s:
        t0 = time.monotonic()
        rd = rawhttp.Reader(s)
        closed = rd.wait_close(3.0)
        took = time.monotonic() - t0
    assert closed and rd.buf == b"", (closed, rd.buf[:200])
    assert 0.8 <= took <= 1.6, f"closed after {took:.2f}s, want ~1.0"


# --- a million header lines ------------------------------------------------------------------


def test_million_header_lines_no_growth(multivac):
    """1,000,000 ':' or 'a:' lines are refused (400/431) without the server growing."""
    mv = multivac()
    for _ in range(3):
        assert rawhttp.alive(mv.port)[0]
    base = rawhttp.proc_rss_kb(mv.proc.pid)
    for line, statuses in ((b":\r\n", (400, 431)), (b"a:\r\n", (431,))):
        payload = b"GET / HTTP/1.1\r\nHost: t\r\n" + line * 1_000_000 + b"\r\n"
        for mode in SPLIT_MODES:
            responses, closed, extra, _ = rawhttp.exchange(mv.port, payload, mode, 11,
                                                           timeout=6.0, close_timeout=1.0)
            got = [r.status for r in responses]
            assert len(got) == 1 and got[0] in statuses and closed, (
                f"1M {line!r} lines mode={mode}: {responses!r} closed={closed}")
            assert mv.proc.poll() is None, f"multivac died\n{mv.stderr(20)}"
    growth_mb = (rawhttp.proc_rss_kb(mv.proc.pid) - base) / 1024
    assert growth_mb <= 4, f"RSS grew {growth_mb:.1f} MB over 1M-line header sections"
    assert rawhttp.alive(mv.port)[0]


# --- slow reader --------------------------------------------------------------------------


def test_slow_reader_bounded(multivac):
    """20,000 pipelined GET /metrics (~2.5 KB answer each, ~50 MB in all) never read:
    the server's RSS grows < 16 MB and other clients are served meanwhile."""
    mv = multivac()
    for _ in range(3):
        assert rawhttp.alive(mv.port)[0]
    mv.request("GET", "/metrics")
    time.sleep(0.3)
    base = rawhttp.proc_rss_kb(mv.proc.pid)
    one = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
    payload = one * 20000
    s = rawhttp.connect(mv.port, timeout=5, rcvbuf=4096)
    try:
        s.setblocking(False)
        sent, t0 = 0, time.monotonic()
        while sent < len(payload) and time.monotonic() - t0 < 4.0:
            try:
                sent += s.send(payload[sent:sent + 65536])
            except BlockingIOError:
                select.select([], [s], [], 0.1)
        time.sleep(1.0)
        peak = 0
        for _ in range(5):
            peak = max(peak, rawhttp.proc_rss_kb(mv.proc.pid))
            ok, detail = rawhttp.alive(mv.port, timeout=1.0)
            assert ok, f"another client not served while a slow reader is stuck: {detail}"
            time.sleep(0.2)
    finally:
        s.close()
    growth_mb = (peak - base) / 1024
    print(f"slow reader: sent {sent} of {len(payload)} request bytes, RSS +{growth_mb:.1f} MB")
    assert growth_mb <= 16, (f"RSS grew {growth_mb:.1f} MB (base {base} kB, peak {peak} kB) for "
                             f"one client that never reads ({sent} request bytes accepted)")
    assert mv.proc.poll() is None
    assert rawhttp.alive(mv.port)[0]


# --- connection cap ------------------------------------------------------------------------


def test_connection_cap(multivac):
    mv = multivac(env={"MULTIVAC_MAX_CONNECTIONS": "50"})
    time.sleep(0.3)  # the start-up probes' connections are gone
    conns = []
    try:
        for i in range(50):
            s = rawhttp.connect(mv.port, timeout=2)
            conns.append(s)
            s.sendall(hc.GOOD)
            r = rawhttp.Reader(s).response(2.0)
            assert r is not None and r.status == 200, f"connection {i + 1} of 50 not served: {r!r}"
        extra = rawhttp.connect(mv.port, timeout=1.0)
        rd = rawhttp.Reader(extra)
        closed = rd.wait_close(1.0)
        extra.close()
        assert closed and rd.buf == b"", (
            f"the 51st connection was not closed at once (closed={closed}, got {rd.buf[:200]!r})")
        # the 50 are still served
        conns[0].sendall(hc.GOOD)
        r = rawhttp.Reader(conns[0]).response(2.0)
        assert r is not None and r.status == 200, r
        for s in conns[:10]:
            s.close()
        conns = conns[10:]
        time.sleep(0.3)
        ok, detail = rawhttp.alive(mv.port)
        assert ok, f"not served after 10 connections closed: {detail}"
    finally:
        for s in conns:
            s.close()


# --- EMFILE -----------------------------------------------------------------------------------


def test_emfile_does_not_spin(redis_server, mongo_server, ns, tmp_path):
    """With 64 file descriptors and 200 clients, the server stays alive, idles (CPU < 0.5 s
    over 2 s), and serves again once clients close."""
    port = free_port()
    env = clean_env({"MULTIVAC_LISTEN": f"127.0.0.1:{port}", "REDIS_URL": redis_server.url,
                     "MONGO_URL": mongo_server.url, "MONGO_DB_NAME": ns.db_name,
                     "MULTIVAC_PREFIX": ns.prefix})
    argv = ["prlimit", "--nofile=64:64", "--", multivac_bin(), "serve"]
    mv = Multivac(argv, env, port, tmp_path / "multivac-emfile.log")
    conns = []
    try:
        mv.wait_http("/healthz")
        mv.wait_http("/readyz")
        for _ in range(200):
            try:
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
            except OSError:
                pass  # a full backlog may refuse or time out: that is fine
        for s in conns[:100]:
            try:
                s.sendall(hc.GOOD)
            except OSError:
                pass
        time.sleep(0.5)
        assert mv.proc.poll() is None, f"multivac died under EMFILE\n{mv.stderr(20)}"
        cpu0 = rawhttp.proc_cpu_seconds(mv.proc.pid)
        time.sleep(2.0)
        cpu = rawhttp.proc_cpu_seconds(mv.proc.pid) - cpu0
        assert mv.proc.poll() is None, f"multivac died under EMFILE\n{mv.stderr(20)}"
        assert cpu < 0.5, f"multivac used {cpu:.2f}s CPU in 2 s with fds exhausted (spinning)"
        for s in conns:
            s.close()
        conns = []
        deadline = time.monotonic() + 5
        while True:
            ok, detail = rawhttp.alive(port, timeout=1.0)
            if ok:
                break
            assert time.monotonic() < deadline, f"not serving 5 s after clients closed: {detail}"
            time.sleep(0.2)
    finally:
        for s in conns:
            s.close()
        mv.stop(check=False)
    assert mv.proc.returncode == 0, f"exit status {mv.proc.returncode}\n{mv.stderr(20)}"


# --- in-flight bytes ----------------------------------------------------------------------------


def test_inflight_bytes_bound(private_redis, multivac):
    """Redis frozen, MULTIVAC_INFLIGHT_BYTES=1 MiB: three 300 KB POSTs wait, the next ones
    are refused at once with 503 + Retry-After; after SIGCONT every request is answered."""
    r = private_redis()
    mv = multivac(env={"REDIS_URL": r.url, "MULTIVAC_INFLIGHT_BYTES": "1048576"})
    payload = hc.post_cl(b"data=" + b"i" * 300000)
    socks = [rawhttp.connect(mv.port, timeout=10) for _ in range(5)]
    os.kill(r.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for s in socks:
            s.settimeout(0.3)
        sent = [rawhttp.send(s, payload) for s in socks[:3]]
        time.sleep(0.15)
        sent += [rawhttp.send(s, payload) for s in socks[3:]]
        for s in socks:
            s.settimeout(10)
        late = [rawhttp.Reader(s) for s in socks[3:]]
        deadline = time.monotonic() + 0.5
        refused = [rd.final_response(max(0.0, deadline - time.monotonic())) for rd in late]
        pending = [rawhttp.readable(s) for s in socks[:3]]
        took = time.monotonic() - t0
        for resp in refused:
            assert resp is not None and resp.status == 503, (
                f"POST beyond 1 MiB in flight not refused at once: {refused!r}")
            assert resp.header("retry-after"), f"503 without Retry-After: {resp!r}"
        assert took < 1.0, f"test too slow ({took:.2f}s) to tell the bound from the Redis watchdog"
        assert sent[:3] == [True] * 3, f"the server did not read the first bodies: {sent}"
        assert pending == [False] * 3, (
            f"the first 900 KB (under the bound) should wait for the frozen Redis; "
            f"answered already: {pending}")
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    try:
        for i, s in enumerate(socks[:3]):
            resp = rawhttp.Reader(s).final_response(10.0)
            assert resp is not None and resp.status in (200, 503), (
                f"waiting POST {i} not answered after SIGCONT: {resp!r}")
    finally:
        for s in socks:
            s.close()
    assert rawhttp.alive(mv.port)[0]


# --- long-poll waiters ----------------------------------------------------------------------


def test_longpoll_waiter_cap(multivac):
    mv = multivac(env={"MULTIVAC_MAX_WAITERS": "10"})
    req = hc.get(b"/multivac?wait=20", hc.H)
    held = [rawhttp.connect(mv.port, timeout=5) for _ in range(10)]
    try:
        for s in held:
            s.sendall(req)
        time.sleep(0.5)
        answered = [rawhttp.readable(s) for s in held]
        assert not any(answered), f"long-polls under the cap answered early: {answered}"
        t0 = time.monotonic()
        with rawhttp.connect(mv.port, timeout=5) as s:
            s.sendall(req)
            r = rawhttp.Reader(s).response(2.0)
        took = time.monotonic() - t0
        assert r is not None and r.status == 200, f"11th long-poll: {r!r}"
        assert r.body == INSUFFICIENT.encode(), r
        assert took < 1.0, f"11th long-poll held {took:.2f}s; over the cap it must answer at once"
        answered = [rawhttp.readable(s) for s in held]
        assert not any(answered), f"the 10 held long-polls were released: {answered}"
    finally:
        for s in held:
            s.close()


# --- memory ---------------------------------------------------------------------------------


MEMORY_N = 100
MEMORY_BODY = b"data=" + b"a" * 900_000


def test_MEMORY_per_connection_900k_posts(multivac, capsys):
    """MEMORY TEST. 100 connections each POST a 900 KB form and stay open: once all are
    answered, RSS over the idle baseline is <= 100 KB per connection; after they close,
    RSS is back within 20 % (+8 MB) of the baseline.

    Runs `runserver` (HTTP only): the jobs stay in Redis, so what is measured is the
    HTTP side's cost per connection, not a worker's batch in flight to MongoDB.

    Under AddressSanitizer, freed memory sits in its quarantine (256 MB) and would be
    measured as held: the quarantine is turned off for this server, so the figure
    is what the code holds, under either build."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    mv = multivac("runserver", env={
        "ASAN_OPTIONS": (asan + ":" if asan else "") +
        "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"})
    for _ in range(5):
        assert rawhttp.alive(mv.port)[0]
    time.sleep(0.3)
    base = rawhttp.proc_rss_kb(mv.proc.pid)
    payload = hc.post_cl(MEMORY_BODY)
    conns, statuses = [], []
    try:
        for batch in range(0, MEMORY_N, 10):
            group = [rawhttp.connect(mv.port, timeout=20) for _ in range(10)]
            conns.extend(group)
            for s in group:
                s.sendall(payload)
            for s in group:
                r = rawhttp.Reader(s).final_response(20.0)
                statuses.append(r.status if r else None)
        assert statuses == [200] * MEMORY_N, f"not all POSTs answered 200: {statuses}"
        time.sleep(0.5)
        loaded = rawhttp.proc_rss_kb(mv.proc.pid)
        per_conn_kb = (loaded - base) / MEMORY_N
        figure = (f"MEMORY: {per_conn_kb / 1024:.3f} MB per connection "
                  f"({per_conn_kb:.0f} kB; baseline {base / 1024:.1f} MB, with {MEMORY_N} "
                  f"answered 900 KB POSTs open {loaded / 1024:.1f} MB)")
        with capsys.disabled():
            print("\n" + figure)
        assert per_conn_kb <= 100, figure
    finally:
        for s in conns:
            s.close()
    bound = base * 1.2 + 8 * 1024
    deadline = time.monotonic() + 5
    while True:
        after = rawhttp.proc_rss_kb(mv.proc.pid)
        if after <= bound or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    msg = (f"MEMORY: after the {MEMORY_N} connections closed RSS is {after / 1024:.1f} MB, "
           f"baseline {base / 1024:.1f} MB, bound {bound / 1024:.1f} MB")
    with capsys.disabled():
        print(msg)
    assert after <= bound, msg

"""Hostile-input conformance battery (issue 6), over raw sockets.

Every request is sent three ways - whole, in 1-byte segments, and in seeded random
segments with ~1 ms pauses - and must get the same verdict (status, and whether the
connection is closed afterwards), with the server still answering a normal GET / on a
new connection afterwards. Failures print the split mode and the seed (rerun one
with HOSTILE_SEED=<seed>).

Run: MULTIVAC_BIN=build/multivac python3 -m pytest -q tests/integration/test_hostile.py
"""

import base64
import json
import time

import pytest

import hostile_cases as hc
import rawhttp
from conftest import Launcher, Namespace, tail
from rawhttp import SPLIT_MODES


# --- a server that is replaced (and the crash reported) if a case kills it ------------------


class Restartable:
    """One multivac for many cases; a case that kills it fails, the next gets a new one."""

    def __init__(self, redis_server, mongo_server, mongo_client, logdir, env=None):
        self.redis_server, self.mongo_server = redis_server, mongo_server
        self.mongo_client, self.logdir, self.env = mongo_client, logdir, env or {}
        self.ns = Namespace(mongo_client)
        self.dead = []  # (Multivac, exit status) of crashed instances
        self.launchers = []
        self.mv = None
        self._start()

    def _start(self):
        launcher = Launcher(self.redis_server, self.mongo_server, self.ns,
                            self.logdir / f"run{len(self.launchers)}")
        launcher.logdir.mkdir(parents=True, exist_ok=True)
        self.launchers.append(launcher)
        self.mv = launcher.start(env=self.env)

    def get(self):
        if self.mv.proc.poll() is not None:
            self.dead.append((self.mv, self.mv.proc.returncode))
            self._start()
        return self.mv

    def close(self):
        try:
            if self.mv.proc.poll() is None:
                self.mv.stop()  # a clean exit (status 0: no ASan/UBSan report at exit)
        finally:
            self.mongo_client.drop_database(self.ns.db_name)


@pytest.fixture(scope="module")
def server(redis_server, mongo_server, mongo_client, tmp_path_factory):
    srv = Restartable(redis_server, mongo_server, mongo_client,
                      tmp_path_factory.mktemp("hostile"), {"MULTIVAC_LOG_LEVEL": "debug"})
    yield srv
    srv.close()


def check_alive(mv, what):
    """The server process runs and answers GET / on a new connection."""
    time.sleep(0.01)
    status = mv.proc.poll()
    assert status is None, (f"{what}: multivac DIED (exit status {status})\n"
                            f"--- stderr ---\n{mv.stderr(30)}")
    ok, detail = rawhttp.alive(mv.port)
    assert ok, f"{what}: server not answering afterwards: {detail}\n--- stderr ---\n{mv.stderr(20)}"


def describe(case_id, mode, seed, responses, closed, extra, sent):
    return (f"case {case_id!r} mode={mode} seed={seed} (rerun: HOSTILE_SEED={seed})\n"
            f"  responses: {responses!r}\n  closed: {closed}  unread extra bytes: {extra[:200]!r}"
            f"  whole payload sent: {sent}")


def judge(mv, case, mode):
    """Send case.payload per mode and check case's verdict; then that the server lives."""
    seed = rawhttp.seed_for(f"{case.id}/{mode}")
    close_timeout = 1.0 if case.close is True else 0.25
    timeout = 6.0 if case.slow_ok else 2.0
    responses, closed, extra, sent = rawhttp.exchange(
        mv.port, case.payload, mode, seed, n=1, timeout=timeout, close_timeout=close_timeout)
    what = describe(case.id, mode, seed, responses, closed, extra, sent)
    if case.why:
        what += f"\n  ({case.why})"
    if not responses:
        died = mv.proc.poll()
        assert died is None, f"multivac DIED (exit status {died}): {what}\n{mv.stderr(10)}"
        pytest.fail(f"no response. {what}\n--- stderr ---\n{mv.stderr(10)}")
    r = responses[-1]
    assert len(responses) == 1, f"interim responses not expected: {what}"
    assert r.status in case.statuses, f"status {r.status}, want {case.statuses}. {what}"
    assert not extra, f"bytes after the response (a second response?): {what}"
    if case.close is True:
        assert closed, f"connection not closed after {r.status}: {what}"
    elif case.close is False:
        assert not closed, f"connection closed after {r.status}, must stay open: {what}"
    if case.body_has:
        assert case.body_has in r.body, f"body lacks {case.body_has!r}: {what}"
    if r.status >= 400:
        assert r.body and int(r.header("content-length") or -1) == len(r.body), (
            f"error response without its framed body: {what}")
    check_alive(mv, what)


@pytest.mark.parametrize("mode", SPLIT_MODES)
@pytest.mark.parametrize("case", hc.ALL_CASES, ids=[c.id for c in hc.ALL_CASES])
def test_case(server, case, mode):
    judge(server.get(), case, mode)


# --- early answers: headers only, the body never sent ---------------------------------------

EARLY = [
    ("cl-over-max-body-413", hc.POST + hc.H + hc.FORM_CT + b"Content-Length: 999999999\r\n\r\n",
     (413,), None),
    ("cl-repeated-400", hc.POST + hc.H + hc.FORM_CT
     + b"Content-Length: 100\r\nContent-Length: 100\r\n\r\n", (400,), True),
    ("te-and-cl-400", hc.POST + hc.H + hc.FORM_CT
     + b"Transfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n", (400,), True),
    ("no-host-400", hc.POST + hc.FORM_CT + b"Content-Length: 100\r\n\r\n", (400,), True),
    ("te-gzip-501", hc.POST + hc.H + hc.FORM_CT + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
     (501,), True),
    ("cl-sign-400", hc.POST + hc.H + hc.FORM_CT + b"Content-Length: +100\r\n\r\n", (400,), True),
]


@pytest.mark.parametrize("mode", SPLIT_MODES)
@pytest.mark.parametrize("name,head,statuses,close", EARLY, ids=[e[0] for e in EARLY])
def test_early_answer_without_body(server, name, head, statuses, close, mode):
    mv = server.get()
    seed = rawhttp.seed_for(f"early/{name}/{mode}")
    with rawhttp.connect(mv.port, timeout=3) as s:
        rawhttp.send(s, head, mode, seed)
        t0 = time.monotonic()
        rd = rawhttp.Reader(s)
        r = rd.final_response(timeout=2.0)
        took = time.monotonic() - t0
        closed = rd.wait_close(1.0) if close else None
    what = f"early {name} mode={mode} seed={seed}: {r!r} after {took:.2f}s closed={closed}"
    assert r is not None, f"no answer within 2 s while the body is withheld: {what}"
    assert r.status in statuses, what
    if close:
        assert closed and not rd.buf, f"not closed (or extra bytes {rd.buf[:100]!r}): {what}"
    check_alive(mv, what)


# --- HEAD then an error on the same connection ---------------------------------------------

HEAD_THEN_BAD = {
    "space-in-name": hc.get(headers=hc.H + b"Foo Bar: x\r\n"),
    "nul-in-target": b"GET /\x00 HTTP/1.1\r\n" + hc.H + b"\r\n",
    "two-hosts": hc.get(headers=b"Host: a\r\nHost: b\r\n"),
    "brew-501": hc.get(headers=hc.H, method=b"BREW"),
}


@pytest.mark.parametrize("mode", SPLIT_MODES)
@pytest.mark.parametrize("bad", HEAD_THEN_BAD, ids=list(HEAD_THEN_BAD))
def test_head_then_error_has_body(server, bad, mode):
    mv = server.get()
    seed = rawhttp.seed_for(f"head/{bad}/{mode}")
    payload = hc.get(headers=hc.H, method=b"HEAD") + HEAD_THEN_BAD[bad]
    with rawhttp.connect(mv.port, timeout=3) as s:
        rawhttp.send(s, payload, mode, seed)
        rd = rawhttp.Reader(s)
        head = rd.final_response(3.0, head=True)
        err = rd.final_response(3.0)
        closed = rd.wait_close(1.5)
    what = f"HEAD + {bad} mode={mode} seed={seed}: {head!r} then {err!r}, closed={closed}"
    assert head is not None and head.status == 200, what
    assert err is not None and err.status in (400, 501), what
    n = int(err.header("content-length") or 0)
    assert n > 0 and len(err.body) == n, f"error after HEAD lacks its body: {what}"
    json.loads(err.body)
    assert closed and not rd.buf, f"extra bytes {rd.buf[:100]!r} or not closed: {what}"
    check_alive(mv, what)


# --- pipelining ---------------------------------------------------------------------------------

PIPELINES = {
    "three-gets": ([hc.GOOD, hc.get(b"/zzz", hc.H), hc.get(b"/multivac", hc.H)],
                   [(200, b"Welcome to MultiVAC!"), (200, b"LET THERE BE LIGHT!!!"), (200, None)]),
    "mixed": ([hc.get(b"/zzz", hc.H, method=b"HEAD"), hc.get(b"/nope", hc.H),
               hc.post(b"Transfer-Encoding: chunked\r\n", hc.chunked(b"data=", b"piped")),
               hc.post_cl(b"data=piped2"), hc.get(b"/zzz/", hc.H)],
              [(200, b""), (404, None), (200, b"MultiVAC updated!"), (200, b"MultiVAC updated!"),
               (200, b"LET THERE BE LIGHT!!!")]),
}


@pytest.mark.parametrize("mode", SPLIT_MODES)
@pytest.mark.parametrize("name", PIPELINES, ids=list(PIPELINES))
def test_pipelined_in_order(server, name, mode):
    mv = server.get()
    reqs, expected = PIPELINES[name]
    seed = rawhttp.seed_for(f"pipe/{name}/{mode}")
    heads = {i for i, r in enumerate(reqs) if r.startswith(b"HEAD ")}
    responses, closed, extra, sent = rawhttp.exchange(
        mv.port, b"".join(reqs), mode, seed, n=len(reqs), heads=heads, close_timeout=0.25)
    what = describe(f"pipeline {name}", mode, seed, responses, closed, extra, sent)
    assert [r.status for r in responses] == [s for s, _ in expected], what
    for r, (_, body) in zip(responses, expected):
        if body is not None:
            assert body in r.body if body else r.body == b"", what
    assert not closed and not extra, what
    check_alive(mv, what)


# --- the original crash: fragments of a long header name / Expect / Content-Type ------------

CRASH_NAME_PREFIX = b"GET /zzz HTTP/1.1\r\nHost: x\r\n" + b"A" * 64
CRASH_NAME = CRASH_NAME_PREFIX + b"BBBBBBBB: v\r\n\r\n"
EXPECT_PREFIX = b"GET / HTTP/1.1\r\nHost: x\r\nExpect: " + b"x" * 40
EXPECT_LONG = EXPECT_PREFIX + b"y" * 40 + b"\r\n\r\n"
CT_LONG_BOUNDARY = b"B" * 35 + b"b" * 35  # 70 characters, the RFC 2046 maximum


def _ct_multipart():
    body = (b"--" + CT_LONG_BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n"
            b"split-ct\r\n--" + CT_LONG_BOUNDARY + b"--\r\n")
    head = (hc.POST + hc.H + b"Content-Type: multipart/form-data; boundary=" + CT_LONG_BOUNDARY
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    return head, body


CT_MP_HEAD, CT_MP_BODY = _ct_multipart()
CT_MP = CT_MP_HEAD + CT_MP_BODY
CT_MP_SPLIT = CT_MP_HEAD.index(b"boundary=") + 9 + 20
CT_PARAMS = hc.post(b"Content-Type: application/x-www-form-urlencoded; charset=utf-8; x="
                    + b"z" * 90 + b"\r\nContent-Length: 10\r\n", b"data=hello").replace(
                        hc.FORM_CT, b"", 1)
CT_PARAMS_SPLIT = CT_PARAMS.index(b"x=z") + 40

SPLIT_CRASH = {
    # name: (payload, offset of the 200 ms pause, statuses, close, body must contain)
    "header-name-64A-then-B": (CRASH_NAME, len(CRASH_NAME_PREFIX), (200,), False,
                               b"LET THERE BE LIGHT!!!"),
    "expect-long-value": (EXPECT_LONG, len(EXPECT_PREFIX), (417,), None, b""),
    "content-type-long-boundary": (CT_MP, CT_MP_SPLIT, (200,), False, b"MultiVAC updated!"),
}
CRASH_MODES = SPLIT_MODES + ("pause200",)


@pytest.mark.parametrize("mode", CRASH_MODES)
@pytest.mark.parametrize("name", SPLIT_CRASH, ids=list(SPLIT_CRASH))
def test_split_fragments(server, name, mode):
    payload, at, statuses, close, body_has = SPLIT_CRASH[name]
    case = hc.Case(name, payload, statuses, close, body_has=body_has)
    judge(server.get(), case, f"at:{at}:0.2" if mode == "pause200" else mode)


def test_split_content_type_params_behaves_as_whole(server):
    """A long Content-Type with parameters, split in two writes, is judged as if whole."""
    mv = server.get()
    verdicts = {}
    for mode in ("whole", f"at:{CT_PARAMS_SPLIT}:0.2", "bytes", "random"):
        responses, closed, extra, sent = rawhttp.exchange(mv.port, CT_PARAMS, mode, 7,
                                                          close_timeout=0.25)
        verdicts[mode] = ([r.status for r in responses], closed, extra)
        check_alive(mv, f"content-type params mode={mode}")
    ref = verdicts["whole"]
    assert ref[0], verdicts
    assert all(v == ref for v in verdicts.values()), f"verdicts differ by split: {verdicts}"


@pytest.mark.parametrize("name", ["header-name-64A-then-B", "expect-long-value",
                                  "content-type-long-boundary"])
def test_split_at_every_offset(server, name):
    """The same request split once at every offset (5 ms pause): same verdict each time."""
    mv = server.get()
    payload, _, statuses, close, body_has = SPLIT_CRASH[name]
    bad = []
    # The header lines around the long field; the start of the request is covered by
    # the other tests (a POST per offset costs a Redis round trip).
    first = payload.index(b"\r\n") + 2
    last = payload.index(b"\r\n\r\n") + 4
    for off in range(first, last):
        responses, closed, extra, _ = rawhttp.exchange(
            mv.port, payload, f"at:{off}:0.005", close_timeout=0.01 if close is not True else 1.0)
        r = responses[-1] if responses else None
        ok = (r is not None and len(responses) == 1 and r.status in statuses and not extra
              and (body_has in r.body) and (close is None or (closed == close)))
        if not ok:
            bad.append((off, r, closed, extra[:60]))
        if mv.proc.poll() is not None:
            pytest.fail(f"{name}: multivac DIED at split offset {off} "
                        f"(status {mv.proc.returncode})\n{mv.stderr(20)}")
    assert not bad, f"{name}: {len(bad)} offsets with another verdict, e.g. {bad[:5]}"
    check_alive(mv, name)


# --- Expect: 100-continue -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", SPLIT_MODES)
def test_expect_100_continue(server, mode):
    mv = server.get()
    body = b"data=continued"
    head = hc.post(b"Expect: 100-continue\r\nContent-Length: %d\r\n" % len(body))
    seed = rawhttp.seed_for(f"expect/{mode}")
    with rawhttp.connect(mv.port, timeout=3) as s:
        rawhttp.send(s, head, mode, seed)
        rd = rawhttp.Reader(s)
        interim = rd.response(2.0)
        assert interim is not None and interim.status == 100, (
            f"mode={mode} seed={seed}: no 100 Continue before the body: {interim!r}")
        assert interim.status_line == b"HTTP/1.1 100 Continue", interim.status_line
        rawhttp.send(s, body, mode, seed + 1)
        final = rd.final_response(3.0)
        assert final is not None and final.status == 200, f"mode={mode}: {final!r}"
        assert b"MultiVAC updated!" in final.body
        assert rd.quiet(0.2), f"extra bytes or close: {rd.buf[:100]!r} closed={rd.closed}"
    check_alive(mv, f"expect mode={mode}")


# --- write authentication -------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(redis_server, mongo_server, mongo_client, tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    tokens = d / "tokens"
    tokens.write_text("tok-one\ntok-two\n")
    srv = Restartable(redis_server, mongo_server, mongo_client, d,
                      {"MULTIVAC_WRITE_TOKENS_FILE": str(tokens)})
    yield srv
    srv.close()


def _basic(user, password):
    return b"Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


AUTH = [
    hc.Case("none", hc.post_cl(b"data=auth"), (401,), None),
    hc.Case("bearer-tok-two", hc.post_cl(b"data=auth", b"Authorization: Bearer tok-two\r\n"),
            (200,), False, body_has=b"MultiVAC updated!"),
    hc.Case("bearer-tok-one", hc.post_cl(b"data=auth", b"Authorization: Bearer tok-one\r\n"),
            (200,), False),
    hc.Case("bearer-wrong", hc.post_cl(b"data=auth", b"Authorization: Bearer wrong\r\n"),
            (401,), None),
    hc.Case("bearer-prefix", hc.post_cl(b"data=auth", b"Authorization: Bearer tok-on\r\n"),
            (401,), None),
    hc.Case("bearer-longer", hc.post_cl(b"data=auth", b"Authorization: Bearer tok-one1\r\n"),
            (401,), None),
    hc.Case("bearer-empty", hc.post_cl(b"data=auth", b"Authorization: Bearer \r\n"), (401,), None),
    hc.Case("basic-any-user", hc.post_cl(b"data=auth", _basic("alice", "tok-one")), (200,), False),
    hc.Case("basic-empty-user", hc.post_cl(b"data=auth", _basic("", "tok-two")), (200,), False),
    hc.Case("basic-wrong", hc.post_cl(b"data=auth", _basic("alice", "wrong")), (401,), None),
    hc.Case("basic-token-as-user", hc.post_cl(b"data=auth", _basic("tok-one", "x")), (401,), None),
    hc.Case("basic-not-base64", hc.post_cl(b"data=auth", b"Authorization: Basic %%%%\r\n"),
            (401, 400), None),
    hc.Case("get-answer-public", hc.get(b"/multivac", hc.H), (200,), False),
    hc.Case("get-root-public", hc.GOOD, (200,), False),
]


@pytest.mark.parametrize("mode", SPLIT_MODES)
@pytest.mark.parametrize("case", AUTH, ids=[c.id for c in AUTH])
def test_write_auth(auth_server, case, mode):
    mv = auth_server.get()
    seed = rawhttp.seed_for(f"auth/{case.id}/{mode}")
    responses, closed, extra, sent = rawhttp.exchange(
        mv.port, case.payload, mode, seed, close_timeout=0.25)
    what = describe(f"auth {case.id}", mode, seed, responses, closed, extra, sent)
    assert len(responses) == 1 and responses[0].status in case.statuses, what
    r = responses[0]
    assert not extra, what
    if case.close is False:
        assert not closed, what
    if case.body_has:
        assert case.body_has in r.body, what
    if r.status == 401:
        challenge = " ".join(r.header_all("www-authenticate")).lower()
        assert "bearer" in challenge and "basic" in challenge, (
            f"401 without a WWW-Authenticate naming Bearer and Basic: {what}")
    check_alive(mv, what)


@pytest.mark.parametrize("mode", SPLIT_MODES)
def test_write_auth_early_401(auth_server, mode):
    """No credentials and a big body announced: 401 before the body is sent."""
    mv = auth_server.get()
    head = hc.POST + hc.H + hc.FORM_CT + b"Content-Length: 500000\r\n\r\n"
    with rawhttp.connect(mv.port, timeout=3) as s:
        rawhttp.send(s, head, mode, rawhttp.seed_for(f"auth-early/{mode}"))
        r = rawhttp.Reader(s).final_response(2.0)
    assert r is not None and r.status == 401, f"mode={mode}: no early 401: {r!r}"
    check_alive(mv, f"auth early mode={mode}")


# --- UTF-8 of `data` ---------------------------------------------------------------------------

UTF8 = ([(f"bad-{k}-{enc}", v, enc, 400) for k, v in hc.BAD_UTF8.items()
         for enc in ("urlencoded", "multipart")]
        + [(f"good-{k}-{enc}", v, enc, 200) for k, v in hc.GOOD_UTF8.items()
           for enc in ("urlencoded", "multipart")])


@pytest.mark.parametrize("mode", SPLIT_MODES)
@pytest.mark.parametrize("name,escaped,enc,status", UTF8, ids=[u[0] for u in UTF8])
def test_data_utf8(server, name, escaped, enc, status, mode):
    payload = hc.utf8_urlencoded(escaped) if enc == "urlencoded" else hc.utf8_multipart(escaped)
    case = hc.Case(name, payload, (status,), None if status != 200 else False,
                   body_has=b"MultiVAC updated!" if status == 200 else b"")
    judge(server.get(), case, mode)


# --- log injection ----------------------------------------------------------------------------

EVIL = [
    b"GET /%1B%5B31mRED%1B%5B0m HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /a%22%0A%7B%22forged%22%3A%22yes%22%7D HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /a%0D%0A%7B%22forged%22%3A1%7D?q=%1B%0A HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /%00%07%08 HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /%ZZ%1B HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /..%2F..%2F%1B HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /\x1b[31m HTTP/1.1\r\nHost: t\r\n\r\n",
    b"\x1b[2J / HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-Evil: a\x1b[31mb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-Evil: a\x07\x08b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: \xff\xfe\x80\"\\\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\x1b[0m\r\n\r\n",
    b"GET / HTTP/1.1\r\nHo\x1bst: t\r\n\r\n",
    b"GET /multivac?wait=%1B%0A%22 HTTP/1.1\r\nHost: t\r\n\r\n",
    hc.post_cl(b"data=%1B%5B31m%0A%7B%22forged%22%3A2%7D%22"),
    hc.post(b"Content-Type: text/\x1b[31m\r\nContent-Length: 6\r\n", b"data=x").replace(
        hc.FORM_CT, b"", 1),
    hc.post(b"Content-Type: text/plain%0A%22\r\nContent-Length: 6\r\n", b"data=x").replace(
        hc.FORM_CT, b"", 1),
    hc.post(b"Expect: \x1b[31m\r\nContent-Length: 6\r\n", b"data=x"),
    hc.post(b"Expect: 1\xff\"\\\r\nContent-Length: 6\r\n", b"data=x"),
]


def test_log_has_no_client_control_bytes(multivac):
    mv = multivac(env={"MULTIVAC_LOG_LEVEL": "debug"})
    for i, payload in enumerate(EVIL):
        for mode in SPLIT_MODES:
            rawhttp.exchange(mv.port, payload, mode, i, timeout=1.0, close_timeout=0.1)
    check_alive(mv, "log injection requests")
    time.sleep(0.3)
    raw = mv.log_path.read_bytes()
    problems = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line:
            continue
        ctl = [b for b in line if b < 0x20 or b == 0x7F]
        if ctl:
            problems.append(f"line {n}: raw control bytes {bytes(ctl)!r}: {line[:200]!r}")
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            problems.append(f"line {n}: not a JSON line ({e}): {line[:200]!r}")
            continue
        if not isinstance(obj, dict) or "forged" in obj:
            problems.append(f"line {n}: injected line: {line[:200]!r}")
    assert not problems, "server log is not clean JSON lines:\n" + "\n".join(problems[:20])


# --- reads stay public / sanity of the harness ----------------------------------------------


def test_harness_reads_answer(server):
    mv = server.get()
    responses, closed, extra, _ = rawhttp.exchange(mv.port, hc.get(b"/multivac", hc.H),
                                                   close_timeout=0.2)
    assert responses and responses[0].status == 200, responses
    assert responses[0].body, responses
    assert not closed and not extra


def test_no_crash_during_module(server):
    """Runs last in the module: no case killed the server (each crash is also its case's
    failure; this lists them all)."""
    server.get()
    assert not server.dead, "multivac crashed during the battery:\n" + "\n\n".join(
        f"exit status {st}\n{tail(mv.log_path, 15)}" for mv, st in server.dead)

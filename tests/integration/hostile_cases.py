"""The hostile-input case table (one row per request) and small helpers shared by
test_hostile.py and test_hostile_limits.py.

A case is a raw request (bytes) and its verdict per the spec of issue 6: the allowed
status codes of the single response, and whether the server must close the connection
afterwards (True), must keep it open (False), or may do either (None).
"""

import urllib.parse
from dataclasses import dataclass, field

H = b"Host: t\r\n"
FORM_CT = b"Content-Type: application/x-www-form-urlencoded\r\n"
POST = b"POST /multivac/data HTTP/1.1\r\n"

MAX_HEADER_SECTION = 16384  # request line + header lines + CRLFs, on the wire
MAX_HEADER_LINES = 100
MAX_CHUNK_EXT_TOTAL = 4096


@dataclass
class Case:
    id: str
    payload: bytes
    statuses: tuple          # allowed status codes of the (single) final response
    close: object = True     # True: must close after; False: must stay open; None: either
    why: str = ""
    # Responses expected before the judged one (pipelined requests): their statuses.
    before: tuple = ()
    heads: tuple = ()        # indexes of responses to HEAD requests (no body)
    body_has: bytes = b""    # the judged response's body must contain this
    slow_ok: bool = False    # big payload: the test allows more time
    extra: dict = field(default_factory=dict)


def post(headers=b"", body=b"", version=b"1.1"):
    return (b"POST /multivac/data HTTP/" + version + b"\r\n" + H + FORM_CT + headers
            + b"\r\n" + body)


def post_cl(body, headers=b""):
    return post(b"Content-Length: %d\r\n" % len(body) + headers, body)


def chunked(*chunks, ext=None):
    """A chunked body: each chunk with an optional extension string (bytes after ';')."""
    out = b""
    for i, c in enumerate(chunks):
        e = b"" if ext is None else b";" + (ext[i] if isinstance(ext, list) else ext)
        out += b"%x%s\r\n%s\r\n" % (len(c), e, c)
    return out + b"0\r\n\r\n"


def multipart(value, boundary=b"hostileB0undary"):
    body = (b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="data"\r\n\r\n'
            + value + b"\r\n--" + boundary + b"--\r\n")
    headers = (b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
               b"Content-Length: %d\r\n" % len(body))
    return (POST + H + headers + b"\r\n" + body)


def get(target=b"/", headers=b"", version=b"1.1", method=b"GET"):
    return method + b" " + target + b" HTTP/" + version + b"\r\n" + headers + b"\r\n"


GOOD = get(headers=H)


def _pad_headers(n_lines, value_len, name=b"X-Pad-%03d"):
    return b"".join((name % i) + b": " + b"v" * value_len + b"\r\n" for i in range(n_lines))


def _wire_only_over_limit():
    """99 lines (under the line cap) whose name+value bytes stay under 16384 but whose
    wire size (with ': ' and CRLF per line, and the request line) is over it."""
    lines, value_len = 98, 156
    req = get(headers=H + _pad_headers(lines, value_len))
    name_value = lines * (len(b"X-Pad-000") + value_len) + len(b"Hostt")
    assert name_value < MAX_HEADER_SECTION - 150, name_value
    assert len(req) > MAX_HEADER_SECTION + 150, len(req)
    return req


def _under_limit():
    """90 lines, about 15,5 KB on the wire: must be served."""
    req = get(headers=H + _pad_headers(88, 160))
    assert MAX_HEADER_SECTION - 1200 < len(req) < MAX_HEADER_SECTION - 500, len(req)
    return req


BAD_400 = [
    # Host
    Case("no-host", get(), (400,), why="HTTP/1.1 without Host"),
    Case("two-hosts", get(headers=b"Host: a\r\nHost: b\r\n"), (400,)),
    Case("two-hosts-equal", get(headers=b"Host: a\r\nHost: a\r\n"), (400,)),
    # bare CR
    Case("cr-in-target", b"GET /a\rb HTTP/1.1\r\n" + H + b"\r\n", (400,)),
    Case("cr-ends-request-line", b"GET / HTTP/1.1\r" + H + b"\r\n", (400,)),
    Case("cr-in-header-value", get(headers=H + b"X-A: a\rb\r\n"), (400,)),
    Case("cr-in-header-name", get(headers=H + b"X-\rA: b\r\n"), (400,)),
    Case("cr-ends-header-line", get(headers=H + b"X-A: b\rX-B: c\r\n"), (400,)),
    # obs-fold
    Case("obs-fold-space", get(headers=H + b"X-A: a\r\n b\r\n"), (400,)),
    Case("obs-fold-tab", get(headers=H + b"X-A: a\r\n\tb\r\n"), (400,)),
    Case("obs-fold-host", get(headers=b"Host: a\r\n b\r\n"), (400,)),
    # whitespace before the colon, empty and spaced names
    Case("space-before-colon-host", get(headers=b"Host : t\r\n"), (400,)),
    Case("space-before-colon", get(headers=H + b"X-A : b\r\n"), (400,)),
    Case("tab-before-colon", get(headers=H + b"X-A\t: b\r\n"), (400,)),
    Case("empty-header-name", get(headers=H + b": x\r\n"), (400,)),
    Case("space-in-header-name", get(headers=H + b"Foo Bar: x\r\n"), (400,)),
    # Content-Length
    Case("cl-repeated-equal", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"data="), (400,)),
    Case("cl-repeated-differ", post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"data=x"), (400,)),
    Case("cl-plus", post(b"Content-Length: +5\r\n", b"data="), (400,)),
    Case("cl-minus", post(b"Content-Length: -1\r\n", b"data="), (400,)),
    Case("cl-space-inside", post(b"Content-Length: 5 0\r\n", b"data="), (400,)),
    Case("cl-non-digit", post(b"Content-Length: 5a\r\n", b"data="), (400,)),
    Case("cl-hex", post(b"Content-Length: 0x5\r\n", b"data="), (400,)),
    Case("cl-overflow", post(b"Content-Length: 99999999999999999999999\r\n", b"data="), (400,)),
    Case("cl-comma-list", post(b"Content-Length: 5, 5\r\n", b"data="), (400,)),
    Case("cl-empty", post(b"Content-Length: \r\n", b"data="), (400,)),
    # Transfer-Encoding with Content-Length, either order
    Case("te-and-cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                           chunked(b"data=")), (400,)),
    Case("cl-and-te", post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                           chunked(b"data=")), (400,)),
    Case("te-http10", post(b"Transfer-Encoding: chunked\r\n", chunked(b"data=x"), b"1.0"), (400,)),
    # chunked framing
    Case("chunk-size-overflow", post(b"Transfer-Encoding: chunked\r\n",
                                     b"FFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"), (400,)),
    Case("chunk-size-overflow-long", post(b"Transfer-Encoding: chunked\r\n",
                                          b"1" + b"0" * 40 + b"\r\nhello\r\n0\r\n\r\n"), (400,)),
    Case("chunk-ext-ctl", post(b"Transfer-Encoding: chunked\r\n",
                               b"5;\x01=x\r\ndata=\r\n0\r\n\r\n"), (400,)),
    Case("chunk-ext-ctl-value", post(b"Transfer-Encoding: chunked\r\n",
                                     b"5;a=\x7f\r\ndata=\r\n0\r\n\r\n"), (400,)),
    Case("chunk-ext-too-long", post(b"Transfer-Encoding: chunked\r\n",
                                    b"5;a=" + b"b" * 5000 + b"\r\ndata=\r\n0\r\n\r\n"), (400,)),
    Case("chunk-ext-total-too-long",
         post(b"Transfer-Encoding: chunked\r\n",
              chunked(b"da", b"ta", b"=x", b"y", ext=[b"e=" + b"x" * 1300] * 4)), (400,),
         why="4 extensions of 1302 bytes: 5208 > 4096 per request"),
    Case("chunk-data-trailing-bytes", post(b"Transfer-Encoding: chunked\r\n",
                                           b"5\r\nhelloXX0\r\n\r\n"), (400,)),
    Case("chunk-data-lf-only", post(b"Transfer-Encoding: chunked\r\n",
                                    b"5\r\nhello\n0\r\n\r\n"), (400,)),
    # NUL
    Case("nul-in-target", b"GET /\x00 HTTP/1.1\r\n" + H + b"\r\n", (400,)),
    Case("nul-in-method", b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n", (400,)),
    Case("nul-in-header-name", get(headers=H + b"X-\x00A: b\r\n"), (400,)),
    Case("nul-in-header-value", get(headers=H + b"X-A: a\x00b\r\n"), (400,)),
    Case("nul-in-host", get(headers=b"Host: t\x00\r\n"), (400,)),
    # end of the header section
    Case("header-end-cr-x", b"GET / HTTP/1.1\r\n" + H + b"\rX", (400,)),
    Case("header-end-cr-x-then-get", b"GET / HTTP/1.1\r\n" + H + b"\rX" + GOOD, (400,)),
]

BAD_501 = [
    Case("te-gzip-chunked", post(b"Transfer-Encoding: gzip, chunked\r\n", chunked(b"data=")), (501,)),
    Case("te-identity-chunked", post(b"Transfer-Encoding: identity, chunked\r\n", chunked(b"data=")), (501,)),
    Case("te-chunked-chunked", post(b"Transfer-Encoding: chunked, chunked\r\n", chunked(b"data=")), (501,)),
    Case("te-two-lines", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                              chunked(b"data=")), (501,)),
    Case("te-gzip", post(b"Transfer-Encoding: gzip\r\n", b"data="), (501,)),
    Case("method-brew", get(headers=H, method=b"BREW"), (501,)),
]

# CONNECT and Upgrade: one answer, never two.
ONE_ANSWER = [
    Case("connect", b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n", (400, 405, 501)),
    Case("connect-then-bytes", b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n" + GOOD,
         (400, 405, 501), why="the tunnel bytes after it must not be answered"),
    Case("upgrade-websocket",
         get(headers=H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                         b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
         (200,), body_has=b"Welcome to MultiVAC!"),
    Case("upgrade-websocket-then-get",
         get(headers=H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n") + get(b"/zzz", H),
         (200,), body_has=b"Welcome to MultiVAC!"),
]

LIMITS = [
    Case("header-section-wire-bytes", _wire_only_over_limit(), (431,),
         why="<100 lines, name+value bytes < 16384, wire bytes > 16384"),
    Case("header-lines-101", get(headers=H + _pad_headers(101, 1)), (431,)),
    Case("header-value-17k", get(headers=H + b"X-Big: " + b"v" * 17 * 1024 + b"\r\n"), (431,),
         slow_ok=True),
    Case("header-name-17k", get(headers=H + b"X" * 17 * 1024 + b": v\r\n"), (431,), slow_ok=True),
    Case("target-17k", get(b"/" + b"a" * 17 * 1024, H), (414,), slow_ok=True),
    Case("colon-lines-1m", b"GET / HTTP/1.1\r\n" + H + b":\r\n" * 1_000_000 + b"\r\n", (400, 431),
         slow_ok=True, why="1 M empty-name lines"),
    Case("a-colon-lines-1m", b"GET / HTTP/1.1\r\n" + H + b"a:\r\n" * 1_000_000 + b"\r\n", (431,),
         slow_ok=True, why="1 M 'a:' lines"),
]

# Controls: well-formed requests that must be served, in every split mode (they prove
# the harness frames responses correctly and that the limits are not too tight).
GOOD_CASES = [
    Case("ok-get", GOOD, (200,), close=False, body_has=b"Welcome to MultiVAC!"),
    Case("ok-http10", get(b"/zzz", version=b"1.0"), (200,), close=True,
         body_has=b"LET THERE BE LIGHT!!!"),
    Case("ok-99-header-lines", get(headers=H + _pad_headers(98, 4)), (200,), close=False),
    Case("ok-header-section-15k", _under_limit(), (200,), close=False),
    Case("ok-post-urlencoded", post_cl(b"data=hostile-ok"), (200,), close=False,
         body_has=b"MultiVAC updated!"),
    Case("ok-post-chunked", post(b"Transfer-Encoding: chunked\r\n", chunked(b"data=", b"chunky")),
         (200,), close=False, body_has=b"MultiVAC updated!"),
    Case("ok-post-chunk-ext", post(b"Transfer-Encoding: chunked\r\n",
                                   chunked(b"data=", b"ext", ext=b"name=value")),
         (200,), close=False, body_has=b"MultiVAC updated!"),
    Case("ok-post-cl-ows", post(b"Content-Length:  10 \r\n", b"data=hello"), (200,), close=False),
]

ALL_CASES = BAD_400 + BAD_501 + ONE_ANSWER + LIMITS + GOOD_CASES


# --- UTF-8 -------------------------------------------------------------------------------

BAD_UTF8 = {
    "overlong-nul-2": "%C0%80",
    "overlong-nul-3": "%E0%80%80",
    "overlong-slash": "%C0%AF",
    "surrogate-high": "%ED%A0%80",
    "surrogate-low": "%ED%BF%BF",
    "above-10ffff": "%F4%90%80%80",
    "f5-lead": "%F5%80%80%80",
    "lone-continuation": "%80",
    "truncated": "%E2%82",
    "ff-byte": "%FF",
}
GOOD_UTF8 = {
    "euro": "%E2%82%AC",
    "emoji": "%F0%9F%98%80",
    "max-codepoint": "%F4%8F%BF%BF",
}


def utf8_urlencoded(escaped):
    return post_cl(b"data=x" + escaped.encode() + b"y")


def utf8_multipart(escaped):
    return multipart(b"x" + urllib.parse.unquote_to_bytes(escaped) + b"y")

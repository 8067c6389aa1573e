"""HTTP protocol behaviour over raw sockets: pipelining, HTTP/1.0, malformed input."""

import socket

import pytest

from conftest import INSUFFICIENT, raw_exchange, read_response


@pytest.fixture
def mv(shared_multivac):
    """One process for the module's tests; only test_pipelined_post_and_gets posts (own process)."""
    return shared_multivac


def test_pipelined_requests_answered_in_order(mv):
    with socket.create_connection(("127.0.0.1", mv.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /zzz HTTP/1.1\r\nHost: t\r\n\r\n")
        f = s.makefile("rb")
        responses = [read_response(f)[1:] for _ in range(3)]
    assert [status for status, _, _ in responses] == [200, 404, 200]
    assert responses[0][2] == b"Welcome to MultiVAC!"
    assert responses[2][2] == b"LET THERE BE LIGHT!!!"


def test_pipelined_behind_a_long_poll_keeps_order(mv):
    with socket.create_connection(("127.0.0.1", mv.port), timeout=10) as s:
        s.sendall(b"GET /multivac?wait=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /zzz HTTP/1.1\r\nHost: t\r\n\r\n")
        f = s.makefile("rb")
        first, second = read_response(f), read_response(f)
    assert (first[1], first[3]) == (200, INSUFFICIENT.encode())
    assert (second[1], second[3]) == (200, b"LET THERE BE LIGHT!!!")


def test_pipelined_post_and_gets(multivac):
    mv = multivac()
    body = b"data=piped"
    with socket.create_connection(("127.0.0.1", mv.port), timeout=5) as s:
        s.sendall(b"POST /multivac/data HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                  + b"HEAD /zzz HTTP/1.1\r\nHost: t\r\n\r\n"
                  + b"GET /zzz/ HTTP/1.1\r\nHost: t\r\n\r\n")
        f = s.makefile("rb")
        post = read_response(f)
        head = read_response(f, head=True)
        get = read_response(f)
    assert post[1] == 200 and b"MultiVAC updated!" in post[3], post
    assert head[1] == 200 and head[2]["content-length"] == "21", head
    assert (get[1], get[3]) == (200, b"LET THERE BE LIGHT!!!")


def test_keep_alive_many_requests(mv):
    with socket.create_connection(("127.0.0.1", mv.port), timeout=5) as s:
        f = s.makefile("rb")
        for _ in range(50):
            s.sendall(b"GET /zzz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(f)[1] == 200


def test_http10_closes_after_response(mv):
    raw = raw_exchange(mv.port, b"GET /zzz HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1."), raw
    assert b" 200 " in raw.split(b"\r\n", 1)[0], raw
    assert raw.endswith(b"\r\n\r\nLET THERE BE LIGHT!!!"), raw


def test_http10_keep_alive(mv):
    with socket.create_connection(("127.0.0.1", mv.port), timeout=5) as s:
        f = s.makefile("rb")
        for _ in range(2):
            s.sendall(b"GET /zzz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            _, status, headers, body = read_response(f)
            assert (status, body) == (200, b"LET THERE BE LIGHT!!!")
            assert headers.get("connection", "").lower() == "keep-alive", headers


def test_connection_close_honoured(mv):
    raw = raw_exchange(mv.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert raw.endswith(b"Welcome to MultiVAC!"), raw


@pytest.mark.parametrize("payload", [
    b"GET\r\n\r\n",
    b"GET / HTTX/1.1\r\n\r\n",
    b"GET /\x7f HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nBad Header Line\r\n\r\n",
    b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",
    b"POST /multivac/data HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    b"POST /multivac/data HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /multivac/data HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["request-line", "version", "target-ctl", "header-line", "header-fold",
        "content-length", "content-length-twice", "chunk-size"])
def test_malformed_request_400_and_close(mv, payload):
    raw = raw_exchange(mv.port, payload)
    assert raw.startswith(b"HTTP/1.1 400 "), raw
    assert mv.get("/zzz")[0] == 200  # the server survives

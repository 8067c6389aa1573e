"""Fixed routes, status codes, HEAD, health endpoints."""

import json

import pytest

from conftest import INSUFFICIENT, raw_exchange


@pytest.fixture
def mv(shared_multivac):
    """Read-only tests: one process for the module, in which nothing is ever posted."""
    return shared_multivac


@pytest.mark.parametrize("path, body", [
    ("/", "Welcome to MultiVAC!"),
    ("/zzz", "LET THERE BE LIGHT!!!"),
    ("/zzz/", "LET THERE BE LIGHT!!!"),
    ("/multivac", INSUFFICIENT),
])
def test_fixed_bodies(mv, path, body):
    status, headers, text = mv.get(path)
    assert (status, text) == (200, body)
    assert headers["content-type"].startswith("text/plain")


def test_answer_headers(mv):
    status, headers, _ = mv.get("/multivac")
    assert status == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/nope", "/multivac/datax", "/multivac/data/x", "/zzzz", "/Zzz", "/zz"])
def test_unknown_path_404(mv, path):
    assert mv.get(path)[0] == 404


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/multivac/data", {"POST"}),
    ("POST", "/multivac", {"GET", "HEAD"}),
    ("PUT", "/", {"GET", "HEAD"}),
    ("DELETE", "/zzz/", {"GET", "HEAD"}),
])
def test_wrong_method_405(mv, method, path, allowed):
    status, headers, _ = mv.request(method, path, body=b"" if method != "GET" else None)
    assert status == 405
    assert "allow" in headers, headers
    assert allowed <= {m.strip() for m in headers["allow"].split(",")}, headers["allow"]


@pytest.mark.parametrize("path", ["/", "/zzz", "/zzz/", "/multivac", "/healthz", "/readyz", "/nope"])
def test_head_is_get_without_body(mv, path):
    get_status, get_headers, get_body = mv.request("GET", path)
    raw = raw_exchange(mv.port, f"HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, raw
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert int(status_line.split()[1]) == get_status
    assert rest == b"", f"HEAD {path} sent a body: {rest!r}"
    assert headers.get("content-length") == str(len(get_body)), headers
    assert headers.get("content-type") == get_headers.get("content-type")


def test_healthz(mv):
    assert mv.get("/healthz")[0] == 200


def test_readyz_when_dependencies_up(mv):
    status, headers, body = mv.get("/readyz")
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    json.loads(body)

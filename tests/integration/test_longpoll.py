"""GET /multivac?wait=N: held until an answer exists or N seconds pass."""

import threading
import time

import pytest

from conftest import INSUFFICIENT


@pytest.mark.parametrize("topology", ["serve", "runserver+worker"])
def test_wait_returns_when_datum_stored(multivac, topology):
    """Woken at once: in one process, or by Redis pub/sub from another process's worker."""
    if topology == "serve":
        mv = multivac()
    else:
        mv = multivac("runserver")
        multivac("worker")
    result = {}

    def long_poll():
        result["response"] = mv.get("/multivac?wait=10", timeout=20)
        result["done"] = time.monotonic()

    thread = threading.Thread(target=long_poll, daemon=True)
    thread.start()
    time.sleep(0.3)  # let the GET reach the server first (not an assertion)
    assert thread.is_alive(), f"GET ?wait=10 answered before any data: {result}"
    posted = time.monotonic()
    mv.post_ok("woken")
    thread.join(timeout=15)
    assert not thread.is_alive(), "GET ?wait=10 did not return"
    status, _, body = result["response"]
    assert (status, body) == (200, "woken")
    assert result["done"] - posted < 3.0, f"answered {result['done'] - posted:.2f}s after POST"


def test_wait_times_out_with_insufficient(multivac):
    mv = multivac()
    start = time.monotonic()
    status, _, body = mv.get("/multivac?wait=1")
    elapsed = time.monotonic() - start
    assert (status, body) == (200, INSUFFICIENT)
    assert 0.9 <= elapsed <= 3.0, f"?wait=1 took {elapsed:.2f}s"


def test_wait_decimal_and_zero(multivac):
    mv = multivac()
    start = time.monotonic()
    assert mv.get("/multivac?wait=0.2")[2] == INSUFFICIENT
    assert mv.get("/multivac?wait=0")[2] == INSUFFICIENT
    assert time.monotonic() - start < 3.0


def test_wait_with_answer_returns_at_once(multivac):
    mv = multivac()
    mv.post_ok("ready")
    mv.wait_answer("ready")
    start = time.monotonic()
    assert mv.get("/multivac?wait=30")[2] == "ready"
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("query", ["wait=31", "wait=abc", "wait=-1", "wait=", "wait=1e9", "wait=nan"])
def test_bad_wait_400(multivac, query):
    mv = multivac()
    status, _, body = mv.get(f"/multivac?{query}")
    assert status == 400, body

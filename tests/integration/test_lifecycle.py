"""Process lifecycle: signals, flags overriding the environment."""

import signal
import socket
import threading
import time

from conftest import INSUFFICIENT, free_port, port_open


def test_sigint_stops_cleanly(multivac):
    mv = multivac()
    mv.proc.send_signal(signal.SIGINT)
    mv.proc.wait(timeout=15)
    assert mv.proc.returncode == 0, mv.stderr()


def test_sigterm_with_a_pending_long_poll(multivac):
    mv = multivac()
    result = {}

    def long_poll():
        try:
            result["response"] = mv.get("/multivac?wait=30", timeout=40)
        except OSError as e:  # closed without an answer: acceptable on shutdown
            result["error"] = e

    thread = threading.Thread(target=long_poll, daemon=True)
    thread.start()
    time.sleep(0.3)  # let the GET reach the server (not an assertion)
    start = time.monotonic()
    mv.proc.send_signal(signal.SIGTERM)
    mv.proc.wait(timeout=15)
    assert time.monotonic() - start < 5, "a held long-poll delayed shutdown"
    assert mv.proc.returncode == 0, mv.stderr()
    thread.join(timeout=5)
    assert not thread.is_alive()
    if "response" in result:
        assert result["response"][:3:2] == (200, INSUFFICIENT)


def test_listen_flag_overrides_environment(multivac):
    env_port, flag_port = free_port(), free_port()
    mv = multivac(env={"MULTIVAC_LISTEN": f"127.0.0.1:{env_port}"},
                  args=["--listen", f"127.0.0.1:{flag_port}"], port=flag_port)
    assert mv.get("/zzz")[2] == "LET THERE BE LIGHT!!!"
    assert not port_open(env_port)


def test_worker_mode_serves_no_http(multivac, ns):
    port = free_port()
    worker = multivac("worker", env={"MULTIVAC_LISTEN": f"127.0.0.1:{port}"})
    time.sleep(0.5)  # give it time to (wrongly) bind; not the assertion itself
    assert worker.proc.poll() is None, worker.stderr()
    assert not port_open(port)

"""MULTIVAC_ADMIN_LISTEN: /healthz, /readyz and /metrics off the public port, and
the only port of a worker process."""

import http.client

from conftest import free_port, request, wait_for


def get(port, path):
    status, _, body = request(port, "GET", path, timeout=5)
    return status, body.decode()


def test_worker_mode_answers_probes_and_metrics_on_the_admin_port(multivac):
    admin = free_port()
    mv = multivac("worker", env={"MULTIVAC_ADMIN_LISTEN": f"127.0.0.1:{admin}"})

    def up():
        try:
            return get(admin, "/readyz")[0] == 200
        except (OSError, http.client.HTTPException):
            return False
    wait_for(up, 15, "worker's admin /readyz 200")
    assert get(admin, "/healthz") == (200, "ok")
    status, text = get(admin, "/metrics")
    assert status == 200 and "multivac_jobs_stored_total" in text, text
    # Only the operational routes live there.
    assert get(admin, "/multivac")[0] == 404
    assert request(admin, "POST", "/multivac/data", b"data=x",
                   {"Content-Type": "application/x-www-form-urlencoded"})[0] == 404
    assert mv.proc.poll() is None


def test_serve_with_admin_moves_metrics_off_the_public_port(multivac):
    admin = free_port()
    mv = multivac(env={"MULTIVAC_ADMIN_LISTEN": f"127.0.0.1:{admin}"})
    assert mv.get("/metrics")[0] == 404
    assert mv.get("/readyz")[0] == 200 and mv.get("/healthz")[0] == 200
    status, text = get(admin, "/metrics")
    assert status == 200 and "multivac_http_connections" in text
    assert get(admin, "/readyz")[0] == 200
    mv.post_ok("via the public port")

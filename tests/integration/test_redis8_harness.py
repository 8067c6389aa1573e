"""The Redis 8 harness (redis8.py): a primary and an AOF replica that WAITAOF can count.

Skipped, with the reason, when deps/redis8.sh has not provided Redis >= 7.2."""

import socket

from redis8 import (WAITAOF_TIMEOUT_MS, redis8_pair, redis8_server,  # noqa: F401 (fixture)
                    require_redis8, start_redis8_pair)


def test_waitaof_counts_the_primary_and_the_replica(redis8_pair):
    primary = redis8_pair.client()
    assert int(primary.info("server")["redis_version"].split(".")[0]) >= 8
    assert primary.set("redis8-harness", "v")
    # Not 1000 ms: with appendfsync everysec the replica's ack can take ~2 s (redis8.py).
    assert primary.execute_command("WAITAOF", 1, 1, WAITAOF_TIMEOUT_MS) == [1, 1]
    assert redis8_pair.client("replica").get("redis8-harness") == b"v"


def test_stop_ends_both_servers_and_removes_its_directory():
    assert redis8_server() == require_redis8()  # skips when absent
    with start_redis8_pair() as pair:
        servers, workdir = (pair.primary, pair.replica), pair.workdir
        assert workdir.is_dir()
    for server in servers:
        assert server.proc.returncode is not None, f"{server.name} still running"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", server.port)) != 0, f"{server.name} still listening"
    assert not workdir.exists()

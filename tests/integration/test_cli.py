"""Command line: --version, --help, invalid configuration."""

import re
import subprocess

import pytest

from conftest import clean_env, multivac_bin

# Valid but unused addresses: config errors must be reported before any connection.
DUMMY = {"REDIS_URL": "redis://127.0.0.1:1/0", "MONGO_URL": "mongodb://127.0.0.1:1"}


def run(args, env=None, timeout=10):
    return subprocess.run([multivac_bin(), *args], env=clean_env({**DUMMY, **(env or {})}),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def test_version():
    result = run(["--version"])
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"multivac \d+\.\d+\.\d+\n?", result.stdout), result.stdout


def test_help():
    result = run(["--help"])
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout + result.stderr


@pytest.mark.parametrize("env", [
    {"REDIS_URL": "foo"},
    {"MONGO_URL": "http://nope"},
    {"MULTIVAC_WORKERS": "0"},
    {"MULTIVAC_WORKERS": "many"},
    {"MULTIVAC_LISTEN": "nope"},
    {"MULTIVAC_LISTEN": "127.0.0.1:99999"},
    {"MULTIVAC_MAX_BODY": "-1"},
], ids=lambda env: "-".join(f"{k}={v}" for k, v in env.items()))
def test_invalid_config_exits_2(env):
    result = run(["serve"], env)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multivac: "), result.stderr


def test_unknown_mode_exits_2():
    result = run(["frobnicate"])
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.startswith("multivac: "), result.stderr


@pytest.mark.parametrize("env", [
    {"MULTIVAC_HEADER_TIMEOUT_MS": "0"},
    {"MULTIVAC_BODY_TIMEOUT_MS": "x"},
    {"MULTIVAC_MAX_CONNECTIONS": "0"},
    {"MULTIVAC_INFLIGHT_BYTES": "10"},
    {"MULTIVAC_WRITE_TOKENS_FILE": "/nonexistent/tokens"},
], ids=lambda env: "-".join(f"{k}={v}" for k, v in env.items()))
def test_invalid_hostile_input_settings_exit_2(env):
    result = run(["runserver", "--listen", "127.0.0.1:0"], env)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "invalid" in result.stderr and "MULTIVAC_" in result.stderr, result.stderr


def test_unescaped_at_in_mongo_password_is_refused_without_echoing_it():
    result = run(["serve"], {"MONGO_URL": "mongodb://user:s3cr@tpw@127.0.0.1:1/"})
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "%40" in result.stderr and "s3cr" not in result.stderr and "tpw" not in result.stderr


def test_passwords_never_reach_the_log():
    """Redis and MongoDB passwords are masked in every line, including the
    driver's own warnings about servers it cannot reach."""
    env = {"REDIS_URL": "redis://:r3d-secret@127.0.0.1:1/0",
           "MONGO_URL": "mongodb://u:m0ngo-secret@127.0.0.1:1/?serverSelectionTimeoutMS=200",
           "MULTIVAC_LOG_LEVEL": "debug"}
    proc = subprocess.Popen([multivac_bin(), "runserver", "--listen", "127.0.0.1:0"],
                            env=clean_env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "multivac started" in err, err
    assert "r3d-secret" not in err and "m0ngo-secret" not in err, err

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

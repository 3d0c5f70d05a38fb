"""Fixtures shared by every test: a real redis-server on a free port, settings, keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from hypothesis import settings as hypothesis_settings

from shared.config import Settings
from shared.testing import RedisClusterServers, RedisServer, auth

# Property tests: a quick look on a laptop, a long look in CI (.ci/run sets HYPOTHESIS_PROFILE=ci).
# Both draw fresh random examples on every run (derandomize off), so the quick runs add up to
# coverage over time; no deadline in either, since a test asserts behaviour, not machine speed
# (the runner shares its two cores with others). derandomize is said outright: with CI set,
# Hypothesis's own defaults turn it on, and both profiles would inherit that.
FAST_EXAMPLES = 25
CI_EXAMPLES = 300
hypothesis_settings.register_profile(
    "fast", max_examples=FAST_EXAMPLES, deadline=None, derandomize=False
)
hypothesis_settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

API_KEYS = {
    "admin": "test-admin-secret",
    "channel": "test-channel-secret",
    "ivr": "test-ivr-secret",
    "agent": "test-agent-secret",
    "none": "test-noscope-secret",
    "all": "test-all-secret",
}
API_KEYS_ENV = ",".join(
    [
        f"admin1:{API_KEYS['admin']}:admin",
        f"chan1:{API_KEYS['channel']}:channel",
        f"ivr1:{API_KEYS['ivr']}:ivr",
        f"agent1:{API_KEYS['agent']}:agent",
        f"ops1:{API_KEYS['none']}:",
        f"root1:{API_KEYS['all']}:admin+channel+ivr+agent",
    ]
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterServers]:
    """One local 3-master Redis Cluster for the whole run (it takes seconds to form)."""
    servers = RedisClusterServers(tmp_path_factory.mktemp("cluster"))
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def cluster_servers(redis_cluster_servers: RedisClusterServers) -> RedisClusterServers:
    """The session's cluster, emptied for this test module."""
    for node in redis_cluster_servers.nodes:
        client = redis_lib.Redis(host="127.0.0.1", port=node.port)
        client.flushall()
        client.close()
    return redis_cluster_servers


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def api_keys() -> dict[str, str]:
    return dict(API_KEYS)


@pytest.fixture
def base_env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a dev-mode service pointed at the test Redis."""
    return {
        "SB_ENV": "dev",
        "REDIS_URL": redis_server.url,
        "API_KEYS": API_KEYS_ENV,
        "SB_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
        # Argon2id's cost protects real answers; the tests' need only the same code path.
        "IDENTITY_KBA_ARGON2_MEMORY_KIB": "64",
        "IDENTITY_KBA_ARGON2_TIME_COST": "1",
    }


@pytest.fixture
def make_settings(base_env: dict[str, str], redis: Any) -> Callable[..., Settings]:
    """``make_settings("crm", SOME_VAR="x")``; the test Redis is flushed first."""

    def make(service: str, **env: str) -> Settings:
        return Settings.from_env({**base_env, **env}, service=service)

    return make


@pytest.fixture
def headers() -> Callable[[str], dict[str, str]]:
    """``headers("admin")`` -> the Authorization header of that scope's key."""

    def make(scope: str) -> dict[str, str]:
        return auth(API_KEYS[scope])

    return make

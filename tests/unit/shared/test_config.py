from __future__ import annotations

from pathlib import Path

import pytest

from services.crm.adapters.sql_engine import database_url
from shared.config import ConfigError, Settings, parse_api_keys


def test_api_keys_parse_clients_secrets_and_scopes() -> None:
    keys = parse_api_keys("ivr1:s3cret:ivr,admin1:t0p:admin+channel+agent,ops:x9:")
    assert [k.client for k in keys] == ["ivr1", "admin1", "ops"]
    assert keys[1].scopes == {"admin", "channel", "agent"}
    assert keys[2].scopes == frozenset()
    assert "s3cret" not in repr(keys[0])


def test_an_unknown_scope_stops_the_service_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown scope.*superuser"):
        parse_api_keys("a:b:admin+superuser")


@pytest.mark.parametrize("raw", ["justone", "a::admin", ":s:admin", "a:b:c:d"])
def test_malformed_api_key_entries_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_api_keys(raw)


def test_production_mode_requires_redis_url_and_api_keys() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"API_KEYS": "a:b:admin"}, service="crm")
    with pytest.raises(ConfigError, match="API_KEYS"):
        Settings.from_env({"REDIS_URL": "redis://x"}, service="crm")


def test_required_secret_has_no_default_outside_dev_mode(tmp_path: Path) -> None:
    prod = Settings.from_env(
        {"REDIS_URL": "redis://x", "API_KEYS": "a:b:admin", "SB_VAR_DIR": str(tmp_path)},
        service="identity",
    )
    with pytest.raises(ConfigError, match="SIGNING_KEY"):
        prod.secret("SIGNING_KEY")


def test_dev_mode_generates_a_marked_secret_once_and_keeps_it(tmp_path: Path) -> None:
    env = {"SB_ENV": "dev", "SB_VAR_DIR": str(tmp_path)}
    first = Settings.from_env(env, service="identity").secret("FINGERPRINT_KEY")
    again = Settings.from_env(env, service="identity").secret("FINGERPRINT_KEY")
    assert first.startswith("DEV-") and first == again


def test_a_dev_mode_secret_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    dev = {"SB_ENV": "dev", "SB_VAR_DIR": str(tmp_path)}
    generated = Settings.from_env(dev, service="identity").secret("FINGERPRINT_KEY")
    prod = Settings.from_env(
        {"REDIS_URL": "redis://x", "API_KEYS": "a:b:admin", "FINGERPRINT_KEY": generated},
        service="identity",
    )
    with pytest.raises(ConfigError, match="dev-mode secret"):
        prod.secret("FINGERPRINT_KEY")


def test_the_crm_needs_a_database_url_outside_dev_mode(tmp_path: Path) -> None:
    base = {"REDIS_URL": "redis://x", "API_KEYS": "a:b:admin", "SB_VAR_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        database_url(Settings.from_env(base, service="crm"))
    given = Settings.from_env({**base, "DATABASE_URL": "postgresql://db/crm"}, service="crm")
    assert database_url(given) == "postgresql+psycopg://db/crm"
    dev = Settings.from_env({"SB_ENV": "dev", "SB_VAR_DIR": str(tmp_path)}, service="crm")
    assert database_url(dev).startswith("sqlite:///")


def test_typed_reads_reject_junk_with_the_variable_name() -> None:
    settings = Settings.from_env({"SB_ENV": "dev", "N": "ten", "B": "maybe"}, service="crm")
    with pytest.raises(ConfigError, match="N must be an integer"):
        settings.int_env("N", 1)
    with pytest.raises(ConfigError, match="B must be true or false"):
        settings.bool_env("B", False)
    assert settings.int_env("MISSING", 7) == 7


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({"SB_ENV": "dev"}, service="crm")
    with pytest.raises(AttributeError):
        settings.service = "other"  # type: ignore[misc]


def test_consumer_options_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"SB_ENV": "dev", "SB_CONSUMER_VISIBILITY_MS": "250", "SB_CONSUMER_MAX_DELIVERIES": "3"},
        service="crm",
    )
    assert settings.consumer_options() == {
        "batch": 100,
        "block_ms": 1000,
        "visibility_timeout_ms": 250,
        "max_deliveries": 3,
    }
    with pytest.raises(ConfigError, match="SB_CONSUMER_BATCH"):
        Settings.from_env(
            {"SB_ENV": "dev", "SB_CONSUMER_BATCH": "0"}, service="crm"
        ).consumer_options()


def test_concurrent_workers_agree_on_one_complete_dev_secret(tmp_path: Path) -> None:
    import threading

    env = {"SB_ENV": "dev", "SB_VAR_DIR": str(tmp_path)}
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        settings = Settings.from_env(env, service="identity")
        barrier.wait()
        results.append(settings.secret("RACE_KEY"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0].startswith("DEV-") and len(results[0]) > 20
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == ["race_key"]


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "0.05", "-3"])
def test_a_float_below_its_minimum_or_not_finite_is_refused(raw: str) -> None:
    settings = Settings.from_env({"SB_ENV": "dev", "SB_HEARTBEAT_SECONDS": raw}, service="t")
    with pytest.raises(ConfigError, match="SB_HEARTBEAT_SECONDS"):
        settings.float_env("SB_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
    assert settings.float_env("SB_OTHER", 2.5, minimum=0.1) == 2.5

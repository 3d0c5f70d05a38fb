"""Routing configuration from the environment: defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.routing.config import RoutingConfig
from services.routing.domain.matching import RelaxationStep, best_skill_fit
from shared.config import ConfigError, Settings


def config(tmp_path: Path, **env: str) -> RoutingConfig:
    base = {"SB_ENV": "dev", "SB_VAR_DIR": str(tmp_path), "API_KEYS": ""}
    return RoutingConfig.from_settings(Settings.from_env({**base, **env}, service="routing"))


def test_the_defaults_follow_the_contract(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert dict(cfg.priority.sla_seconds) == {"basic": 60, "complex": 1800, "urgent": 300}
    assert cfg.reservation_timeout_s == 20 and cfg.sticky_timeout_s == 20
    assert cfg.priority.sentiment_threshold == -0.5 and cfg.lead_after_s == 7200
    assert cfg.strategy_name == "longest_idle" and cfg.relaxation == ()


def test_every_knob_reads_from_the_environment(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        ROUTING_SLA_BASIC="30",
        ROUTING_STRATEGY="best_fit",
        ROUTING_RELAXATION='[{"after": 30, "lower_levels_by": 1}]',
        ROUTING_TIER_WEIGHTS='{"diamond": 50}',
        ROUTING_POOL="emea",
        ROUTING_TEAM_LEAD_WAIT="90",
    )
    assert cfg.priority.sla_seconds["basic"] == 30
    assert cfg.strategy is best_skill_fit
    assert cfg.relaxation == (RelaxationStep(30.0, lower_levels_by=1),)
    assert dict(cfg.priority.tier_weights) == {"diamond": 50.0}
    assert cfg.pool == "emea"
    assert cfg.lead_team_wait_s == 90


@pytest.mark.parametrize(
    "env",
    [
        {"ROUTING_STRATEGY": "coin_flip"},
        {"ROUTING_RELAXATION": "not json"},
        {"ROUTING_RELAXATION": '{"after": 1}'},
        {"ROUTING_RELAXATION": '[{"after": -1}]'},
        {"ROUTING_TIER_WEIGHTS": "[1, 2]"},
        {"ROUTING_SLA_URGENT": "0"},
        {"ROUTING_SLA_BASIC": "soon"},
        {"ROUTING_POOL": "a}b"},
    ],
)
def test_junk_configuration_stops_the_service_with_a_clear_error(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError):
        config(tmp_path, **env)


def test_long_poll_slots_default_to_half_the_gunicorn_threads() -> None:
    from services.routing.app import gunicorn_threads, long_poll_slots

    gunicorn = "/srv/.venv/bin/gunicorn"
    assert gunicorn_threads([gunicorn, "--threads", "8", "app:create_app()"], {}) == 8
    assert gunicorn_threads([gunicorn, "app"], {"GUNICORN_CMD_ARGS": "--threads=6"}) == 6
    assert gunicorn_threads([gunicorn, "app"], {}) == 1  # a sync worker
    assert gunicorn_threads(["/usr/bin/pytest"], {}) == 0
    # a gevent worker (shared/serving.py) serves its --worker-connections at once
    assert gunicorn_threads([gunicorn, "--worker-class", "gevent", "app"], {}) == 1000
    assert gunicorn_threads([gunicorn, "-k", "gevent", "--worker-connections", "50"], {}) == 50
    assert long_poll_slots(None, 8) == 4 and long_poll_slots(None, 1) == 0
    assert long_poll_slots(3, 8) == 3 and long_poll_slots(None, 0) == 4

"""docker-compose.yml describes the production shape the README promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.serving import layout

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_redis_keeps_an_append_only_file_and_postgres_is_16() -> None:
    services = compose()["services"]
    assert services["redis"]["image"] == "redis:7"
    assert "--appendonly" in services["redis"]["command"]
    assert (
        services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1]
        == "yes"
    )
    assert services["postgres"]["image"] == "postgres:16"


def test_every_service_runs_under_gunicorn_with_a_health_check() -> None:
    services = compose()["services"]
    for name in ("identity", "crm", "routing"):
        command = " ".join(services[name]["command"])
        assert "gunicorn" in command and f"services.{name}.app:create_app()" in command
        assert "--no-control-socket" in command
        # The workers' heartbeat file off the container's overlay filesystem, whose
        # writes can stall a worker into being killed (gunicorn's advice for Docker).
        assert "--worker-tmp-dir /dev/shm" in command
        assert "readyz" in " ".join(services[name]["healthcheck"]["test"])
        # the layout make run, the tests and the benchmarks use (for 2 cores)
        assert " ".join(layout(name, cpus=2).args()) in command, name


def test_everything_restarts_and_is_given_time_to_finish_its_work() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name != "crm-migrate":  # runs once, to completion
            assert service["restart"] == "unless-stopped", name
    for name in ("identity", "crm", "routing", "crm-consumer", "routing-dispatcher"):
        grace = services[name]["stop_grace_period"]
        # gunicorn's --graceful-timeout 20 s and a consumer's 30 s wait for its batch
        assert grace.endswith("s") and int(grace[:-1]) > 30, name


def test_every_consumer_and_the_dispatcher_is_its_own_service() -> None:
    services = compose()["services"]
    for name, module in [
        ("identity-consumer", "services.identity.consumer"),
        ("crm-consumer", "services.crm.consumer"),
        ("routing-consumer", "services.routing.consumer"),
        ("routing-dispatcher", "services.routing.dispatcher"),
        ("webhook-worker", "shared.webhooks.worker"),
    ]:
        assert services[name]["command"] == ["python", "-m", module]
        # Their liveness is the heartbeat shared/consumer_main.py writes.
        check = services[name]["healthcheck"]["test"]
        assert check[:5] == ["CMD", "python", "-m", "shared.consumer_main", "healthy"]


def test_production_mode_takes_its_secrets_from_the_environment() -> None:
    env = compose()["services"]["identity"]["environment"]
    assert env["SB_ENV"] == "production"
    assert env["REDIS_URL"].startswith("redis://")
    assert env["API_KEYS"].startswith("${API_KEYS:?")


def test_the_services_are_published_only_through_the_buffering_proxy() -> None:
    import re

    from shared.config import Settings

    services = compose()["services"]
    for name in ("identity", "crm", "routing"):
        assert "ports" not in services[name], name
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert [p.split(":")[-1] for p in proxy["ports"]] == ["8001", "8002", "8003"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["healthcheck"]["test"]
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    for directive in ("proxy_request_buffering on", "client_header_timeout", "client_body_timeout"):
        assert directive in conf
    assert "proxy_set_header X-Request-ID" in conf
    # The proxy's body limit is the services' own (MAX_CONTENT_LENGTH's default).
    limit = re.search(r"client_max_body_size (\d+)m;", conf)
    assert (
        limit
        and int(limit.group(1)) * 1024 * 1024
        == Settings.from_env({"SB_ENV": "dev"}, service="identity").max_content_length
    )

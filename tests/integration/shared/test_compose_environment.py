"""docker-compose.yml passes every service what it needs in production: each app
starts in production mode from exactly the environment compose gives it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[3]
_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def compose_environment(service: str, tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The service's environment as compose builds it, with a value for each required
    variable (as an operator would set) and the defaults compose would fill in."""
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    given = {"IDENTITY_SIGNING_KEYS": pem, "API_KEYS": "ops:ops-secret:admin"}

    def fill(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if kind == "?":
            return given.get(name, f"operator-{name.lower()}")
        return default or ""

    raw: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {k: _VAR.sub(fill, str(v)) for k, v in raw["services"][service]["environment"].items()}
    # Only the addresses of the servers differ from a real deployment.
    env["REDIS_URL"] = redis_url
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'crm.db'}"
    env["PROMETHEUS_MULTIPROC_DIR"] = ""
    env["SB_VAR_DIR"] = str(tmp_path / "var")
    return env


@pytest.mark.parametrize("service", ["identity", "crm", "routing"])
def test_each_service_starts_in_production_from_the_compose_environment(
    service: str, tmp_path: Path, redis_url: str
) -> None:
    env = compose_environment(service, tmp_path, redis_url)
    assert env["SB_ENV"] == "production"
    module = __import__(f"services.{service}.app", fromlist=["create_app"])
    app = module.create_app(Settings.from_env(env, service=service))  # raises ConfigError
    assert app.test_client().get("/healthz").status_code == 200

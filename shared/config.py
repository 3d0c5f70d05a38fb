"""Configuration: one frozen value built once from the environment and passed in.

Dev mode (``SB_ENV=dev``, set by ``make run`` and the tests) generates the
secrets it needs and keeps them under ``var/secrets``; outside dev mode a
missing required secret stops the service at start.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SCOPES = frozenset({"admin", "channel", "ivr", "agent"})

# An agent id as routing accepts it in /v1/agents/<agent_id> (matched whole).
AGENT_ID_PATTERN = r"[A-Za-z0-9_.@\-]{1,64}"
_AGENT_ID = re.compile(AGENT_ID_PATTERN)

DEV_SECRET_PREFIX = "DEV-"  # what dev mode generates; refused outside it


class ConfigError(Exception):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class ApiKey:
    client: str
    secret_sha256: bytes = field(repr=False)
    scopes: frozenset[str]
    # ``client:secret:agent:<agent_id>``: the key acts only as this agent (API.md B).
    agent: str | None = None


def parse_api_keys(raw: str) -> tuple[ApiKey, ...]:
    """Parse ``client:secret:scope+scope[:agent_id],...`` (API.md); unknown scopes are
    fatal, and so is an agent binding that could not mean what it says."""
    keys: list[ApiKey] = []
    seen: set[str] = set()
    for chunk in raw.split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        parts = chunk.split(":")
        if len(parts) not in (3, 4) or not parts[0] or not parts[1]:
            raise ConfigError(
                "API_KEYS entries must look like client:secret:scope+scope"
                " (or client:secret:agent:<agent_id>)"
            )
        client, secret, scope_text = parts[:3]
        scopes = frozenset(s for s in scope_text.split("+") if s)
        unknown = scopes - SCOPES
        if unknown:
            raise ConfigError(
                f"API_KEYS: client {client!r} has unknown scope(s) {sorted(unknown)}; "
                f"known scopes are {sorted(SCOPES)}"
            )
        if client in seen:
            raise ConfigError(f"API_KEYS: client {client!r} is listed twice")
        seen.add(client)
        agent = _bound_agent(client, scopes, parts[3]) if len(parts) == 4 else None
        keys.append(ApiKey(client, hashlib.sha256(secret.encode()).digest(), scopes, agent))
    return tuple(keys)


def _bound_agent(client: str, scopes: frozenset[str], agent: str) -> str:
    # The value is not echoed: a secret holding a ':' would shift into this part.
    if not _AGENT_ID.fullmatch(agent):
        raise ConfigError(
            f"API_KEYS: client {client!r} is bound to an invalid agent id; "
            "agent ids are 1-64 letters, digits and _ . @ -"
        )
    if "agent" not in scopes:
        # Without the agent scope the binding would restrict nothing: a typo, not a wish.
        raise ConfigError(
            f"API_KEYS: client {client!r} is bound to an agent but lacks the agent scope; "
            "write client:secret:agent:<agent_id>"
        )
    if "admin" in scopes:
        # An administrator of every agent cannot also act only as one of them.
        raise ConfigError(
            f"API_KEYS: client {client!r} is bound to an agent and has the admin scope; "
            "give the administrator a key of its own"
        )
    return agent


def _truthy(value: str) -> bool:
    low = value.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(value)


@dataclass(frozen=True)
class Settings:
    service: str
    dev_mode: bool
    redis_url: str
    redis_cluster: bool
    database_url: str | None
    api_keys: tuple[ApiKey, ...]
    var_dir: Path
    idempotency_ttl: int
    max_content_length: int
    stream_maxlen: int
    log_level: str
    env: Mapping[str, str] = field(repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, service: str) -> Settings:
        env = dict(os.environ if environ is None else environ)
        dev_mode = env.get("SB_ENV", "production").strip().lower() in {"dev", "development", "test"}
        var_dir = Path(env.get("SB_VAR_DIR", "var")).resolve()
        redis_url = env.get("REDIS_URL", "").strip()
        if not redis_url:
            if not dev_mode:
                raise ConfigError("REDIS_URL is required outside dev mode (SB_ENV=dev)")
            redis_url = "redis://127.0.0.1:6379/0"
        api_keys_raw = env.get("API_KEYS", "")
        if not api_keys_raw.strip() and not dev_mode:
            raise ConfigError("API_KEYS is required outside dev mode")
        probe = cls(
            service=service,
            dev_mode=dev_mode,
            redis_url=redis_url,
            redis_cluster=False,
            database_url=env.get("DATABASE_URL") or None,
            api_keys=parse_api_keys(api_keys_raw),
            var_dir=var_dir,
            idempotency_ttl=0,
            max_content_length=0,
            stream_maxlen=0,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            env=env,
        )
        return cls(
            service=service,
            dev_mode=dev_mode,
            redis_url=redis_url,
            redis_cluster=probe.bool_env("REDIS_CLUSTER", False),
            database_url=probe.database_url,
            api_keys=probe.api_keys,
            var_dir=var_dir,
            idempotency_ttl=probe.int_env("IDEMPOTENCY_TTL_SECONDS", 86400, minimum=1),
            max_content_length=probe.int_env("MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1024),
            stream_maxlen=probe.int_env("STREAM_MAXLEN", 1_000_000, minimum=1000),
            log_level=probe.log_level,
            env=env,
        )

    # Typed reads of a service's own variables, with a clear error on junk.
    def str_env(self, name: str, default: str) -> str:
        value = self.env.get(name)
        return default if value is None or value == "" else value

    def int_env(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be <= {maximum}, got {value}")
        return value

    def float_env(self, name: str, default: float, *, minimum: float | None = None) -> float:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):  # "nan" and "inf" parse, and break every comparison
            raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        return value

    def bool_env(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None:
            return default
        try:
            return _truthy(raw)
        except ValueError:
            raise ConfigError(f"{name} must be true or false, got {raw!r}") from None

    def consumer_options(self) -> dict[str, int]:
        """Keyword arguments for ``shared.bus.Consumer`` from the environment."""
        return {
            "batch": self.int_env("SB_CONSUMER_BATCH", 100, minimum=1, maximum=10_000),
            "block_ms": self.int_env("SB_CONSUMER_BLOCK_MS", 1000, minimum=1),
            "visibility_timeout_ms": self.int_env("SB_CONSUMER_VISIBILITY_MS", 30_000, minimum=10),
            "max_deliveries": self.int_env("SB_CONSUMER_MAX_DELIVERIES", 5, minimum=1),
        }

    def secret(self, name: str) -> str:
        """A required secret; in dev mode a generated one kept under var/secrets."""
        value = self.env.get(name, "").strip()
        if value and not self.dev_mode and value.startswith(DEV_SECRET_PREFIX):
            # Copied from a dev machine's var/secrets: known to whoever had that checkout.
            raise ConfigError(f"{name} holds a dev-mode secret; set a production one")
        if value:
            return value
        if not self.dev_mode:
            raise ConfigError(f"{name} is a required secret outside dev mode")
        path = self.var_dir / "secrets" / name.lower()
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = DEV_SECRET_PREFIX + secrets.token_urlsafe(32)  # refused outside dev
        # Written whole to a temporary file, then linked into place: a concurrent
        # worker either wins the link or reads the complete winner, never a half file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        tmp.write_text(generated)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            generated = path.read_text().strip()
        finally:
            tmp.unlink()
        return generated

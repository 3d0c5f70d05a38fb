"""The event envelope of API.md "Events"."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from shared.logs import request_id_var

STREAMS: dict[str, str] = {
    "identity": "sb:events:identity",
    "crm": "sb:events:crm",
    "routing": "sb:events:routing",
}


# The consumer groups the product runs on each stream. Trimming waits until all of them
# exist: a group created later (its consumer deployed after the first events) would
# otherwise never see what was trimmed before it existed.
GROUPS: dict[str, tuple[str, ...]] = {
    STREAMS["identity"]: ("crm", "routing"),
    STREAMS["crm"]: ("identity", "crm-kpi", "routing"),
    STREAMS["routing"]: ("crm", "routing-kpi"),
}


def dead_stream(stream: str) -> str:
    return f"sb:dead:{stream}"


def utcnow_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class MalformedEvent(ValueError):
    """A stream entry that is not a valid envelope."""


class Event(NamedTuple):
    """Immutable; a NamedTuple because consumers build one per entry on the hot path."""

    id: str
    type: str
    version: int
    occurred_at: str
    source: str
    correlation_id: str
    data: Mapping[str, Any] = {}  # never mutated

    @classmethod
    def new(
        cls,
        type: str,  # noqa: A002 - the envelope's field name
        data: Mapping[str, Any],
        *,
        source: str,
        version: int = 1,
        correlation_id: str | None = None,
        occurred_at: str | None = None,
        id: str | None = None,  # noqa: A002
    ) -> Event:
        return cls(
            id=id or os.urandom(16).hex(),  # 128 random bits, as uuid4, faster
            type=type,
            version=version,
            occurred_at=occurred_at or utcnow_iso(),
            source=source,
            correlation_id=correlation_id or request_id_var.get() or os.urandom(16).hex(),
            data=dict(data),
        )

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "type": self.type,
            "version": str(self.version),
            "occurred_at": self.occurred_at,
            "source": self.source,
            "correlation_id": self.correlation_id,
            "data": orjson.dumps(self.data).decode(),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Event:
        try:
            data = orjson.loads(fields["data"])
            if not isinstance(data, dict):
                raise MalformedEvent("data is not a JSON object")
            return cls(
                id=fields["id"],
                type=fields["type"],
                version=int(fields["version"]),
                occurred_at=fields["occurred_at"],
                source=fields["source"],
                correlation_id=fields.get("correlation_id", ""),
                data=data,
            )
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(f"malformed event entry: {exc!r}") from exc

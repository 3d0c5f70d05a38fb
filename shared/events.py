"""The event envelope of API.md "Events"."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.logs import request_id_var

STREAMS: dict[str, str] = {
    "identity": "sb:events:identity",
    "crm": "sb:events:crm",
    "routing": "sb:events:routing",
}


def dead_stream(stream: str) -> str:
    return f"sb:dead:{stream}"


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MalformedEvent(ValueError):
    """A stream entry that is not a valid envelope."""


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    version: int
    occurred_at: str
    source: str
    correlation_id: str
    data: Mapping[str, Any] = field(default_factory=dict)

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
            id=id or uuid.uuid4().hex,
            type=type,
            version=version,
            occurred_at=occurred_at or utcnow_iso(),
            source=source,
            correlation_id=correlation_id or request_id_var.get() or uuid.uuid4().hex,
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
            "data": json.dumps(self.data, separators=(",", ":"), ensure_ascii=False),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Event:
        try:
            data = json.loads(fields["data"])
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
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(f"malformed event entry: {exc!r}") from exc

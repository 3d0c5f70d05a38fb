"""What every identity use case shares: its answer, times, events, and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.events import Event

SOURCE = "identity"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_event(type_: str, **data: Any) -> Event:
    return Event.new(type_, data, source=SOURCE)


@dataclass
class Result:
    """A use case's answer: the body, and the HTTP status it stands for."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class Clock:
    """The one clock of every use case; a test moves it for all of them at once."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now()

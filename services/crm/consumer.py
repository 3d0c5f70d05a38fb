"""Stream consumer process of the crm service: `python -m services.crm.consumer`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.config import Settings
from shared.consumer_main import Runnable, run


def build(settings: Settings, redis: Any) -> Sequence[Runnable]:
    return []


if __name__ == "__main__":
    run("crm", build)

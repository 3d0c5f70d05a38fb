"""Erasure in the dev outbox (``delivery.DevDelivery``): a customer's messages go too.

The outbox keeps the last messages for 10 minutes, each with its destination in
clear; an erased customer's must not wait that long. Its entries name no
customer, only the verification they were sent for: the messages of the
customer's verifications go, and with them every message to the same
destinations (a verification whose id the customer's set no longer holds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.identity.adapters.delivery import DEV_OUTBOX
from services.identity.adapters.redis.scripts import lua


def drop_messages(redis: Any, verification_ids: Iterable[str]) -> int:
    """Remove the dev messages of these verifications and to their destinations."""
    ids = [str(v) for v in verification_ids]
    if not ids:
        return 0
    return int(redis.eval(lua("dev_outbox_drop"), 1, DEV_OUTBOX, *ids))

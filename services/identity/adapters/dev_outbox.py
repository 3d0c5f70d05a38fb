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

# KEYS: outbox. ARGV: verification ids -> how many entries were removed. One script, so
# a message pushed meanwhile is neither lost nor kept by a rewrite of the list.
_DROP = """
local wanted, dests, rows = {}, {}, {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, raw in ipairs(items) do
  local ok, e = pcall(cjson.decode, raw)
  if ok and type(e) == 'table' then
    rows[i] = e
    if e['verification_id'] and wanted[tostring(e['verification_id'])] and e['to'] then
      dests[tostring(e['to'])] = true
    end
  end
end
local n = 0
for i, raw in ipairs(items) do
  local e = rows[i]
  if e and ((e['verification_id'] and wanted[tostring(e['verification_id'])])
            or (e['to'] and dests[tostring(e['to'])])) then
    n = n + redis.call('LREM', KEYS[1], 0, raw)
  end
end
return n
"""


def drop_messages(redis: Any, verification_ids: Iterable[str]) -> int:
    """Remove the dev messages of these verifications and to their destinations."""
    ids = [str(v) for v in verification_ids]
    if not ids:
        return 0
    return int(redis.eval(_DROP, 1, DEV_OUTBOX, *ids))

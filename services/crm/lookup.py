"""Self-service case lookup (``GET /v1/cases/lookup``): a case's progress for whoever
holds both its number and the customer's phone, and nothing for anyone else.

What it must not become is an oracle. So:

- a case number that is malformed or fails its check symbol is a 400 before any
  other work: that depends on the typed text alone, never on what exists;
- otherwise the same statement runs and the same comparisons are made whether
  the case exists or not and whoever holds the phone (a dummy stands in for what
  is missing), and every failure is the same 404;
- budgets in Redis: per ``caller`` (or per API client without one), then a ceiling
  per API client that every lookup counts against whatever ``caller`` it names,
  and a budget of failed lookups per API client: an enumerator mostly misses,
  while a customer who typed the number right (the check symbol turned the typos
  away already) and their own phone does not.
"""

from __future__ import annotations

import hmac
from typing import Any

from services.crm.common import UseCases
from services.crm.domain.case_numbers import parse_case_number
from services.crm.domain.errors import InvalidIdentifier
from services.crm.errors import LookupFailed, RateLimited

# Stand-ins for a missing case / an unknown phone: never equal to each other or to an id.
_NO_CASE = "\x00no case"
_NO_HOLDER = "\x00no holder"


def _admit(crm: UseCases, client: str, caller: str | None) -> None:
    limiter = crm.limiter
    if limiter is None:
        return
    wait = limiter.over(f"lookup-misses:{client}", crm.config.lookup_miss_limit)
    if wait is not None:
        raise RateLimited(wait)
    # Keyed by a digest: the ANI is personal data, and keys are not sealed.
    own = f"lookup:{client}:{crm.ctx.keyed(caller)[:32]}" if caller else f"lookup:{client}"
    for key, limit in ((own, None), (f"lookup:{client}:*", crm.config.lookup_client_limit)):
        wait = limiter.hit(key, limit)
        if wait is not None:
            raise RateLimited(wait)


def lookup_case(
    crm: UseCases, client: str, case_number: str, phone: str, caller: str | None
) -> dict[str, Any]:
    _admit(crm, client, caller)
    number = parse_case_number(case_number)
    try:
        wanted = crm.config.identifiers.normalise("phone", phone).value
    except InvalidIdentifier:
        wanted = ""  # held by nobody: the lookup below still runs, and fails like any other
    row = crm.read(lambda tx: tx.case_for_lookup(number, wanted))
    of_case = crm.ctx.keyed("lookup:" + (row.profile_id or _NO_CASE))
    of_phone = crm.ctx.keyed("lookup:" + (row.holder or _NO_HOLDER))
    if not hmac.compare_digest(of_case, of_phone):
        if crm.limiter is not None:
            crm.limiter.hit(f"lookup-misses:{client}", crm.config.lookup_miss_limit)
        raise LookupFailed()
    # Progress only: nothing the caller did not already know but the state.
    return {"status": row.status, "category": row.category, "updated_at": row.updated_at}

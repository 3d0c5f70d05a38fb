"""The self-service case lookup's one query: the same work whether or not the case exists.

Both probes always run, each on its unique index (the case by its number, the
holder of the phone), in one statement that always answers one row: a
missing case and a case with another customer's phone cost the database the
same, and the service compares what came back the same way.
"""

from __future__ import annotations

from sqlalchemy import bindparam, literal, select, true
from sqlalchemy.engine import Connection

from services.crm.adapters import sql_tables as t
from services.crm.ports import LookupProbe

_HOLDER = (
    select(t.identifiers.c.profile_id)
    .where(t.identifiers.c.type == "phone", t.identifiers.c.value == bindparam("phone"))
    .scalar_subquery()
)
_CASE = (
    select(t.cases.c.profile_id, t.cases.c.status, t.cases.c.category, t.cases.c.updated_at)
    .where(t.cases.c.case_number == bindparam("case_number"))
    .subquery("c")
)
_ANCHOR = select(literal(1).label("one")).subquery("anchor")
CASE_FOR_LOOKUP = select(
    _HOLDER.label("holder"),
    _CASE.c.profile_id,
    _CASE.c.status,
    _CASE.c.category,
    _CASE.c.updated_at,
).select_from(_ANCHOR.outerjoin(_CASE, true()))


def case_for_lookup(conn: Connection, case_number: str, phone: str) -> LookupProbe:
    """``holder``: the profile holding ``phone``; ``profile_id`` and the rest: the
    case's (all None where there is none)."""
    row = conn.execute(CASE_FOR_LOOKUP, {"case_number": case_number, "phone": phone}).one()
    return LookupProbe(row.holder, row.profile_id, row.status, row.category, row.updated_at)

"""Cases and interactions: a contact opens a case (classified, prioritised) or joins
a similar open one; cases move through their workflow; any contact is recorded."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from services.crm import lookup
from services.crm.common import Context, UseCases, locked
from services.crm.domain import cases as case_rules
from services.crm.domain.classification import Classification
from services.crm.domain.errors import CaseNotFound, UnknownCategory
from services.crm.ports import CasesTx, EventsTx, ProfilesTx, Row, TimelineTx


class CasesWriteTx(ProfilesTx, CasesTx, TimelineTx, EventsTx, Protocol):
    """The areas a case's use cases touch."""


def case_view(row: Mapping[str, Any], *, merged: bool = False) -> Row:
    return {**row, "merged": merged}


def _add_contact(
    tx: CasesWriteTx,
    ctx: Context,
    case: Row,
    pid: str,
    fields: Mapping[str, Any],
    priority: str,
    now: datetime,
) -> Row:
    """A similar open case takes this contact: counted, raised, and in the customer's
    own words (the case keeps its first description; this one must not be lost)."""
    subject, description = fields["subject"], fields.get("description") or ""
    channel = fields["channel"]
    status = case_rules.status_on_new_contact(case["status"])
    history = list(case["history"])
    if status != case["status"]:
        history.append({"status": status, "at": now.isoformat()})
    changes = {
        "contacts": case["contacts"] + 1,
        "channels": sorted({*case["channels"], channel}),
        "status": status,
        "history": history,
        "priority": ctx.config.classifier.higher(case["priority"], priority),
        "updated_at": now,
    }
    tx.update_case(case["id"], changes)
    contact = {
        "id": "i-" + uuid.uuid4().hex,
        "profile_id": pid,
        "channel": channel,
        "direction": "inbound",
        "summary": f"{subject}\n\n{description}" if description else subject,
        "case_id": case["id"],
        "at": now,
    }
    tx.insert_interaction(contact)
    ctx.timeline(
        tx,
        pid,
        "case.contact_added",
        f"{case['case_number']}: new contact on {channel}: {contact['summary']}",
        channel=channel,
        refs={
            "case_id": case["id"],
            "case_number": case["case_number"],
            "interaction_id": contact["id"],
        },
    )
    ctx.event(
        tx,
        "crm.case.updated",
        {
            "case_id": case["id"],
            "profile_id": pid,
            "status": status,
            "case_number": case["case_number"],
            "category": case["category"],
            "priority": changes["priority"],
            "channel": channel,
            "merged": True,
        },
    )
    return case_view({**case, **changes}, merged=True)


def _open_case(
    tx: CasesWriteTx,
    ctx: Context,
    pid: str,
    fields: Mapping[str, Any],
    found: Classification,
    priority: str,
    now: datetime,
) -> Row:
    subject, description = fields["subject"], fields.get("description") or ""
    channel = fields["channel"]
    number = ctx.config.case_numbers()  # a collision is retried (unique column)
    row = {
        "id": "c-" + uuid.uuid4().hex,
        "case_number": number,
        "profile_id": pid,
        "channel": channel,
        "channels": [channel],
        "subject": subject,
        "description": description,
        "category": found.category,
        "confidence": found.confidence,
        "priority": priority,
        "status": "new",
        "contacts": 1,
        "history": [{"status": "new", "at": now.isoformat()}],
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
    }
    tx.insert_case(row)
    ctx.timeline(
        tx,
        pid,
        "case.created",
        f"{number} opened: {subject}",
        channel=channel,
        refs={"case_id": row["id"], "case_number": number},
    )
    ctx.event(
        tx,
        "crm.case.created",
        {
            "case_id": row["id"],
            "case_number": number,
            "profile_id": pid,
            "channel": channel,
            "category": found.category,
            "priority": priority,
        },
    )
    return case_view(row)


def create_case_in(
    tx: CasesWriteTx, ctx: Context, fields: Mapping[str, Any], found: Classification
) -> tuple[Row, bool]:
    """(case, merged): a similar open case takes the contact instead of a new case."""
    subject, description = fields["subject"], fields.get("description") or ""
    classifier = ctx.config.classifier
    # Locked: two contacts at once cannot both open a case.
    profile = locked(tx, fields["profile_id"], follow=True)
    pid, channel, now = profile["id"], fields["channel"], ctx.clock()
    summaries = [
        case_rules.CaseSummary(c["id"], c["category"], c["channel"], c["status"], c["created_at"])
        for c in tx.open_cases_of(pid)
    ]
    similar = case_rules.similar_case(
        summaries,
        category=found.category,
        channel=channel,
        now=now,
        policy=ctx.config.cases,
        catch_all=classifier.default_category,
    )
    # What this contact alone would be worth: an urgent follow-up raises the case.
    priority = classifier.priority(found.category, profile["tier"], subject, description)
    if similar is not None:
        case = tx.get_case(similar.id)
        assert case is not None
        return _add_contact(tx, ctx, case, pid, fields, priority, now), True
    return _open_case(tx, ctx, pid, fields, found, priority, now), False


def update_case_in(tx: CasesWriteTx, ctx: Context, case_id: str, changes: Mapping[str, Any]) -> Row:
    tx.lock_case(case_id)  # concurrent changes of one case apply one after another
    case = tx.get_case(case_id)
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    now = ctx.clock()
    classifier = ctx.config.classifier
    values: dict[str, Any] = {}
    target = changes.get("status")
    if target is not None and target != case["status"]:
        case_rules.check_transition(
            case["status"], target, closed_at=case["closed_at"], now=now, policy=ctx.config.cases
        )
        values["status"] = target
        values["history"] = [*case["history"], {"status": target, "at": now.isoformat()}]
        values["closed_at"] = now if target == "closed" else None
    category = changes.get("category")
    if category is not None and category not in classifier.categories:
        known = ", ".join(classifier.categories)
        raise UnknownCategory(f"no category {category!r}; known: {known}")
    for name in ("priority", "category"):
        if changes.get(name) is not None and changes[name] != case[name]:
            values[name] = changes[name]
    if not values:
        return case_view(case)
    values["updated_at"] = now
    tx.update_case(case_id, values)
    case = {**case, **values}
    changed = sorted(k for k in values if k in ("status", "priority", "category"))
    if case["profile_id"]:
        verb = f"status {target}" if "status" in values else ", ".join(changed)
        ctx.timeline(
            tx,
            case["profile_id"],
            "case.updated",
            f"{case['case_number']}: {verb}",
            channel=case["channel"],
            refs={"case_id": case_id, "case_number": case["case_number"]},
        )
    ctx.event(
        tx,
        "crm.case.updated",
        {
            "case_id": case_id,
            "profile_id": case["profile_id"],
            "status": case["status"],
            "case_number": case["case_number"],
            "category": case["category"],
            "priority": case["priority"],
            "changed": changed,
        },
    )
    return case_view(case)


def add_interaction_in(tx: CasesWriteTx, ctx: Context, fields: Mapping[str, Any]) -> Row:
    profile = locked(tx, fields["profile_id"], follow=True)
    case_id = fields.get("case_id")
    if case_id:
        case = tx.get_case(case_id)
        if case is None or case["profile_id"] != profile["id"]:
            raise CaseNotFound(f"profile {profile['id']} has no case {case_id}")
        tx.update_case(case_id, {"updated_at": ctx.clock()})
    row = {
        "id": "i-" + uuid.uuid4().hex,
        "profile_id": profile["id"],
        "channel": fields["channel"],
        "direction": fields["direction"],
        "summary": fields["summary"],
        "case_id": case_id,
        "at": ctx.clock(),
    }
    tx.insert_interaction(row)
    ctx.timeline(
        tx,
        profile["id"],
        "interaction",
        row["summary"],
        channel=row["channel"],
        refs={"interaction_id": row["id"], "case_id": case_id, "direction": row["direction"]},
        at=row["at"],
    )
    return row


class Cases(UseCases):
    def create_case(self, fields: Mapping[str, Any]) -> tuple[Row, bool]:
        """(case, merged): a similar open case takes the contact instead of a new case."""
        ctx = self.ctx
        found = ctx.config.classifier.classify(fields["subject"], fields.get("description") or "")
        return self.run(lambda tx: create_case_in(tx, ctx, fields, found))

    def get_case(self, case_id: str) -> Row:
        def fetch(tx: CasesTx) -> Row:
            case = tx.get_case(case_id)
            if case is None:
                raise CaseNotFound(f"no case {case_id}")
            return case_view(case)

        return self.read(fetch)

    def update_case(self, case_id: str, changes: Mapping[str, Any]) -> Row:
        ctx = self.ctx
        return self.run(lambda tx: update_case_in(tx, ctx, case_id, changes))

    def add_interaction(self, fields: Mapping[str, Any]) -> Row:
        ctx = self.ctx
        return self.run(lambda tx: add_interaction_in(tx, ctx, fields))

    def lookup_case(
        self, client: str, case_number: str, phone: str, caller: str | None = None
    ) -> Row:
        """``caller``: the person the channel asks for (an IVR's ANI, a web user's address),
        whose own budget it is; without one the API client's budget is everyone's."""
        return lookup.lookup_case(self, client, case_number, phone, caller)

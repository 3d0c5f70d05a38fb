"""HTTP entrypoint of the crm service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.crm import directory, metrics
from services.crm import schemas as s
from services.crm.service import CrmService
from shared import idempotency
from shared.app import Blueprint, ctx
from shared.auth import current_client, require_scope
from shared.errors import Forbidden
from shared.kpis import WindowArgs
from shared.openapi import answers
from shared.pagination import (
    cursor_int,
    cursor_str,
    cursor_time,
    decode_cursor,
    encode_cursor,
    page_schema,
)

blp = Blueprint("crm", __name__, url_prefix="/v1", description="Switchboard CRM API")


def crm() -> CrmService:
    return ctx()["crm"]


def _page(items: list[Any], limit: int, cursor: dict[str, Any] | None) -> dict[str, Any]:
    return {"items": items[:limit], "next_cursor": encode_cursor(cursor) if cursor else None}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# -- profiles -------------------------------------------------------------------------
@blp.route("/profiles", methods=["POST"])
@require_scope("channel", "agent", "admin")
@blp.arguments(s.ProfileCreateSchema())
@blp.response(201, s.ProfileSchema())
def create_profile(body: dict[str, Any]) -> Any:
    """Create a profile (explicit: also for identifiers erased recently)."""
    identifiers = body.pop("identifiers")
    profile = crm().create_profile(identifiers, body)
    return profile, 201, {"Location": f"{blp.url_prefix}/profiles/{profile['id']}"}


@blp.route("/profiles/resolve", methods=["POST"])
@require_scope("channel", "agent")
@blp.arguments(s.ResolveSchema())
@blp.response(200, s.ProfileSchema(), description="Resolved to an existing profile")
@blp.alt_response(201, schema=s.ProfileSchema(), description="A new profile was created")
def resolve_profile(body: dict[str, Any]) -> Any:
    """The one profile the identifiers name; 409 with both ids when they name two."""
    identifiers = body.pop("identifiers")
    create = body.pop("create")
    profile, created = crm().resolve(identifiers, create=create, fields=body)
    if created:
        return profile, 201, {"Location": f"{blp.url_prefix}/profiles/{profile['id']}"}
    return profile


@blp.route("/profiles", methods=["GET"])
@require_scope("agent", "admin", "channel")
@blp.arguments(s.ProfileQuerySchema(), location="query")
@blp.response(200, page_schema(s.ProfileSchema)())
def search_profiles(args: dict[str, Any]) -> Any:
    """Search by name prefix or any identifier (agent, admin), or find the one profile
    of an exact ``identifier`` (channel too); filter by tier."""
    if args.get("identifier") is not None:
        found = directory.find_by_identifier(crm(), args["identifier"], tier=args.get("tier"))
        return _page(found, args["limit"], None)
    client = current_client()
    if client is None or not directory.may_list(client.scopes):
        raise Forbidden(
            "searching by name and listing profiles need the scope agent or admin; "
            "a channel finds a profile by one exact identifier: ?identifier=phone:+86..."
        )
    position = decode_cursor(args.get("cursor"))
    after = cursor_str(position, "after") if position is not None else None
    limit = args["limit"]
    items = crm().search(q=args.get("q"), tier=args.get("tier"), after=after, limit=limit + 1)
    more = {"after": items[limit - 1]["id"]} if len(items) > limit else None
    return _page(items, limit, more)


@blp.route("/profiles/<string:profile_id>", methods=["GET"])
@answers(308)
@require_scope("channel", "agent", "admin")
@blp.response(200, s.ProfileSchema())
def get_profile(profile_id: str) -> Any:
    """A profile; a merged one answers 308 to its survivor."""
    return crm().get_profile(profile_id)


@blp.route("/profiles/<string:profile_id>", methods=["PATCH"])
@require_scope("channel", "agent", "admin")
@blp.arguments(s.ProfilePatchSchema())
@blp.response(200, s.ProfileSchema())
def patch_profile(body: dict[str, Any], profile_id: str) -> Any:
    """Change name, tier, language, attributes (null removes a key), add identifiers."""
    return crm().update_profile(profile_id, body)


@blp.route("/profiles/<string:profile_id>", methods=["DELETE"])
@require_scope("admin")
@blp.response(204)
def erase_profile(profile_id: str) -> None:
    """Erase the customer here and, through crm.profile.erased, everywhere."""
    for erased in crm().erase(profile_id):
        idempotency.forget(ctx().redis, erased)  # stored responses hold their data too
    # The deletes are done: the files (AOF, WAL, dead tuples) follow within minutes.
    crm().compact_after_erasure()


@blp.route("/profiles/<string:profile_id>/merge", methods=["POST"])
@answers(308)
@require_scope("agent", "admin")
@blp.arguments(s.MergeSchema())
@blp.response(200, s.MergeResultSchema())
def merge_profiles(body: dict[str, Any], profile_id: str) -> Any:
    """Merge ``source_id`` into this profile (``dry_run`` shows the outcome only)."""
    return crm().merge(profile_id, body["source_id"], dry_run=body["dry_run"])


@blp.route("/profiles/<string:profile_id>/unmerge", methods=["POST"])
@answers(308)
@require_scope("agent", "admin")
@blp.arguments(s.UnmergeSchema())
@blp.response(200, s.UnmergeResultSchema())
def unmerge_profiles(body: dict[str, Any], profile_id: str) -> Any:
    """Undo a merge: the source comes back with everything it brought."""
    return crm().unmerge(profile_id, body["merge_id"])


@blp.route("/merge-candidates", methods=["GET"])
@require_scope("agent", "admin")
@blp.arguments(s.PageArgs(), location="query")
@blp.response(200, page_schema(s.MergeCandidateSchema)())
def merge_candidates(args: dict[str, Any]) -> Any:
    """Pairs of profiles that one resolve request named together (409s)."""
    position = decode_cursor(args.get("cursor"))
    after = cursor_int(position, "after") if position is not None else None
    limit = args["limit"]
    items = crm().merge_candidates(after=after, limit=limit + 1)
    more = {"after": items[limit - 1]["id"]} if len(items) > limit else None
    return _page(items, limit, more)


@blp.route("/profiles/<string:profile_id>/timeline", methods=["GET"])
@blp.doc(operationId="getTimeline")
@answers(308)
@require_scope("agent", "admin")
@blp.arguments(s.PageArgs(), location="query")
@blp.response(200, page_schema(s.TimelineItemSchema)())
def timeline(args: dict[str, Any], profile_id: str) -> Any:
    """Everything that happened with this customer, newest first."""
    position = decode_cursor(args.get("cursor"))
    before = None
    if position is not None:
        before = (cursor_time(position, "at"), cursor_int(position, "id"))
    limit = args["limit"]
    items = crm().timeline(profile_id, before=before, limit=limit + 1)
    more = None
    if len(items) > limit:
        last = items[limit - 1]
        more = {"at": last["at"].isoformat(), "id": last["id"]}
    return _page(items, limit, more)


@blp.route("/profiles/<string:profile_id>/export", methods=["GET"])
@answers(308)
@require_scope("admin")
@blp.response(200, s.ExportSchema())
def export_profile(profile_id: str) -> Any:
    """Everything held on this customer in every service, as one document."""
    return _jsonable(crm().export(profile_id))


# -- interactions and cases ------------------------------------------------------------
@blp.route("/interactions", methods=["POST"])
@answers(404)
@require_scope("channel", "agent")
@blp.arguments(s.InteractionCreateSchema())
@blp.response(201, s.InteractionSchema())
def create_interaction(body: dict[str, Any]) -> Any:
    """Record a contact on any channel (on the timeline)."""
    return crm().add_interaction(body)


@blp.route("/cases", methods=["POST"])
@answers(404)
@require_scope("channel", "agent")
@blp.arguments(s.CaseCreateSchema())
@blp.response(201, s.CaseSchema(), description="A new case")
@blp.alt_response(200, schema=s.CaseSchema(), description="Recorded on a similar open case")
def create_case(body: dict[str, Any]) -> Any:
    """Open a case, classified and prioritised; a similar open case takes the contact."""
    case, merged = crm().create_case(body)
    return case, (200 if merged else 201), {"Location": f"{blp.url_prefix}/cases/{case['id']}"}


@blp.route("/cases/lookup", methods=["GET"])
@answers(429)
@require_scope("channel", "ivr")
@blp.arguments(s.LookupQuerySchema(), location="query")
@blp.response(200, s.LookupSchema())
def lookup_case(args: dict[str, Any]) -> Any:
    """Self-service progress: case number and phone must both match (rate-limited)."""
    client = current_client()
    return crm().lookup_case(
        client.client if client else "?", args["case_number"], args["phone"], args.get("caller")
    )


@blp.route("/cases/<string:case_id>", methods=["GET"])
@require_scope("channel", "agent", "admin")
@blp.response(200, s.CaseSchema())
def get_case(case_id: str) -> Any:
    """A case with its status history."""
    return crm().get_case(case_id)


@blp.route("/cases/<string:case_id>", methods=["PATCH"])
@require_scope("channel", "agent", "admin")
@blp.arguments(s.CasePatchSchema())
@blp.response(200, s.CaseSchema())
def patch_case(body: dict[str, Any], case_id: str) -> Any:
    """Move a case through its workflow, or correct priority / category."""
    return crm().update_case(case_id, body)


@blp.route("/stats", methods=["GET"])
@blp.doc(operationId="getStats")
@require_scope("admin", "agent")
@blp.arguments(WindowArgs(), location="query")
@blp.response(200, s.StatsSchema())
def stats(args: dict[str, Any]) -> dict[str, Any]:
    """First-contact resolution and repeat-contact rate over a window, from case events."""
    return metrics.stats(ctx().redis, args["window_seconds"])

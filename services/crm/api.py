"""HTTP entrypoint of the crm service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Response, request

from services.crm import directory, kpis
from services.crm import schemas as s
from services.crm.adapters import sql_compaction
from services.crm.domain.case_numbers import InvalidCaseNumber
from services.crm.domain.errors import (
    ConflictError,
    CrmError,
    InvalidIdentifier,
    InvalidTransition,
    NotFoundError,
    ProfileMoved,
)
from services.crm.ports import Contention, PeerUnavailable, StoreUnavailable
from services.crm.service import CrmService, RateLimited
from shared import compaction, idempotency
from shared.app import Blueprint, ctx, problem_response
from shared.auth import current_client, require_scope
from shared.errors import (
    PROBLEM_BASE,
    BadRequest,
    Forbidden,
    PermanentRedirect,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
)
from shared.kpis import WindowArgs
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


# -- errors: the domain tree -> problem documents ------------------------------------
def _problem(status: int, title: str, slug: str, error: Exception, **extra: Any) -> Response:
    return problem_response(
        ProblemError(str(error), status=status, title=title, type=PROBLEM_BASE + slug, extra=extra)
    )


@blp.errorhandler(ProfileMoved)
def _moved(error: ProfileMoved) -> Response:
    location = request.path.replace(
        f"/profiles/{error.profile_id}", f"/profiles/{error.survivor_id}", 1
    )
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    return problem_response(
        PermanentRedirect(location, str(error), extra={"survivor_id": error.survivor_id})
    )


@blp.errorhandler(InvalidIdentifier)
def _invalid(error: InvalidIdentifier) -> Response:
    problem = BadRequest(
        str(error),
        title="Invalid Identifier",
        type=PROBLEM_BASE + "invalid-identifier",
        errors={error.field: [str(error)]},
    )
    return problem_response(problem)


@blp.errorhandler(InvalidCaseNumber)
def _invalid_case_number(error: InvalidCaseNumber) -> Response:
    problem = BadRequest(
        str(error),
        title="Invalid Case Number",
        type=PROBLEM_BASE + "invalid-case-number",
        errors={"case_number": [str(error)]},
    )
    return problem_response(problem)


@blp.errorhandler(NotFoundError)
def _not_found(error: NotFoundError) -> Response:
    return _problem(404, "Not Found", "not-found", error)


@blp.errorhandler(InvalidTransition)
def _transition(error: InvalidTransition) -> Response:
    return _problem(409, "Invalid Status Change", "invalid-transition", error)


@blp.errorhandler(ConflictError)
def _conflict(error: ConflictError) -> Response:
    slug = {
        "IdentifierTaken": "identifier-taken",
        "ResolutionConflict": "merge-candidate",
        "IdentifierSuppressed": "identifier-suppressed",
        "MergeRefused": "merge-refused",
    }.get(type(error).__name__, "conflict")
    return _problem(409, "Conflict", slug, error, profile_ids=error.profile_ids)


@blp.errorhandler(CrmError)
def _crm_error(error: CrmError) -> Response:
    return _problem(400, "Bad Request", "bad-request", error)


@blp.errorhandler(RateLimited)
def _rate_limited(error: RateLimited) -> Response:
    return problem_response(TooManyRequests(str(error), retry_after=error.retry_after))


@blp.errorhandler(PeerUnavailable)
def _peer_down(error: PeerUnavailable) -> Response:
    return problem_response(
        ServiceUnavailable(
            f"the export is incomplete, so none is given: {error}", headers={"Retry-After": "5"}
        )
    )


@blp.errorhandler(StoreUnavailable)
def _store_down(error: StoreUnavailable) -> Response:
    return problem_response(
        ServiceUnavailable("the database is unavailable", headers={"Retry-After": "1"})
    )


@blp.errorhandler(Contention)
def _busy(error: Contention) -> Response:
    # Concurrent writers won every one of the service's retries: rare, and worth a retry.
    return problem_response(
        ServiceUnavailable(
            "the customer's data is changing concurrently; retry", headers={"Retry-After": "1"}
        )
    )


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
    compaction.request(ctx().redis, compaction.REDIS_JOB, sql_compaction.JOB)


@blp.route("/profiles/<string:profile_id>/merge", methods=["POST"])
@require_scope("agent", "admin")
@blp.arguments(s.MergeSchema())
@blp.response(200, s.MergeResultSchema())
def merge_profiles(body: dict[str, Any], profile_id: str) -> Any:
    """Merge ``source_id`` into this profile (``dry_run`` shows the outcome only)."""
    return crm().merge(profile_id, body["source_id"], dry_run=body["dry_run"])


@blp.route("/profiles/<string:profile_id>/unmerge", methods=["POST"])
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
@require_scope("admin")
@blp.response(200, s.ExportSchema())
def export_profile(profile_id: str) -> Any:
    """Everything held on this customer in every service, as one document."""
    return _jsonable(crm().export(profile_id))


# -- interactions and cases ------------------------------------------------------------
@blp.route("/interactions", methods=["POST"])
@require_scope("channel", "agent")
@blp.arguments(s.InteractionCreateSchema())
@blp.response(201, s.InteractionSchema())
def create_interaction(body: dict[str, Any]) -> Any:
    """Record a contact on any channel (on the timeline)."""
    return crm().add_interaction(body)


@blp.route("/cases", methods=["POST"])
@require_scope("channel", "agent")
@blp.arguments(s.CaseCreateSchema())
@blp.response(201, s.CaseSchema(), description="A new case")
@blp.alt_response(200, schema=s.CaseSchema(), description="Recorded on a similar open case")
def create_case(body: dict[str, Any]) -> Any:
    """Open a case, classified and prioritised; a similar open case takes the contact."""
    case, merged = crm().create_case(body)
    return case, (200 if merged else 201), {"Location": f"{blp.url_prefix}/cases/{case['id']}"}


@blp.route("/cases/lookup", methods=["GET"])
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
@require_scope("admin", "agent")
@blp.arguments(WindowArgs(), location="query")
@blp.response(200, s.StatsSchema())
def stats(args: dict[str, Any]) -> dict[str, Any]:
    """First-contact resolution and repeat-contact rate over a window, from case events."""
    return kpis.stats(ctx().redis, args["window_seconds"])

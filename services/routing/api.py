"""HTTP entrypoint of the routing service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

import re
import threading
from typing import Any

from services.routing import ownership
from services.routing.schemas import (
    OPAQUE_ID,
    AgentInSchema,
    AgentPageSchema,
    AgentSchema,
    AgentStatusInSchema,
    CancelInSchema,
    ExportSchema,
    KpiSchema,
    QueueStatsSchema,
    ReservationListArgs,
    ReservationListSchema,
    ReservationSchema,
    TaskInSchema,
    TaskSchema,
)
from services.routing.service import RoutingService
from shared.app import Blueprint, ctx
from shared.auth import bound_agent, require_scope
from shared.config import AGENT_ID_PATTERN
from shared.errors import BadRequest
from shared.kpis import WindowArgs
from shared.pagination import PageArgs, cursor_str, decode_cursor, encode_cursor

blp = Blueprint("routing", __name__, url_prefix="/v1", description="Switchboard Routing API")

# Matched whole (fullmatch): $ also matches before a final newline, so "a4\n" passed.
_AGENT_ID = re.compile(AGENT_ID_PATTERN)  # the pattern API_KEYS' agent bindings use
_OPAQUE_ID = re.compile(OPAQUE_ID)


def service() -> RoutingService:
    return ctx()["routing"]


def _agent_id(agent_id: str) -> str:
    """A valid agent id the caller may act as (a bound key: only its own)."""
    if not _AGENT_ID.fullmatch(agent_id):
        raise BadRequest(
            "agent ids are 1-64 letters, digits and _ . @ -",
            errors={"agent_id": ["Invalid agent id."]},
        )
    return ownership.require_agent(bound_agent(), agent_id)


def _opaque(value: str, name: str) -> str:
    if not _OPAQUE_ID.fullmatch(value):
        raise BadRequest(f"invalid {name}", errors={name: [f"Invalid {name}."]})
    return value


# -- agents ----------------------------------------------------------------------------
@blp.route("/agents/<agent_id>", methods=["PUT"])
@require_scope("admin")
@blp.arguments(AgentInSchema)
@blp.response(200, AgentSchema)
def put_agent(body: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """Create or replace an agent: skills (1..5), languages, per-channel capacity, team."""
    profile = {k: v for k, v in body.items() if v is not None or k == "team"}
    view, _created = service().put_agent(_agent_id(agent_id), profile)
    return view


@blp.route("/agents/<agent_id>", methods=["GET"])
@require_scope("admin", "agent")
@blp.response(200, AgentSchema)
def get_agent(agent_id: str) -> dict[str, Any]:
    """An agent with its status, load per channel and occupancy."""
    return service().agent_view(_agent_id(agent_id))


@blp.route("/agents/<agent_id>/status", methods=["PUT"])
@require_scope("agent")
@blp.arguments(AgentStatusInSchema)
@blp.response(200, AgentSchema)
def put_agent_status(body: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """available / away / offline; going offline cancels pending offers and requeues them."""
    return service().set_agent_status(_agent_id(agent_id), body["status"])


@blp.route("/agents/<agent_id>/reservations", methods=["GET"])
@require_scope("agent")
@blp.arguments(ReservationListArgs, location="query")
@blp.response(200, ReservationListSchema)
def list_reservations(
    args: dict[str, Any], agent_id: str
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, str]]:
    """The agent's pending offers. With ``wait`` > 0 this long-polls until one arrives;
    when every long-poll slot of the process is taken it answers at once (as ``wait=0``,
    with ``Retry-After: 1``) so waiting desktops never occupy all request threads."""
    svc = service()
    aid = _agent_id(agent_id)
    headers: dict[str, str] = {}
    slots: threading.BoundedSemaphore = ctx()["long_polls"]
    if args["wait"] > 0 and slots.acquire(blocking=False):
        try:
            items = svc.wait_for_offers(aid, args["wait"])
        finally:
            slots.release()
    else:
        items = svc.reservations_of(aid)
        if args["wait"] > 0 and not items:
            headers["Retry-After"] = "1"  # a refused long-poll: do not re-poll in a tight loop
    for item in items:
        try:
            item["task"] = svc.task_view(item["task_id"])
        except Exception:  # noqa: BLE001 - the task may be erased meanwhile
            pass
    body = {"items": items, "next_cursor": None}
    return (body, headers) if headers else body


@blp.route("/reservations/<reservation_id>/accept", methods=["POST"])
@blp.doc(operationId="acceptReservation")
@require_scope("agent")
@blp.response(200, ReservationSchema)
def accept(reservation_id: str) -> dict[str, Any]:
    """Accept an offer: the task is assigned to the agent (409 once it expired)."""
    return service().accept(_opaque(reservation_id, "reservation_id"), bound_agent())


@blp.route("/reservations/<reservation_id>/reject", methods=["POST"])
@blp.doc(operationId="rejectReservation")
@require_scope("agent")
@blp.response(200, ReservationSchema)
def reject(reservation_id: str) -> dict[str, Any]:
    """Decline an offer: the task is offered to the next eligible agent."""
    return service().reject(_opaque(reservation_id, "reservation_id"), bound_agent())


# -- tasks -----------------------------------------------------------------------------
@blp.route("/tasks", methods=["POST"])
@require_scope("channel")
@blp.arguments(TaskInSchema)
@blp.response(201, TaskSchema)
def create_task(body: dict[str, Any]) -> dict[str, Any]:
    """Queue a contact; it is offered at once when an eligible agent is free."""
    return service().create_task(body)


@blp.route("/tasks/<task_id>", methods=["GET"])
@require_scope("channel", "agent", "admin")
@blp.response(200, TaskSchema)
def get_task(task_id: str) -> dict[str, Any]:
    """A task's state."""
    return ownership.task_view(service(), _opaque(task_id, "task_id"), bound_agent())


@blp.route("/tasks/<task_id>/complete", methods=["POST"])
@require_scope("agent")
@blp.response(200, TaskSchema)
def complete_task(task_id: str) -> dict[str, Any]:
    """Wrap up an assigned task; the agent's capacity frees up."""
    return service().complete_task(_opaque(task_id, "task_id"), bound_agent())


@blp.route("/tasks/<task_id>/cancel", methods=["POST"])
@require_scope("channel", "agent", "admin")
@blp.arguments(CancelInSchema(), required=False)
@blp.response(200, TaskSchema)
def cancel_task(body: dict[str, Any] | None, task_id: str) -> dict[str, Any]:
    """Cancel an open task (the customer hung up...); 409 once completed or canceled."""
    reason = (body or {}).get("reason", "canceled")
    return service().cancel_task(_opaque(task_id, "task_id"), reason, bound_agent())


# -- statistics --------------------------------------------------------------------------
@blp.route("/stats/queues", methods=["GET"])
@require_scope("admin", "agent")
@blp.response(200, QueueStatsSchema)
def queue_stats() -> dict[str, Any]:
    """Per category and channel: waiting, longest wait, agents available, service level
    and average speed of answer over the last hour."""
    return service().queue_stats()


@blp.route("/stats", methods=["GET"])
@blp.doc(operationId="getStats")
@require_scope("admin", "agent")
@blp.arguments(WindowArgs, location="query")
@blp.response(200, KpiSchema)
def kpi_stats(args: dict[str, Any]) -> dict[str, Any]:
    """First response time per category over a window, from assignment events."""
    return service().kpi_stats(args["window_seconds"])


@blp.route("/stats/agents", methods=["GET"])
@require_scope("admin", "agent")
@blp.arguments(PageArgs, location="query")
@blp.response(200, AgentPageSchema)
def agent_stats(args: dict[str, Any]) -> dict[str, Any]:
    """Every agent with status, load and occupancy (paginated by agent id)."""
    ownership.require_unbound(bound_agent(), "the agent roster")
    position = decode_cursor(args["cursor"])
    after = cursor_str(position, "after") if position is not None else ""
    items, last = service().agent_stats(after, args["limit"])
    return {"items": items, "next_cursor": encode_cursor({"after": last}) if last else None}


# -- customers ---------------------------------------------------------------------------
@blp.route("/customers/<customer_id>/export", methods=["GET"])
@require_scope("admin")
@blp.response(200, ExportSchema)
def export_customer(customer_id: str) -> dict[str, Any]:
    """Everything routing holds on a customer (for the CRM's data export)."""
    return service().export_customer(_opaque(customer_id, "customer_id"))

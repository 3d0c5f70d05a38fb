"""Routing's domain errors, one tree; each class says how HTTP answers it (``status``,
``slug``: the problem type's last part, ``title``), rendered by the one shared handler
(``shared.app.described_problem``)::

    RoutingError
     ├── NotFound            404  unknown task, agent or reservation
     ├── InvalidTransition   409  e.g. completing a queued task, accepting an expired offer
     ├── InvalidRequest      400  values the schemas cannot catch
     └── AgentBinding        403  a key bound to one agent reached for another's resource
"""

from __future__ import annotations


class RoutingError(Exception):
    """Base of every routing domain error."""


class NotFound(RoutingError):
    status = 404
    slug = "not-found"
    title = "Not Found"


class InvalidTransition(RoutingError):
    status = 409
    slug = "invalid-transition"
    title = "Conflict"


class InvalidRequest(RoutingError):
    status = 400
    slug = "invalid-request"
    title = "Bad Request"


class AgentBinding(RoutingError):
    """A key bound to one agent (API.md B) reached for another agent's resource."""

    status = 403
    slug = "agent-binding"
    title = "Forbidden"

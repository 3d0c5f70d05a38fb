"""HTTP entrypoint of the routing service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("routing", __name__, url_prefix="/v1", description="Switchboard Routing API")

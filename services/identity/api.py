"""HTTP entrypoint of the identity service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("identity", __name__, url_prefix="/v1", description="Switchboard Identity API")

"""HTTP entrypoint of the crm service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("crm", __name__, url_prefix="/v1", description="Switchboard CRM API")

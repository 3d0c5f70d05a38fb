"""The CRM's use cases, one class: each area's are in its own module (profiles,
merging, cases, privacy; lookup and directory beside them), on the plumbing of
``services.crm.common``."""

from __future__ import annotations

from services.crm.cases import Cases
from services.crm.merging import Merging
from services.crm.privacy import Privacy
from services.crm.profiles import Profiles


class CrmService(Profiles, Merging, Cases, Privacy):
    """``CrmService(store, config=..., peers=..., limiter=..., clock=..., compactor=...)``."""

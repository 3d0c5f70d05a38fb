"""The export endpoints of the identity and routing services, over HTTP (stdlib only).

``GET {base}/v1/customers/{customer_id}/export`` with the internal bearer key;
anything but a 200 with a JSON object makes the export unavailable (503), so an
incomplete export is never handed out as a complete one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from services.crm.errors import PeerUnavailable


class HttpPeerExports:
    def __init__(self, name: str, base_url: str, api_key: str, *, timeout: float = 5.0) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def fetch(self, customer_id: str) -> dict[str, Any]:
        url = f"{self.base_url}/v1/customers/{quote(customer_id, safe='')}/export"
        request = urllib.request.Request(
            url,
            headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise PeerUnavailable(f"the {self.name} service answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PeerUnavailable(f"the {self.name} service is unreachable ({exc})") from None
        if not isinstance(body, dict):
            raise PeerUnavailable(f"the {self.name} service sent no export document")
        return body

"""`make demo`: the cross-channel journey against the services of `make run`,
narrated. Exits non-zero if any step does not do what the contract promises."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from scripts.journey import Endpoints, Journey, JourneyFailed  # noqa: E402

SCOPE_OF = {"admin": "admin", "channel": "channel", "ivr": "ivr", "agent": "agent"}


def keys() -> dict[str, str]:
    """The dev keys `make run` generated, or DEMO_<SCOPE>_KEY from the environment."""
    found: dict[str, str] = {}
    path = Path(os.environ.get("SB_VAR_DIR", ROOT / "var")) / "dev-api-keys"
    if path.exists():
        for line in path.read_text().split():
            name, _, secret = line.partition("=")
            if name in SCOPE_OF:
                found[name] = secret
    for scope in SCOPE_OF:
        found[scope] = os.environ.get(f"DEMO_{scope.upper()}_KEY", found.get(scope, ""))
    missing = [s for s, k in found.items() if not k]
    if missing:
        sys.exit(f"no API key for {missing}: start `make run` first (it writes var/dev-api-keys)")
    return found


def unreachable(endpoints: Endpoints, client: httpx.Client) -> str | None:
    """Why the services cannot be reached, said so a newcomer knows what to do."""
    for name in ("identity", "crm", "routing"):
        url = getattr(endpoints, name)
        try:
            client.get(f"{url}/readyz", timeout=10)
        except httpx.TransportError as exc:
            return not_running(f"{url}/readyz", exc)
    return None


def not_running(url: object, exc: Exception) -> str:
    return (
        f"cannot reach {url} ({exc or type(exc).__name__}): is `make run` running? "
        "Start it first (in another terminal, same SB_VAR_DIR), then `make demo` again; "
        "or point IDENTITY_URL, CRM_URL, ROUTING_URL at running services"
    )


def main() -> int:
    endpoints = Endpoints(
        identity=os.environ.get(
            "IDENTITY_URL", f"http://127.0.0.1:{os.environ.get('IDENTITY_PORT', 8001)}"
        ),
        crm=os.environ.get("CRM_URL", f"http://127.0.0.1:{os.environ.get('CRM_PORT', 8002)}"),
        routing=os.environ.get(
            "ROUTING_URL", f"http://127.0.0.1:{os.environ.get('ROUTING_PORT', 8003)}"
        ),
        keys=keys(),
    )
    started = time.monotonic()
    step = [0]

    def narrate(line: str) -> None:
        if line.startswith("  "):
            print(f"      {line.strip()}")
        else:
            step[0] += 1
            print(f"{step[0]:>2}. {line}")

    print("Switchboard demo: one customer, two channels, verified once.\n")
    try:
        with httpx.Client(timeout=10) as client:
            problem = unreachable(endpoints, client)
            if problem:
                print(problem)
                return 1
            journey = Journey(endpoints, client, narrate)
            journey.prepare()
            journey.run()
            journey.erase()
    except httpx.TransportError as exc:  # the services went away during the demo
        print(f"\nFAILED: {not_running(exc.request.url, exc)}")
        return 1
    except (JourneyFailed, httpx.HTTPError) as exc:
        print(f"\nFAILED: {exc}")
        return 1
    print(
        f"\nDone in {time.monotonic() - started:.1f} s: verified once, the story told once, "
        "the same agent on both channels."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

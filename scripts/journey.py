"""The cross-channel journey, driven over HTTP the way channel adapters, the IVR
and the agent desktop would drive it. One implementation serves three uses:
`make demo` (narrated), the end-to-end test and the load benchmark.

A customer writes in web chat -> the chat adapter resolves (creates) the CRM
profile, tier gold -> identity verifies with TOTP + knowledge answers under the
gold policy -> a case is opened and classified -> a routing task goes to a
billing agent who accepts -> the customer moves to the phone: the IVR resolves
the caller by ANI and asks identity whether they are verified for voice ->
verified, no challenge -> the voice task goes to the same agent -> the
timeline shows every step across both channels.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp

GOLD_POLICY = {
    "min_factors": 2,
    "allowed_factors": ["totp", "sms_otp", "email_otp", "voice_otp", "kba", "trusted_device"],
    "require_possession": True,
    "trusted_device_counts": True,
    "trusted_device_days": 30,
    "session_ttl_seconds": 1800,
    "reuse_across_channels": True,
    "max_attempts": 5,
    "lockout_seconds": 900,
}
SUBJECT = "I was charged twice on my bill"
KBA_ANSWERS = {"first_pet": "Mao Mao", "birth_city": "Hangzhou"}
WEB_DEVICE = {
    "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.6478.126 Safari/537.36",
    "platform": "Win32",
    "ip": "203.0.113.24",
    "screen": "1920x1080",
    "timezone": "Asia/Shanghai",
    "languages": ["zh-CN", "en"],
}


class JourneyFailed(AssertionError):
    """A step did not do what the contract promises."""


@dataclass
class Endpoints:
    identity: str
    crm: str
    routing: str
    keys: dict[str, str]  # scope -> bearer secret: admin, channel, ivr, agent


@dataclass
class Journey:
    endpoints: Endpoints
    client: httpx.Client
    narrate: Callable[[str], None] = lambda _line: None
    agents: tuple[str, ...] = ("journey-agent-a", "journey-agent-b")
    skill: str = "billing"  # the benchmark gives each worker a skill of its own
    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    poll_timeout: float = 15.0
    after_step: Callable[[str], None] | None = None  # fault tests act between steps

    # -- plumbing ------------------------------------------------------------------
    def _call(
        self, method: str, url: str, scope: str, expect: tuple[int, ...], **kwargs: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.endpoints.keys[scope]}"}
        response = self.client.request(method, url, headers=headers, **kwargs)
        if response.status_code not in expect:
            raise JourneyFailed(
                f"{method} {url} answered {response.status_code}, expected {expect}: "
                f"{response.text[:500]}"
            )
        return response.json() if response.content else None

    def identity(self, method: str, path: str, scope: str, *expect: int, **kw: Any) -> Any:
        return self._call(method, self.endpoints.identity + path, scope, expect or (200,), **kw)

    def crm(self, method: str, path: str, scope: str, *expect: int, **kw: Any) -> Any:
        return self._call(method, self.endpoints.crm + path, scope, expect or (200,), **kw)

    def routing(self, method: str, path: str, scope: str, *expect: int, **kw: Any) -> Any:
        return self._call(method, self.endpoints.routing + path, scope, expect or (200,), **kw)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - started
        if self.after_step is not None:
            self.after_step(name)

    def _poll(self, what: str, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.poll_timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.05)
        raise JourneyFailed(f"timed out waiting for {what}")

    # -- set-up shared by many journeys ----------------------------------------------
    def prepare(self) -> None:
        """Admin work done once: the gold policy and two billing agents on shift."""
        self.identity("PUT", "/v1/admin/tiers/gold", "admin", 200, 201, json=GOLD_POLICY)
        for agent in self.agents:
            self.routing(
                "PUT",
                f"/v1/agents/{agent}",
                "admin",
                200,
                201,
                json={
                    "name": agent,
                    "skills": {self.skill: 4, "returns": 2},
                    "languages": ["zh", "en"],
                    "channels": {"chat": 3, "voice": 1},
                    "team": "billing",
                },
            )
            self.routing("PUT", f"/v1/agents/{agent}/status", "agent", json={"status": "available"})

    # -- the journey -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        say = self.narrate
        digits = f"{random.randrange(10**8):08d}"
        phone_e164 = f"+86138{digits}"
        ani = f"0086-138-{digits[:4]}-{digits[4:]}"  # how the carrier presents it
        email = f"Li.Wei.{digits}@Example.com"

        with self.step("chat: resolve profile"):
            profile = self.crm(
                "POST",
                "/v1/profiles/resolve",
                "channel",
                200,
                201,
                json={
                    "identifiers": [
                        {"type": "email", "value": email},
                        {"type": "phone", "value": f"138 {digits[:4]} {digits[4:]}"},
                    ],
                    "name": "Li Wei",
                    "tier": "gold",
                    "language": "zh",
                    "create": True,
                },
            )
        customer = profile["id"]
        self.facts["customer_id"] = customer
        # What the customer told us: none of it may survive their erasure, anywhere.
        self.facts["secrets"] = [phone_e164, email.lower(), "Li Wei", SUBJECT]
        say(
            f"Web chat: a customer writes in; the chat adapter resolves them to CRM profile "
            f"{customer} (tier gold, phone {phone_e164})."
        )

        with self.step("identity: enroll totp + kba"):
            totp = self.identity(
                "POST", f"/v1/customers/{customer}/factors", "channel", 201, json={"type": "totp"}
            )
            secret = totp["secret"]
            self.identity(
                "POST",
                f"/v1/customers/{customer}/factors/{totp['factor_id']}/confirm",
                "channel",
                200,
                json={"code": pyotp.TOTP(secret).now()},
            )
            self.identity(
                "POST",
                f"/v1/customers/{customer}/factors",
                "channel",
                201,
                json={"type": "kba", "answers": KBA_ANSWERS},
            )
        say("Identity: the customer has an authenticator app (TOTP) and two knowledge answers.")

        with self.step("chat: verify totp + kba"):
            started = self.identity(
                "POST",
                "/v1/verifications",
                "channel",
                201,
                json={
                    "customer_id": customer,
                    "channel": "chat",
                    "tier": "gold",
                    "device": WEB_DEVICE,
                },
            )
            if started["required"]["min_factors"] != 2:
                raise JourneyFailed(f"gold policy not applied: {started}")
            vid = started["verification_id"]
            # The confirmation used this time step; a step is never accepted twice.
            code = pyotp.TOTP(secret).at(time.time() + 30)
            first = self.identity(
                "POST",
                f"/v1/verifications/{vid}/checks",
                "channel",
                json={"factor": "totp", "code": code},
            )
            if first["status"] != "pending":
                raise JourneyFailed(f"one factor should not satisfy gold: {first}")
            approved = self.identity(
                "POST",
                f"/v1/verifications/{vid}/checks",
                "channel",
                json={"factor": "kba", "answers": KBA_ANSWERS},
            )
            if approved["status"] != "approved" or not approved.get("session_token"):
                raise JourneyFailed(f"verification not approved: {approved}")
        self.facts["session_token"] = approved["session_token"]
        say(
            f"Identity: verified on chat with {', '.join(sorted(approved['satisfied_factors']))}"
            f" (gold needs 2 factors incl. possession); a session token is issued."
        )

        with self.step("crm: open case"):
            case = self.crm(
                "POST",
                "/v1/cases",
                "channel",
                201,
                200,
                json={
                    "profile_id": customer,
                    "channel": "chat",
                    "subject": SUBJECT,
                    "description": "My invoice this month shows a double charge, please refund "
                    "the duplicate payment.",
                },
            )
        say(
            f"CRM: case {case['case_number']} opened and classified as '{case['category']}' "
            f"(priority {case['priority']})."
        )
        self.crm(
            "POST",
            "/v1/interactions",
            "channel",
            201,
            json={
                "profile_id": customer,
                "channel": "chat",
                "direction": "inbound",
                "summary": "Customer reports a double charge on this month's bill",
                "case_id": case["id"],
            },
        )

        with self.step("routing: chat task to agent"):
            chat_task, chat_agent = self._route(customer, "chat")
        self.facts["agent"] = chat_agent
        say(f"Routing: chat task {chat_task} offered to billing agent {chat_agent}, who accepts.")
        self.routing("POST", f"/v1/tasks/{chat_task}/complete", "agent", json={})

        with self.step("voice: IVR resolves caller by ANI"):
            by_ani = self.crm(
                "POST",
                "/v1/profiles/resolve",
                "channel",
                200,
                json={"identifiers": [{"type": "phone", "value": ani}], "create": False},
            )
        if by_ani["id"] != customer:
            raise JourneyFailed(f"ANI {ani} resolved to {by_ani['id']}, not {customer}")
        say(f"Phone: the customer calls; the IVR resolves ANI {ani} to the same profile.")

        with self.step("voice: IVR asks verification status"):
            status = self.identity(
                "GET",
                f"/v1/customers/{customer}/verification-status",
                "ivr",
                params={"channel": "voice", "ani": phone_e164},
            )
        if status["verified"] is not True:
            raise JourneyFailed(f"the customer should be verified for voice: {status}")
        say(
            f"Identity: verified for voice already (level {status['level']}, "
            f"{', '.join(status['factors'])}): no second verification, no challenge."
        )

        with self.step("routing: voice task to same agent"):
            voice_task, voice_agent = self._route(customer, "voice")
        if voice_agent != chat_agent:
            raise JourneyFailed(f"voice went to {voice_agent}, not the chat agent {chat_agent}")
        say(f"Routing: the voice task goes to {voice_agent} again, who already knows the case.")
        self.crm(
            "POST",
            "/v1/interactions",
            "agent",
            201,
            json={
                "profile_id": customer,
                "channel": "voice",
                "direction": "inbound",
                "summary": "Follow-up call about the double charge",
                "case_id": case["id"],
            },
        )
        self.routing("POST", f"/v1/tasks/{voice_task}/complete", "agent", json={})

        with self.step("crm: timeline complete"):
            timeline = self._poll(
                "the timeline to show both channels", lambda: self._story(customer)
            )
        say("CRM timeline (newest first):")
        for item in timeline:
            say(
                f"  {item['at'][:19]}  {item.get('channel') or '-':<6} {item['kind']:<24} "
                f"{item['summary'][:60]}"
            )
        self.facts["case_number"] = case["case_number"]
        return self.facts

    def _route(self, customer: str, channel: str) -> tuple[str, str]:
        task = self.routing(
            "POST",
            "/v1/tasks",
            "channel",
            201,
            json={
                "channel": channel,
                "customer_id": customer,
                "category": "complex",
                "skills": {self.skill: 3},
                "language": "zh",
                "tier": "gold",
                "sentiment": -0.2,
            },
        )
        task_id = task["task_id"]

        def offered() -> tuple[str, str] | None:
            for agent in self.agents:
                page = self.routing("GET", f"/v1/agents/{agent}/reservations", "agent")
                for reservation in page["items"]:
                    if reservation["task_id"] == task_id:
                        return reservation["reservation_id"], agent
            return None

        reservation_id, agent = self._poll(f"a reservation for task {task_id}", offered)
        self.routing("POST", f"/v1/reservations/{reservation_id}/accept", "agent", json={})
        return task_id, agent

    def _story(self, customer: str) -> list[dict[str, Any]] | None:
        items = self.crm(
            "GET", f"/v1/profiles/{customer}/timeline", "agent", params={"limit": 100}
        )["items"]
        channels = {i.get("channel") for i in items}
        kinds = " ".join(i["kind"] for i in items)
        if {"chat", "voice"} <= channels and "verification" in kinds and "assign" in kinds:
            return items
        return None

    def erase(self) -> None:
        customer = self.facts["customer_id"]
        self.crm("DELETE", f"/v1/profiles/{customer}", "admin", 200, 202, 204)
        self.narrate(
            f"CRM: customer {customer} erased; identity and routing forget them "
            "through the crm.profile.erased event."
        )

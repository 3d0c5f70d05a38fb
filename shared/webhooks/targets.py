"""Which URLs a webhook may call: the SSRF guard.

Outside dev mode a host that resolves to a loopback, private, link-local, multicast,
reserved or unspecified address is refused, unless it is allowed explicitly in
``WEBHOOK_ALLOWED_TARGETS`` (comma-separated host names and CIDR networks). The check
runs when a subscription is written (400) and again at every delivery, whose
connection then goes to the very address that was checked: a name that resolves
elsewhere a second later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from shared.webhooks.domain import InvalidWebhook

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class TargetPolicy:
    dev_mode: bool
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=resolve, compare=False)

    @classmethod
    def parse(cls, dev_mode: bool, allowed: str, resolver: Resolver = resolve) -> TargetPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in filter(None, (part.strip() for part in allowed.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(dev_mode, frozenset(hosts), tuple(networks), resolver)

    def check(self, url: str) -> Target:
        """The target to connect to; InvalidWebhook (field ``url``) when refused."""
        parts = _split(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError):
            raise InvalidWebhook("url", f"the host {host!r} does not resolve") from None
        if not addresses:
            raise InvalidWebhook("url", f"the host {host!r} does not resolve")
        if not (self.dev_mode or host.lower() in self.allowed_hosts):
            for address in addresses:
                ip = ipaddress.ip_address(address.partition("%")[0])
                if _internal(ip) and not any(ip in n for n in self.allowed_networks):
                    raise InvalidWebhook(
                        "url",
                        f"{host!r} resolves to an internal address ({address}); allow it "
                        "in WEBHOOK_ALLOWED_TARGETS if that is intended",
                    )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Target(url, parts.scheme, host, port, path, addresses[0])


def _split(url: str) -> SplitResult:
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidWebhook("url", "an absolute http(s) URL of at most 2000 characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidWebhook("url", "an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("url", "an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        # Stored and shown in clear: credentials belong in the signature, not the URL.
        raise InvalidWebhook("url", "no user or password in the URL")
    if parts.fragment:
        raise InvalidWebhook("url", "no fragment in the URL")
    return parts


def _internal(ip: IPAddress) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return bool(
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )

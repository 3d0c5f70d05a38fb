"""Built-in factor plugins and the entry-point loader for third-party ones."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from services.identity.domain.factors import FactorPlugin, FactorRegistry

log = logging.getLogger("sb.identity.plugins")
FACTOR_GROUP = "switchboard.identity.factors"
DELIVERY_GROUP = "switchboard.identity.delivery"
DOCUMENT_GROUP = "switchboard.identity.documents"


def builtin_plugins() -> list[FactorPlugin]:
    from services.identity.factors.builtin import (
        DocumentFactor,
        KbaFactor,
        OtpFactor,
        TotpFactor,
        TrustedDeviceFactor,
    )

    return [
        TotpFactor(),
        OtpFactor("sms_otp", "sms"),
        OtpFactor("email_otp", "email"),
        OtpFactor("voice_otp", "voice"),
        KbaFactor(),
        TrustedDeviceFactor(),
        DocumentFactor(),
    ]


def load_registry(extra: list[FactorPlugin] | None = None) -> FactorRegistry:
    """Built-ins, then every ``switchboard.identity.factors`` entry point, then ``extra``."""
    registry = FactorRegistry(builtin_plugins())
    for ep in entry_points(group=FACTOR_GROUP):
        plugin_cls = ep.load()
        plugin = plugin_cls() if isinstance(plugin_cls, type) else plugin_cls
        if not isinstance(plugin, FactorPlugin):
            raise TypeError(f"entry point {ep.name} is not a FactorPlugin")
        registry.register(plugin)
        log.info("factor plugin loaded", extra={"factor": plugin.type, "entry_point": ep.value})
    for plugin in extra or []:
        registry.register(plugin)
    return registry


def load_named(group: str, name: str) -> object | None:
    """A delivery provider / document verifier factory registered by a third party."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    return None

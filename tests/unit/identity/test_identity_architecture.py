"""The layer rule for identity: domain modules import no framework, driver or JWT/OTP library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "services" / "identity" / "domain"
FORBIDDEN = {
    "flask",
    "flask_smorest",
    "redis",
    "sqlalchemy",
    "marshmallow",
    "jwt",
    "pyotp",
    "webargs",
    "shared",
    "qrcode",
    "httpx",
}


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", sorted(DOMAIN.glob("**/*.py")), ids=lambda p: p.name)
def test_identity_domain_module_imports_no_framework(module: Path) -> None:
    assert imported_roots(module.read_text()) & FORBIDDEN == set()


def test_the_identity_layer_rule_catches_a_forbidden_import() -> None:
    assert imported_roots("import jwt\nfrom redis import Redis\nimport hmac\n") & FORBIDDEN == {
        "jwt",
        "redis",
    }

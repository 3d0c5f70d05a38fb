"""The layer rule for routing: its domain imports no framework, driver or crypto library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "services" / "routing" / "domain"
FORBIDDEN = {"flask", "flask_smorest", "redis", "sqlalchemy", "marshmallow", "jwt", "pyotp"}


def imports_of(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_routing_domain_has_modules() -> None:
    assert len(list(DOMAIN.glob("*.py"))) >= 4


@pytest.mark.parametrize("module", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_routing_domain_module_imports_no_framework(module: Path) -> None:
    assert imports_of(module) & FORBIDDEN == set()


def test_the_routing_rule_would_catch_redis_and_pyotp(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import redis.asyncio\nfrom pyotp import TOTP\n")
    assert imports_of(bad) & FORBIDDEN == {"redis", "pyotp"}

"""The layer rule: domain code imports no framework, driver or crypto library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "flask",
    "flask_smorest",
    "redis",
    "sqlalchemy",
    "marshmallow",
    "jwt",
    "pyotp",
    "webargs",
    "alembic",
    "psycopg",
    "shared",
}
DOMAIN_MODULES = sorted((ROOT / "services").glob("*/domain/**/*.py"))


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_service_has_a_domain_package() -> None:
    for service in ("identity", "crm", "routing"):
        assert (ROOT / "services" / service / "domain" / "__init__.py").exists()


@pytest.mark.parametrize("module", DOMAIN_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_imports_no_framework(module: Path) -> None:
    assert imported_roots(module) & FORBIDDEN == set()


@pytest.mark.parametrize("module", DOMAIN_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_imports_only_its_own_service(module: Path) -> None:
    service = module.relative_to(ROOT / "services").parts[0]
    foreign = {m for m in imported_modules(module) if m.startswith("services.")}
    assert {m for m in foreign if not m.startswith(f"services.{service}.domain")} == set()


def test_the_rule_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import redis\nfrom flask import Flask\nfrom . import sibling\n")
    assert imported_roots(bad) & FORBIDDEN == {"redis", "flask"}

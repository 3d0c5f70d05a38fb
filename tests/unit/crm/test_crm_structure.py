"""The CRM keeps the service template's rules (docs/architecture.md): its entrypoints
reach adapters only through ``bootstrap``, and no module outgrows 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CRM = Path(__file__).resolve().parents[3] / "services" / "crm"
ENTRYPOINTS = ("api.py", "consumer.py", "app.py")
MODULES = sorted(p for p in CRM.rglob("*.py") if "migrations" not in p.parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("name", ENTRYPOINTS)
def test_an_entrypoint_imports_no_adapter(name: str) -> None:
    assert {m for m in imports(CRM / name) if ".adapters" in m} == set()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(CRM)))
def test_no_module_is_over_500_lines(module: Path) -> None:
    assert len(module.read_text().splitlines()) <= 500


def test_the_rule_sees_an_adapter_import(tmp_path: Path) -> None:
    bad = tmp_path / "api.py"
    bad.write_text("from services.crm import adapters\nfrom services.crm.adapters import x\n")
    assert imports(bad) >= {"services.crm.adapters", "services.crm.adapters.x"}

"""The template's rules, for identity: entrypoints take adapters from bootstrap, no
module past 500 lines, no Lua inside Python, every script's contract in its header."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Generic, Protocol

import pytest

from services.identity import ports as identity_ports
from services.identity.adapters.redis.scripts import NEEDS, lua

ROOT = Path(__file__).resolve().parents[3]
IDENTITY = ROOT / "services" / "identity"
MODULES = sorted(IDENTITY.rglob("*.py"))
LUA = sorted((IDENTITY / "adapters" / "redis" / "lua").glob("*.lua"))


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", ["api.py", "api_delivery.py", "consumer.py"])
def test_an_entrypoint_imports_no_adapter(name: str) -> None:
    assert {m for m in imports(IDENTITY / name) if ".adapters" in m} == set()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_past_500_lines(module: Path) -> None:
    assert len(module.read_text().splitlines()) <= 500


# The composition root builds adapters, and reseal.py is a command of its own (it builds
# the store it runs on, like bootstrap).
BUILDERS = {"bootstrap.py", "reseal.py"}


@pytest.mark.parametrize(
    "module",
    [m for m in sorted(IDENTITY.glob("*.py")) if m.name not in BUILDERS],
    ids=lambda p: p.name,
)
def test_a_use_case_imports_no_adapter(module: Path) -> None:
    assert {m for m in imports(module) if ".adapters" in m} == set()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p))
def test_no_lua_inside_python(module: Path) -> None:
    text = module.read_text()
    assert not re.search(r"redis\.call\(|\blocal \w+ = ", text)


@pytest.mark.parametrize("script", LUA, ids=lambda p: p.name)
def test_every_script_states_its_contract(script: Path) -> None:
    header = script.read_text().split("\n\n")[0]
    assert header.startswith("--")
    if not script.name.startswith("lib_"):
        assert "KEYS" in header and ("ARGV" in header or "->" in header)


def test_a_script_is_sent_with_the_libraries_it_calls() -> None:
    for name, libraries in NEEDS.items():
        text = lua(name)
        folder = IDENTITY / "adapters" / "redis" / "lua"
        assert all((folder / f"{lib}.lua").read_text() in text for lib in libraries)


def _port_methods(port: type) -> set[str]:
    return {
        name
        for klass in port.__mro__
        if klass not in (object, Protocol, Generic)
        for name, value in vars(klass).items()
        if callable(value) and not name.startswith("_")
    }


def test_every_port_has_at_most_15_methods() -> None:
    ports = [
        p
        for p in vars(identity_ports).values()
        if isinstance(p, type) and getattr(p, "_is_protocol", False) and p is not Protocol
    ]
    assert len(ports) >= 10
    assert {p.__name__: n for p in ports if (n := len(_port_methods(p))) > 15} == {}

"""The structure rules beside the layer rule (docs/architecture.md, "Rules and their tests").

1. Entrypoints (``api*.py``, ``consumer.py``, ``dispatcher.py``) import no ``adapters``
   module: they take adapters from ``bootstrap.build()`` and call use cases.
2. No product module (``shared/``, ``services/``, ``scripts/``) is over 500 lines.
3. No Lua inside ``.py`` files: scripts live in ``.lua`` files with a KEYS/ARGV header.
4. mypy checks ``shared`` and every ``domain`` package with the flags of ``--strict``.

The three carves of issue 17 emptied the allow-lists these rules began with, so each
rule now holds for every module, without exceptions.
"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from itertools import takewhile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500
ENTRYPOINT_GLOBS = ("services/*/api*.py", "services/*/consumer.py", "services/*/dispatcher.py")
PRODUCT_ROOTS = ("shared", "services", "scripts")
LUA_ROOTS = ("shared", "services")
# What only a Redis script says: a call into the server, or its key and argument tables.
LUA_MARKERS = re.compile(r"redis\.p?call\s*\(|\bKEYS\[|\bARGV\[")


# -- the detectors -------------------------------------------------------------------
def python_files(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Every module (and ``from`` name) a file imports, relative imports made absolute."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            # `from services.crm import adapters` names the package in the alias
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_adapters(path: Path, root: Path = ROOT) -> bool:
    return any("adapters" in name.split(".") for name in imported_names(path, root))


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def lua_lines(path: Path) -> list[int]:
    """Lines of string literals that read as Redis Lua (docstrings may describe a contract)."""
    source = path.read_text()
    if not LUA_MARKERS.search(source):  # most modules: no need to parse them
        return []
    tree = ast.parse(source, filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and LUA_MARKERS.search(node.value)
    )


def entrypoints() -> list[Path]:
    return sorted(p for pattern in ENTRYPOINT_GLOBS for p in ROOT.glob(pattern))


# -- rule 1: entrypoints import no adapters --------------------------------------------
def test_every_service_has_the_entrypoints_the_rule_watches() -> None:
    found = {rel(p) for p in entrypoints()}
    assert {f"services/{s}/api.py" for s in ("identity", "crm", "routing")} <= found
    assert "services/routing/dispatcher.py" in found


def test_entrypoints_import_no_adapters() -> None:
    offenders = {rel(p) for p in entrypoints() if imports_adapters(p)}
    assert offenders == set(), (
        "an entrypoint imports an adapters module: take it from bootstrap.build()"
    )


# -- rule 2: no product module over 500 lines ------------------------------------------
def test_no_product_module_is_over_500_lines() -> None:
    sizes = {rel(p): line_count(p) for p in python_files(*PRODUCT_ROOTS)}
    over = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert over == {}, "split these by area (a new module per area), do not grow them"


# -- rule 3: no Lua inside .py files ---------------------------------------------------
def test_no_lua_inside_python_modules() -> None:
    offenders = {rel(p): lines for p in python_files(*LUA_ROOTS) if (lines := lua_lines(p))}
    assert offenders == {}, (
        f"Lua in Python strings at {offenders}: put each script in a .lua file with a header "
        "stating its KEYS/ARGV contract, loaded with importlib.resources"
    )


def lua_files() -> list[Path]:
    return sorted(p for root in LUA_ROOTS for p in (ROOT / root).rglob("*.lua"))


def test_every_lua_file_opens_with_its_keys_and_argv_contract() -> None:
    assert lua_files(), "the kernel's scripts live in shared/lua/*.lua"
    for path in lua_files():
        lines = path.read_text().splitlines()
        header = " ".join(line for line in takewhile(lambda x: x.startswith("--"), lines))
        assert "KEYS" in header and "ARGV" in header, (
            f"{rel(path)}: open with a comment stating its KEYS and ARGV (or 'ARGV (none)')"
        )


# -- the detectors catch what they are for ----------------------------------------------
def test_the_entrypoint_rule_sees_every_spelling_of_an_adapters_import(tmp_path: Path) -> None:
    service = tmp_path / "services" / "demo"
    service.mkdir(parents=True)
    spellings = [
        "from .adapters.redis_store import RedisStore\n",
        "from . import adapters\n",
        "from services.demo import adapters\n",
        "import services.demo.adapters.sql\n",
        "def late():\n    from services.demo.adapters import sql\n",
    ]
    for n, source in enumerate(spellings):
        module = service / f"api{n}.py"
        module.write_text(source)
        assert imports_adapters(module, tmp_path), source
    clean = service / "consumer.py"
    clean.write_text("from services.demo.bootstrap import build\nfrom . import verification\n")
    assert not imports_adapters(clean, tmp_path)


def test_the_lua_rule_sees_scripts_but_not_docstrings_or_prose(tmp_path: Path) -> None:
    module = tmp_path / "store.py"
    module.write_text(
        '"""KEYS[1] is the task hash (a contract, described)."""\n'
        "PLAIN = 'the keys of a hash'\n"
        "SCRIPT = \"return redis.call('GET', KEYS[1])\"\n"
        "def build(n):\n"
        '    """ARGV[1] is the holder."""\n'
        "    return f\"redis.pcall('DEL', KEYS[{n}])\"\n"
    )
    assert lua_lines(module) == [3, 6]


# -- rule 4: mypy's strict flags on the pure rooms ----------------------------------------
STRICT_PER_MODULE = {
    "disallow_any_generics",
    "disallow_subclassing_any",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "check_untyped_defs",
    "disallow_untyped_decorators",
    "warn_unused_ignores",
    "warn_return_any",
    "strict_equality",
    "extra_checks",
}


def test_mypy_is_strict_on_shared_and_every_domain_package() -> None:
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    # `strict = true` in an override would turn strict mode on for every module
    assert "strict" not in mypy and all("strict" not in o for o in mypy["overrides"])
    strict = [
        o for o in mypy["overrides"] if {"shared.*", "services.*.domain.*"} <= set(o["module"])
    ]
    assert len(strict) == 1
    assert {flag for flag in STRICT_PER_MODULE if strict[0].get(flag) is True} == STRICT_PER_MODULE
    assert strict[0]["implicit_reexport"] is False and mypy["warn_redundant_casts"] is True
    assert {"shared", "services"} <= set(mypy["files"])


# -- the generic top-level names stay ours (docs/architecture.md, "Package names") --------
def test_no_other_distribution_claims_our_top_level_names() -> None:
    claims = packages_distributions()
    for name in ("shared", "services"):
        assert set(claims.get(name, [])) <= {"switchboard"}, (
            f"another installed distribution ships a top-level {name!r} package: "
            "revisit the package-names decision in docs/architecture.md"
        )

"""House rules of DESIGN.md §5, checked on the code: who imports whom, and where Autotask lives.

- connector/ (the core) imports no adapter, except in the composition root that wires them.
- adapters/ take from the core only its domain, ports, errors and the one hardened XML parser.
- Sources, targets and the sandbox are apart: none imports another.
- The core names no Autotask URL, namespace or field: those are the Autotask adapter's profile.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The composition root: the only core modules that may import adapters.
COMPOSITION_ROOT = {"connector/__init__.py", "connector/cli.py", "connector/wiring.py"}

#: What adapters may take from the core.
CORE_FOR_ADAPTERS = {
    "connector.domain",
    "connector.ports",
    "connector.errors",
    "connector.safe_xml",
}

#: Adapter families that stay apart from one another.
FAMILIES = ("adapters.sources", "adapters.targets", "adapters.sandbox", "adapters.mail")

#: Autotask URLs, namespaces, paths and API field names (camelCase ids, the id paths).
AUTOTASK_LITERAL = re.compile(
    r"autotask\.net|atservicesrest|ATServices|atws|ATWS|v1_6"
    r"|\b[a-z]+(?:[A-Z][a-z]*)*ID\b|\b(?:itemId|ticketNumber|EntityResults)\b"
)


def modules(folder: str) -> list[Path]:
    """Every Python file of `folder` (relative to the repository root)."""
    return sorted((ROOT / folder).rglob("*.py"))


def rel(path: Path) -> str:
    """`path` as written in the repository."""
    return path.relative_to(ROOT).as_posix()


def imported(path: Path) -> Iterator[str]:
    """Every module name `path` imports, at any depth (deferred imports count too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def code_strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string literal of `path` that is not a docstring, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.lineno, node.value


def test_the_core_imports_adapters_only_in_the_composition_root() -> None:
    offenders = [
        f"{rel(path)} imports {name}"
        for path in modules("connector")
        if rel(path) not in COMPOSITION_ROOT
        for name in imported(path)
        if name == "adapters" or name.startswith("adapters.")
    ]
    assert offenders == []


def test_adapters_take_only_domain_ports_errors_and_the_xml_parser_from_the_core() -> None:
    offenders = sorted(
        {
            f"{rel(path)} imports {name}"
            for path in modules("adapters")
            for name in imported(path)
            if name.startswith("connector")
            and not any(name == ok or name.startswith(f"{ok}.") for ok in CORE_FOR_ADAPTERS)
        }
    )
    assert offenders == []


@pytest.mark.parametrize("family", FAMILIES)
def test_sources_targets_and_the_sandbox_stay_apart(family: str) -> None:
    others = [f for f in FAMILIES if f != family]
    offenders = sorted(
        {
            f"{rel(path)} imports {name}"
            for path in modules(family.replace(".", "/"))
            for name in imported(path)
            if any(name == other or name.startswith(f"{other}.") for other in others)
        }
    )
    assert offenders == []


def test_the_core_names_no_autotask_url_namespace_or_field() -> None:
    offenders = [
        f"{rel(path)}:{line}: {text[:80]!r}"
        for path in modules("connector")
        if "migrations" not in path.parts
        for line, text in code_strings(path)
        if AUTOTASK_LITERAL.search(text)
    ]
    assert offenders == []


def test_the_rules_see_what_they_should() -> None:
    """The checks above would catch an offender: each reader finds what a line plants."""
    sample = ROOT / "connector" / "__init__.py"
    assert "adapters" in set(imported(sample))
    assert AUTOTASK_LITERAL.search("https://webservices2.autotask.net/ATServicesRest/V1.0/")
    assert AUTOTASK_LITERAL.search("queueID") and AUTOTASK_LITERAL.search("$.itemId")
    assert not AUTOTASK_LITERAL.search("autotask.queue_id")

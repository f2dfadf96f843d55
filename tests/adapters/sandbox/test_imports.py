"""The sandbox's imports go one way: app.py mounts the faces, the faces share core.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import adapters.sandbox

PACKAGE = Path(adapters.sandbox.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every adapters.sandbox module `path` imports, wherever the import statement sits."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("adapters.sandbox.")}


FACES = [PACKAGE / "rest.py", *sorted((PACKAGE / "soap").glob("*.py"))]


@pytest.mark.parametrize("path", FACES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_faces_do_not_import_the_app(path: Path) -> None:
    assert "adapters.sandbox.app" not in imported_modules(path)


def test_core_imports_neither_face_nor_the_app() -> None:
    faces = ("adapters.sandbox.app", "adapters.sandbox.rest", "adapters.sandbox.soap")
    assert not [name for name in imported_modules(PACKAGE / "core.py") if name.startswith(faces)]

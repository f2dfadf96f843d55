"""The security floors of pyproject.toml (S4, S6, S13): each bound carries the fixes it names.

A bound may rise, never fall below these; the installed versions must meet them too.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

#: name → the lowest version with the fixes pyproject.toml's comments name.
FLOORS = {
    "lxml": "6.1",
    "jinja2": "3.1.6",
    "flask": "3.1.1",
    "werkzeug": "3.1.5",
    "requests": "2.32.4",
    "urllib3": "2.6.3",
    "marshmallow": "4.1.2",
    "cryptography": "44.0.1",
    "gunicorn": "23",
}


def requirements() -> dict[str, Requirement]:
    """The project's runtime dependencies by lower-case name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = (Requirement(line) for line in project["dependencies"])
    return {requirement.name.lower(): requirement for requirement in found}


@pytest.mark.parametrize(("name", "floor"), sorted(FLOORS.items()))
def test_the_bound_carries_the_security_fixes(name: str, floor: str) -> None:
    specifier = requirements()[name].specifier
    lowest = [Version(spec.version) for spec in specifier if spec.operator == ">="]
    assert lowest and lowest[0] >= Version(floor), f"{name}{specifier} is below {floor}"
    assert Version(version(name)) >= Version(floor), f"installed {name} is below {floor}"

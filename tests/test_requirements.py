"""Security floors of dependencies: pyproject.toml demands them, the installed versions meet them.

lxml 6.1 fixes XXE through iterparse() and ETCompatXMLParser() (CVE-2026-41066); Jinja 3.1.6 the
sandbox escape through |attr and str.format (CVE-2025-27516). See
../shared/reference/reliability-security.md §4.6 and §4.7 (S4, S6).
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"

#: Distribution, the lowest safe version, and the newest release the floor must exclude.
FLOORS = [
    ("lxml", "6.1", "6.0.99"),
    ("jinja2", "3.1.6", "3.1.5"),
]


def declared(name: str) -> Requirement:
    """The project's runtime requirement on the distribution `name`."""
    with PYPROJECT.open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    found = [Requirement(line) for line in dependencies if Requirement(line).name.lower() == name]
    assert len(found) == 1, f"pyproject.toml must name {name} once among [project] dependencies"
    return found[0]


@pytest.mark.parametrize(("name", "floor", "unsafe"), FLOORS, ids=[row[0] for row in FLOORS])
def test_pyproject_refuses_every_version_below_the_security_floor(
    name: str, floor: str, unsafe: str
) -> None:
    specifier = declared(name).specifier
    assert not specifier.contains(unsafe, prereleases=True), f"{name}{specifier} allows {unsafe}"
    assert specifier.contains(floor), f"{name}{specifier} refuses the safe {floor}"


@pytest.mark.parametrize(("name", "floor", "unsafe"), FLOORS, ids=[row[0] for row in FLOORS])
def test_the_installed_version_is_at_least_the_security_floor(
    name: str, floor: str, unsafe: str
) -> None:
    installed = Version(version(name))
    assert installed >= Version(floor), f"{name} {installed} is installed; at least {floor}"
    assert declared(name).specifier.contains(installed, prereleases=True)

"""Every ticket target implements connector.ports.TicketTarget, and every catalog
connector.ports.TicketSystemCatalog: same methods, same signatures."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from adapters import TARGETS as REGISTERED_TARGETS
from adapters import load, load_catalogs, load_target_profiles
from connector.payloads.requests import generate_requests, validate_request
from connector.ports import TargetProfile, TicketSystemCatalog, TicketTarget

#: The ticket targets the worker can be given: every registered flavour's target class.
TARGETS: dict[str, type[Any]] = {
    flavour: load(target) for flavour, (_, target, _) in REGISTERED_TARGETS.items()
}


def port_methods(protocol: type[Any]) -> list[str]:
    """The public methods a Protocol declares."""
    return sorted(
        name
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    )


def described(function: Any) -> list[tuple[str, Any, Any, Any]]:
    """(name, kind, default, resolved annotation) for each parameter, plus the return type."""
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    params = [
        (name, p.kind, p.default, hints.get(name)) for name, p in signature.parameters.items()
    ]
    return [*params, ("return", None, None, hints.get("return"))]


def test_the_port_declares_the_operations_the_worker_needs() -> None:
    assert port_methods(TicketTarget) == [
        "endpoint_url",
        "find_ticket_by_marker",
        "get_ticket",
        "send",
    ]


@pytest.mark.parametrize("target_class", list(TARGETS.values()), ids=list(TARGETS))
@pytest.mark.parametrize("method", port_methods(TicketTarget))
def test_target_method_matches_the_port(target_class: type[Any], method: str) -> None:
    implemented = getattr(target_class, method, None)
    assert callable(implemented), f"{target_class.__name__} lacks {method}"
    assert described(implemented) == described(getattr(TicketTarget, method))


@pytest.mark.parametrize("target_class", list(TARGETS.values()), ids=list(TARGETS))
def test_target_public_methods_have_docstrings(target_class: type[Any]) -> None:
    for method in port_methods(TicketTarget):
        assert inspect.getdoc(getattr(target_class, method)), method


@pytest.mark.parametrize("target_class", list(TARGETS.values()), ids=list(TARGETS))
def test_targets_send_rendered_requests_and_build_no_bodies(target_class: type[Any]) -> None:
    # The worker renders every body from the delivery request templates (payloads/requests.py).
    for method in ("create_ticket", "add_note", "set_status"):
        assert not hasattr(target_class, method), method


def test_every_registered_flavour_has_a_target() -> None:
    assert sorted(TARGETS) == ["rest", "soap"]


def test_every_registered_flavour_has_a_profile_the_core_can_use() -> None:
    profiles = load_target_profiles()
    assert sorted(profiles) == sorted(TARGETS)
    for flavour, profile in profiles.items():
        assert isinstance(profile, TargetProfile)
        assert profile.flavour == flavour
        # Every default request names a template that exists and passes the save-time check.
        for spec in generate_requests(profile):
            validate_request(spec, profile)


#: The catalogs an admin's setup pages are given: every registered flavour's catalog class.
CATALOGS: dict[str, type[Any]] = load_catalogs()


def test_the_catalog_port_declares_what_the_setup_pages_need() -> None:
    assert port_methods(TicketSystemCatalog) == [
        "check_connection",
        "explain",
        "picklists",
        "search_companies",
    ]


def test_every_registered_flavour_has_a_catalog() -> None:
    assert sorted(CATALOGS) == sorted(TARGETS)


@pytest.mark.parametrize("catalog_class", list(CATALOGS.values()), ids=list(CATALOGS))
@pytest.mark.parametrize("method", port_methods(TicketSystemCatalog))
def test_catalog_method_matches_the_port(catalog_class: type[Any], method: str) -> None:
    implemented = getattr(catalog_class, method, None)
    assert callable(implemented), f"{catalog_class.__name__} lacks {method}"
    assert described(implemented) == described(getattr(TicketSystemCatalog, method))
    assert inspect.getdoc(implemented), method


@pytest.mark.parametrize("flavour", sorted(CATALOGS))
def test_a_catalog_is_built_over_its_flavours_client_and_a_gate(flavour: str) -> None:
    # The composition root builds `Catalog(client, gate)` (connector/wiring.py).
    client_class = load(REGISTERED_TARGETS[flavour][0])
    parameters = list(inspect.signature(CATALOGS[flavour]).parameters)
    assert parameters == ["client", "gate"]
    client = client_class("https://webservices.autotask.net/", "user", "secret", "code")
    assert CATALOGS[flavour](client, None).client is client

"""A tenant as strict as a real one, end to end: real web and worker processes, the sandbox.

Each refusal Autotask gives for the request itself (an inactive company, an inactive work type,
a field the API-only ticket category requires) is dead-lettered after ONE attempt with
Autotask's words; once the mapping is fixed, a replay renders the request again and makes one
ticket. Wording: ../shared/reference/autotask-api.md §14.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from adapters.sandbox import Sandbox, SandboxServer
from adapters.targets.autotask.profile import TICKET_LIMITS
from connector.payloads.text import utf16_units
from connector.persistence.models import Integration, TenantMapping
from tests.e2e.harness import Connector, alert, wait_until

# These tests read Autotask's words in the dead letters: never opaque errors (conftest).
pytestmark = [pytest.mark.e2e, pytest.mark.autotask_words]

INACTIVE_COMPANY = 29683417  # "Adventure Works (inactive)"
ACTIVE_COMPANY = 29683416
INACTIVE_WORK_TYPE = 29682809
ACTIVE_WORK_TYPE = 29682805
API_ONLY_CATEGORY = 5  # the sandbox's "Alert Connector (API-only)" ticketCategory value


def change_settings(connector: Connector, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit the integration's stored ticket settings, as the admin form will."""
    with connector.services.transaction() as session:
        integration = session.scalars(select(Integration)).one()
        settings = dict(integration.settings)
        change(settings)
        integration.settings = settings


def the_dead_letter(connector: Connector) -> dict[str, Any]:
    """The one dead-lettered delivery, once it is there."""
    wait_until(lambda: connector.deliveries_by_state() == {"dead": 1}, 60, "a dead letter")
    (dead,) = connector.api("deliveries?state=dead").json()["deliveries"]
    assert dead["attempts"] == 1  # Autotask refused the request itself: never retried
    assert dead["outcome"] == "failed"
    assert dead["last_response"]["status"] == 500
    return dead


def replay_makes_one_ticket(
    connector: Connector, sandbox: Sandbox, dead: dict[str, Any]
) -> dict[str, Any]:
    """Replay the dead letter; return the one ticket it makes."""
    answer = connector.api(f"deliveries/{dead['id']}/replay", method="POST")
    assert answer.status_code == 200, answer.text
    connector.drain(timeout=60)
    assert connector.deliveries_by_state() == {"done": 1}
    (ticket,) = sandbox.tickets_with_notes()
    return ticket


def test_an_alert_routed_to_an_inactive_company_is_a_dead_letter_until_the_map_is_fixed(
    connector: Connector, sandbox: Sandbox
) -> None:
    with connector.services.transaction() as session:
        session.add(
            TenantMapping(integration_id=1, tenant="adventure", company_id=INACTIVE_COMPANY)
        )
    assert connector.post(alert(1, "active", tenant="adventure")).status_code == 202
    dead = the_dead_letter(connector)
    assert (
        "Reference value on field: companyID of type: Account does not exist or is invalid."
        in dead["last_error"]
    )
    assert sandbox.tickets_with_notes() == []

    with connector.services.transaction() as session:
        session.execute(
            update(TenantMapping)
            .where(TenantMapping.tenant == "adventure")
            .values(company_id=ACTIVE_COMPANY)
        )
    ticket = replay_makes_one_ticket(connector, sandbox, dead)
    assert ticket["companyID"] == ACTIVE_COMPANY


def test_a_monitor_override_naming_an_inactive_work_type_is_fixed_by_the_mapping(
    connector: Connector, sandbox: Sandbox
) -> None:
    change_settings(
        connector,
        lambda s: s.update(monitor_overrides={"disk": {"work_type": INACTIVE_WORK_TYPE}}),
    )
    assert connector.post(alert(2, "active", monitor="disk")).status_code == 202
    dead = the_dead_letter(connector)
    assert "Reference value on field: billingCodeID" in dead["last_error"]
    assert "does not exist or is invalid" in dead["last_error"]
    assert sandbox.tickets_with_notes() == []

    change_settings(
        connector,
        lambda s: s.update(monitor_overrides={"disk": {"work_type": ACTIVE_WORK_TYPE}}),
    )
    ticket = replay_makes_one_ticket(connector, sandbox, dead)
    assert ticket["billingCodeID"] == ACTIVE_WORK_TYPE


def test_a_long_title_with_emoji_is_cut_so_that_autotask_takes_it(
    connector: Connector, sandbox: Sandbox
) -> None:
    title = ('Disk C:\\ 🔥 full "really" ' * 20)[:250]  # 250 characters, more UTF-16 units
    assert len(title) == 250 and utf16_units(title) > TICKET_LIMITS["title"]
    assert connector.post(alert(3, "active", title=title)).status_code == 202
    connector.drain(timeout=60)
    assert connector.deliveries_by_state() == {"done": 1}
    (ticket,) = sandbox.tickets_with_notes()
    assert utf16_units(ticket["title"]) <= TICKET_LIMITS["title"]
    assert ticket["title"].endswith(" … [truncated]")
    assert title.startswith(ticket["title"].removesuffix(" … [truncated]"))


@pytest.fixture
def api_only_category(sandbox_server: SandboxServer) -> Iterator[None]:
    """The tenant's API-only ticket category requires a queue (autotask-api.md §14)."""
    url = f"{sandbox_server.url}_sandbox/ticket-category"
    category = {"id": API_ONLY_CATEGORY, "required": ["queueID"]}
    assert requests.post(url, json=category, timeout=10).status_code == 200
    yield
    requests.post(url, json={}, timeout=10)


@pytest.fixture
def integration_config(integration_config: dict[str, object]) -> dict[str, object]:
    """The sandbox integration without a queue (the category test maps one later)."""
    return {k: v for k, v in integration_config.items() if k != "queue_id"}


@pytest.mark.usefixtures("api_only_category")
def test_a_category_that_requires_a_queue_is_explained_then_served_once_a_queue_is_mapped(
    connector: Connector, sandbox: Sandbox
) -> None:
    assert connector.post(alert(4, "active")).status_code == 202
    dead = the_dead_letter(connector)
    assert "queueID is required" in dead["last_error"]
    assert (
        "Autotask requires queueID for tickets of this category: set a queue in the mapping"
        in dead["last_error"]
    )

    change_settings(connector, lambda s: s.update(queue_id=29682833))
    ticket = replay_makes_one_ticket(connector, sandbox, dead)
    assert ticket["queueID"] == 29682833
    assert ticket["ticketCategory"] == API_ONLY_CATEGORY

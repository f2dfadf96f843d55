"""LogicMonitor and Datto RMM as they really send: the shipped bodies filled in RAW (no JSON
escaping) with everyday hostile text, through real web and worker processes to the sandbox.

Each value must come out literally in its ticket's title and description, one ticket per alert,
and the sender's clear (LogicMonitor `clear`, Datto RMM's resolved body) must complete it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.sandbox import Sandbox
from tests.adapters.sources.test_raw_bodies import (
    DATTO_RESOLVED,
    DATTO_TRIGGERED,
    HOSTILE,
    datto_body,
    lm_body,
)
from tests.conftest import HOOK_TOKEN
from tests.e2e.harness import Connector

pytestmark = pytest.mark.e2e

COMPLETE = 5


def post_raw(connector: Connector, source: str, body: bytes) -> dict[str, Any]:
    response = connector.session.post(
        f"{connector.base}/hooks/{source}",
        data=body,
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    assert answer["rejected"] == [], answer
    return answer


#: Per sender: its source, its fire and clear bodies for a value, and the ticket title it makes.
SENDERS: dict[str, tuple[str, Callable[[str], bytes], Callable[[str], bytes], Callable[[str], str]]]
SENDERS = {
    "logicmonitor": (
        "logicmonitor",
        lambda value: lm_body(value),
        lambda value: lm_body(value, ALERTSTATUS="clear", DATE="2026-11-22 12:30:00 UTC"),
        lambda value: f"{value} {value} on {value}",  # "<datasource> <datapoint> on <host>"
    ),
    "datto-rmm": (
        "datto_rmm",
        lambda value: datto_body(value, DATTO_TRIGGERED),
        lambda value: datto_body(value, DATTO_RESOLVED),
        lambda value: value.strip().splitlines()[0],  # the message's first line
    ),
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("sender", list(SENDERS))
def test_raw_filled_bodies_become_literal_tickets_that_their_clear_completes(
    connector: Connector, sandbox: Sandbox, sender: str
) -> None:
    source, fire, clear, title_of = SENDERS[sender]
    alert_ids = {}
    for name, value in HOSTILE.items():
        (accepted,) = post_raw(connector, source, fire(value))["accepted"]
        assert accepted["disposition"] == "queued", (name, accepted)
        alert_ids[name] = accepted["alert_id"]
    connector.drain(timeout=120)
    for name, value in HOSTILE.items():
        (accepted,) = post_raw(connector, source, clear(value))["accepted"]
        assert accepted["alert_id"] == alert_ids[name], name  # the clear found its alert
    connector.drain(timeout=120)

    tickets = {ticket["id"]: ticket for ticket in sandbox.tickets_with_notes()}
    assert len(tickets) == len(HOSTILE)  # one ticket per alert, none twice
    for name, value in HOSTILE.items():
        detail = connector.api(f"alerts/{alert_ids[name]}").json()
        ticket = tickets[detail["ticket"]["ticket_id"]]
        assert ticket["title"] == title_of(value), name
        assert ticket["description"].startswith(value + "\n"), (name, ticket["description"])
        assert ticket["status"] == COMPLETE, name
        # The clear's text is the ticket's resolution (no closing note: one call fewer).
        assert value in ticket["resolution"], (name, ticket["resolution"])

"""The sandbox's optional SQLite state file: records and id sequences survive a restart."""

from __future__ import annotations

from pathlib import Path

import requests

from adapters.sandbox import ApiUser, Sandbox, SandboxConfig, SandboxServer
from tests.conftest import RestClient

TICKET = {"companyID": 29683414, "title": "Disk full on srv01", "status": 1, "priority": 2}
NOTE = {"description": "Acknowledged.", "noteType": 1, "publish": 1}


def open_sandbox(path: Path) -> Sandbox:
    return Sandbox(SandboxConfig(state_file=str(path)))


def test_records_survive_a_new_sandbox_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    first = open_sandbox(path)
    ticket_id = first.service.create("Tickets", TICKET | {"externalID": "alert-1"})
    note_id = first.service.create("TicketNotes", NOTE, parent_id=ticket_id)
    first.service.update("Tickets", {"id": ticket_id, "status": 5}, replace=False)
    ticket = first.service.get("Tickets", ticket_id)
    first.state.close()

    second = open_sandbox(path)
    assert second.service.get("Tickets", ticket_id) == ticket
    note = second.service.get("TicketNotes", note_id)
    assert note is not None and note["ticketID"] == ticket_id
    assert second.service.get("Companies", 29683414) is not None
    # Ids continue where the first sandbox stopped, and so do ticket numbers.
    next_id = second.service.create("Tickets", TICKET)
    assert next_id == ticket_id + 1
    assert second.service.create("TicketNotes", NOTE, parent_id=next_id) == note_id + 1
    numbers = {t["ticketNumber"] for t in second.state.all("Tickets")}
    assert len(numbers) == 2
    second.state.close()


def test_reset_clears_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    first = open_sandbox(path)
    first_id = first.service.create("Tickets", TICKET)
    first.service.create("Tickets", TICKET)
    first.reset()
    first.state.close()

    second = open_sandbox(path)
    assert second.state.all("Tickets") == []
    assert len(second.state.all("Companies")) == 5
    assert second.service.create("Tickets", TICKET) == first_id
    second.state.close()


def test_an_in_memory_sandbox_starts_empty_each_time() -> None:
    first = Sandbox()
    first.service.create("Tickets", TICKET)
    assert Sandbox().state.all("Tickets") == []


def test_a_served_sandbox_keeps_its_tickets_across_restarts(
    tmp_path: Path, api_user: ApiUser
) -> None:
    path = tmp_path / "sandbox.sqlite3"
    with SandboxServer(Sandbox(SandboxConfig(user=api_user, state_file=str(path)))) as server:
        ticket_id = RestClient(server, api_user).create_ticket(externalID="alert-1")
    with SandboxServer(Sandbox(SandboxConfig(user=api_user, state_file=str(path)))) as server:
        rest = RestClient(server, api_user)
        item = rest.get(f"Tickets/{ticket_id}").json()["item"]
        assert item["externalID"] == "alert-1"
        tickets = requests.get(f"{server.url}_sandbox/tickets", timeout=10).json()
        assert [t["id"] for t in tickets] == [ticket_id]

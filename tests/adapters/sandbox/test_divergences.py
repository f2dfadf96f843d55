"""Where the sandbox deliberately differs from a real tenant, and its lenient mode that does not.

By default (strict mode) the sandbox refuses what real Autotask silently ignores, so that a
client's mistake shows up in tests: unknown properties, unknown query operators. With strict mode
off (CONNECTOR_SANDBOX_STRICT_PROPERTIES=false, or POST /_sandbox/settings) it ignores them as a
real tenant does. Reference: ../shared/reference/autotask-api.md §3 and §14, and
adapters/sandbox/README.md ("Where the sandbox differs").
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from adapters.sandbox import ApiUser, SandboxServer
from tests.adapters.sandbox.test_soap import SoapClient, ticket
from tests.conftest import RestClient


@pytest.fixture
def tickets(rest: RestClient) -> dict[str, int]:
    """Three tickets: two New (status 1), one Complete (status 5)."""
    return {
        "new-a": rest.create_ticket(),
        "new-b": rest.create_ticket(),
        "done": rest.create_ticket(status=5),
    }


def lenient(server: SandboxServer) -> None:
    """Switch strict mode off on the running sandbox."""
    response = requests.post(
        f"{server.url}_sandbox/settings", json={"strict_properties": False}, timeout=10
    )
    assert response.status_code == 200, response.text


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


NE = {"op": "ne", "field": "status", "value": 5}  # `ne` is not an Autotask operator: `noteq` is


# -- unknown query operators -------------------------------------------------------------------


def test_strict_mode_refuses_an_unknown_operator(rest: RestClient, tickets: dict[str, int]) -> None:
    response = rest.post("Tickets/query", json={"filter": [NE]})
    assert response.status_code == 500
    assert response.json() == {"errors": ["Invalid operator 'ne'."]}


QUERIES: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    # (case, filter, tickets found) — real Autotask drops the `ne` clause (autotask-mcp PR #211:
    # `ne` → every row, 100 % Complete included; `noteq` → only the open tickets).
    ("only-ne", [NE], ["new-a", "new-b", "done"]),
    ("noteq", [{"op": "noteq", "field": "status", "value": 5}], ["new-a", "new-b"]),
    (
        "ne-beside-a-valid-clause",
        [NE, {"op": "eq", "field": "status", "value": 5}],
        ["done"],
    ),
    (
        "ne-inside-an-or",
        [{"op": "or", "items": [NE, {"op": "eq", "field": "status", "value": 5}]}],
        ["done"],
    ),
    ("an-or-of-only-ne", [{"op": "or", "items": [NE]}], ["new-a", "new-b", "done"]),
]


@pytest.mark.parametrize(("case", "filters", "found"), QUERIES, ids=[q[0] for q in QUERIES])
def test_lenient_mode_drops_an_unknown_operator_as_autotask_does(
    rest: RestClient,
    sandbox_server: SandboxServer,
    tickets: dict[str, int],
    case: str,
    filters: list[dict[str, Any]],
    found: list[str],
) -> None:
    lenient(sandbox_server)
    expected = sorted(tickets[name] for name in found)
    assert ids(rest.post("Tickets/query", json={"filter": filters})) == expected
    count = rest.post("Tickets/query/count", json={"filter": filters})
    assert count.json() == {"queryCount": len(expected)}


def test_lenient_mode_still_refuses_an_unknown_field(
    rest: RestClient, sandbox_server: SandboxServer
) -> None:
    # An unknown field is a loud 500 in real Autotask, not dropped: "Unable to find projectID in
    # the TimeEntry Entity" (autotask-mcp PR #282).
    lenient(sandbox_server)
    response = rest.post(
        "Tickets/query", json={"filter": [{"op": "eq", "field": "nosuchfield", "value": 1}]}
    )
    assert response.status_code == 500
    assert response.json() == {"errors": ["Unable to find nosuchfield in the Ticket Entity"]}


# -- unknown properties ------------------------------------------------------------------------


def test_strict_mode_refuses_an_unknown_property(rest: RestClient) -> None:
    body = {"companyID": 29683414, "title": "t", "status": 1, "priority": 2, "titel": "typo"}
    response = rest.post("Tickets", json=body)
    assert response.status_code == 500
    assert "titel" in response.json()["errors"][0]


def test_lenient_mode_ignores_unknown_properties_and_elements(
    rest: RestClient, sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    # Real Autotask's JSON binder (and ASMX's deserializer) ignore what they do not know
    # (autotask-api.md §3; the Postman sample even carries a malformed key).
    lenient(sandbox_server)
    body = {"companyID": 29683414, "title": "t", "status": 1, "priority": 2, "titel": "typo"}
    assert rest.post("Tickets", json=body).status_code == 200
    reply = SoapClient(sandbox_server, api_user).create(ticket(Titel="typo"))
    assert reply.return_code == 1, reply.errors

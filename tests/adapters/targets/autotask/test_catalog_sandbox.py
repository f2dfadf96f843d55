"""The Autotask catalogs (REST and SOAP) over real HTTP against the running sandbox.

Check connection step by step, each failure in words (wrong secret, unknown user, wrong tracking
identifier, a missing permission, no connection, a zone host not allowed), the picklists, work
types and company search, and every call passed through the gate. SOAP envelopes are held to the
vendored WSDL's schema.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, SandboxServer
from adapters.sandbox.seed import BILLING_CODES, PICKLISTS
from adapters.targets.autotask.catalog import AutotaskCatalog
from adapters.targets.autotask.rest import AutotaskRestCatalog, AutotaskRestClient
from adapters.targets.autotask.soap import AutotaskSoapCatalog, AutotaskSoapClient
from connector.domain import ApiCallRecord, CheckName, ConnectionReport
from connector.errors import TargetError
from tests import canaries
from tests.adapters.sandbox.test_soap import atws_schema

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CONTOSO = 29683414

MakeCatalog = Callable[..., AutotaskCatalog]


class Gate:
    """A CallGate that records what it admits, and refuses when told to."""

    def __init__(self) -> None:
        self.admitted: list[tuple[str, bool]] = []
        self.errors: list[BaseException | None] = []
        self.refuse: str | None = None

    @contextmanager
    def __call__(self, endpoint: str, *, limited: bool = True) -> Iterator[None]:
        if self.refuse == endpoint:
            raise TargetError(f"throttled: no call to {endpoint} now")
        self.admitted.append((endpoint, limited))
        try:
            yield None
        except BaseException as e:
            self.errors.append(e)
            raise
        self.errors.append(None)


@pytest.fixture(params=["rest", "soap"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def records() -> list[ApiCallRecord]:
    return []


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def sent_envelopes() -> Iterator[list[bytes]]:
    """Every SOAP envelope sent; each is checked against the WSDL schema at teardown."""
    envelopes: list[bytes] = []
    yield envelopes
    schema = atws_schema()
    for data in envelopes:
        body = etree.fromstring(data).find(f"{{{SOAP_ENV}}}Body")
        assert body is not None and len(body) == 1
        assert schema.validate(body[0]), f"{schema.error_log}\n{data.decode()}"


@pytest.fixture
def make_catalog(
    flavour: str,
    sandbox_server: SandboxServer,
    api_user: ApiUser,
    records: list[ApiCallRecord],
    gate: Gate,
    sent_envelopes: list[bytes],
) -> MakeCatalog:
    """A catalog of `flavour` on the sandbox; keyword arguments override the client's options."""

    def capture(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if flavour == "soap" and isinstance(response.request.body, bytes):
            sent_envelopes.append(response.request.body)

    def make(**overrides: Any) -> AutotaskCatalog:
        session = requests.Session()
        session.hooks["response"].append(capture)
        options: dict[str, Any] = {
            "username": api_user.username,
            "secret": api_user.secret,
            "integration_code": api_user.integration_code,
            "allowed_zone_hosts": ["127.0.0.1"],
            "recorder": records.append,
            "session": session,
        }
        lookup = overrides.pop("zone_lookup_url", None)
        options.update(overrides)
        if flavour == "rest":
            rest = AutotaskRestClient(lookup or sandbox_server.rest_url, **options)
            return AutotaskRestCatalog(rest, gate)
        soap = AutotaskSoapClient(lookup or sandbox_server.soap_url, **options)
        return AutotaskSoapCatalog(soap, gate)

    return make


def deny(server: SandboxServer, plan: dict[str, list[str]]) -> None:
    response = requests.post(f"{server.url}_sandbox/permissions", json=plan, timeout=10)
    assert response.status_code == 200, response.text


def checks_of(report: ConnectionReport) -> dict[CheckName, tuple[bool, bool, str]]:
    return {check.name: (check.ok, check.skipped, check.message) for check in report.checks}


# -- check connection ----------------------------------------------------------------------------


def test_every_check_passes_with_the_sandboxs_api_user(
    make_catalog: MakeCatalog, sandbox_server: SandboxServer, api_user: ApiUser, gate: Gate
) -> None:
    report = make_catalog().check_connection()
    assert report.ok, report.to_json()
    assert [check.name for check in report.checks] == list(CheckName)
    assert report.zone_url is not None and report.zone_url.startswith(sandbox_server.url)
    zone = checks_of(report)[CheckName.ZONE_LOOKUP][2]
    assert api_user.username in zone and "127.0.0.1" in zone
    # The zone lookup is neither counted nor thread-limited by Autotask; every other call is.
    assert gate.admitted[0] == ("ZoneInformation", False)
    assert all(limited for _, limited in gate.admitted[1:])
    assert gate.errors == [None] * len(gate.admitted)


def test_every_call_is_recorded(
    make_catalog: MakeCatalog, records: list[ApiCallRecord], flavour: str
) -> None:
    make_catalog().check_connection()
    # zone, credentials, tickets, companies, then entityInformation ×2 (REST) or getEntityInfo.
    assert len(records) == {"rest": 6, "soap": 5}[flavour]
    assert all(record.http_status == 200 for record in records)


def test_a_wrong_secret_is_said_and_the_rest_is_skipped(make_catalog: MakeCatalog) -> None:
    report = make_catalog(secret=canaries.WRONG_AUTOTASK_SECRET).check_connection()
    checks = checks_of(report)
    assert not report.ok
    assert checks[CheckName.ZONE_LOOKUP][0] is True
    ok, skipped, message = checks[CheckName.CREDENTIALS]
    assert (ok, skipped) == (False, False)
    assert "refused its secret (HTTP 401)" in message
    assert "check the secret" in message
    for name in list(CheckName)[2:]:
        assert checks[name][:2] == (False, True)
        assert "did not accept the credentials" in checks[name][2]


def test_an_unknown_user_is_said_at_the_zone_lookup(make_catalog: MakeCatalog) -> None:
    report = make_catalog(username="nobody@example.test").check_connection()
    ok, skipped, message = checks_of(report)[CheckName.ZONE_LOOKUP]
    assert (ok, skipped) == (False, False)
    assert "Autotask does not know the API user 'nobody@example.test'" in message
    assert "Check the username" in message
    assert report.zone_url is None
    assert all(check.skipped for check in report.checks[1:])


def test_a_wrong_tracking_identifier_is_said(make_catalog: MakeCatalog) -> None:
    report = make_catalog(integration_code=canaries.WRONG_INTEGRATION_CODE).check_connection()
    ok, skipped, message = checks_of(report)[CheckName.CREDENTIALS]
    assert (ok, skipped) == (False, False)
    assert "tracking identifier" in message
    assert "secret (HTTP 401)" not in message
    assert canaries.WRONG_INTEGRATION_CODE not in message


@pytest.mark.parametrize(
    ("plan", "failing", "words"),
    [
        ({"Tickets": ["query"]}, CheckName.READ_TICKETS, "to read tickets"),
        ({"Tickets": ["create"]}, CheckName.CREATE_TICKETS, "to create tickets"),
        ({"Tickets": ["update"]}, CheckName.UPDATE_TICKETS, "to update tickets"),
        ({"Companies": ["query"]}, CheckName.READ_COMPANIES, "to read companies"),
        ({"TicketNotes": ["create"]}, CheckName.CREATE_NOTES, "to add notes to tickets"),
    ],
    ids=["read tickets", "create tickets", "update tickets", "read companies", "add notes"],
)
def test_each_missing_permission_is_said(
    make_catalog: MakeCatalog,
    sandbox_server: SandboxServer,
    plan: dict[str, list[str]],
    failing: CheckName,
    words: str,
) -> None:
    deny(sandbox_server, plan)
    report = make_catalog().check_connection()
    checks = checks_of(report)
    ok, skipped, message = checks[failing]
    assert (ok, skipped) == (False, False)
    assert f"security level does not allow it {words}" in message
    assert "Security Levels" in message
    assert [name for name, (passed, _, _) in checks.items() if not passed] == [failing]


def test_a_missing_permission_without_words_is_still_pointed_at(
    make_catalog: MakeCatalog, sandbox_server: SandboxServer
) -> None:
    # Many tenants answer every refusal with "Something went wrong" alone (autotask-api.md §14).
    requests.post(
        f"{sandbox_server.url}_sandbox/settings", json={"opaque_errors": True}, timeout=10
    )
    deny(sandbox_server, {"Companies": ["query"]})
    ok, _, message = checks_of(make_catalog().check_connection())[CheckName.READ_COMPANIES]
    assert not ok
    assert "read companies without saying why" in message
    assert "missing permission" in message


def test_a_zone_lookup_address_not_allowed_is_never_called(
    make_catalog: MakeCatalog, records: list[ApiCallRecord]
) -> None:
    report = make_catalog(allowed_zone_hosts=["*.autotask.net"]).check_connection()
    ok, _, message = checks_of(report)[CheckName.ZONE_LOOKUP]
    assert not ok
    assert "does not send the API user's credentials there" in message
    assert "allowed zone hosts" in message
    assert records == []


def test_no_connection_is_said_with_the_host(make_catalog: MakeCatalog, flavour: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = "atservicesrest/" if flavour == "rest" else "ATServices/1.6/atws.asmx"
    report = make_catalog(zone_lookup_url=f"http://127.0.0.1:{port}/{path}").check_connection()
    ok, _, message = checks_of(report)[CheckName.ZONE_LOOKUP]
    assert not ok
    assert f"could not connect to 127.0.0.1:{port}" in message


def test_a_refusal_of_the_gate_is_raised_not_reported(
    make_catalog: MakeCatalog, gate: Gate
) -> None:
    gate.refuse = "Companies"
    with pytest.raises(TargetError, match="throttled: no call to Companies now"):
        make_catalog().check_connection()


def test_the_gate_sees_the_calls_error(
    make_catalog: MakeCatalog, sandbox_server: SandboxServer, gate: Gate
) -> None:
    deny(sandbox_server, {"Tickets": ["query"]})
    make_catalog().check_connection()
    failed = [
        endpoint
        for (endpoint, _), error in zip(gate.admitted, gate.errors, strict=True)
        if error is not None
    ]
    assert failed == ["Tickets"]


def test_no_secret_in_any_message(make_catalog: MakeCatalog, api_user: ApiUser) -> None:
    for catalog in (
        make_catalog(secret=canaries.WRONG_AUTOTASK_SECRET),
        make_catalog(integration_code=canaries.WRONG_INTEGRATION_CODE),
        make_catalog(),
    ):
        text = str(catalog.check_connection().to_json())
        for secret in (
            canaries.WRONG_AUTOTASK_SECRET,
            canaries.WRONG_INTEGRATION_CODE,
            api_user.secret,
        ):
            assert secret not in text
        assert api_user.integration_code not in text


# -- lists ---------------------------------------------------------------------------------------


def expected(entity: str, field: str) -> list[tuple[int, str, bool]]:
    return [
        (int(v["value"]), v["label"], v["isActive"])
        for v in sorted(PICKLISTS[entity][field], key=lambda v: v["sortOrder"])
    ]


def test_picklists_are_autotasks_own_lists(make_catalog: MakeCatalog, gate: Gate) -> None:
    lists = make_catalog().picklists()
    for name, entity, field in [
        ("statuses", "Tickets", "status"),
        ("priorities", "Tickets", "priority"),
        ("queues", "Tickets", "queueID"),
        ("ticket_categories", "Tickets", "ticketCategory"),
        ("issue_types", "Tickets", "issueType"),
        ("sub_issue_types", "Tickets", "subIssueType"),
        ("sources", "Tickets", "source"),
        ("ticket_types", "Tickets", "ticketType"),
        ("note_types", "TicketNotes", "noteType"),
        ("note_publish", "TicketNotes", "publish"),
    ]:
        got = [(c.id, c.label, c.active) for c in getattr(lists, name)]
        assert got == expected(entity, field), name
    assert lists.statuses[0].default and lists.statuses[0].label == "New"
    retired = next(c for c in lists.statuses if c.id == 14)
    assert not retired.active
    disk = next(c for c in lists.sub_issue_types if c.id == 201)
    assert disk.parent_id == 2  # Hardware
    assert all(c.parent_id is None for c in lists.issue_types)
    assert sorted((c.id, c.active) for c in lists.work_types) == sorted(
        (code["id"], not code["name"].endswith("(inactive)")) for code in BILLING_CODES
    )
    assert [c.label for c in lists.work_types] == sorted(c.label for c in lists.work_types)
    assert [endpoint for endpoint, _ in gate.admitted] == [
        "ZoneInformation",
        "Tickets",
        "TicketNotes",
        "BillingCodes",
    ]


def test_picklists_failing_raise_a_target_error_the_catalog_words(
    make_catalog: MakeCatalog, sandbox_server: SandboxServer
) -> None:
    deny(sandbox_server, {"BillingCodes": ["query"]})
    catalog = make_catalog()
    with pytest.raises(TargetError) as raised:
        catalog.picklists()
    assert "security level does not allow it" in catalog.explain(raised.value)


@pytest.mark.parametrize(
    ("text", "limit", "names"),
    [
        ("contoso", 10, ["Contoso Ltd"]),
        ("FABRIK", 10, ["Fabrikam Inc"]),
        ("", 2, ["Contoso Ltd", "Sandbox MSP"]),
        ("no such company", 10, []),
    ],
    ids=["contains", "any case", "no text: any, by name", "none"],
)
def test_company_search(make_catalog: MakeCatalog, text: str, limit: int, names: list[str]) -> None:
    found = make_catalog().search_companies(text, limit)
    assert [company.name for company in found] == names


def test_company_search_says_which_are_inactive(make_catalog: MakeCatalog) -> None:
    found = make_catalog().search_companies("adventure", 5)
    assert [(c.id, c.active) for c in found] == [(29683417, False)]
    contoso = make_catalog().search_companies("contoso", 5)
    assert [(c.id, c.active) for c in contoso] == [(CONTOSO, True)]

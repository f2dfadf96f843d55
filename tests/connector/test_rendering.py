"""Payload rendering: tokens, escaping, limits, the sandbox, save-time checks and id extraction.

The default templates in payload_templates/ are held to the real Autotask contracts: each REST
body to the Swagger model its operation takes, each SOAP envelope's Body to the WSDL's schema,
and both are sent to the sandbox, which creates the ticket the rendered payload describes.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from connector.domain import AlertStatus, IncomingAlert, Severity, Step, StepKind, TicketRef
from connector.errors import ConnectorError, ExtractionError, RenderError, TemplateRejected
from connector.integrations.settings import (
    IntegrationSettings,
    build_draft,
    describe_alert,
    truncate,
    utf16_units,
)
from connector.payloads.context import MappedValues, RenderContext
from connector.payloads.escaping import escape_json, escape_xml
from connector.payloads.extraction import extract_ticket_id, validate_id_path
from connector.payloads.field_limits import NO_LIMITS, enforce_limits
from connector.payloads.formats import Format
from connector.payloads.render_limits import RenderLimits
from connector.payloads.samples import (
    HOSTILE_TEXT,
    SAMPLE_CONTEXT,
    VALIDATION_SAMPLES,
    validate_template,
)
from connector.payloads.target_facts import DEFAULT_XML_ID_PATH, NOTE_LIMITS, TICKET_LIMITS
from connector.payloads.templates import compile_template
from connector.payloads.tokens import TOKENS, TokenSpec
from tests.adapters.sandbox.test_conformance_rest import (
    SWAGGER,
    assert_conforms,
    canonical_names,
)
from tests.adapters.sandbox.test_soap import ATWS, SOAP_ENV, SoapClient, atws_schema
from tests.conftest import RestClient

TEMPLATES = Path(__file__).parents[2] / "payload_templates"
CONTOSO = 29683414
START = datetime(2024, 3, 21, 9, 30, tzinfo=UTC)
MARKER = "generic:fp-1:1"

# -- helpers -----------------------------------------------------------------------------------


def alert(**fields: Any) -> IncomingAlert:
    """A generic-source alert; `fields` override."""
    values: dict[str, Any] = {
        "source": "generic",
        "fingerprint": "fp-1",
        "status": AlertStatus.ACTIVE,
        "severity": Severity.ERROR,
        "title": "Disk full on srv01",
        "message": "/var is at 97 %",
        "host": "srv01",
        "tenant": "contoso",
        "monitor": "disk",
        "properties": {"instance": "/var", "value": "97", "threshold": "95"},
        "started_at": START,
        "occurred_at": START,
        "note": "",
        "actor": "",
    }
    values.update(fields)
    return IncomingAlert(**values)


SETTINGS = IntegrationSettings(
    default_company_id=CONTOSO,
    queue_id=29682833,
    issue_type=2,
    sub_issue_type=201,
    work_type=29682801,
    ticket_category=4,
    ticket_type=5,
    source=8,
    note_type=1,
    publish=1,
)


def context_for(
    event: IncomingAlert,
    *,
    ticket_id: int | None = 4242,
    settings: IntegrationSettings = SETTINGS,
    integration_code: str = "TRACKING-ID",
) -> RenderContext:
    """A context the way the worker builds one: a draft, the event's note step, the ticket."""
    draft = build_draft(
        event,
        company_id=CONTOSO,
        status=settings.status_map[event.status],
        marker=MARKER,
        settings=settings,
        received_at=START,
    )
    # The draft's description is already cut to 8000; render the full one to test the cut here.
    draft = replace(draft, description=describe_alert(event, event.started_at or START))
    step = Step(
        StepKind.NOTE,
        title=f"{event.title} — {event.status.value}",
        text=f"Alert {event.status.value}.\nBy: {event.actor}\nNote: {event.note}",
    )
    ticket = TicketRef(ticket_id, "T20240321.0001") if ticket_id is not None else None
    return RenderContext.build(
        event,
        settings=settings,
        draft=draft,
        step=step,
        ticket=ticket,
        integration_code=integration_code,
    )


def render(source: str, fmt: Format = "json", context: RenderContext = SAMPLE_CONTEXT) -> str:
    return compile_template(source, fmt).render(context)


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def xml_children(payload: str) -> dict[str, str]:
    """{local name: text} of the Entity in a rendered SOAP envelope."""
    root = etree.fromstring(payload.encode("utf-8"))
    entity = root.find(f".//{{{ATWS}}}Entity")
    assert entity is not None, payload
    return {etree.QName(child).localname: child.text or "" for child in entity}


def soap_body_content(payload: str) -> etree._Element:
    root = etree.fromstring(payload.encode("utf-8"))
    body = root.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None and len(body) == 1
    return body[0]


# -- tokens ------------------------------------------------------------------------------------

TOKEN_ALERT = alert(
    fingerprint="LMD777",
    status=AlertStatus.ACKNOWLEDGED,
    severity=Severity.CRITICAL,
    title="CPU busy",
    message="CPU at 99 %",
    host="srv02",
    tenant="fabrikam",
    monitor="CPU",
    properties={
        "alert.type": "dataSourceAlert",
        "instance": "cpu1",
        "datapoint": "CPUBusyPercent",
        "value": "99",
        "threshold": "> 90",
        "autotask.accountid": "29683999",
    },
    started_at=datetime(2024, 3, 21, 9, 30, tzinfo=UTC),
    occurred_at=datetime(2024, 3, 21, 10, 0, tzinfo=UTC),
    note="on it",
    actor="jane",
)
TOKEN_CONTEXT = RenderContext(
    alert=TOKEN_ALERT,
    mapped=MappedValues(
        company_id=29683414,
        priority=4,
        status=13,
        queue_id=29682833,
        due_at=datetime(2024, 3, 22, 11, 30, tzinfo=UTC),
        issue_type=2,
        sub_issue_type=203,
        work_type=29682805,
        ticket_category=4,
        ticket_type=5,
        source=8,
        note_type=3,
        publish=2,
        integration_code="CODE-27",
        zone_url="https://webservices2.autotask.net/ATServicesRest/V1.0/",
    ),
    ticket_id=128926,
    ticket_number="T20240321.0042",
    marker="lm:LMD777:1",
    description="CPU at 99 %\nHost: srv02",
    note_title="CPU busy — acknowledged",
    note_text="Alert acknowledged.\nBy: jane",
)

#: Every documented token and what it renders for TOKEN_CONTEXT.
EXPECTED_TOKENS = {
    "ALERTID": "LMD777",
    "ALERTSTATUS": "acknowledged",
    "ALERTTYPE": "dataSourceAlert",
    "ALERTSOURCE": "generic",
    "LEVEL": "critical",
    "TITLE": "CPU busy",
    "MESSAGE": "CPU at 99 %",
    "HOST": "srv02",
    "TENANT": "fabrikam",
    "DATASOURCE": "CPU",
    "INSTANCE": "cpu1",
    "DATAPOINT": "CPUBusyPercent",
    "VALUE": "99",
    "THRESHOLD": "> 90",
    "START": "2024-03-21T09:30:00+00:00",
    "OCCURRED": "2024-03-21T10:00:00+00:00",
    "NOTE": "on it",
    "ADMIN": "jane",
    "DESCRIPTION": "CPU at 99 %\nHost: srv02",
    "EXTERNALTICKETID": "128926",
    "TICKETNUMBER": "T20240321.0042",
    "MARKER": "lm:LMD777:1",
    "NOTETITLE": "CPU busy — acknowledged",
    "NOTETEXT": "Alert acknowledged.\nBy: jane",
    "ACCOUNTID": "29683414",
    "COMPANYID": "29683414",
    "PRIORITY": "4",
    "STATUS": "13",
    "QUEUEID": "29682833",
    "DUEDATE": "2024-03-22T11:30:00Z",
    "ISSUETYPE": "2",
    "SUBISSUETYPE": "203",
    "WORKTYPE": "29682805",
    "TICKETCATEGORY": "4",
    "TICKETTYPE": "5",
    "SOURCE": "8",
    "NOTETYPE": "3",
    "PUBLISH": "2",
    "INTEGRATIONCODE": "CODE-27",
    "ZONEURL": "https://webservices2.autotask.net/ATServicesRest/V1.0/",
}


def test_every_documented_token_has_a_test() -> None:
    assert [spec.name for spec in TOKENS] == list(EXPECTED_TOKENS)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("spec", TOKENS, ids=[spec.name for spec in TOKENS])
def test_token_renders_its_value(spec: TokenSpec, fmt: Format) -> None:
    expected = EXPECTED_TOKENS[spec.name]
    if fmt == "json":
        lower = spec.name.lower()
        source = f'{{"v": "##{spec.name}##", "w": "##{lower}##", "j": "{{{{ {spec.variable} }}}}"}}'
        data = json.loads(render(source, "json", TOKEN_CONTEXT))
        assert data == {"v": expected, "w": expected, "j": expected}
    else:
        source = f"<r><v>##{spec.name}##</v><j>{{{{ {spec.variable} }}}}</j></r>"
        root = etree.fromstring(render(source, "xml", TOKEN_CONTEXT).encode())
        assert [root.findtext("v"), root.findtext("j")] == [expected, expected]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("##autotask.accountid##", "29683999"),
        ("##alert.type##", "dataSourceAlert"),
        ("##no.such.property##", ""),
        ("##AUTOTASK.ACCOUNTID##", ""),
        ('{{ properties["autotask.accountid"] }}', "29683999"),
        ('{{ alert.properties["instance"] }}', "cpu1"),
        ("{{ tokens.TITLE }}", "CPU busy"),
    ],
    ids=[
        "property by name",
        "dotted property",
        "missing property renders empty",
        "property names are exact",
        "properties variable",
        "alert.properties",
        "tokens variable",
    ],
)
def test_alert_properties_by_name(source: str, expected: str) -> None:
    assert render(f'"{source}"', "json", TOKEN_CONTEXT) == f'"{expected}"'


def test_numbers_render_bare_in_json_and_unset_values_render_empty() -> None:
    source = '{"p": ##PRIORITY##, "id": ##EXTERNALTICKETID##, "t": {{ true }}, "q": "##QUEUEID##"}'
    assert json.loads(render(source, "json", TOKEN_CONTEXT)) == {
        "p": 4,
        "id": 128926,
        "t": True,
        "q": "29682833",
    }
    before_creation = replace(TOKEN_CONTEXT, ticket_id=None, mapped=MappedValues())
    assert render('"##EXTERNALTICKETID##|##QUEUEID##|##DUEDATE##"', "json", before_creation) == (
        '"||"'
    )
    assert render("{{ ticket.id is none }}", "json", before_creation) == "true"


def test_tojson_writes_a_json_value_and_is_text_in_xml() -> None:
    assert json.loads(render('{"p": {{ alert.properties|tojson }}}', "json", TOKEN_CONTEXT)) == {
        "p": dict(TOKEN_ALERT.properties)
    }
    xml = render('<p>{{ {"a": "<b>"}|tojson }}</p>', "xml", TOKEN_CONTEXT)
    assert etree.fromstring(xml.encode()).text == '{"a": "<b>"}'


def test_tokens_are_only_rewritten_in_template_text() -> None:
    assert render('"{{ "##TITLE##" }}"', "json", TOKEN_CONTEXT) == '"##TITLE##"'
    assert render('"{# ##TITLE## #}x"', "json", TOKEN_CONTEXT) == '"x"'


def test_an_unknown_token_is_refused_with_its_line() -> None:
    with pytest.raises(TemplateRejected, match=r"line 2: unknown token ##ALERTDETAILURL##") as e:
        validate_template('{\n"a": "##ALERTDETAILURL##"}', "json", NO_LIMITS)
    assert e.value.line == 2


def test_context_built_from_draft_step_and_ticket() -> None:
    event = alert(status=AlertStatus.ESCALATED, properties={}, started_at=None)
    built = context_for(event).variables()
    assert built["autotask"] == {
        "company_id": CONTOSO,
        "account_id": CONTOSO,
        "priority": 1,  # error → High
        "status": 11,  # escalated → Escalate
        "queue_id": 29682833,
        "due_date": "2024-03-22T09:30:00Z",
        "issue_type": 2,
        "sub_issue_type": 201,
        "work_type": 29682801,
        "ticket_category": 4,
        "ticket_type": 5,
        "source": 8,
        "note_type": 1,
        "publish": 1,
        "integration_code": "TRACKING-ID",
        "zone_url": "",
    }
    assert built["ticket"] == {
        "id": 4242,
        "number": "T20240321.0001",
        "marker": MARKER,
        "description": "/var is at 97 %\nHost: srv01\nMonitor: disk\nSeverity: error\n"
        "Started: 2024-03-21T09:30:00+00:00\nSource: generic",
    }
    tokens = built["tokens"]
    assert isinstance(tokens, dict)
    assert tokens["ALERTTYPE"] == "generic"  # no alert.type property: the source
    assert tokens["START"] == ""
    assert tokens["INSTANCE"] == ""


def test_context_without_draft_takes_the_status_from_the_settings() -> None:
    event = alert(status=AlertStatus.ACKNOWLEDGED)
    built = RenderContext.build(event, settings=SETTINGS).variables()
    assert built["autotask"]["status"] == 8  # type: ignore[index]
    assert built["ticket"]["description"].startswith("/var is at 97 %")  # type: ignore[index]
    complete = Step(StepKind.COMPLETE, status=5, text="Alert cleared.")
    built = RenderContext.build(event, settings=SETTINGS, step=complete).variables()
    assert built["autotask"]["status"] == 5  # type: ignore[index]
    assert built["note"] == {"title": "", "text": "Alert cleared."}


def test_readme_documents_every_token() -> None:
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `##([A-Z]+)##` \| `([a-z_.]+)` \|", readme, re.MULTILINE))
    assert documented == {(spec.name, spec.variable) for spec in TOKENS}


# -- hostile alert text ------------------------------------------------------------------------

C0 = "".join(chr(code) for code in range(32))

HOSTILE = [
    ("double quotes", 'He said "stop"'),
    ("backslashes", "C:\\temp\\new\\x41 \\u0000"),
    ("markup", "<script>alert(1)</script> a < b > c"),
    ("ampersands", "R&D &amp; &#x26; &unknown;"),
    ("cdata end", "]]> and <![CDATA[ x ]]>"),
    ("nul", "before\x00after"),
    ("every C0 control character", f"controls:{C0}:end"),
    ("emoji", "🔥 disk 💾 full 👩‍💻"),
    ("10,000-character message", "x" * 9_990 + " the end"),
    ("jinja expression", "{{7*7}} {{ 7*'7' }}"),
    ("runaway jinja loop", "{% for x in range(10**9) %}{{ x }}{% endfor %}"),
    ("token inside a message", "ticket ##EXTERNALTICKETID## / ##TITLE## / ##autotask.accountid##"),
    ("jinja variable inside a value", "{{ alert.title }} {{ ticket.id }}"),
    ("lone surrogate", "half \ud83d a pair"),
    ("everything at once", HOSTILE_TEXT),
]

DEFAULTS: list[tuple[str, Format, dict[str, int]]] = [
    ("rest/active.json", "json", dict(TICKET_LIMITS)),
    ("rest/note.json", "json", dict(NOTE_LIMITS)),
    ("rest/status.json", "json", dict(TICKET_LIMITS)),
    ("rest/complete.json", "json", dict(TICKET_LIMITS)),
    ("soap/create.xml", "xml", dict(TICKET_LIMITS)),
    ("soap/update.xml", "xml", dict(TICKET_LIMITS)),
    ("soap/complete.xml", "xml", dict(TICKET_LIMITS)),
    ("soap/note.xml", "xml", dict(NOTE_LIMITS)),
]

#: The Swagger body model and the Autotask field each REST default fills from the alert text.
REST_MODELS = {
    "rest/active.json": "#/definitions/TicketModel",
    "rest/note.json": "#/definitions/TicketNoteModel",
    "rest/status.json": "#/definitions/TicketModel",
    "rest/complete.json": "#/definitions/TicketModel",
}


def carried(text: str, fmt: Format) -> str:
    """What a payload can carry of `text`: lone surrogates become U+FFFD; XML drops controls."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    if fmt == "xml":
        text = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "", text)
    return text


def hostile_event(text: str) -> IncomingAlert:
    return alert(
        status=AlertStatus.ACKNOWLEDGED, title=text, message=text, note=text, actor=text, host=text
    )


def expected_fields(name: str, event: IncomingAlert, fmt: Format) -> dict[str, str]:
    """The text fields a default template fills, as they must arrive (escaped, then cut)."""
    ctx = context_for(event)
    if "note" in name:
        return {
            "title": truncate(carried(ctx.note_title, fmt), NOTE_LIMITS["title"]),
            "description": truncate(carried(ctx.note_text, fmt), NOTE_LIMITS["description"]),
        }
    if "complete" in name:
        return {"resolution": truncate(carried(ctx.note_text, fmt), TICKET_LIMITS["resolution"])}
    if "status" in name or "update" in name:
        return {}
    return {
        "title": truncate(carried(event.title, fmt), TICKET_LIMITS["title"]),
        "description": truncate(carried(ctx.description, fmt), TICKET_LIMITS["description"]),
    }


@pytest.mark.parametrize(("name", "fmt", "limits"), DEFAULTS, ids=[row[0] for row in DEFAULTS])
@pytest.mark.parametrize("text", [row[1] for row in HOSTILE], ids=[row[0] for row in HOSTILE])
def test_hostile_alert_text_arrives_literally_in_a_valid_payload(
    name: str, fmt: Format, limits: dict[str, int], text: str
) -> None:
    event = hostile_event(text)
    payload = compile_template(template(name), fmt).render_payload(context_for(event), limits)
    expected = expected_fields(name, event, fmt)
    if fmt == "json":
        body = json.loads(payload)
        assert {key: body[key] for key in expected} == expected
        assert_conforms(canonical_names(body, {"$ref": REST_MODELS[name]}), REST_MODELS[name], name)
    else:
        fields = xml_children(payload)
        assert {key: fields[key.capitalize()] for key in expected} == expected
        content = soap_body_content(payload)
        assert atws_schema().validate(content), atws_schema().error_log
    for field_name, value in expected.items():
        assert len(value) <= limits[field_name]
        if len(carried(text, fmt)) > limits[field_name]:
            assert value.endswith("… [truncated]")


@pytest.mark.parametrize(("name", "fmt", "limits"), DEFAULTS, ids=[row[0] for row in DEFAULTS])
def test_default_templates_pass_the_save_time_check(
    name: str, fmt: Format, limits: dict[str, int]
) -> None:
    validate_template(template(name), fmt, limits)


@pytest.mark.parametrize("name", ["rest/active.json", "soap/create.xml"], ids=["rest", "soap"])
def test_unset_optional_values_are_left_out(name: str) -> None:
    bare = IntegrationSettings(default_company_id=CONTOSO)
    ctx = context_for(alert(), settings=bare, ticket_id=None)
    fmt: Format = "json" if name.endswith(".json") else "xml"
    payload = compile_template(template(name), fmt).render_payload(ctx, TICKET_LIMITS)
    if fmt == "json":
        sent = set(json.loads(payload))
        assert sent == {
            "companyID",
            "title",
            "description",
            "status",
            "priority",
            "dueDateTime",
            "externalID",
        }
    else:
        sent = set(xml_children(payload))
        assert sent == {
            "id",
            "AccountID",
            "Title",
            "Description",
            "Status",
            "Priority",
            "DueDateTime",
            "ExternalID",
        }


def test_soap_fields_follow_the_wsdl_order() -> None:
    for name in ("soap/create.xml", "soap/update.xml", "soap/note.xml"):
        content = soap_body_content(compile_template(template(name), "xml").render(SAMPLE_CONTEXT))
        assert atws_schema().validate(content), (name, atws_schema().error_log)


def test_rest_templates_conform_for_every_validation_sample() -> None:
    for name, ref in REST_MODELS.items():
        compiled = compile_template(template(name), "json")
        for sample, make in VALIDATION_SAMPLES:
            body = json.loads(compiled.render_payload(make(), TICKET_LIMITS))
            assert_conforms(canonical_names(body, {"$ref": ref}), ref, f"{name} ({sample})")


# -- the defaults against the sandbox -----------------------------------------------------------


def test_rest_defaults_create_a_ticket_and_note_in_the_sandbox(
    rest: RestClient, sandbox: Sandbox
) -> None:
    event = hostile_event(HOSTILE_TEXT)
    create = compile_template(template("rest/active.json"), "json").render_payload(
        context_for(event, ticket_id=None), TICKET_LIMITS
    )
    response = rest.post("Tickets", data=create.encode("utf-8"))
    assert response.status_code == 200, response.text
    ticket_id = extract_ticket_id(response.content, "json")
    stored = sandbox.state.get("Tickets", ticket_id)
    assert stored is not None
    assert stored["title"] == carried(HOSTILE_TEXT, "json")
    assert stored["externalID"] == MARKER
    assert stored["billingCodeID"] == SETTINGS.work_type  # the work type

    ctx = context_for(event, ticket_id=ticket_id)
    note = compile_template(template("rest/note.json"), "json").render_payload(ctx, NOTE_LIMITS)
    response = rest.post(f"Tickets/{ticket_id}/Notes", data=note.encode("utf-8"))
    assert response.status_code == 200, response.text
    assert extract_ticket_id(response.content, "json") > 0

    status = compile_template(template("rest/status.json"), "json").render_payload(ctx, NO_LIMITS)
    response = rest.patch("Tickets", data=status.encode("utf-8"))
    assert response.status_code == 200, response.text
    assert sandbox.state.get("Tickets", ticket_id)["status"] == 8  # type: ignore[index]


def test_soap_defaults_create_update_and_note_in_the_sandbox(
    sandbox_server: SandboxServer, api_user: ApiUser, sandbox: Sandbox
) -> None:
    soap = SoapClient(sandbox_server, api_user)
    event = hostile_event(HOSTILE_TEXT)
    code = api_user.integration_code
    create = compile_template(template("soap/create.xml"), "xml").render_payload(
        context_for(event, ticket_id=None, integration_code=code), TICKET_LIMITS
    )
    reply = soap.post(create.encode("utf-8"), action="create")
    assert reply.return_code == 1, reply.errors
    ticket_id = extract_ticket_id(reply.text, "xml")
    stored = sandbox.state.get("Tickets", ticket_id)
    assert stored is not None and stored["title"] == carried(HOSTILE_TEXT, "xml")
    assert stored["billingCodeID"] == SETTINGS.work_type  # AllocationCodeID: the work type

    ctx = context_for(event, ticket_id=ticket_id, integration_code=code)
    # (The updates go through the SOAP target, which merges them onto the ticket it reads:
    # tests/adapters/targets/autotask/soap.)
    note = compile_template(template("soap/note.xml"), "xml").render_payload(ctx, NOTE_LIMITS)
    reply = soap.post(note.encode("utf-8"), action="create")
    assert reply.return_code == 1, reply.errors
    note_id = extract_ticket_id(reply.text, "xml")
    stored_note = sandbox.state.get("TicketNotes", note_id)
    assert stored_note is not None and stored_note["ticketID"] == ticket_id


# -- the sandbox -------------------------------------------------------------------------------

ESCAPES = [
    ("class mro", "{{ ''.__class__.__mro__ }}"),
    ("cycler globals", "{{ cycler.__init__.__globals__ }}"),
    ("attr format", "{{ 'x'|attr('format') }}"),
    ("str.format", "{{ '{0.__class__}'.format(alert) }}"),
    ("self", "{{ self }}"),
    ("self context", "{{ self._TemplateReference__context }}"),
    ("subclasses", "{{ ().__class__.__base__.__subclasses__() }}"),
    ("joiner globals", "{{ joiner.__init__.__globals__.os }}"),
    ("namespace globals", "{{ namespace.__init__.__globals__ }}"),
    ("range globals", "{{ range.__globals__ }}"),
    ("attr dunder", "{{ alert|attr('__class__') }}"),
    ("mutating a dict", "{{ alert.update({'title': 'x'}) }}"),
    ("include", "{% include '/etc/passwd' %}"),
    ("import", "{% import 'x' as y %}"),
    ("extends", "{% extends 'base' %}"),
]


@pytest.mark.parametrize("attempt", [row[1] for row in ESCAPES], ids=[row[0] for row in ESCAPES])
def test_sandbox_escapes_are_refused_at_save_time(attempt: str) -> None:
    source = f'{{\n  "title": "ok",\n  "x": "{attempt}"\n}}'
    with pytest.raises(TemplateRejected, match="not allowed|not available") as e:
        validate_template(source, "json", TICKET_LIMITS)
    assert e.value.line == 3
    assert e.value.status == 400


# -- save-time refusals ------------------------------------------------------------------------

REFUSED = [
    (
        "syntax error",
        "json",
        '{\n  "a": 1,\n  "b": "{{ alert.title | }}"\n}',
        3,
        "expected token 'name'",
    ),
    # Jinja reports where the template ended: the line of its last token.
    ("unclosed block", "json", '{\n{% if true %}\n  "a": 1\n}', 3, "endif"),
    ("unknown filter", "json", '{\n  "a": "{{ alert.title|center(80) }}"\n}', 2, "center"),
    ("missing comma", "json", '{\n  "a": 1\n  "b": 2\n}', 3, "not valid JSON"),
    ("trailing comma", "json", '{\n  "a": 1,\n}', 3, "not valid JSON"),
    ("text token outside quotes", "json", '{\n  "title": ##TITLE##\n}', 2, "not valid JSON"),
    ("duplicate key", "json", '{"a": 1, "A": 2, "a": 3}', None, "appears twice"),
    ("not a number", "json", '{"a": {{ (1e308 * 10)|tojson }}}', 1, "ValueError"),
    (
        "unset optional value outside a guard",
        "json",
        '{\n  "companyID": ##ACCOUNTID##,\n  "queueID": ##QUEUEID##\n}',
        4,
        "optional values unset",
    ),
    ("xml tag mismatch", "xml", "<a>\n  <b>##TITLE##</c>\n</a>", 2, "not valid XML"),
    ("xml cdata", "xml", "<a>\n<![CDATA[##TITLE##]]></a>", 2, "CDATA"),
    ("xml value as element name", "xml", "<a><{{ alert.host }}/></a>", 1, "not valid XML"),
    ("xml value in a comment", "xml", "<a><!-- ##MESSAGE## --></a>", 1, "not valid XML"),
    (
        "xml doctype",
        "xml",
        '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<a>&x;</a>',
        None,
        "DOCTYPE",
    ),
    (
        "xml latin-1 declaration",
        "xml",
        '<?xml version="1.0" encoding="iso-8859-1"?><a/>',
        None,
        "utf-8",
    ),
]


@pytest.mark.parametrize(
    ("fmt", "source", "line", "reason"),
    [row[1:] for row in REFUSED],
    ids=[row[0] for row in REFUSED],
)
def test_invalid_templates_are_refused_with_reason_and_line(
    fmt: Format, source: str, line: int | None, reason: str
) -> None:
    with pytest.raises(TemplateRejected, match=reason) as e:
        validate_template(source, fmt, TICKET_LIMITS)
    assert e.value.line == line, str(e.value)
    if line is not None:
        assert str(e.value).startswith(f"line {line}: ")
        assert e.value.details is not None and e.value.details["line"] == line
    assert isinstance(e.value, ConnectorError) and e.value.status == 400


def test_an_oversized_template_is_refused() -> None:
    with pytest.raises(TemplateRejected, match="characters"):
        compile_template('"' + "x" * 70_000 + '"', "json")


def test_a_rendered_doctype_never_reads_the_file() -> None:
    source = '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    with pytest.raises(RenderError, match="DOCTYPE") as e:
        compile_template(source, "xml").render_payload(SAMPLE_CONTEXT, NO_LIMITS)
    assert "root:" not in str(e.value)


# -- render limits -----------------------------------------------------------------------------

RUNAWAY = [
    (
        "nested loops",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "loops ran more than",
    ),
    (
        "output bomb",
        "{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        "payload is larger than",
    ),
    ("huge range", "{% for a in range(10**9) %}{% endfor %}", "MAX_RANGE"),
    ("string repetition", "{{ 'x' * 10**9 }}", "larger than"),
    (
        "doubling a string",
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "larger than",
    ),
    (
        "doubling a list",
        "{% set ns = namespace(a=[0]) %}"
        "{% for i in range(64) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}",
        "larger than",
    ),
    ("huge integer", "{{ 10 ** 100000 }}", "integer wider"),
    ("list repetition", "{{ [0] * 10 ** 9 }}", "repeating a list"),
    ("padding method", "{{ 'x'.ljust(10 ** 9) }}", "not allowed"),
    ("padding format", "{{ '{:>999999999}'.format(1) }}", "not allowed"),
    ("percent format", "{{ '%999999999s' % 1 }}", "not available"),
    ("replace bomb", "{{ ('x' * 100000)|replace('', 'y' * 1000) }}", "larger than"),
    ("join bomb", "{{ range(100000)|join('y' * 1000) }}", "larger than"),
    ("sum of lists", "{{ [[1], [2]]|sum(start=[]) }}", "numbers only"),
    ("infinite recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
]


@pytest.mark.parametrize(
    ("source", "reason"), [row[1:] for row in RUNAWAY], ids=[row[0] for row in RUNAWAY]
)
def test_runaway_templates_stop_within_two_seconds(source: str, reason: str) -> None:
    # CPU time of this thread: what the limit counts, and what a loaded machine does not inflate.
    started = time.thread_time()
    with pytest.raises(RenderError, match=reason) as e:
        compile_template(source, "json").render(SAMPLE_CONTEXT)
    assert time.thread_time() - started < 2.0
    assert e.value.line == 1


def test_the_time_limit_stops_exponential_work() -> None:
    source = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    )
    compiled = compile_template(source, "json", RenderLimits(max_seconds=0.2))
    started = time.thread_time()
    with pytest.raises(RenderError, match="longer than 0.2 s"):
        compiled.render(SAMPLE_CONTEXT)
    assert time.thread_time() - started < 1.0


def test_a_runaway_template_is_refused_at_save_time() -> None:
    source = (
        '{"a": "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"}'
    )
    started = time.thread_time()
    with pytest.raises(TemplateRejected, match="render limit"):
        validate_template(source, "json", NO_LIMITS)
    assert time.thread_time() - started < 2.0


def test_ordinary_template_code_still_works() -> None:
    source = (
        '{"props": "{% for key, value in alert.properties|dictsort %}{{ key }}={{ value }}'
        '{{ ";" if not loop.last }}{% endfor %}", '
        '"upper": "{{ alert.host.upper() }}", "joined": "{{ ["a", "b"]|join("+") }}", '
        '"n": {{ [1, 2, 3]|sum }}, "cut": "{{ alert.title|truncate(9, true, "") }}", '
        '"repl": "{{ alert.host|replace("srv", "host-") }}"}'
    )
    assert json.loads(render(source, "json", TOKEN_CONTEXT)) == {
        "props": "alert.type=dataSourceAlert;autotask.accountid=29683999;datapoint=CPUBusyPercent;"
        "instance=cpu1;threshold=> 90;value=99",
        "upper": "SRV02",
        "joined": "a+b",
        "n": 6,
        "cut": "CPU busy",
        "repl": "host-02",
    }


# -- escaping and limits -----------------------------------------------------------------------

ALL_BMP = "".join(chr(code) for code in range(0x0, 0x3000)) + "\ue000\ufffd\ufffe\uffff😀"


def test_escape_json_round_trips_every_character() -> None:
    assert json.loads(f'"{escape_json(ALL_BMP)}"') == ALL_BMP
    lone = "a\ud800b"
    assert json.loads(f'"{escape_json(lone)}"') == "a\ufffdb"


def test_escape_xml_round_trips_every_character_xml_can_carry() -> None:
    element = etree.fromstring(f'<a b="{escape_xml(ALL_BMP)}">{escape_xml(ALL_BMP)}</a>'.encode())
    assert element.text == carried(ALL_BMP, "xml")
    assert element.get("b") == carried(ALL_BMP, "xml")


def test_enforce_limits_cuts_json_fields_case_insensitively_at_any_depth() -> None:
    payload = json.dumps(
        {"Title": "t" * 300, "description": "short", "item": {"TITLE": "u" * 256}, "n": 5}
    )
    body = json.loads(enforce_limits(payload, "json", TICKET_LIMITS))
    assert len(body["Title"]) == 255 and body["Title"].endswith(" … [truncated]")
    assert body["Title"].startswith("t" * 240)
    assert len(body["item"]["TITLE"]) == 255
    assert body["description"] == "short" and body["n"] == 5


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        ("a" * 255, 255, "a" * 255),  # fits exactly: untouched
        ("🔥" * 127 + "a", 255, "🔥" * 127 + "a"),  # 255 UTF-16 units, 128 code points
        ("🔥" * 128, 255, "🔥" * 120 + " … [truncated]"),  # 256 units: cut, pair kept whole
        ("a" * 200 + "🔥" * 50, 255, "a" * 200 + "🔥" * 20 + " … [truncated]"),
        ("é" * 300, 255, "é" * 241 + " … [truncated]"),  # BMP: one unit each
    ],
    ids=["fits", "emoji fit in units", "emoji over by one unit", "mixed", "accents"],
)
def test_truncate_counts_utf16_units_as_autotask_does(text: str, limit: int, kept: str) -> None:
    # Autotask (.NET, SQL Server) measures strings in UTF-16 code units (autotask-api.md §14).
    cut = truncate(text, limit)
    assert cut == kept
    assert utf16_units(cut) <= limit
    assert cut.encode("utf-16-le").decode("utf-16-le") == cut  # no lone surrogate


def test_enforce_limits_cuts_a_title_with_emoji_to_255_utf16_units() -> None:
    title = "Disk 🔥 on C:\\ " * 20  # 300 code points, 320 UTF-16 units
    body = json.loads(enforce_limits(json.dumps({"title": title}), "json", TICKET_LIMITS))
    assert utf16_units(body["title"]) <= 255 < utf16_units(title)
    assert body["title"].endswith(" … [truncated]")


def test_enforce_limits_cuts_xml_elements_by_local_name() -> None:
    payload = (
        f'<a xmlns="urn:x"><Title>{"t" * 300}</Title><Description>{"d" * 40000}</Description></a>'
    )
    root = etree.fromstring(enforce_limits(payload, "xml", NOTE_LIMITS).encode())
    title, description = (child.text or "" for child in root)
    assert (len(title), len(description)) == (250, 32000)
    assert title.endswith("… [truncated]") and description.endswith("… [truncated]")


# -- ticket ids --------------------------------------------------------------------------------

CREATE_RESPONSE = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <soap:Body>
    <createResponse xmlns="http://autotask.net/ATWS/v1_6/"><createResult>
      <ReturnCode>1</ReturnCode>
      <EntityResults><Entity xsi:type="Ticket"><id>8440</id><UserDefinedFields/>
        <Title>CPU high</Title></Entity></EntityResults>
      <EntityResultType>ticket</EntityResultType>
      <Errors/>
      <EntityReturnInfoResults><EntityReturnInfo><EntityId>8440</EntityId>
        <DatabaseAction>Created</DatabaseAction>
        <DuplicateStatus><Found>false</Found><Ignored>false</Ignored></DuplicateStatus>
      </EntityReturnInfo></EntityReturnInfoResults>
    </createResult></createResponse>
  </soap:Body>
</soap:Envelope>"""

FAILED_RESPONSE = """<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body><createResponse xmlns="http://autotask.net/ATWS/v1_6/"><createResult>
    <ReturnCode>-1</ReturnCode><EntityResults/><Errors><ATWSError>
    <Message>IntegrationCode is invalid.</Message></ATWSError></Errors>
  </createResult></createResponse></soap:Body></soap:Envelope>"""

EXTRACTED = [
    ("json itemId", '{"itemId": 128926}', "json", None, None, 128926),
    ("json item.id", '{"item": {"id": 77, "title": "x"}}', "json", "$.item.id", None, 77),
    ("json id as text", '{"itemId": "42"}', "json", None, None, 42),
    (
        "json filter",
        '{"items": [{"id": 1}, {"id": 9}]}',
        "json",
        "$.items[?(@.id > 1)].id",
        None,
        9,
    ),
    ("soap createResponse", CREATE_RESPONSE, "xml", None, None, 8440),
    (
        "soap EntityReturnInfo",
        CREATE_RESPONSE,
        "xml",
        "//a:EntityReturnInfo/a:EntityId",
        {"a": "http://autotask.net/ATWS/v1_6/"},
        8440,
    ),
    ("xpath string", CREATE_RESPONSE, "xml", "string(//ATWS:EntityId)", None, 8440),
    ("xml bytes", CREATE_RESPONSE.encode(), "xml", None, None, 8440),
]


@pytest.mark.parametrize(
    ("body", "fmt", "path", "namespaces", "expected"),
    [row[1:] for row in EXTRACTED],
    ids=[row[0] for row in EXTRACTED],
)
def test_extract_ticket_id(
    body: str | bytes,
    fmt: Format,
    path: str | None,
    namespaces: dict[str, str] | None,
    expected: int,
) -> None:
    assert extract_ticket_id(body, fmt, path, namespaces) == expected


NO_ID = [
    ("json without itemId", '{"errors": ["Missing required field"]}', "json", "has no ticket id"),
    ("json null id", '{"itemId": null}', "json", "not a positive integer"),
    ("json boolean id", '{"itemId": true}', "json", "not a positive integer"),
    ("json zero id", '{"itemId": 0}', "json", "not a positive integer"),
    ("json text id", '{"itemId": "T2024"}', "json", "not a positive integer"),
    ("not json", "<html>Service Unavailable</html>", "json", "not JSON"),
    ("soap failure", FAILED_RESPONSE, "xml", "has no ticket id"),
    ("not xml", '{"itemId": 1}', "xml", "not valid XML"),
    (
        "xml doctype",
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><id>&x;</id></r>',
        "xml",
        "DOCTYPE",
    ),
]


@pytest.mark.parametrize(
    ("body", "fmt", "reason"), [row[1:] for row in NO_ID], ids=[row[0] for row in NO_ID]
)
def test_a_response_without_an_id_is_an_error_showing_path_and_response(
    body: str, fmt: Format, reason: str
) -> None:
    with pytest.raises(ExtractionError, match=reason) as e:
        extract_ticket_id(body, fmt)
    message = str(e.value)
    assert ("$.itemId" if fmt == "json" else DEFAULT_XML_ID_PATH) in message
    assert body[:100] in message
    assert e.value.retryable is False
    assert e.value.response is not None and e.value.response["body"] == body


def test_the_response_shown_is_cut_to_2000_characters() -> None:
    body = json.dumps({"errors": ["x" * 5000]})
    with pytest.raises(ExtractionError) as e:
        extract_ticket_id(body, "json")
    assert e.value.response is not None and e.value.response["body"] == body[:2000]


@pytest.mark.parametrize(
    ("fmt", "path"),
    [("json", "$..["), ("json", "$.items[?(@.id >"), ("xml", "//ATWS:id["), ("xml", "//x:id")],
    ids=["json unclosed", "json bad filter", "xml unclosed", "xml unknown prefix"],
)
def test_invalid_id_paths_are_refused_at_save_time_and_fail_extraction(
    fmt: Format, path: str
) -> None:
    with pytest.raises(TemplateRejected, match="not valid"):
        validate_id_path(fmt, path)
    body = '{"itemId": 1}' if fmt == "json" else CREATE_RESPONSE
    with pytest.raises(ExtractionError, match=re.escape(path)):
        extract_ticket_id(body, fmt, path)


def test_default_id_paths_are_valid() -> None:
    validate_id_path("json", "$.itemId")
    validate_id_path("xml", DEFAULT_XML_ID_PATH)


def test_extracts_the_id_from_a_live_sandbox_reply(
    sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    response = requests.post(
        f"{sandbox_server.url}ATServices/1.6/atws.asmx",
        data=compile_template(template("soap/create.xml"), "xml")
        .render_payload(
            context_for(alert(), ticket_id=None, integration_code=api_user.integration_code),
            TICKET_LIMITS,
        )
        .encode("utf-8"),
        auth=(api_user.username, api_user.secret),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ATWS}create"'},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    ticket_id = extract_ticket_id(response.content, "xml")
    assert f"<id>{ticket_id}</id>" in response.text


def test_swagger_models_are_the_ones_the_operations_take() -> None:
    post = SWAGGER["paths"]["/V1.0/Tickets"]["post"]["parameters"]
    assert [p["schema"]["$ref"] for p in post if p["in"] == "body"] == [
        REST_MODELS["rest/active.json"]
    ]
    notes = SWAGGER["paths"]["/V1.0/Tickets/{parentId}/Notes"]["post"]["parameters"]
    assert [p["schema"]["$ref"] for p in notes if p["in"] == "body"] == [
        REST_MODELS["rest/note.json"]
    ]

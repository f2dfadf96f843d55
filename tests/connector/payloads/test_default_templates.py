"""The default templates in payload_templates/, held to the real Autotask contracts.

Each REST body to the Swagger model its operation takes, each SOAP envelope's Body to the WSDL's
schema, and both are sent to the sandbox, which creates the ticket the rendered payload describes.
Hostile alert text arrives literally in a valid payload.
"""

from __future__ import annotations

import json

import pytest

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from adapters.targets.autotask.profile import (
    DEFAULT_JSON_ID_PATH,
    DEFAULT_NAMESPACES,
    DEFAULT_XML_ID_PATH,
    NOTE_LIMITS,
    TICKET_LIMITS,
)
from connector.domain import AlertStatus, IncomingAlert
from connector.integrations.settings import IntegrationSettings
from connector.payloads.extraction import extract_ticket_id
from connector.payloads.field_limits import NO_LIMITS
from connector.payloads.formats import Format
from connector.payloads.samples import (
    HOSTILE_TEXT,
    SAMPLE_CONTEXT,
    VALIDATION_SAMPLES,
    validate_template,
)
from connector.payloads.templates import compile_template
from connector.payloads.text import truncate
from tests.adapters.sandbox.test_conformance_rest import (
    SWAGGER,
    assert_conforms,
    canonical_names,
)
from tests.adapters.sandbox.test_soap import SoapClient, atws_schema
from tests.conftest import RestClient
from tests.connector.payloads.support import (
    CONTOSO,
    MARKER,
    SETTINGS,
    alert,
    carried,
    context_for,
    soap_body_content,
    template,
    with_integration_code,
    xml_children,
)

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
    ticket_id = extract_ticket_id(response.content, "json", DEFAULT_JSON_ID_PATH, {})
    stored = sandbox.state.get("Tickets", ticket_id)
    assert stored is not None
    assert stored["title"] == carried(HOSTILE_TEXT, "json")
    assert stored["externalID"] == MARKER
    assert stored["billingCodeID"] == SETTINGS.work_type  # the work type

    ctx = context_for(event, ticket_id=ticket_id)
    note = compile_template(template("rest/note.json"), "json").render_payload(ctx, NOTE_LIMITS)
    response = rest.post(f"Tickets/{ticket_id}/Notes", data=note.encode("utf-8"))
    assert response.status_code == 200, response.text
    assert extract_ticket_id(response.content, "json", DEFAULT_JSON_ID_PATH, {}) > 0

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
        context_for(event, ticket_id=None), TICKET_LIMITS
    )
    assert code not in create  # no template sees it: the SOAP client adds it, as here
    reply = soap.post(with_integration_code(create, code), action="create")
    assert reply.return_code == 1, reply.errors
    ticket_id = extract_ticket_id(reply.text, "xml", DEFAULT_XML_ID_PATH, DEFAULT_NAMESPACES)
    stored = sandbox.state.get("Tickets", ticket_id)
    assert stored is not None and stored["title"] == carried(HOSTILE_TEXT, "xml")
    assert stored["billingCodeID"] == SETTINGS.work_type  # AllocationCodeID: the work type

    ctx = context_for(event, ticket_id=ticket_id)
    # (The updates go through the SOAP target, which merges them onto the ticket it reads:
    # tests/adapters/targets/autotask/soap.)
    note = compile_template(template("soap/note.xml"), "xml").render_payload(ctx, NOTE_LIMITS)
    reply = soap.post(with_integration_code(note, code), action="create")
    assert reply.return_code == 1, reply.errors
    note_id = extract_ticket_id(reply.text, "xml", DEFAULT_XML_ID_PATH, DEFAULT_NAMESPACES)
    stored_note = sandbox.state.get("TicketNotes", note_id)
    assert stored_note is not None and stored_note["ticketID"] == ticket_id


def test_swagger_models_are_the_ones_the_operations_take() -> None:
    post = SWAGGER["paths"]["/V1.0/Tickets"]["post"]["parameters"]
    assert [p["schema"]["$ref"] for p in post if p["in"] == "body"] == [
        REST_MODELS["rest/active.json"]
    ]
    notes = SWAGGER["paths"]["/V1.0/Tickets/{parentId}/Notes"]["post"]["parameters"]
    assert [p["schema"]["$ref"] for p in notes if p["in"] == "body"] == [
        REST_MODELS["rest/note.json"]
    ]

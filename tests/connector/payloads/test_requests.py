"""Delivery requests: generated defaults, save-time checks, URL and header tokens, options."""

from __future__ import annotations

import dataclasses
import json

import pytest

from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE
from connector.domain import AlertStatus, IncomingAlert, RequestAction, Step, StepKind
from connector.errors import TemplateRejected
from connector.payloads.context import RenderContext
from connector.payloads.requests import (
    SLOTS,
    DeliveryOptions,
    RequestSpec,
    generate_requests,
    options_from,
    render_request,
    render_text,
    sample_context,
    validate_request,
)
from connector.payloads.samples import HOSTILE_TEXT, VALIDATION_SAMPLES
from tests.adapters.sandbox.test_conformance_rest import assert_conforms, canonical_names
from tests.adapters.sandbox.test_soap import atws_schema
from tests.connector.payloads.support import SETTINGS, alert, context_for, soap_body_content

A = AlertStatus
R = RequestAction

#: The Swagger body model of each REST request.
REST_MODELS = {
    R.CREATE: "#/definitions/TicketModel",
    R.UPDATE: "#/definitions/TicketModel",
    R.NOTE: "#/definitions/TicketNoteModel",
}

PROFILES = {"rest": REST_PROFILE, "soap": SOAP_PROFILE}

ZONES = {
    "rest": "https://webservices2.autotask.net/ATServicesRest/V1.0/",
    "soap": "https://webservices2.autotask.net/ATServices/1.6/atws.asmx",
}


def spec_for(flavour: str, status: AlertStatus, action: RequestAction) -> RequestSpec:
    (spec,) = [s for s in generate_requests(PROFILES[flavour]) if s.slot == (status, action)]
    return spec


@pytest.mark.parametrize("flavour", ["rest", "soap"])
def test_generate_fills_every_slot_and_every_default_passes_the_save_check(flavour: str) -> None:
    specs = generate_requests(PROFILES[flavour])
    assert [spec.slot for spec in specs] == list(SLOTS)
    for spec in specs:
        validate_request(spec, PROFILES[flavour])
    assert {spec.format for spec in specs} == {"json" if flavour == "rest" else "xml"}


EXPECTED_REST = [
    (A.ACTIVE, R.CREATE, "POST", "Tickets"),
    (A.ACTIVE, R.UPDATE, "PATCH", "Tickets"),
    (A.ACTIVE, R.NOTE, "POST", "Tickets/4242/Notes"),
    (A.ACKNOWLEDGED, R.UPDATE, "PATCH", "Tickets"),
    (A.ACKNOWLEDGED, R.NOTE, "POST", "Tickets/4242/Notes"),
    (A.ESCALATED, R.UPDATE, "PATCH", "Tickets"),
    (A.ESCALATED, R.NOTE, "POST", "Tickets/4242/Notes"),
    (A.CLEARED, R.UPDATE, "PATCH", "Tickets"),
    (A.CLEARED, R.NOTE, "POST", "Tickets/4242/Notes"),
]


@pytest.mark.parametrize(
    ("status", "action", "method", "path"),
    EXPECTED_REST,
    ids=[f"{s.value} {a.value}" for s, a, _, _ in EXPECTED_REST],
)
@pytest.mark.parametrize("text", ["plain", HOSTILE_TEXT], ids=["plain", "hostile"])
def test_every_generated_rest_request_conforms_to_the_swagger_models(
    status: AlertStatus, action: RequestAction, method: str, path: str, text: str
) -> None:
    event = alert(status=status, title=text, message=text, note=text, actor=text)
    context = dataclasses.replace(
        update_context(event) if action is R.UPDATE else context_for(event),
        mapped=dataclasses.replace(context_for(event).mapped, zone_url=ZONES["rest"]),
    )
    request = render_request(spec_for("rest", status, action), context, PROFILES["rest"])
    assert (request.method, request.url) == (method, ZONES["rest"] + path)
    body = json.loads(request.body)
    model = REST_MODELS[action]
    assert_conforms(canonical_names(body, {"$ref": model}), model, f"{status} {action}")
    if action is R.UPDATE:
        assert body["id"] == 4242
        assert body["status"] == {A.ACTIVE: 1, A.ACKNOWLEDGED: 8, A.ESCALATED: 11}.get(status, 5)
        assert ("resolution" in body) is (status is A.CLEARED)
        assert "priority" not in body


def update_context(event: IncomingAlert, step: Step | None = None) -> RenderContext:
    """The context of an update the way the worker renders one: the step says what changes."""
    status = SETTINGS.status_map[event.status]
    step = step or Step(StepKind.SET_STATUS, status=status)
    base = context_for(event)
    return dataclasses.replace(
        base,
        mapped=dataclasses.replace(
            base.mapped,
            status=step.status if step.status is not None else base.mapped.status,
            priority=step.priority if step.priority is not None else base.mapped.priority,
        ),
        change_status=step.status,
        change_priority=step.priority,
    )


@pytest.mark.parametrize("status", [A.ACTIVE, A.ACKNOWLEDGED, A.ESCALATED], ids=str)
def test_a_priority_change_updates_only_the_priority(status: AlertStatus) -> None:
    """A severity change sends the new priority and leaves the status an engineer set alone."""
    event = alert(status=status)
    context = update_context(event, Step(StepKind.SET_PRIORITY, priority=3))
    rest = json.loads(
        render_request(spec_for("rest", status, R.UPDATE), context, PROFILES["rest"]).body
    )
    assert rest == {"id": 4242, "priority": 3}
    model = REST_MODELS[R.UPDATE]
    assert_conforms(canonical_names(rest, {"$ref": model}), model, "priority")
    soap = soap_body_content(
        render_request(spec_for("soap", status, R.UPDATE), context, PROFILES["soap"]).body
    )
    assert atws_schema().validate(soap), atws_schema().error_log
    fields = {child.tag.split("}")[1]: child.text for child in soap.iter() if child.text}
    assert fields.get("Priority") == "3"
    assert "Status" not in fields


@pytest.mark.parametrize("slot", SLOTS, ids=[f"{s.value} {a.value}" for s, a in SLOTS])
@pytest.mark.parametrize("text", ["plain", HOSTILE_TEXT], ids=["plain", "hostile"])
def test_every_generated_soap_envelope_validates_against_the_wsdl(
    slot: tuple[AlertStatus, RequestAction], text: str
) -> None:
    status, action = slot
    event = alert(status=status, title=text, message=text, note=text, actor=text)
    context = update_context(event) if action is R.UPDATE else context_for(event)
    context = dataclasses.replace(
        context, mapped=dataclasses.replace(context.mapped, zone_url=ZONES["soap"])
    )
    request = render_request(spec_for("soap", status, action), context, PROFILES["soap"])
    assert (request.method, request.url) == ("POST", ZONES["soap"])
    content = soap_body_content(request.body)
    assert atws_schema().validate(content), atws_schema().error_log


def test_url_tokens_are_percent_encoded_except_the_zone() -> None:
    event = alert(host="srv 01/../admin?x=1#", properties={"site": "a&b"})
    context = dataclasses.replace(
        context_for(event),
        mapped=dataclasses.replace(context_for(event).mapped, zone_url=ZONES["rest"]),
    )
    url = render_text(
        "##ZONEURL##Things/##HOST##?site=##site##&t=##EXTERNALTICKETID##", context, url=True
    )
    assert url == ZONES["rest"] + "Things/srv%2001%2F..%2Fadmin%3Fx%3D1%23?site=a%26b&t=4242"


def test_header_values_lose_control_characters() -> None:
    context = context_for(alert(host="srv\r\nX-Injected: 1"))
    assert render_text("host ##HOST##", context, url=False) == "host srvX-Injected: 1"


REFUSED = [
    ("jinja in the url", {"url": "{{ alert.host }}"}, "not Jinja"),
    ("unknown token in the url", {"url": "##ZONEURL##Tickets/##TICKETIDD##"}, "##TICKETIDD##"),
    ("relative url", {"url": "Tickets"}, r"absolute http\(s\) URL"),
    ("another scheme", {"url": "file:///etc/passwd"}, r"absolute http\(s\) URL"),
    ("GET", {"method": "GET"}, "method must be one of POST, PUT, PATCH"),
    ("credential header", {"headers": {"Secret": "x"}}, "set by the connector"),
    ("authorization header", {"headers": {"authorization": "Basic x"}}, "set by the connector"),
    ("bad header name", {"headers": {"X Bad": "x"}}, "not a valid header name"),
    ("header with a newline", {"headers": {"X-A": "a\r\nB: c"}}, "control character"),
    ("invalid json", {"body": '{"title": ##TITLE##}'}, "not valid JSON"),
    ("sandbox escape", {"body": "{{ ''.__class__.__mro__ }}"}, "unsafe|not allowed|access"),
    ("cycler globals", {"body": '{"a": "{{ cycler.__init__.__globals__ }}"}'}, "unsafe|access"),
    ("bad id path", {"id_path": "$[?(@.a ==]"}, "id path"),
    ("xml body for rest", {"format": "yaml"}, "format must be one of json, xml"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "reason"), [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED]
)
def test_a_request_that_cannot_work_is_refused_at_save_time(
    changes: dict[str, object], reason: str
) -> None:
    spec = dataclasses.replace(spec_for("rest", A.ACTIVE, R.CREATE), **changes)  # type: ignore[arg-type]
    with pytest.raises(TemplateRejected, match=reason) as refused:
        validate_request(spec, PROFILES["rest"])
    assert str(refused.value).startswith("active create request: ")
    assert refused.value.details is not None
    assert (refused.value.details["status"], refused.value.details["action"]) == (
        "active",
        "create",
    )


def test_a_bad_template_is_refused_with_its_line() -> None:
    spec = dataclasses.replace(
        spec_for("rest", A.ACKNOWLEDGED, R.NOTE), body='{\n  "description": "##NOTETEXT##",\n  x\n}'
    )
    with pytest.raises(TemplateRejected) as refused:
        validate_request(spec, PROFILES["rest"])
    assert refused.value.line == 3
    assert "line 3" in str(refused.value)
    assert refused.value.details is not None
    assert refused.value.details["line_text"] == "  x"


def test_soap_requests_must_be_posted_xml() -> None:
    spec = dataclasses.replace(spec_for("soap", A.ACKNOWLEDGED, R.UPDATE), method="PATCH")
    with pytest.raises(TemplateRejected, match="SOAP requests are POSTed XML envelopes"):
        validate_request(spec, PROFILES["soap"])


def test_create_belongs_to_the_active_status_only() -> None:
    spec = dataclasses.replace(spec_for("rest", A.ACTIVE, R.CREATE), status=A.CLEARED)
    with pytest.raises(TemplateRejected, match="create is for the active status only"):
        validate_request(spec, PROFILES["rest"])


def test_options_fill_missing_slots_with_defaults_and_can_share_actives_requests() -> None:
    edited = dataclasses.replace(spec_for("rest", A.CLEARED, R.NOTE), headers={"X-Edited": "1"})
    options = options_from([edited], REST_PROFILE)
    assert options.request_for(A.CLEARED, R.NOTE) == edited
    assert options.request_for(A.ESCALATED, R.NOTE) == spec_for("rest", A.ESCALATED, R.NOTE)
    shared = DeliveryOptions(options.requests, REST_PROFILE, same_for_every_status=True)
    for status in AlertStatus:
        assert shared.request_for(status, R.NOTE) == spec_for("rest", A.ACTIVE, R.NOTE)
        assert shared.request_for(status, R.CREATE) == spec_for("rest", A.ACTIVE, R.CREATE)


def test_the_default_id_paths() -> None:
    assert spec_for("rest", A.ACTIVE, R.CREATE).id_path == "$.itemId"
    assert (
        spec_for("soap", A.ACTIVE, R.CREATE).id_path == "//ATWS:EntityResults/ATWS:Entity/ATWS:id"
    )
    assert spec_for("rest", A.CLEARED, R.NOTE).to_json()["id_path"] == ""


@pytest.mark.parametrize("flavour", ["rest", "soap"])
def test_the_sample_context_renders_every_request(flavour: str) -> None:
    context: RenderContext = sample_context(PROFILES[flavour])
    for spec in generate_requests(PROFILES[flavour]):
        request = render_request(spec, context, PROFILES[flavour])
        assert request.url.startswith(ZONES[flavour])
    assert len(VALIDATION_SAMPLES) == 3

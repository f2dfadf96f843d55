"""The delivery-request editor: each status's requests listed, edited, previewed and regenerated.

Saving goes through the same function as the JSON API's PUT (connector.integrations.store
.save_requests), so a request is refused for the same reasons, with the template's line; the
preview is the API's (connector.pipeline.preview) rendering the unsaved form, secrets redacted;
"Generate delivery options" shows how each customized request would change and asks first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from connector.domain import AlertStatus, RequestAction
from connector.errors import ConflictError, ConnectorError, InvalidInput, TemplateRejected
from connector.integrations.editing import find_integration, load_input
from connector.integrations.settings import load_settings
from connector.integrations.store import (
    RequestSchema,
    customized_slots,
    load_options,
    regenerate_requests,
    save_requests,
    spec_from_json,
)
from connector.payloads.formats import FORMATS
from connector.payloads.requests import METHODS, SLOTS, RequestSpec
from connector.payloads.templates import source_line
from connector.payloads.tokens import TOKENS
from connector.pipeline.preview import PreviewQuery, preview
from connector.web.admin import bp
from connector.web.hooks import services
from connector.web.params import MAX_ID


@dataclass(frozen=True)
class RequestRow:
    """One request as the list shows it."""

    status: AlertStatus
    action: RequestAction
    method: str
    url: str
    delivered: bool
    customized: bool
    #: Another status's request is sent instead ("same request for every status").
    served_by_active: bool


@dataclass(frozen=True)
class RequestForm:
    """The edit form's values: a stored request's, or what the admin sent."""

    method: str
    url: str
    headers: str
    body: str
    format: str
    id_path: str
    deliver: bool
    alert_id: str = ""

    @classmethod
    def of(cls, spec: RequestSpec, deliver: bool) -> RequestForm:
        """The form showing a stored request."""
        headers = "\n".join(f"{name}: {value}" for name, value in spec.headers.items())
        return cls(spec.method, spec.url, headers, spec.body, spec.format, spec.id_path, deliver)

    @classmethod
    def sent(cls) -> RequestForm:
        """The form as the browser sent it (a textarea's line ends are CRLF: made LF again)."""
        form = request.form
        return cls(
            method=form.get("method", ""),
            url=form.get("url", "").strip(),
            headers=form.get("headers", "").replace("\r\n", "\n"),
            body=form.get("body", "").replace("\r\n", "\n"),
            format=form.get("format", ""),
            id_path=form.get("id_path", "").strip(),
            deliver=form.get("deliver") == "on",
            alert_id=form.get("alert_id", "").strip(),
        )


@dataclass(frozen=True)
class Problem:
    """Why a request was refused or could not be previewed: the message and, if known, the line."""

    message: str
    line: int | None = None
    line_text: str | None = None

    @classmethod
    def of(cls, error: ConnectorError, body: str) -> Problem:
        """The problem an error describes; the line's text from the error, else the body."""
        details = error.details or {}
        line = getattr(error, "line", None) or details.get("line")
        if not isinstance(line, int):
            return cls(str(error))
        text = details.get("line_text")
        return cls(str(error), line, text if isinstance(text, str) else source_line(body, line))


def _slot(status: str, action: str) -> tuple[AlertStatus, RequestAction]:
    """The slot a URL names; 404 for any other."""
    try:
        slot = (AlertStatus(status), RequestAction(action))
    except ValueError:
        abort(404)
    if slot not in SLOTS:
        abort(404)
    return slot


def _headers(text: str) -> dict[str, str]:
    """The headers field: one "Name: value" a line; blank lines are skipped."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise InvalidInput(f"headers, line {number}: write one header a line as Name: value")
        headers[name.strip()] = value.strip()
    return headers


def _spec(slot: tuple[AlertStatus, RequestAction], form: RequestForm) -> dict[str, Any]:
    """The form as the API's RequestSchema loads it (InvalidInput naming each bad field)."""
    raw = {
        "status": slot[0].value,
        "action": slot[1].value,
        "method": form.method,
        "url": form.url,
        "headers": _headers(form.headers),
        "body": form.body,
        "format": form.format or None,
        "id_path": form.id_path if slot[1] is RequestAction.CREATE else "",
    }
    return load_input(RequestSchema(), raw, what="not saved")


def _alert_id(text: str) -> int | None:
    """The preview's stored alert id: blank is the sample alert."""
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise InvalidInput(f"alert id: must be a whole number, got {text[:40]!r}")
    return int(text)


def _served_by_active(same_for_every_status: bool, slot: tuple[AlertStatus, RequestAction]) -> bool:
    """Whether Active's request is sent instead of this slot's ("same request for every status")."""
    status, action = slot
    return (
        same_for_every_status
        and status is not AlertStatus.ACTIVE
        and action is not RequestAction.CREATE
    )


# -- the list ------------------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/requests")
def delivery_requests(integration_id: int) -> str:
    """Every status's requests: method, URL, on or off, changed from the generated or not."""
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        profile = services().profile(integration.api_flavour)
        settings = load_settings(integration.settings)
        options = load_options(session, integration, profile)
        customized = set(customized_slots(session, integration, profile))
        name, flavour = integration.name, integration.api_flavour
    rows = [
        RequestRow(
            status=status,
            action=action,
            method=options.requests[(status, action)].method,
            url=options.requests[(status, action)].url,
            delivered=settings.deliver[status],
            customized=(status, action) in customized,
            served_by_active=_served_by_active(options.same_for_every_status, (status, action)),
        )
        for status, action in SLOTS
    ]
    return render_template(
        "admin/requests.html",
        integration_id=integration_id,
        name=name,
        flavour=flavour,
        rows=rows,
        statuses=list(AlertStatus),
        deliver=settings.deliver,
        same_for_every_status=options.same_for_every_status,
    )


@bp.post("/integrations/<int:integration_id>/requests/switches")
def save_request_switches(integration_id: int) -> BaseResponse:
    """Save which statuses are delivered and "same request for every status"."""
    form = request.form
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        save_requests(
            session,
            integration,
            [],
            services().profile(integration.api_flavour),
            same_for_every_status=form.get("same_for_every_status") == "on",
            deliver={
                status.value: form.get(f"deliver_{status.value}") == "on" for status in AlertStatus
            },
        )
    flash("Switches saved; the next alert uses them.")
    return redirect(url_for("admin.delivery_requests", integration_id=integration_id))


# -- one request ---------------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/requests/<status>/<action>")
def edit_request(integration_id: int, status: str, action: str) -> Response:
    """The edit form of one request, the token reference beside it."""
    slot = _slot(status, action)
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        options = load_options(session, integration, services().profile(integration.api_flavour))
        deliver = load_settings(integration.settings).deliver[slot[0]]
    return _edit_page(integration_id, slot, RequestForm.of(options.requests[slot], deliver))


@bp.post("/integrations/<int:integration_id>/requests/<status>/<action>")
def save_request(integration_id: int, status: str, action: str) -> BaseResponse:
    """Save the request (the API's checks: refused with the reason and line), or preview it."""
    slot = _slot(status, action)
    form = RequestForm.sent()
    if request.form.get("op") == "preview":
        shown, problem = _preview(integration_id, slot, form)
        return _edit_page(integration_id, slot, form, preview=shown, preview_problem=problem)
    try:
        data = _spec(slot, form)
        with services().transaction() as session:
            integration = find_integration(session, integration_id)
            profile = services().profile(integration.api_flavour)
            save_requests(
                session,
                integration,
                [spec_from_json(data, profile)],
                profile,
                deliver={slot[0].value: form.deliver},
            )
    except (InvalidInput, TemplateRejected) as e:
        return _edit_page(integration_id, slot, form, problem=Problem.of(e, form.body), status=400)
    flash(f"The {slot[0].value} {slot[1].value} request is saved; the next alert uses it.")
    return redirect(url_for("admin.delivery_requests", integration_id=integration_id))


@bp.post("/integrations/<int:integration_id>/requests/<status>/<action>/preview")
def preview_request(integration_id: int, status: str, action: str) -> Response:
    """The unsaved request rendered, as a fragment of the edit page (for its script)."""
    slot = _slot(status, action)
    shown, problem = _preview(integration_id, slot, RequestForm.sent())
    page = render_template("admin/_request_preview.html", preview=shown, preview_problem=problem)
    return Response(page, status=200 if problem is None else 422)


def _preview(
    integration_id: int, slot: tuple[AlertStatus, RequestAction], form: RequestForm
) -> tuple[dict[str, Any] | None, Problem | None]:
    """The API's preview of the unsaved request for the sample or a stored alert; or why not."""
    try:
        data = _spec(slot, form)
        alert_id = _alert_id(form.alert_id)
        with services().transaction() as session:
            profile = services().profile(find_integration(session, integration_id).api_flavour)
        spec = spec_from_json(data, profile)
        shown = preview(
            services(),
            integration_id,
            PreviewQuery(status=slot[0], alert_id=alert_id, requests=(spec,)),
        )
    except ConnectorError as e:
        return None, Problem.of(e, form.body)
    served = [
        request_shown | {"body": _readable(request_shown["body"])}
        for request_shown in shown["requests"]
        if request_shown["action"] == slot[1].value
    ]
    return shown | {"requests": served}, None


def _readable(body: str) -> str:
    """A rendered JSON body indented for reading (XML is shown as rendered)."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _edit_page(
    integration_id: int,
    slot: tuple[AlertStatus, RequestAction],
    form: RequestForm,
    *,
    problem: Problem | None = None,
    preview: dict[str, Any] | None = None,
    preview_problem: Problem | None = None,
    status: int = 200,
) -> Response:
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        name = integration.name
        same = load_settings(integration.settings).same_request_for_every_status
    page = render_template(
        "admin/request_edit.html",
        integration_id=integration_id,
        name=name,
        status=slot[0],
        action=slot[1],
        form=form,
        methods=METHODS,
        formats=FORMATS,
        tokens=TOKENS,
        problem=problem,
        preview=preview,
        preview_problem=preview_problem,
        served_by_active=_served_by_active(same, slot),
    )
    return Response(page, status=status)


# -- generate ------------------------------------------------------------------------------------


@bp.post("/integrations/<int:integration_id>/requests/generate")
def generate_delivery_options(integration_id: int) -> BaseResponse:
    """Generate the requests from the flavour's templates; show the difference and ask first
    when any was changed ("Replace my changes" / "Keep my changes")."""
    choice = request.form.get("choice", "")
    if choice == "keep":
        flash("Your changes are kept: nothing was generated.")
        return redirect(url_for("admin.delivery_requests", integration_id=integration_id))
    try:
        with services().transaction() as session:
            integration = find_integration(session, integration_id)
            name, flavour = integration.name, integration.api_flavour
            regenerate_requests(
                session,
                integration,
                services().profile(flavour),
                replace_customized=choice == "replace",
            )
    except ConflictError as e:
        page = render_template(
            "admin/requests_generate.html",
            integration_id=integration_id,
            name=name,
            flavour=flavour,
            customized=(e.details or {}).get("customized", []),
        )
        return Response(page)
    flash(f"Delivery options generated from the {flavour.upper()} templates.")
    return redirect(url_for("admin.delivery_requests", integration_id=integration_id))

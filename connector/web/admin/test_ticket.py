"""The test ticket page: pick a company, send a test ticket, see what went and what came back.

The form is checked by the JSON API's TestDeliverySchema and sent by the same `send_test` as
POST /api/v1/test-delivery and `connector send-test`, so the page, the API and the command
agree; the answer page shows the request as sent (credentials redacted by the target),
Autotask's answer, the ticket's id and number, and, when asked, whether it was completed. Each
admin sends one test ticket at a time (per process).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Response, render_template, request
from marshmallow import ValidationError

from connector.domain import CompanyChoice
from connector.errors import ConnectorError, InvalidInput, TooManyRequests
from connector.integrations import catalog
from connector.integrations.editing import find_integration
from connector.integrations.settings import load_settings
from connector.integrations.strict import flatten
from connector.pipeline.testdelivery import (
    TEST_TITLE,
    admit_test_delivery,
    send_test,
    standard_text,
)
from connector.web.admin import bp
from connector.web.admin.auth import current_admin
from connector.web.admin.security import error_page
from connector.web.api.integrations import TestDeliverySchema
from connector.web.hooks import services

#: How many companies the picker lists at most (Autotask's own search narrows it further).
COMPANY_CHOICES = 100


class _OneAtATime:
    """Which admins have a test ticket on its way in this process: each may send one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[int] = set()

    @contextmanager
    def slot(self, admin_id: int) -> Iterator[bool]:
        """Yields whether `admin_id` may send now; the slot is theirs until the block ends."""
        with self._lock:
            free = admin_id not in self._busy
            self._busy.add(admin_id)
        try:
            yield free
        finally:
            if free:
                with self._lock:
                    self._busy.discard(admin_id)


SENDING = _OneAtATime()


def _companies(integration_id: int, search: str) -> tuple[tuple[CompanyChoice, ...], str | None]:
    """Companies whose name contains `search`, or none and why they cannot be read now."""
    try:
        found = catalog.search_companies(services(), integration_id, search, limit=COMPANY_CHOICES)
        return found.value, None
    except ConnectorError as e:
        return (), str(e)


def _form_input(integration_id: int, form: Mapping[str, str]) -> dict[str, Any]:
    """The form as the API's body: digits become a number, blanks are left out."""
    data: dict[str, Any] = {
        "integration_id": integration_id,
        "complete": form.get("complete") == "on",
    }
    company = form.get("company_id", "").strip()
    if company:
        data["company_id"] = int(company) if company.isascii() and company.isdigit() else company
    for name in ("title", "text"):
        value = form.get(name, "")
        if value.strip():
            data[name] = value
    return data


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """`data` loaded by the API's schema; InvalidInput naming each bad field."""
    try:
        loaded: dict[str, Any] = TestDeliverySchema().load(data)
    except ValidationError as e:
        raise InvalidInput("not sent: " + "; ".join(flatten(e.messages))) from e
    return loaded


def _form_page(
    integration_id: int,
    *,
    form: Mapping[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    search = request.args.get("company_search", "")[:255].strip()
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        name = integration.name
        default_company_id = load_settings(integration.settings).default_company_id
    companies, companies_error = _companies(integration_id, search)
    default_name = None
    if default_company_id is not None and not companies_error:
        everyone = companies if not search else _companies(integration_id, "")[0]
        default_name = {c.id: c.name for c in everyone}.get(default_company_id)
    page = render_template(
        "admin/test_ticket.html",
        integration_id=integration_id,
        name=name,
        companies=companies,
        companies_error=companies_error,
        company_search=search,
        default_company_id=default_company_id,
        default_company_name=default_name,
        form=form or {},
        error=error,
        default_title=TEST_TITLE,
        default_text=standard_text(name),
    )
    return Response(page, status=status)


@bp.get("/integrations/<int:integration_id>/test-ticket")
def test_ticket(integration_id: int) -> Response:
    """The test ticket form: a company picked by name, a title and text, complete at once."""
    return _form_page(integration_id)


@bp.post("/integrations/<int:integration_id>/test-ticket")
def send_test_ticket(integration_id: int) -> Response:
    """Send the test ticket as the API would; show what was sent and what Autotask answered."""
    form = request.form
    try:
        data = _checked(_form_input(integration_id, form))
    except InvalidInput as e:
        return _form_page(integration_id, form=form, error=str(e), status=400)
    admin_id = current_admin().user_id
    with SENDING.slot(admin_id) as free:
        if not free:
            return error_page(
                429,
                "A test ticket of yours is on its way already: wait for its answer, then send"
                " the next.",
            )
        try:
            admit_test_delivery(services(), f"admin:{admin_id}")
        except TooManyRequests as e:
            return _form_page(integration_id, form=form, error=str(e), status=429)
        result = send_test(
            services(),
            integration_id=integration_id,
            company_id=data["company_id"],
            complete=data["complete"],
            title=data["title"],
            text=data["text"],
        )
    with services().transaction() as session:
        name = find_integration(session, integration_id).name
    page = render_template(
        "admin/test_ticket_result.html",
        integration_id=integration_id,
        name=name,
        result=result.body,
        asked_to_complete=data["complete"],
        shown=_shown,
    )
    return Response(page, status=result.http_status)


def _shown(body: Any) -> str:
    """A request's or answer's body as text to read: JSON indented, anything else as it is."""
    if body is None:
        return ""
    if not isinstance(body, str):
        return json.dumps(body, indent=2, ensure_ascii=False)
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body

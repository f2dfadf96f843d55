"""An integration's emergency contact: the address, and "Send test mail" to it.

The address is saved through integrations.contact (update_integration, the settings schema's
e-mail check), as PATCH /api/v1/integrations/<id> saves it; the test mail goes through the
configured MailSender, and a failure (no mail server, connection refused, login refused) is
shown in words.
"""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from connector.errors import ConflictError, InvalidInput, MailError
from connector.integrations.contact import send_test_mail, set_emergency_contact
from connector.integrations.editing import EditContext, find_integration
from connector.integrations.settings import load_settings
from connector.web.admin import bp
from connector.web.hooks import services


def _contact_page(
    integration_id: int,
    *,
    error: str | None = None,
    typed: str | None = None,
    status: int = 200,
) -> Response:
    svc = services()
    with svc.transaction() as session:
        integration = find_integration(session, integration_id)
        name = integration.name
        address = load_settings(integration.settings).emergency_contact
    page = render_template(
        "admin/contact.html",
        integration_id=integration_id,
        name=name,
        address=address,
        typed=typed if typed is not None else (address or ""),
        mail_configured=svc.mail_sender is not None,
        error=error,
    )
    return Response(page, status=status)


@bp.get("/integrations/<int:integration_id>/contact")
def contact(integration_id: int) -> Response:
    """The emergency contact address and the test mail button."""
    return _contact_page(integration_id)


@bp.post("/integrations/<int:integration_id>/contact")
def save_contact(integration_id: int) -> BaseResponse:
    """Save (or, blank, remove) the emergency contact address."""
    typed = request.form.get("address", "")[:1000]
    svc = services()
    try:
        with svc.transaction() as session:
            set_emergency_contact(session, EditContext.of(svc), integration_id, typed)
    except (InvalidInput, ConflictError) as e:
        return _contact_page(integration_id, error=f"Not saved: {e}", typed=typed, status=400)
    flash(
        f"Emergency contact saved: {typed.strip()}."
        if typed.strip()
        else "Emergency contact removed: no one is mailed."
    )
    return redirect(url_for("admin.contact", integration_id=integration_id), 303)


@bp.post("/integrations/<int:integration_id>/contact/test-mail")
def contact_test_mail(integration_id: int) -> BaseResponse:
    """Mail the emergency contact a test mail now; why not, in words, when it cannot go."""
    try:
        address = send_test_mail(services(), integration_id)
    except (MailError, ConflictError) as e:
        return _contact_page(integration_id, error=f"Test mail not sent: {e}.", status=e.status)
    flash(f"Test mail sent to {address}: check that it arrived.")
    return redirect(url_for("admin.contact", integration_id=integration_id), 303)

"""The webhooks page of an integration: its webhook credentials and what each sender pastes.

Credentials are issued, rotated and revoked through the same functions and schema as the JSON
API (connector.integrations.credentials), so the form checks exactly what the API checks. A new
secret is shown once, in the answer to the form that issued it (never stored in clear, never
redirected through the session cookie), with the sender snippets filled in with it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from flask import Response, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response as BaseResponse

from connector.domain import WEBHOOK_TOKEN_PLACEHOLDER, SenderSnippet
from connector.errors import InvalidInput
from connector.integrations.credentials import (
    SCHEMES,
    CredentialSchema,
    find_credential,
    issue_credential,
    list_credentials,
    revoke_credential,
)
from connector.integrations.editing import find_integration
from connector.integrations.strict import flatten
from connector.integrations.verification import (
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SECRET_PREFIX,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
)
from connector.persistence.models import HookCredential
from connector.web.admin import bp
from connector.web.api.sources import hook_url
from connector.web.hooks import services

#: Each scheme as the form names it.
SCHEME_LABELS = {
    "bearer": "Bearer token (Authorization: Bearer …)",
    "basic": "HTTP Basic (username and password)",
    "hmac": "HMAC-SHA256 signature (X-Connector-Signature, or Standard Webhooks)",
}
#: Headers of the answer showing a new secret: kept by no cache, sent to no other site.
SHOWN_ONCE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
EVERY_SOURCE = "every source"


@dataclass(frozen=True)
class CredentialRow:
    """One credential as the page shows it: never its secret, hash or ciphertext."""

    id: int
    scheme: str
    source: str
    label: str
    username: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class SenderSetup:
    """One source: its webhook URL on this installation and the snippets for its senders."""

    slug: str
    name: str
    hook_url: str
    snippets: list[SenderSnippet]


@dataclass(frozen=True)
class IssuedSecret:
    """A newly issued credential's secret and the ways a sender presents it."""

    secret: str
    #: The Authorization header's value (bearer and basic); None for hmac.
    authorization: str | None
    #: The same hmac secret in Standard Webhooks' `whsec_<base64>` form.
    standard_secret: str | None


def _source_names() -> dict[str, str]:
    return {slug: source.display_name for slug, source in services().sources.items()}


def _row(row: HookCredential, names: Mapping[str, str]) -> CredentialRow:
    source = EVERY_SOURCE if row.source is None else names.get(row.source, row.source)
    return CredentialRow(
        row.id, row.scheme, source, row.label, row.username, row.created_at, row.revoked_at
    )


def _issued(scheme: str, username: str | None, secret: str) -> IssuedSecret:
    """How a sender presents `secret` of a credential of `scheme`."""
    if scheme == "bearer":
        return IssuedSecret(secret, f"Bearer {secret}", None)
    if scheme == "basic":
        pair = base64.b64encode(f"{username}:{secret}".encode()).decode()
        return IssuedSecret(secret, f"Basic {pair}", None)
    standard = STANDARD_SECRET_PREFIX + base64.b64encode(secret.encode()).decode()
    return IssuedSecret(secret, None, standard)


def _filled(snippet: SenderSnippet, issued: IssuedSecret | None) -> SenderSnippet:
    """`snippet` with the issued credential where it leaves room for a webhook token."""
    if issued is None or issued.authorization is None:
        return snippet  # hmac: the sender signs each request; no fixed header to paste
    header = issued.authorization
    placeholder_header = f"Bearer {WEBHOOK_TOKEN_PLACEHOLDER}"
    # A bearer token is all a sender needs; a basic password goes only into its header.
    token = issued.secret if header.startswith("Bearer ") else None

    def fill(text: str) -> str:
        text = text.replace(placeholder_header, header)
        return text.replace(WEBHOOK_TOKEN_PLACEHOLDER, token) if token else text

    return replace(snippet, where=fill(snippet.where), text=fill(snippet.text))


def _sender_setups(
    only: str | None = None, issued: IssuedSecret | None = None
) -> list[SenderSetup]:
    """Every source's (or the source `only`'s) snippets, filled in with this installation's URL."""
    setups = []
    for slug, source in services().sources.items():
        if only is not None and slug != only:
            continue
        url = hook_url(slug)
        snippets = [_filled(snippet, issued) for snippet in source.sender_setup(url)]
        setups.append(SenderSetup(slug, source.display_name, url, snippets))
    return setups


def _credential_data(form: Mapping[str, str]) -> dict[str, str | None]:
    """The form's fields as the API's body has them: blank source is every source."""
    username = form.get("username", "").strip()
    return {
        "scheme": form.get("scheme", ""),
        "source": form.get("source") or None,
        "label": form.get("label", "").strip(),
        "username": username or None,
    }


def _checked(data: Mapping[str, str | None]) -> dict[str, str | None]:
    """`data` loaded by the API's own schema; InvalidInput naming each refused field."""
    try:
        loaded: dict[str, str | None] = CredentialSchema(sources=services().sources).load(data)
    except ValidationError as e:
        raise InvalidInput("; ".join(flatten(e.messages))) from e
    return loaded


def _issue(
    integration_id: int, data: Mapping[str, str | None], *, revoke: int | None = None
) -> tuple[CredentialRow, str]:
    """Issue a credential as the API does (and revoke credential `revoke`, in the same
    transaction); the new one's row as shown and its secret."""
    svc = services()
    with svc.transaction() as session:
        find_integration(session, integration_id)
        row, secret = issue_credential(
            session,
            svc.secret_box(),
            integration_id,
            scheme=str(data["scheme"]),
            source=data["source"],
            label=str(data["label"] or ""),
            username=data["username"],
        )
        if revoke is not None:
            revoke_credential(session, integration_id, revoke)
        return _row(row, _source_names()), secret


def _issued_page(
    integration_id: int, row: CredentialRow, source: str | None, secret: str, **extra: object
) -> Response:
    """The answer showing a new secret: the only time it is shown; no cache keeps it."""
    with services().transaction() as session:
        name = find_integration(session, integration_id).name
    issued = _issued(row.scheme, row.username, secret)
    page = render_template(
        "admin/webhook_issued.html",
        integration_id=integration_id,
        name=name,
        credential=row,
        issued=issued,
        scheme_labels=SCHEME_LABELS,
        setups=_sender_setups(source, issued),
        headers={
            "timestamp": TIMESTAMP_HEADER,
            "signature": SIGNATURE_HEADER,
            "standard_id": STANDARD_ID_HEADER,
            "standard_timestamp": STANDARD_TIMESTAMP_HEADER,
            "standard_signature": STANDARD_SIGNATURE_HEADER,
        },
        **extra,
    )
    return Response(page, headers=SHOWN_ONCE_HEADERS)


# -- the page ------------------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/webhooks")
def webhooks(integration_id: int) -> Response:
    """The integration's webhook credentials (never a secret), a form to issue one, snippets."""
    return _webhooks_page(integration_id)


def _webhooks_page(
    integration_id: int,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    names = _source_names()
    with services().transaction() as session:
        name = find_integration(session, integration_id).name
        rows = [_row(row, names) for row in list_credentials(session, integration_id)]
    page = render_template(
        "admin/webhooks.html",
        integration_id=integration_id,
        name=name,
        credentials=rows,
        live=sum(1 for row in rows if row.revoked_at is None),
        schemes=SCHEMES,
        scheme_labels=SCHEME_LABELS,
        sources=names,
        setups=_sender_setups(),
        error=error,
        form=form or {},
    )
    return Response(page, status=status)


@bp.post("/integrations/<int:integration_id>/webhooks")
def issue_webhook_credential(integration_id: int) -> Response:
    """Issue a credential from the form; the answer shows its secret, once."""
    try:
        data = _checked(_credential_data(request.form))
    except InvalidInput as e:
        return _webhooks_page(integration_id, error=str(e), form=request.form, status=400)
    row, secret = _issue(integration_id, data)
    return _issued_page(integration_id, row, data["source"], secret)


# -- rotate and revoke ---------------------------------------------------------------------------


def _credential(integration_id: int, credential_id: int) -> tuple[str, CredentialRow, str | None]:
    """The integration's name, the credential as shown and its source slug; or 404."""
    with services().transaction() as session:
        name = find_integration(session, integration_id).name
        row = find_credential(session, integration_id, credential_id)
        return name, _row(row, _source_names()), row.source


@bp.get("/integrations/<int:integration_id>/webhooks/<int:credential_id>/rotate")
def rotate_webhook_credential_form(integration_id: int, credential_id: int) -> str:
    """Ask before rotating: a new credential like this one; the old one stays live or not."""
    name, row, _ = _credential(integration_id, credential_id)
    return render_template(
        "admin/webhook_confirm.html",
        action="rotate",
        integration_id=integration_id,
        name=name,
        credential=row,
        scheme_labels=SCHEME_LABELS,
    )


@bp.post("/integrations/<int:integration_id>/webhooks/<int:credential_id>/rotate")
def rotate_webhook_credential(integration_id: int, credential_id: int) -> Response:
    """Issue a new credential with the same scheme, source and label (and revoke the old now)."""
    with services().transaction() as session:
        find_integration(session, integration_id)
        old = find_credential(session, integration_id, credential_id)
        data = {
            "scheme": old.scheme,
            "source": old.source,
            "label": old.label,
            "username": old.username,
        }
    try:
        data = _checked(data)
    except InvalidInput as e:
        return _webhooks_page(integration_id, error=f"Not rotated: {e}", status=400)
    revoked_old = request.form.get("revoke_old") == "on"
    row, secret = _issue(integration_id, data, revoke=credential_id if revoked_old else None)
    return _issued_page(
        integration_id,
        row,
        data["source"],
        secret,
        rotated_from=credential_id,
        revoked_old=revoked_old,
    )


@bp.get("/integrations/<int:integration_id>/webhooks/<int:credential_id>/revoke")
def revoke_webhook_credential_form(integration_id: int, credential_id: int) -> str:
    """Ask before revoking: senders using the credential are refused from then on."""
    name, row, _ = _credential(integration_id, credential_id)
    return render_template(
        "admin/webhook_confirm.html",
        action="revoke",
        integration_id=integration_id,
        name=name,
        credential=row,
        scheme_labels=SCHEME_LABELS,
    )


@bp.post("/integrations/<int:integration_id>/webhooks/<int:credential_id>/revoke")
def revoke_webhook_credential(integration_id: int, credential_id: int) -> BaseResponse:
    """Revoke a credential: its senders get 401 from the next webhook on."""
    with services().transaction() as session:
        find_integration(session, integration_id)
        row = revoke_credential(session, integration_id, credential_id)
        label = row.label or f"credential {row.id}"
    flash(f"Revoked “{label}”: webhooks sent with it are refused (401) from now on.")
    return redirect(url_for("admin.webhooks", integration_id=integration_id))

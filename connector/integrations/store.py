"""An integration's delivery requests in the database: load, replace, generate."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.domain import AlertStatus, RequestAction
from connector.integrations.settings import load_settings
from connector.payloads.formats import Format
from connector.payloads.requests import (
    DeliveryOptions,
    RequestSpec,
    generate_requests,
    options_from,
    validate_request,
    with_default_id_path,
)
from connector.persistence.models import DeliveryRequest, Integration, utcnow
from connector.ports import TargetProfile


def _spec(row: DeliveryRequest) -> RequestSpec:
    fmt: Format = "xml" if row.format == "xml" else "json"
    return RequestSpec(
        status=AlertStatus(row.status),
        action=RequestAction(row.action),
        method=row.method,
        url=row.url,
        headers={str(k): str(v) for k, v in (row.headers or {}).items()},
        body=row.body,
        format=fmt,
        id_path=row.id_path,
    )


def stored_requests(session: Session, integration_id: int) -> list[RequestSpec]:
    """The integration's stored requests, in no particular order (may be fewer than SLOTS)."""
    rows = session.scalars(
        select(DeliveryRequest).where(DeliveryRequest.integration_id == integration_id)
    )
    return [_spec(row) for row in rows]


def load_options(
    session: Session, integration: Integration, profile: TargetProfile
) -> DeliveryOptions:
    """The integration's delivery options; slots with no stored request get their default."""
    settings = load_settings(integration.settings)
    return options_from(
        stored_requests(session, integration.id),
        profile,
        same_for_every_status=settings.same_request_for_every_status,
    )


def replace_requests(
    session: Session,
    integration: Integration,
    specs: Iterable[RequestSpec],
    profile: TargetProfile,
) -> list[RequestSpec]:
    """Validate every request (TemplateRejected on the first bad one), then store them all.

    Slots not given keep what is stored. The integration's updated_at moves, so workers pick
    the new requests up.
    """
    specs = [with_default_id_path(spec, profile) for spec in specs]
    for spec in specs:
        validate_request(spec, profile)
    slots = {spec.slot for spec in specs}
    for row in session.scalars(
        select(DeliveryRequest).where(DeliveryRequest.integration_id == integration.id)
    ):
        if (AlertStatus(row.status), RequestAction(row.action)) in slots:
            session.delete(row)
    session.flush()
    for spec in specs:
        session.add(
            DeliveryRequest(
                integration_id=integration.id,
                status=spec.status.value,
                action=spec.action.value,
                method=spec.method,
                url=spec.url,
                headers=dict(spec.headers),
                body=spec.body,
                format=spec.format,
                id_path=spec.id_path,
            )
        )
    integration.updated_at = utcnow()
    session.flush()
    return specs


def generate_for(
    session: Session, integration: Integration, profile: TargetProfile
) -> list[RequestSpec]:
    """Generate delivery options: replace every request with its default for the flavour."""
    session.execute(delete(DeliveryRequest).where(DeliveryRequest.integration_id == integration.id))
    return replace_requests(session, integration, generate_requests(profile), profile)

"""API activity: one stored ApiCall row per Autotask call, as Autotask's own activity log has."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from connector.domain import ApiCallRecord
from connector.persistence.models import ApiCall, Integration


def store_api_calls(
    session: Session,
    records: Iterable[ApiCallRecord],
    integration_id: int,
    delivery_id: int | None = None,
) -> None:
    """Add a row per call, naming the integration's API user (Autotask counts per user)."""
    integration = session.get(Integration, integration_id)
    api_user = integration.username if integration is not None else ""
    for record in records:
        session.add(
            ApiCall(
                integration_id=integration_id,
                delivery_id=delivery_id,
                at=record.at,
                method=record.method,
                entity=record.entity,
                http_status=record.http_status,
                records=record.records,
                execution_ms=record.execution_ms,
                api_user=api_user,
                error=record.error,
                request=dict(record.request) if record.request is not None else None,
                response=dict(record.response) if record.response is not None else None,
            )
        )

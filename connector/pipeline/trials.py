"""What previews and test deliveries share: one integration loaded for a run beside the worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    LifecyclePolicy,
    RequestAction,
    Step,
    StepKind,
    TicketSnapshot,
    TicketState,
)
from connector.errors import (
    ConnectorError,
    NotFoundError,
)
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.store import load_options
from connector.payloads.requests import DeliveryOptions
from connector.persistence.models import Integration
from connector.pipeline import planner
from connector.pipeline.dispatch import CallLog
from connector.services import Services

#: The actions each status's requests carry, in the order the worker sends them.
STATUS_ACTIONS: Mapping[AlertStatus, tuple[RequestAction, ...]] = {
    AlertStatus.ACTIVE: (RequestAction.CREATE, RequestAction.UPDATE, RequestAction.NOTE),
    AlertStatus.ACKNOWLEDGED: (RequestAction.UPDATE, RequestAction.NOTE),
    AlertStatus.ESCALATED: (RequestAction.UPDATE, RequestAction.NOTE),
    AlertStatus.CLEARED: (RequestAction.UPDATE, RequestAction.NOTE),
}


class BadRequest(ConnectorError):
    """A request the integration cannot serve as asked (no company, alert of another one)."""

    status = 400


@dataclass(frozen=True)
class Loaded:
    """An integration as read in one short transaction, with its secrets decrypted."""

    integration: Integration
    settings: IntegrationSettings
    options: DeliveryOptions
    integration_code: str
    secret: str

    @property
    def secrets(self) -> tuple[str, str]:
        return self.integration_code, self.secret


def load_integration(services: Services, session: Session, integration_id: int | None) -> Loaded:
    if integration_id is None:
        integration = session.scalar(select(Integration).order_by(Integration.id).limit(1))
        if integration is None:
            raise NotFoundError("no integration is configured")
    else:
        integration = session.get(Integration, integration_id)
        if integration is None:
            raise NotFoundError(f"no integration {integration_id}")
    box = services.secret_box()
    return Loaded(
        integration=integration,
        settings=load_settings(integration.settings),
        options=load_options(session, integration, services.profile(integration.api_flavour)),
        integration_code=box.decrypt(integration.integration_code_encrypted),
        secret=box.decrypt(integration.secret_encrypted),
    )


def store_calls(services: Services, calls: CallLog, integration: Integration) -> None:
    """Store what is left of the calls as API activity (no delivery)."""
    if calls.records:
        with services.transaction() as session:
            calls.store_in(session, integration.id)


def open_ticket_steps(
    alert: IncomingAlert, settings: IntegrationSettings, now: datetime
) -> dict[RequestAction, Step]:
    """The update and note steps the planner takes for `alert` on an open ticket."""
    policy = LifecyclePolicy(
        status_map=settings.status_map,
        complete_status=settings.status_map[AlertStatus.CLEARED],
        complete_on_clear=True,
        # Previews and test deliveries show and send every request of the status, the Cleared
        # note too (a delivery sends it only when the completion does not carry the text).
        note_on_clear=True,
        # The same for an acknowledgement's update: shown even where acknowledgements leave the
        # status alone (the preview warns), since it still carries a new priority.
        status_on_acknowledge=True,
        repeat_note_interval=timedelta(0),
        delivered=frozenset(AlertStatus),
    )
    opened = TicketSnapshot(TicketState.OPEN, ticket_id=1, applied_status=AlertStatus.ACTIVE)
    steps: dict[RequestAction, Step] = {
        RequestAction.UPDATE: Step(StepKind.SET_STATUS, status=settings.status_map[alert.status])
    }
    for step in planner.plan(alert, opened, policy, now).steps:
        if step.kind is StepKind.NOTE:
            steps[RequestAction.NOTE] = step
        else:
            steps[RequestAction.UPDATE] = step
    steps[RequestAction.CREATE] = Step(StepKind.CREATE, status=settings.status_map[alert.status])
    return steps


# -- preview -------------------------------------------------------------------------------------

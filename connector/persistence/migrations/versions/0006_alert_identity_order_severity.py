"""alerts keyed by (integration, source, fingerprint); sender-time order; severity on tickets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:10:00

- alert: the unique key gains the source (two sources may share an id); `last_occurred_at`, the
  newest sender time applied, filled from the events already stored.
- alert_event: `warnings`, what the admin should know about the event's handling.
- ticket_link: `applied_severity` (the severity the ticket's priority reflects, filled from the
  alert for existing links), `ticket_priority`, and `create_sent_at` (an unanswered create).
- delivery_request: stored update requests still equal to the shipped default get the new
  default, which can carry a priority change; edited ones are left as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connector.persistence.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = connector.persistence.models.UTCDateTime(timezone=True)

#: The default update templates as shipped before this revision, and as shipped by it. Kept here
#: (not read from payload_templates/) so the migration means the same thing forever.
_OLD_REST_UPDATE = """{# PATCH {base}/V1.0/Tickets: only the fields sent change (TicketModel). #}
{
  "id": ##EXTERNALTICKETID##,
  "status": ##STATUS##
}
"""
_NEW_REST_UPDATE = """{# PATCH {base}/V1.0/Tickets: only the fields sent change (TicketModel). An update sets the
   ticket's status, or (when the alert's severity changed) its priority: `change` holds what
   this update changes, and a value it does not change is left out. #}
{
{% if change.priority is not none %}
  "priority": ##PRIORITY##,
{% endif %}
{% if change.status is not none %}
  "status": ##STATUS##,
{% endif %}
  "id": ##EXTERNALTICKETID##
}
"""
_OLD_SOAP_UPDATE = """{# SOAP 1.6 update of the alert's Ticket (SOAPAction "http://autotask.net/ATWS/v1_6/update").
   update() replaces the entity: "if no value is provided for non-ReadOnly fields, those fields
   are cleared" (OFFICIAL UpdateCall.htm, autotask-api.md §10). So the connector reads the ticket
   first and sends it back whole, with the fields written here applied: a field this template
   leaves out keeps its value (an engineer's queue or priority change survives). #}
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <soap:Header>
    <AutotaskIntegrations xmlns="http://autotask.net/ATWS/v1_6/">
      <IntegrationCode>##INTEGRATIONCODE##</IntegrationCode>
    </AutotaskIntegrations>
  </soap:Header>
  <soap:Body>
    <update xmlns="http://autotask.net/ATWS/v1_6/">
      <Entities>
        <Entity xsi:type="Ticket">
          <id>##EXTERNALTICKETID##</id>
          <Status>##STATUS##</Status>
        </Entity>
      </Entities>
    </update>
  </soap:Body>
</soap:Envelope>
"""
_NEW_SOAP_UPDATE = """{# SOAP 1.6 update of the alert's Ticket (SOAPAction "http://autotask.net/ATWS/v1_6/update").
   update() replaces the entity: "if no value is provided for non-ReadOnly fields, those fields
   are cleared" (OFFICIAL UpdateCall.htm, autotask-api.md §10). So the connector reads the ticket
   first and sends it back whole, with the fields written here applied: a field this template
   leaves out keeps its value (an engineer's queue or priority change survives). `change` holds
   what this update changes: the status, or (when the alert's severity changed) the priority. #}
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <soap:Header>
    <AutotaskIntegrations xmlns="http://autotask.net/ATWS/v1_6/">
      <IntegrationCode>##INTEGRATIONCODE##</IntegrationCode>
    </AutotaskIntegrations>
  </soap:Header>
  <soap:Body>
    <update xmlns="http://autotask.net/ATWS/v1_6/">
      <Entities>
        <Entity xsi:type="Ticket">
          <id>##EXTERNALTICKETID##</id>
{% if change.status is not none %}
          <Status>##STATUS##</Status>
{% endif %}
{% if change.priority is not none %}
          <Priority>##PRIORITY##</Priority>
{% endif %}
        </Entity>
      </Entities>
    </update>
  </soap:Body>
</soap:Envelope>
"""
_DEFAULTS = ((_OLD_REST_UPDATE, _NEW_REST_UPDATE), (_OLD_SOAP_UPDATE, _NEW_SOAP_UPDATE))


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_constraint("uq_alert_integration_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_alert_identity", ["integration_id", "source", "fingerprint"]
        )
        batch_op.add_column(sa.Column("last_occurred_at", _Time, nullable=True))
    with op.batch_alter_table("alert_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
    with op.batch_alter_table("ticket_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("applied_severity", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("ticket_priority", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("create_sent_at", _Time, nullable=True))

    alert = sa.table(
        "alert",
        sa.column("id"),
        sa.column("severity"),
        sa.column("last_occurred_at", _Time),
    )
    event = sa.table("alert_event", sa.column("alert_id"), sa.column("occurred_at", _Time))
    link = sa.table("ticket_link", sa.column("alert_id"), sa.column("applied_severity"))
    newest = (
        sa.select(sa.func.max(event.c.occurred_at))
        .where(event.c.alert_id == alert.c.id)
        .scalar_subquery()
    )
    op.execute(alert.update().values(last_occurred_at=newest))
    severity = sa.select(alert.c.severity).where(alert.c.id == link.c.alert_id).scalar_subquery()
    op.execute(link.update().values(applied_severity=severity))
    _swap_update_templates(old_to_new=True)


def downgrade() -> None:
    _swap_update_templates(old_to_new=False)
    with op.batch_alter_table("ticket_link", schema=None) as batch_op:
        batch_op.drop_column("create_sent_at")
        batch_op.drop_column("ticket_priority")
        batch_op.drop_column("applied_severity")
    with op.batch_alter_table("alert_event", schema=None) as batch_op:
        batch_op.drop_column("warnings")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("last_occurred_at")
        batch_op.drop_constraint("uq_alert_identity", type_="unique")
        batch_op.create_unique_constraint(
            "uq_alert_integration_id", ["integration_id", "fingerprint"]
        )


def _swap_update_templates(*, old_to_new: bool) -> None:
    """Stored update requests equal to one shipped default get the other; edited ones stay."""
    request = sa.table(
        "delivery_request",
        sa.column("id"),
        sa.column("action"),
        sa.column("status"),
        sa.column("body"),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(request.c.id, request.c.body).where(
            request.c.action == "update", request.c.status != "cleared"
        )
    ).all()
    for row_id, body in rows:
        swapped = _swapped(body, old_to_new=old_to_new)
        if swapped is not None:
            bind.execute(request.update().where(request.c.id == row_id).values(body=swapped))


def _swapped(body: str, *, old_to_new: bool) -> str | None:
    """`body` as the other revision's default, or None when it is not a default."""
    for old, new in _DEFAULTS:
        before, after = (old, new) if old_to_new else (new, old)
        if body == before:
            return after
    return None

"""An integration's emergency contact: the address mailed when the integration needs a person.

The address lives in the integration's settings (`emergency_contact`, checked by the settings
schema as an e-mail address) and is changed through update_integration like every other
setting; `send_test_mail` sends it a mail naming the integration through the configured
MailSender, so an admin knows mail arrives before it matters.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from connector.errors import ConflictError
from connector.integrations.editing import (
    EditContext,
    Updated,
    find_integration,
    update_integration,
)
from connector.integrations.settings import load_settings
from connector.ports import MailMessage
from connector.services import Services

logger = logging.getLogger(__name__)

#: The settings key that holds the address.
CONTACT_SETTING = "emergency_contact"


def set_emergency_contact(
    session: Session, ctx: EditContext, integration_id: int, address: str | None
) -> Updated:
    """Set (or, with None or blank, clear) the integration's emergency contact address.

    Raises NotFoundError for an unknown integration, InvalidInput for an address that is not one.
    """
    cleaned = (address or "").strip() or None
    integration = find_integration(session, integration_id)
    return update_integration(
        session,
        ctx,
        integration,
        {"settings": {CONTACT_SETTING: cleaned}},
        what="invalid emergency contact",
    )


def check_mail(integration_name: str, address: str) -> MailMessage:
    """The test mail for an integration's emergency contact."""
    return MailMessage(
        to=(address,),
        subject=f"Test mail from Autotask Alert Connector: integration {integration_name}",
        body=(
            f"This is a test mail from the Autotask Alert Connector for its integration"
            f" {integration_name!r}.\n\n"
            f"{address} is this integration's emergency contact: the connector mails this address"
            " when the integration needs a person (for example when Autotask keeps refusing its"
            " tickets).\n\nNothing is wrong; no action is needed.\n"
        ),
    )


def send_test_mail(services: Services, integration_id: int) -> str:
    """Mail the integration's emergency contact a test mail now; the address it went to.

    Raises NotFoundError (no such integration), ConflictError (no contact set), MailError
    (MailNotConfigured: no mail server; else why the server did not take it, in words).
    """
    with services.transaction() as session:
        integration = find_integration(session, integration_id)
        name = integration.name
        address = load_settings(integration.settings).emergency_contact
    if not address:
        raise ConflictError(f"integration {name!r} has no emergency contact: save an address first")
    services.mail().send(check_mail(name, address))
    logger.info("contact.test_mail_sent", extra={"integration_id": integration_id, "to": address})
    return address

"""What both flavours' answers mean alike: a ticket read back."""

from __future__ import annotations

from adapters.targets.autotask.errors import AutotaskUnavailable
from connector.domain import TicketRef


def ticket_ref(ticket_id: object, number: object, status: object) -> TicketRef:
    """A TicketRef from a ticket's id, number and status as Autotask answered them.

    Raises AutotaskUnavailable (not ambiguous: nothing was changed) when the id or status is
    not a number.
    """
    try:
        return TicketRef(
            ticket_id=int(ticket_id),  # type: ignore[call-overload]
            ticket_number=str(number) if number is not None else None,
            status=int(status) if status is not None else None,  # type: ignore[call-overload]
        )
    except (TypeError, ValueError) as e:
        raise AutotaskUnavailable(
            f"Autotask answered a ticket without a usable id or status: {e}", ambiguous=False
        ) from e

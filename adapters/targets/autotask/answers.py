"""What both flavours' answers mean alike: a ticket read back, a zone lookup's database."""

from __future__ import annotations

from adapters.targets.autotask.errors import AutotaskUnavailable
from connector.domain import ApiUsage, TicketRef


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


def database_id_of(ci: object) -> str | None:
    """The database id a zone lookup's CI names, or None when it names none.

    A zone lookup answers the customer's database identifier with the zone: REST zoneInformation
    `"ci"` (int32, SPEC ZoneInformationResultModel), SOAP getZoneInfo `<CI>` (e.g. 30049; 0 next
    to a failed lookup) — autotask-api.md §1, §10. Autotask counts its hourly threshold per
    database (§8), so integrations with the same CI share one budget.
    """
    if isinstance(ci, bool) or ci is None:
        return None
    try:
        number = int(str(ci).strip())
    except ValueError:
        return None
    return str(number) if number > 0 else None


def api_usage(threshold: object, timeframe: object, count: object) -> ApiUsage:
    """An ApiUsage from the threshold, timeframe (minutes) and count Autotask reported.

    Raises AutotaskUnavailable (not ambiguous: a read) when one is missing or not a number.
    """
    try:
        return ApiUsage(
            count=int(count),  # type: ignore[call-overload]
            threshold=int(threshold),  # type: ignore[call-overload]
            timeframe_minutes=int(timeframe),  # type: ignore[call-overload]
        )
    except (TypeError, ValueError) as e:
        raise AutotaskUnavailable(
            f"Autotask answered its API usage without usable figures: {e}", ambiguous=False
        ) from e

"""What an integration's delivery requests use: it decides which calls a delivery needs.

A check reads the requests' text (URL, headers, body), so it is deliberately broad: a request
that might use a value counts as using it. Tokens and variables: payload_templates/README.md.
"""

from __future__ import annotations

import re

from connector.domain import AlertStatus, RequestAction
from connector.payloads.requests import DeliveryOptions, RequestSpec

#: The ticket number: its token (`##TICKETNUMBER##`, any case; `tokens.TICKETNUMBER`) or
#: `number` inside a Jinja expression or statement (`ticket.number`, `ticket["number"]`).
_TICKET_NUMBER = re.compile(r"TICKETNUMBER|\{[{%][^}]*\bnumber\b", re.IGNORECASE)

#: The composed note's text: its token (`##NOTETEXT##`, `tokens.NOTETEXT`) or `note` inside a
#: Jinja expression or statement (`note.text`, `note["text"]`).
_NOTE_TEXT = re.compile(r"NOTETEXT|\{[{%][^}]*\bnote\b", re.IGNORECASE)


def _texts(spec: RequestSpec) -> tuple[str, ...]:
    return (spec.url, spec.body, *spec.headers.values())


def needs_ticket_number(options: DeliveryOptions) -> bool:
    """Whether any of the integration's requests may render the ticket number.

    REST's create answers only the new ticket's id (autotask-api.md §4): its number costs a
    read-back call, made only when a request needs it (the default requests do not). A false
    match costs that one call; a miss would leave the number empty in a request.
    """
    return any(
        _TICKET_NUMBER.search(text) for spec in options.requests.values() for text in _texts(spec)
    )


def completion_carries_the_clear(options: DeliveryOptions) -> bool:
    """Whether the update that completes a ticket on a clear may carry the clear's text.

    The default Cleared update sends it as the ticket's resolution, so a clear needs no note
    of its own; a request that does not carry it (an edited one, or Active's update when one
    request serves every status) leaves the text to a note, as before.
    """
    spec = options.request_for(AlertStatus.CLEARED, RequestAction.UPDATE)
    return any(_NOTE_TEXT.search(text) for text in _texts(spec))

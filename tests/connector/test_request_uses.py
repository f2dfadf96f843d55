"""Which calls a delivery needs, read from the integration's requests (request_uses)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE
from connector.domain import AlertStatus, RequestAction
from connector.payloads.requests import DeliveryOptions, generate_requests
from connector.pipeline.request_uses import completion_carries_the_clear, needs_ticket_number
from connector.ports import TargetProfile

CLEARED_UPDATE = (AlertStatus.CLEARED, RequestAction.UPDATE)
ACK_NOTE = (AlertStatus.ACKNOWLEDGED, RequestAction.NOTE)


def defaults(
    profile: TargetProfile, **edits: tuple[tuple[AlertStatus, RequestAction], str]
) -> DeliveryOptions:
    requests = {spec.slot: spec for spec in generate_requests(profile)}
    for slot, body in edits.values():
        requests[slot] = replace(requests[slot], body=body)
    return DeliveryOptions(requests, profile)


@pytest.mark.parametrize("profile", [REST_PROFILE, SOAP_PROFILE], ids=["rest", "soap"])
def test_the_default_requests_need_no_ticket_number_and_complete_with_the_clear(
    profile: TargetProfile,
) -> None:
    options = defaults(profile)
    assert not needs_ticket_number(options)
    assert completion_carries_the_clear(options)


@pytest.mark.parametrize(
    "text",
    ["##TICKETNUMBER##", "##ticketnumber##", "{{ ticket.number }}", "{{ ticket['number'] }}",
     "{% if ticket.number %}x{% endif %}", "{{ tokens.TICKETNUMBER }}"],
)  # fmt: skip
def test_any_way_of_writing_the_ticket_number_asks_for_it(text: str) -> None:
    options = defaults(REST_PROFILE, note=(ACK_NOTE, '{"description": "' + text + '"}'))
    assert needs_ticket_number(options)


def test_a_completion_without_the_note_text_leaves_the_clear_to_a_note() -> None:
    options = defaults(REST_PROFILE, update=(CLEARED_UPDATE, '{"id": ##EXTERNALTICKETID##}'))
    assert not completion_carries_the_clear(options)
    same = replace(defaults(REST_PROFILE), same_for_every_status=True)  # Active's: no resolution
    assert not completion_carries_the_clear(same)

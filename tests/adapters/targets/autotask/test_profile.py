"""The Autotask profile: what a URL addresses, and the figures the governor shares with it."""

from __future__ import annotations

import pytest

from adapters.targets.autotask import profile
from adapters.targets.autotask.profile import endpoint_of, entity_of
from connector.domain import OutboundRequest, RequestAction
from connector.errors import TargetAuthError, TargetError, TargetRefusal

ZONE = "https://webservices2.autotask.net/ATServicesRest/V1.0/"
BASE = "https://webservices3.autotask.net/atservicesrest/v1.0/"


@pytest.mark.parametrize(
    ("url", "entity"),
    [
        (BASE + "Tickets", "Tickets"),
        (BASE + "Tickets/7", "Tickets"),
        (BASE + "Tickets/7/Notes", "TicketNotes"),
        (BASE + "Companies/12/Notes", "CompanyNotes"),
        (BASE + "Tickets/query", "Tickets"),
        (BASE + "ConfigurationItems", "ConfigurationItems"),
    ],
)
def test_a_rest_url_names_its_entity(url: str, entity: str) -> None:
    assert entity_of(url) == entity


@pytest.mark.parametrize(
    ("action", "url", "body_format", "endpoint"),
    [
        (RequestAction.CREATE, ZONE + "Tickets", "json", "Tickets"),
        (RequestAction.UPDATE, ZONE + "Tickets", "json", "Tickets"),
        (RequestAction.NOTE, ZONE + "Tickets/1000/Notes", "json", "TicketNotes"),
        (RequestAction.UPDATE, ZONE + "Tickets/query", "json", "Tickets"),
        (RequestAction.NOTE, ZONE, "json", "TicketNotes"),
        (RequestAction.CREATE, ZONE, "json", "Tickets"),
        (RequestAction.NOTE, "https://x/ATServices/1.6/atws.asmx", "xml", "TicketNotes"),
        (RequestAction.CREATE, "https://x/ATServices/1.6/atws.asmx", "xml", "Tickets"),
    ],
)
def test_the_endpoint_is_read_from_the_url_or_the_action(
    action: RequestAction, url: str, body_format: str, endpoint: str
) -> None:
    assert endpoint_of(OutboundRequest(action, "POST", url, "{}", body_format)) == endpoint


def test_the_governor_counts_with_autotasks_thread_and_threshold_figures() -> None:
    # The governor's own figures (it budgets by them for every target) are Autotask's.
    from connector.pipeline import governor

    assert governor.API_SLOTS_PER_ENDPOINT == profile.THREADS_PER_ENDPOINT
    assert governor.WINDOW.total_seconds() == profile.THRESHOLD_WINDOW_MINUTES * 60


@pytest.mark.parametrize(
    ("error", "refusal"),
    [
        (
            TargetAuthError("Autotask GET ZoneInformation: HTTP 500: Zone information could not"),
            TargetRefusal.UNKNOWN_USER,
        ),
        (
            TargetAuthError("Autotask getZoneInfo found no zone for user 'x' (ErrorCode -1)."),
            TargetRefusal.UNKNOWN_USER,
        ),
        (
            TargetAuthError("Autotask GET Tickets: HTTP 401: x", response={"status": 401}),
            TargetRefusal.CREDENTIALS,
        ),
        (
            TargetAuthError("Autotask query Ticket: HTTP 200: IntegrationCode is invalid."),
            TargetRefusal.TRACKING_IDENTIFIER,
        ),
    ],
    ids=["rest unknown user", "soap unknown user", "secret", "tracking identifier"],
)
def test_what_a_refusal_refused(error: TargetError, refusal: TargetRefusal) -> None:
    assert profile.refusal_of(error) is refusal

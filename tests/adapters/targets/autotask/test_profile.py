"""The Autotask profile: what a URL addresses, and the facts the core still keeps a copy of."""

from __future__ import annotations

import pytest

from adapters.targets.autotask import profile
from adapters.targets.autotask.profile import endpoint_of, entity_of
from connector.domain import OutboundRequest, RequestAction

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


def test_the_profile_agrees_with_the_copies_the_core_still_keeps() -> None:
    # The core keeps these facts until it reads them from the profile (issue 11).
    from connector.integrations.settings import DESCRIPTION_LIMIT, TITLE_LIMIT, IntegrationSettings
    from connector.payloads import rendering, requests
    from connector.pipeline import governor

    assert (TITLE_LIMIT, DESCRIPTION_LIMIT) == (
        profile.TICKET_TITLE_LIMIT,
        profile.TICKET_DESCRIPTION_LIMIT,
    )
    assert dict(rendering.TICKET_LIMITS) == dict(profile.TICKET_LIMITS)
    assert dict(rendering.NOTE_LIMITS) == dict(profile.NOTE_LIMITS)
    assert rendering.DEFAULT_JSON_ID_PATH == profile.DEFAULT_JSON_ID_PATH
    assert rendering.DEFAULT_XML_ID_PATH == profile.DEFAULT_XML_ID_PATH
    assert dict(rendering.DEFAULT_NAMESPACES) == dict(profile.DEFAULT_NAMESPACES)
    assert requests.SAMPLE_ZONE_URL == dict(profile.SAMPLE_ZONE_URLS)
    assert governor.API_SLOTS_PER_ENDPOINT == profile.THREADS_PER_ENDPOINT
    assert governor.WINDOW.total_seconds() == profile.THRESHOLD_WINDOW_MINUTES * 60
    assert IntegrationSettings.allowed_zone_hosts == profile.DEFAULT_ALLOWED_ZONE_HOSTS

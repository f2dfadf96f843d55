"""The dead letters page through a browser-like client: reasons, replays, discards, CSRF, ids.

Dead letters are made for real where it matters: a tenant mapped to a company the sandbox does
not know is refused by it for good, and the worker (run in-process) dead-letters the delivery.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from adapters.sandbox import Sandbox
from connector.integrations.editing import find_integration
from connector.integrations.tenants import TenantEntry, set_tenant
from connector.persistence.models import Delivery, RejectedWebhook
from connector.wiring import make_worker
from tests.conftest import HOOK_TOKEN, default_integration_id
from tests.web.admin.conftest import csrf_of, sign_in

pytestmark = pytest.mark.with_integration

UNKNOWN_COMPANY = 999
NORTHWIND = 29683416
REFERER = {"Referer": "http://localhost/admin/"}


@pytest.fixture
def admin_settings(admin_settings: dict[str, object]) -> dict[str, object]:
    """The admin app's settings (with the sandbox's integration), and:"""
    return {
        **admin_settings,
        "RETRY_DELAYS": [0.05],
    }


def map_tenant(app: Flask, tenant: str, company_id: int) -> None:
    with app.extensions["connector"].transaction() as session:
        integration = find_integration(session, default_integration_id(app))
        set_tenant(session, integration, TenantEntry(tenant, company_id, enabled=True))


def post_alert(client: FlaskClient, number: int, tenant: str, **extra: Any) -> int:
    """Post one generic alert; its alert id."""
    body = {
        "id": f"dl-{number}",
        "status": "active",
        "severity": "error",
        "title": f"Disk full on srv{number:02d}",
        "host": f"srv{number:02d}",
        "tenant": tenant,
        **extra,
    }
    answer = client.post(
        "/hooks/generic", json=body, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return int(answer.get_json()["accepted"][0]["alert_id"])


def run_worker(app: Flask) -> None:
    """The real worker, in-process, until nothing is due."""
    worker = make_worker(app.extensions["connector"])
    for _ in range(20):
        if not worker.run_once():
            return
    raise AssertionError("the worker never ran out of work")


def states(app: Flask) -> dict[int, str]:
    with app.extensions["connector"].transaction() as session:
        return {row.id: row.state for row in session.execute(select(Delivery.id, Delivery.state))}


def make_dead(app: Flask, delivery_ids: list[int] | None = None, error: str = "HTTP 500") -> None:
    """Dead-letter deliveries directly (for tests about the page, not about how they die)."""
    with app.extensions["connector"].transaction() as session:
        statement = update(Delivery).values(state="dead", outcome="failed", last_error=error)
        if delivery_ids is not None:
            statement = statement.where(Delivery.id.in_(delivery_ids))
        session.execute(statement)


def page_of(client: FlaskClient, query: str = "") -> str:
    answer = client.get(f"/admin/dead-letters{query}")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def send_form(client: FlaskClient, path: str, **fields: str) -> Any:
    """POST a form of the page with its CSRF token, as a browser does."""
    csrf = csrf_of(page_of(client))
    return client.post(path, data={"csrf_token": csrf, **fields}, headers=REFERER)


def flashed(client: FlaskClient, answer: Any) -> str:
    """The page a form's redirect leads to (with its notice)."""
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_dead_letter_shows_its_reason_and_a_replay_after_the_fix_makes_the_ticket(
    admin_app: Flask, browser: FlaskClient, sandbox: Sandbox
) -> None:
    map_tenant(admin_app, "broken", UNKNOWN_COMPANY)
    alert_id = post_alert(browser, 1, "broken", title='Disk <full> on "srv01"')
    run_worker(admin_app)
    [(delivery_id, state)] = states(admin_app).items()
    assert state == "dead"
    sign_in(browser)

    page = page_of(browser)

    assert "Disk &lt;full&gt; on &#34;srv01&#34;" in page
    assert f'href="/admin/alerts/{alert_id}"' in page
    assert browser.get(f"/admin/alerts/{alert_id}").status_code == 200  # the alert's page
    assert "tenant <strong>broken</strong>" in page
    assert "create a ticket" in page
    assert "companyID" in page and "does not exist or is invalid" in page  # Autotask's words
    assert "HTTP 500" in page  # in the reason's words, not repeated beside them
    assert "Replay all dead letters (1)" in page

    map_tenant(admin_app, "broken", NORTHWIND)  # the fix
    answer = send_form(browser, f"/admin/dead-letters/deliveries/{delivery_id}/replay")
    assert f"Dead letter {delivery_id} is queued again" in flashed(browser, answer)
    assert states(admin_app) == {delivery_id: "pending"}

    run_worker(admin_app)

    assert states(admin_app) == {delivery_id: "done"}
    [ticket] = sandbox.tickets_with_notes()
    assert ticket["companyID"] == NORTHWIND
    assert "No dead letter: every delivery went through" in page_of(browser)


def test_discard_needs_a_reason_and_replay_all_leaves_the_discarded_alone(
    admin_app: Flask, browser: FlaskClient
) -> None:
    for number in (1, 2, 3):
        post_alert(browser, number, "fabrikam")
    make_dead(admin_app)
    first, second, third = sorted(states(admin_app))
    sign_in(browser)
    discard = f"/admin/dead-letters/deliveries/{first}/discard"

    refused = flashed(browser, send_form(browser, discard, reason="   "))
    assert "Not discarded: reason: must not be blank" in refused
    too_long = flashed(browser, send_form(browser, discard, reason="x" * 501))
    assert "at most 500 characters" in too_long
    assert states(admin_app)[first] == "dead"

    done = flashed(browser, send_form(browser, discard, reason="  a test alert, not real "))
    assert f"Dead letter {first} discarded" in done
    assert f'id="delivery-{first}"' not in page_of(browser)  # not waiting any more …
    shown = page_of(browser, "?show=discarded")  # … but listed under the filter, with why
    assert f'id="delivery-{first}"' in shown
    assert "a test alert, not real" in shown

    again = flashed(browser, send_form(browser, discard, reason="twice"))
    assert f"Not discarded: delivery {first} is discarded, not dead" in again

    integration_id = str(default_integration_id(admin_app))
    answer = send_form(
        browser, "/admin/dead-letters/deliveries/replay-all", integration_id=integration_id
    )
    assert "2 dead letters queued again" in flashed(browser, answer)
    assert states(admin_app) == {first: "discarded", second: "pending", third: "pending"}
    assert f"integration_id={integration_id}" in answer.headers["Location"]  # filter kept

    nothing = send_form(browser, "/admin/dead-letters/deliveries/replay-all")
    assert "No dead letter was waiting" in flashed(browser, nothing)


def test_the_empty_page_says_so(browser: FlaskClient) -> None:
    sign_in(browser)
    page = page_of(browser)
    assert "No dead letter: every delivery went through" in page
    assert "No rejected webhook waiting" in page
    assert "Replay all" not in page  # nothing to replay: no button
    assert "No rejected webhook was replayed" in page_of(browser, "?show=replayed")
    assert "No dead letter was discarded" in page_of(browser, "?show=discarded")


@pytest.fixture
def upgraded_generic(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A connector upgraded to know the status word "raised" (the old one refused it)."""
    from marshmallow import fields, validate

    from adapters.sources import generic

    words = dict(generic.STATUS_WORDS, raised=generic.AlertStatus.ACTIVE)

    class UpgradedSchema(generic.GenericAlertSchema):
        status = fields.String(required=True, validate=validate.OneOf(sorted(words)))

    def upgrade() -> None:
        monkeypatch.setattr(generic, "STATUS_WORDS", words)
        monkeypatch.setattr(generic, "_ALERT_SCHEMA", UpgradedSchema())

    return upgrade


def refuse_webhook(client: FlaskClient, number: int) -> None:
    """A webhook the generic source refuses today (an unknown status word); kept."""
    body = {"id": f"raised-{number}", "status": "raised", "severity": "error", "title": "x"}
    answer = client.post(
        "/hooks/generic",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400


def kept_ids(app: Flask) -> list[int]:
    with app.extensions["connector"].transaction() as session:
        return list(session.scalars(select(RejectedWebhook.id).order_by(RejectedWebhook.id)))


def test_rejected_webhooks_are_replayed_once_readable_and_discarded_with_a_reason(
    admin_app: Flask, browser: FlaskClient, upgraded_generic: Callable[[], None]
) -> None:
    refuse_webhook(browser, 1)
    refuse_webhook(browser, 2)
    first, second = kept_ids(admin_app)
    sign_in(browser)
    page = page_of(browser)
    assert f'id="webhook-{first}"' in page and f'id="webhook-{second}"' in page
    assert "generic · answered 400" in page
    assert "raised" in page  # in the body excerpt
    assert "<small>status: Must be one of" in page  # the refusal's details, field by field
    assert re.search(r"Show the body \(\d+ bytes, application/json\)", page)

    replay = f"/admin/dead-letters/webhooks/{first}/replay"
    still = flashed(browser, send_form(browser, replay))
    assert "Not replayed: still cannot be read" in still

    upgraded_generic()
    done = flashed(browser, send_form(browser, replay))
    assert f"Webhook {first} replayed: 1 alert taken in." in done
    assert len(states(admin_app)) == 1  # its alert is queued for delivery

    discard = f"/admin/dead-letters/webhooks/{second}/discard"
    assert "Not discarded: reason" in flashed(browser, send_form(browser, discard, reason=""))
    gone = flashed(browser, send_form(browser, discard, reason="a duplicate of #1"))
    assert f"Rejected webhook {second} discarded" in gone
    assert "No rejected webhook waiting" in page_of(browser)
    replayed = page_of(browser, "?show=replayed")
    assert f'id="webhook-{first}"' in replayed and f'id="webhook-{second}"' not in replayed
    discarded = page_of(browser, "?show=discarded")
    assert f'id="webhook-{second}"' in discarded and "a duplicate of #1" in discarded
    everything = page_of(browser, "?show=all")
    assert f'id="webhook-{first}"' in everything and f'id="webhook-{second}"' in everything

    # Neither is taken in again, by one replay or by all.
    assert "Not replayed" in flashed(browser, send_form(browser, replay))
    nothing = send_form(browser, "/admin/dead-letters/webhooks/replay-all")
    assert "No rejected webhook was waiting" in flashed(browser, nothing)


def test_replay_all_takes_in_every_waiting_webhook(
    admin_app: Flask, browser: FlaskClient, upgraded_generic: Callable[[], None]
) -> None:
    refuse_webhook(browser, 1)
    refuse_webhook(browser, 2)
    upgraded_generic()
    sign_in(browser)
    assert "Replay all rejected webhooks (2)" in page_of(browser)

    answer = send_form(browser, "/admin/dead-letters/webhooks/replay-all")

    assert "2 webhooks replayed." in flashed(browser, answer)
    with admin_app.extensions["connector"].transaction() as session:
        rows = list(session.scalars(select(RejectedWebhook)))
        assert all(row.replayed_at is not None for row in rows)
    assert len(states(admin_app)) == 2  # one delivery per alert taken in


#: Every state-changing route of the page, with an id that exists once made.
ROUTES = [
    "/admin/dead-letters/deliveries/{delivery}/replay",
    "/admin/dead-letters/deliveries/{delivery}/discard",
    "/admin/dead-letters/deliveries/replay-all",
    "/admin/dead-letters/webhooks/{webhook}/replay",
    "/admin/dead-letters/webhooks/{webhook}/discard",
    "/admin/dead-letters/webhooks/replay-all",
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_form_without_its_csrf_token_changes_nothing(
    admin_app: Flask, browser: FlaskClient, upgraded_generic: Callable[[], None]
) -> None:
    post_alert(browser, 1, "fabrikam")
    make_dead(admin_app)
    refuse_webhook(browser, 1)
    upgraded_generic()
    [delivery] = states(admin_app)
    [webhook] = kept_ids(admin_app)
    sign_in(browser)
    for route in ROUTES:
        path = route.format(delivery=delivery, webhook=webhook)
        answer = browser.post(path, data={"reason": "no token"}, headers=REFERER)
        assert answer.status_code == 400, path
        assert "CSRF check failed" in answer.get_data(as_text=True)
    assert states(admin_app) == {delivery: "dead"}
    with admin_app.extensions["connector"].transaction() as session:
        row = session.get(RejectedWebhook, webhook)
        assert row is not None
        assert (row.replayed_at, row.discarded_at) == (None, None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("missing", ["424242", str(2**63), "9" * 40])
def test_an_unknown_or_impossible_id_is_a_404_page(browser: FlaskClient, missing: str) -> None:
    sign_in(browser)
    for route in ROUTES:
        if "{" not in route:
            continue
        path = route.format(delivery=missing, webhook=missing)
        answer = send_form(browser, path, reason="why not")
        assert answer.status_code == 404, path
        assert answer.mimetype == "text/html"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_replay_all_of_an_unknown_integration_is_a_404_page(browser: FlaskClient) -> None:
    sign_in(browser)
    for path in (
        "/admin/dead-letters/deliveries/replay-all",
        "/admin/dead-letters/webhooks/replay-all",
    ):
        answer = send_form(browser, path, integration_id="424242")
        assert answer.status_code == 404, path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_signed_out_the_page_leads_to_the_sign_in(browser: FlaskClient) -> None:
    answer = browser.get("/admin/dead-letters")
    assert answer.status_code == 302
    assert "/admin/login" in answer.headers["Location"]

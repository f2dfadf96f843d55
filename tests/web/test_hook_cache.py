"""A web process keeps what webhooks read of their sender and integration (web/hooks.py,
integrations/hook_cache.py); an edit made by ANOTHER process must still apply to the next
webhook here: a revoked credential is refused at once, a tenant map, a severity map or an
unmapped-tenant policy changed elsewhere applies, an integration switched off holds.

Two apps on one database stand for two web processes: `here` takes the webhooks (its memory
warmed first), `elsewhere` makes the edits through the JSON API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector import create_app
from tests.conftest import API_TOKEN, HOOK_TOKEN, default_integration_id

FABRIKAM = 29683415
CONTOSO = 29683499


@pytest.fixture
def elsewhere(connector_app: Flask, connector_settings: dict[str, object]) -> Iterator[Flask]:
    """A second app (another web process) on the same, already prepared database."""
    app = create_app(connector_settings)
    try:
        yield app
    finally:
        app.extensions["connector"].dispose()


def hook(client: FlaskClient, body: dict[str, Any], token: str = HOOK_TOKEN) -> Any:
    return client.post("/hooks/generic", json=body, headers={"Authorization": f"Bearer {token}"})


def api(app: Flask, method: str, path: str, body: Any = None) -> Any:
    response = app.test_client().open(
        f"/api/v1/{path}",
        method=method,
        json=body,
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.get_json()


def accepted(client: FlaskClient, body: dict[str, Any], token: str = HOOK_TOKEN) -> dict[str, Any]:
    response = hook(client, body, token)
    assert response.status_code == 202, response.get_data(as_text=True)
    [alert] = response.get_json()["accepted"]
    return dict(alert)


def alert(fingerprint: str, **extra: Any) -> dict[str, Any]:
    return {"id": fingerprint, "status": "active", "severity": "warning", "title": "Disk"} | extra


def test_a_credential_revoked_elsewhere_is_refused_on_the_next_webhook(
    connector_app: Flask, elsewhere: Flask
) -> None:
    integration = default_integration_id(connector_app)
    issued = api(
        elsewhere, "POST", f"integrations/{integration}/hook-credentials", {"scheme": "bearer"}
    )
    token = issued["token"]
    here = connector_app.test_client()
    accepted(here, alert("revoke-1"), token)  # remembered by this process
    accepted(here, alert("revoke-2"), token)

    api(elsewhere, "DELETE", f"integrations/{integration}/hook-credentials/{issued['id']}")

    refused = hook(here, alert("revoke-3"), token)
    assert refused.status_code == 401, refused.get_data(as_text=True)
    assert "revoked" in refused.get_json()["error"]["message"]
    # And it stays refused (forgotten here, so looked up again and not found).
    assert hook(here, alert("revoke-4"), token).status_code == 401
    # The preset token is untouched.
    accepted(here, alert("revoke-5"))


def test_a_tenant_mapped_elsewhere_routes_the_next_webhook(
    connector_app: Flask, elsewhere: Flask
) -> None:
    integration = default_integration_id(connector_app)
    here = connector_app.test_client()
    before = accepted(here, alert("tenant-1", tenant="contoso"))
    assert before["disposition"] == "queued", before  # unmapped: the default company

    api(
        elsewhere,
        "PUT",
        f"integrations/{integration}/tenants/contoso",
        {"company_id": CONTOSO, "enabled": False},
    )

    after = accepted(here, alert("tenant-2", tenant="contoso"))
    assert after["disposition"].startswith("dropped"), after  # mapped, switched off


def test_settings_changed_elsewhere_apply_to_the_next_webhook(
    connector_app: Flask, elsewhere: Flask
) -> None:
    integration = default_integration_id(connector_app)
    here = connector_app.test_client()
    first = accepted(here, alert("unmapped-1", tenant="nobody-knows"))
    assert first["disposition"] == "queued"

    api(elsewhere, "PATCH", f"integrations/{integration}", {"settings": {"unmapped": "drop"}})

    second = accepted(here, alert("unmapped-2", tenant="nobody-knows"))
    assert second["disposition"].startswith("dropped"), second


def test_an_integration_switched_off_elsewhere_holds_the_next_webhook(
    connector_app: Flask, elsewhere: Flask
) -> None:
    integration = default_integration_id(connector_app)
    here = connector_app.test_client()
    assert accepted(here, alert("off-1"))["disposition"] == "queued"

    api(elsewhere, "POST", f"integrations/{integration}/deactivate", {})

    assert accepted(here, alert("off-2"))["disposition"].startswith("held")

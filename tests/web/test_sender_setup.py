"""What to paste on each sending side, filled in with this service's URL (GET /api/v1/sources…)."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters import SOURCES
from tests.conftest import API_TOKEN, HOOK_TOKEN

API = {"Authorization": f"Bearer {API_TOKEN}"}


def test_the_sources_are_listed_with_their_webhook_urls(client: FlaskClient) -> None:
    answer = client.get("/api/v1/sources", headers=API, base_url="https://connector.example.net")
    assert answer.status_code == 200
    listed = {item["slug"]: item for item in answer.json["sources"]}
    assert set(listed) == set(SOURCES)
    assert listed["datto_rmm"]["hook_url"] == "https://connector.example.net/hooks/datto_rmm"
    assert listed["alertmanager"]["name"] == "Prometheus Alertmanager"


@pytest.mark.parametrize("slug", sorted(SOURCES))
def test_each_sources_setup_names_this_services_url(client: FlaskClient, slug: str) -> None:
    answer = client.get(
        f"/api/v1/sources/{slug}/sender-setup", headers=API, base_url="https://hooks.example.net"
    )
    assert answer.status_code == 200
    setup = answer.json
    assert setup["hook_url"] == f"https://hooks.example.net/hooks/{slug}"
    assert setup["snippets"], "every source says how to set its sender up"
    for snippet in setup["snippets"]:
        assert snippet["title"] and snippet["text"]
        assert setup["hook_url"] in snippet["where"] + snippet["text"]
        assert HOOK_TOKEN not in snippet["where"] + snippet["text"]  # a placeholder, never a token


def test_the_pasted_bodies_are_the_shipped_ones(client: FlaskClient) -> None:
    for slug, shipped in (("logicmonitor", "logicmonitor.json"), ("datto_rmm", "datto_rmm.json")):
        setup = client.get(f"/api/v1/sources/{slug}/sender-setup", headers=API).json
        with open(f"adapters/sources/bodies/{shipped}", encoding="utf-8") as f:
            assert setup["snippets"][0]["text"] == f.read()


def test_the_generic_example_is_accepted_as_it_is_shown(client: FlaskClient) -> None:
    """The curl line of the generic source, taken apart, posts an alert the service takes."""
    text = client.get("/api/v1/sources/generic/sender-setup", headers=API).json["snippets"][0]
    body = re.search(r"-d '(.*)'", text["text"], re.S)
    assert body is not None
    answer = client.post(
        "/hooks/generic",
        data=body.group(1),
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": text["content_type"]},
    )
    assert answer.status_code == 202, answer.json
    assert json.loads(body.group(1))["tenant"] == "fabrikam"


def test_the_alertmanager_receiver_points_here_and_sends_resolved(client: FlaskClient) -> None:
    text = client.get("/api/v1/sources/alertmanager/sender-setup", headers=API).json["snippets"][0]
    assert "send_resolved: true" in text["text"]
    assert "max_alerts: 500" in text["text"]
    assert "url: http://localhost/hooks/alertmanager" in text["text"]


def test_an_unknown_source_is_a_404_and_the_api_needs_its_token(client: FlaskClient) -> None:
    missing = client.get("/api/v1/sources/nagios/sender-setup", headers=API)
    assert missing.status_code == 404
    assert "nagios" in missing.json["error"]["message"]
    assert client.get("/api/v1/sources").status_code == 401


def test_behind_a_proxy_the_public_url_is_named_not_the_address_asked(
    client: FlaskClient, connector_app: Flask
) -> None:
    settings = connector_app.extensions["connector"].settings
    settings["PUBLIC_URL"] = "https://alerts.example.net/at/"
    answer = client.get("/api/v1/sources/generic/sender-setup", headers=API)
    assert answer.json["hook_url"] == "https://alerts.example.net/at/hooks/generic"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("alerts.example.net", "must be an http or https URL"),
        ("ftp://alerts.example.net", "must be an http or https URL"),
        ("https://alerts.example.net/?x=1", "must have no query"),
        ("https://user:pw@alerts.example.net", "must have no query, fragment or user information"),
    ],
)
def test_a_public_url_that_is_no_url_is_refused_naming_the_setting(
    value: str, problem: str
) -> None:
    from connector.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PUBLIC_URL") as refused:
        load_settings({"PUBLIC_URL": value})
    assert problem in str(refused.value)

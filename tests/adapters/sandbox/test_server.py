"""SandboxServer: the addresses a running sandbox gives its clients."""

from __future__ import annotations

import logging

import pytest
import requests

from adapters.sandbox import ApiUser, Sandbox, SandboxServer
from adapters.sandbox.server import without_query


def test_rest_url_is_the_base_the_zone_lookup_answers(
    sandbox_server: SandboxServer, api_user: ApiUser
) -> None:
    assert sandbox_server.rest_url == f"{sandbox_server.url}atservicesrest/"
    response = requests.get(
        f"{sandbox_server.rest_url}v1.0/zoneInformation",
        params={"user": api_user.username},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["url"] == sandbox_server.rest_url


def test_soap_url_is_the_endpoint_the_wsdl_names(sandbox_server: SandboxServer) -> None:
    assert sandbox_server.soap_url == f"{sandbox_server.url}ATServices/1.6/atws.asmx"
    response = requests.get(sandbox_server.soap_url, params={"WSDL": ""}, timeout=5)
    assert response.status_code == 200
    assert f'location="{sandbox_server.soap_url}"' in response.text


def test_the_access_log_shows_paths_without_their_query_strings(
    sandbox: Sandbox, api_user: ApiUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    with SandboxServer(sandbox, access_log=True) as server:
        response = requests.get(
            f"{server.rest_url}v1.0/zoneInformation",
            params={"user": api_user.username, "token": "canary-token-in-a-url"},
            timeout=5,
        )
    assert response.status_code == 200

    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/atservicesrest/v1.0/zoneInformation?<redacted>" in line for line in lines), lines
    assert not any("canary-token-in-a-url" in line or "user=" in line for line in lines)


def test_a_request_line_loses_only_its_query() -> None:
    assert without_query("/a/b?x=1&y=2") == "/a/b?<redacted>"
    assert without_query("/a/b") == "/a/b"

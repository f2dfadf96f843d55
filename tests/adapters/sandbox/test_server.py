"""SandboxServer: the addresses a running sandbox gives its clients."""

from __future__ import annotations

import requests

from adapters.sandbox import ApiUser, SandboxServer


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

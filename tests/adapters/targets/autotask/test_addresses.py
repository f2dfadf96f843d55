"""S5/S12: credentials never reach an address inside the network, whatever DNS answers.

A canary TCP listener on 127.0.0.1 stands for the service inside the network; the resolver is
replaced so that allowed names (`*.autotask.net`) point at it, as a hostile or rebinding DNS
answer would. Nothing may even connect to it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from adapters.targets.autotask import addresses
from adapters.targets.autotask.addresses import AddressGuard, RefusedAddress, why_not_public
from adapters.targets.autotask.http import check_outbound_url
from adapters.targets.autotask.rest import AutotaskRestClient
from adapters.targets.autotask.soap import AutotaskSoapClient
from connector.errors import TargetRejected, TargetUnavailable

#: S5's internal addresses, as a DNS answer can give them.
INTERNAL = {
    "127.0.0.1": "loopback",
    "127.0.0.2": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "fe80::1%eth0": "link-local",
    "100.64.0.1": "not global",
    "0.0.0.0": "unspecified",  # noqa: S104 -- an address DNS may answer, not one bound
    "fd00::1": "private",
    "224.0.0.1": "multicast",
    "240.0.0.1": "reserved",
}


@pytest.mark.parametrize(("address", "kind"), INTERNAL.items())
def test_an_internal_address_is_named_for_what_it_is(address: str, kind: str) -> None:
    assert why_not_public(address) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "20.42.0.10", "2606:4700:4700::1111"])
def test_a_public_address_is_allowed(address: str) -> None:
    assert why_not_public(address) is None


#: S5's URL forms of this machine and of the metadata address, and its schemes: the allow-list
#: refuses each before any resolving (an integration allowing only *.autotask.net).
REFUSED_URLS = [
    "https://127.0.0.1/atservicesrest/",
    "https://127.1/atservicesrest/",
    "https://2130706433/atservicesrest/",
    "https://0x7f000001/atservicesrest/",
    "https://[::1]/atservicesrest/",
    "https://[::ffff:127.0.0.1]/atservicesrest/",
    "https://10.0.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00::1]/",
    "file:///etc/passwd",
    "gopher://webservices.autotask.net/_x",
    "ftp://webservices.autotask.net/x",
    "http://webservices.autotask.net/atservicesrest/",
    "https://user:pw@webservices.autotask.net/atservicesrest/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_urls_naming_internal_places_are_refused_by_the_allow_list(url: str) -> None:
    with pytest.raises(TargetRejected, match="refusing to call it"):
        check_outbound_url(url, ["*.autotask.net"], what="zone URL")


@pytest.fixture
def canary() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that nothing may connect to (checked with `connections`)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    try:
        yield listener
    finally:
        listener.close()


def connections(listener: socket.socket) -> int:
    """How many connections reached the listener (its backlog holds them until accepted)."""
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


class FakeDns:
    """A resolver whose answers for a name come from a script, one per lookup."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> Sequence[Any]:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.asked.append(host)
        script = self.answers[host]
        address = script.pop(0) if len(script) > 1 else script[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port), 0, 0) if family == socket.AF_INET6 else (address, int(port))
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]


def rest_client(lookup: str, allowed: list[str]) -> AutotaskRestClient:
    return AutotaskRestClient(
        lookup, "api@example.test", "secret-x", "CODE-X", allowed_zone_hosts=allowed
    )


def soap_client(lookup: str, allowed: list[str]) -> AutotaskSoapClient:
    return AutotaskSoapClient(
        lookup, "api@example.test", "secret-x", "CODE-X", allowed_zone_hosts=allowed
    )


@pytest.mark.parametrize("make_client", [rest_client, soap_client], ids=["rest", "soap"])
@pytest.mark.parametrize("address", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_an_allowed_name_resolving_to_this_machine_gets_no_connection(
    canary: socket.socket, monkeypatch: pytest.MonkeyPatch, make_client: Any, address: str
) -> None:
    port = canary.getsockname()[1]
    dns = FakeDns({"webservices.autotask.net": [address]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    client = make_client(
        f"https://webservices.autotask.net:{port}/atservicesrest/", ["*.autotask.net"]
    )

    with pytest.raises(TargetRejected) as refused:
        client.check_credentials()

    assert "resolves to" in str(refused.value) and "refusing to call it" in str(refused.value)
    assert dns.asked == ["webservices.autotask.net"]
    assert connections(canary) == 0


def test_a_rebinding_name_connects_only_to_the_address_it_checked(
    canary: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public at the first lookup, this machine at the second: each connection resolves once
    and connects to what it checked, so the second is refused and the first went public."""
    port = canary.getsockname()[1]
    dns = FakeDns({"webservices.autotask.net": ["20.42.0.10", "127.0.0.1"]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    dialled: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        dialled.append(address)
        raise ConnectionRefusedError("no route in this test")

    monkeypatch.setattr(addresses.urllib3_connection, "create_connection", refuse)
    client = rest_client(
        f"https://webservices.autotask.net:{port}/atservicesrest/", ["*.autotask.net"]
    )

    with pytest.raises(TargetUnavailable, match="request not sent"):
        client.check_credentials()
    with pytest.raises(TargetRejected, match="resolves to 127.0.0.1"):
        client.check_credentials()

    assert dialled == [("20.42.0.10", port)]
    assert connections(canary) == 0


def test_a_host_named_exactly_may_be_private(
    canary: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` allows 127.0.0.1 for its sandbox: a host named without a wildcard is the
    admin's choice, and connects (here to the canary, which answers nothing: a read timeout)."""
    port = canary.getsockname()[1]
    guard = AddressGuard(
        ["*.autotask.net", "sandbox.internal"],
        resolver=FakeDns({"sandbox.internal": ["127.0.0.1"]}),
    )

    assert guard.addresses("sandbox.internal", port)[0][4] == ("127.0.0.1", port)
    with pytest.raises(RefusedAddress, match="loopback"):
        AddressGuard(
            ["*.internal"], resolver=FakeDns({"sandbox.internal": ["127.0.0.1"]})
        ).addresses("sandbox.internal", port)


def test_one_internal_answer_among_public_ones_refuses_the_host() -> None:
    def both(host: str, port: int) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("20.42.0.10", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    with pytest.raises(RefusedAddress, match="10.1.2.3 .private."):
        AddressGuard(["*.autotask.net"], resolver=both).addresses("webservices.autotask.net", 443)

"""Where a connection carrying Autotask credentials may go: the address check at connect time.

The zone allow-list (`http.check_outbound_url`) judges a URL's host name; a name is only a
pointer. A name under `*.autotask.net` that resolves to 127.0.0.1, 10.0.0.1 or the cloud metadata
address 169.254.169.254 (a hostile or broken DNS answer, or DNS rebinding: public when checked,
private when used) would carry the credentials to a service inside the network. So every
connection resolves its host once, refuses if any answer is not a public address, and connects
to exactly the addresses it checked. Only a host the integration names exactly in its allowed
zone hosts (as `make run` does with 127.0.0.1 for its sandbox) may be private.
Reference: reliability-security.md §4.5 and S5 (the OWASP SSRF prevention cheat sheet's
"validate the resolved address, and connect to the one validated").
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from adapters.targets.autotask.profile import REFUSED_ADDRESS

#: (family, type, proto, canonname, sockaddr), as socket.getaddrinfo answers.
AddressInfo = tuple[Any, Any, int, str, Any]
Resolver = Callable[[str, int], Sequence[AddressInfo]]


class RefusedAddress(Exception):  # noqa: N818 -- reads as what happened, like TargetRejected
    """A host resolved to an address credentials must not go to; nothing was sent.

    Not an OSError (nor a requests error, which are OSErrors): urllib3 would take it for a
    broken connection and requests for an outcome unknown; it passes through both unchanged.
    """


def resolve(host: str, port: int) -> Sequence[AddressInfo]:
    """The host's addresses for a TCP connection (the system resolver)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def why_not_public(address: str) -> str | None:
    """Why `address` is no public internet address (loopback, private, …), or None if it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) aside
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # 100.64.0.0/10 (carrier-grade NAT) and other special ranges
        return "not global"
    return None


class AddressGuard:
    """Resolves a host once per connection and lets it connect only to addresses it checked."""

    def __init__(self, allowed_hosts: Sequence[str], resolver: Resolver = resolve) -> None:
        # Patterns without a wildcard name a host exactly: an admin's deliberate choice (the
        # local sandbox), which may be private. "*.autotask.net" vouches for no address.
        self.private_hosts = frozenset(
            p.strip().lower() for p in allowed_hosts if p.strip() and "*" not in p
        )
        self.resolver = resolver

    def addresses(self, host: str, port: int) -> list[AddressInfo]:
        """The host's addresses, each one allowed; RefusedAddress if any answer is not."""
        answers = list(self.resolver(host, port))
        if host.lower().strip("[]") in self.private_hosts:
            return answers
        for *_, sockaddr in answers:
            reason = why_not_public(sockaddr[0])
            if reason is not None:
                raise RefusedAddress(
                    f"host {host!r} resolves to {sockaddr[0]} ({reason}), not a public address;"
                    f" {REFUSED_ADDRESS}"
                )
        return answers

    def connect(self, conn: HTTPConnection) -> socket.socket:
        """urllib3's `_new_conn` with the check: connect to the first checked address that
        answers, mapping failures as urllib3 does (so requests sees the usual errors)."""
        host = conn._dns_host  # noqa: SLF001 -- urllib3's name for the host to resolve
        try:
            answers = self.addresses(host, conn.port)
        except socket.gaierror as e:
            raise NameResolutionError(conn.host, conn, e) from e
        last: OSError | None = None
        for *_, sockaddr in answers:
            try:
                sock = urllib3_connection.create_connection(
                    (sockaddr[0], sockaddr[1]),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as e:
                raise ConnectTimeoutError(
                    conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
                ) from e
            except OSError as e:
                last = e
                continue
            return sock
        raise NewConnectionError(conn, f"Failed to establish a new connection: {last}")

    def adapter(self) -> HTTPAdapter:
        """A requests transport adapter whose every connection goes through this guard."""
        return _GuardedAdapter(self)


class _GuardedAdapter(HTTPAdapter):
    """requests' adapter with pools whose connections are opened by an `AddressGuard`."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """requests' pool manager, with guarded connection classes for http and https."""
        super().init_poolmanager(*args, **kwargs)
        guard = self.guard

        class GuardedHTTPConnection(HTTPConnection):
            def _new_conn(self) -> socket.socket:
                return guard.connect(self)

        class GuardedHTTPSConnection(HTTPSConnection):
            def _new_conn(self) -> socket.socket:
                return guard.connect(self)

        class GuardedHTTPPool(HTTPConnectionPool):
            ConnectionCls = GuardedHTTPConnection

        class GuardedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = GuardedHTTPSConnection

        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPPool,
            "https": GuardedHTTPSPool,
        }

"""The HTTP client both Autotask flavours build on: session, timeouts, URL guard, errors, records.

Modelled on Sentry's BaseApiClient (../shared/reference/style-anchors.md §9.3): every request has
a timeout and follows no redirect, goes only to an allowed zone host, and every transport failure
becomes a typed `connector.errors.TargetError`; each call is reported once to the recorder, and no
secret reaches a message or a record. The REST and SOAP clients add what their API says.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError

from adapters.targets.autotask.addresses import AddressGuard, RefusedAddress
from adapters.targets.autotask.errors import (
    AutotaskUnavailable,
    UnexplainedRefusal,
    credentials_refused,
)
from adapters.targets.autotask.profile import DEFAULT_ALLOWED_ZONE_HOSTS, REFUSED_ADDRESS
from connector.domain import REDACTED, ApiCallRecord, ZoneAnswer, redact_text, secret_forms
from connector.errors import TargetAuthError, TargetError, TargetRejected
from connector.ports import CallRecorder, ZoneListener

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: How much of an unexpected answer an error keeps for the dead letter.
BODY_KEEP_CHARS = 2000

#: How much of an answer's text a TargetResponse keeps (the delivery log shows it).
RESPONSE_KEEP_BYTES = 64 * 1024

#: Request headers whose values are credentials: a kept request shows REDACTED instead.
SECRET_HEADERS = frozenset({"secret", "apiintegrationcode", "authorization"})

#: Headers the integration log never shows the value of: the credentials, the user name that
#: goes with them, and cookies either way.
LOGGED_SECRET_HEADERS = SECRET_HEADERS | {"username", "cookie", "set-cookie"}

#: How much of a call's request and answer body the integration log keeps (api_call.request and
#: .response); the rest is cut, with a marker saying how much.
LOG_BODY_KEEP_CHARS = 16 * 1024

#: Headers the HTTP transport owns; an admin's extra headers never set them (the delivery
#: request editor refuses them too, connector.payloads.requests.RESERVED_HEADERS).
TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "cookie"}
)

_HOST_CHARS = re.compile(r"[a-z0-9.:\-]+")


@dataclass
class CallNote:
    """What a call learnt for its record: the HTTP status, how many records it carried, and the
    request and answer as the integration log keeps them (redacted, bodies cut)."""

    status: int | None = None
    records: int | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None


class AutotaskHttpClient:
    """One Autotask API user's connection: what the REST and SOAP clients share."""

    #: The zone of a user rarely changes; look it up again after this many seconds (and after a
    #: failure that suggests it moved, see `_moved_zone`).
    ZONE_TTL_SECONDS = 3600.0

    #: Prefix of the client's log events ("autotask.rest.call" …) and the zone event's field.
    LOG_NAME = "autotask"
    ZONE_LOG_FIELD = "zone_url"

    def __init__(
        self,
        zone_lookup_url: str,
        username: str,
        secret: str,
        integration_code: str,
        *,
        allowed_zone_hosts: Sequence[str] = DEFAULT_ALLOWED_ZONE_HOSTS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        recorder: CallRecorder | None = None,
        session: requests.Session | None = None,
        zone_ttl: float = ZONE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        known_zone: str | None = None,
        on_zone: ZoneListener | None = None,
    ) -> None:
        self.zone_lookup_url = zone_lookup_url
        self.username = username
        self._secret = secret
        self._integration_code = integration_code
        self._secrets = (secret, integration_code, *self._derived_secrets())
        self._secret_forms = secret_forms(*self._secrets)
        self.allowed_zone_hosts = tuple(p.strip().lower() for p in allowed_zone_hosts if p.strip())
        # requests' timeout is (connect, read); every request carries it.
        # https://requests.readthedocs.io/en/latest/user/advanced/#timeouts
        self.timeout = (connect_timeout, read_timeout)
        self.recorder = recorder
        self.session = session or requests.Session()
        # Every connection checks the addresses its host resolves to (DNS can point an allowed
        # name anywhere): see adapters.targets.autotask.addresses.
        guarded = AddressGuard(self.allowed_zone_hosts).adapter()
        self.session.mount("https://", guarded)
        self.session.mount("http://", guarded)
        self.zone_ttl = zone_ttl
        self.clock = clock
        self._zone_lock = threading.Lock()
        self._zone: str | None = None
        self._zone_fetched = 0.0
        #: The zone came from an earlier lookup (`known_zone`) and no call has gone through it
        #: yet: a failure that suggests a wrong zone has it looked up again (`_moved_zone`).
        self._zone_unconfirmed = False
        #: The zone a lookup replaced: a request rendered under it goes to the new one.
        self._former_zone: str | None = None
        self.on_zone = on_zone
        if known_zone:
            self._start_from(known_zone)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(zone_lookup_url={self.zone_lookup_url!r},"
            f" username={self.username!r}, secret=<secret>, integration_code=<secret>)"
        )

    # -- zone ----------------------------------------------------------------------------------

    def _start_from(self, known_zone: str) -> None:
        """Take a zone an earlier lookup gave (another process, before a restart) as looked up.

        It saves a lookup per process start; it is still only a guess: a zone host no longer
        allowed is ignored, and a failure that suggests a wrong zone looks the zone up again.
        """
        try:
            self._check_outbound_url(known_zone, what="zone URL")
        except TargetRejected:
            return
        self._zone = known_zone
        self._zone_fetched = self.clock()
        self._zone_unconfirmed = True

    def _cached_zone(self, *, refresh: bool = False) -> str:
        """The zone's address, looked up (`_lookup_zone`) and cached for a TTL.

        A new lookup's answer goes to `on_zone` (outside the lock), which keeps it for other
        processes and restarts.
        """
        looked_up: ZoneAnswer | None = None
        with self._zone_lock:
            fresh = self.clock() - self._zone_fetched < self.zone_ttl
            if self._zone is None or refresh or not fresh:
                looked_up = self._lookup_zone()
                if self._zone is not None and looked_up.url != self._zone:
                    self._former_zone = self._zone
                self._zone = looked_up.url
                self._zone_fetched = self.clock()
                self._zone_unconfirmed = False
            zone = self._zone
        if looked_up is not None and self.on_zone is not None:
            self.on_zone(looked_up)
        return zone

    def _lookup_zone(self) -> ZoneAnswer:
        """Ask Autotask where this user's database lives, and which database it is (each
        flavour asks its own way)."""
        raise NotImplementedError

    def _moved_zone(self, error: TargetError, zone: str | None) -> str | None:
        """After a failure under `zone`: the new zone if the failure suggests a wrong zone and a
        new lookup gives another one, else None; the caller then repeats its call, once.

        A 401 can mean the database moved to another zone (django-autotask MAX_401_ATTEMPTS = 1,
        autotask-api.md §2). A zone kept from an earlier lookup (`known_zone`) may be out of date
        in more ways: its host answers with a redirect or a 404 (no such route there), or cannot
        be reached at all. Each of these leaves the request unapplied, so repeating it is safe.
        """
        if zone is None or not self._suggests_wrong_zone(error):
            return None
        fresh = self._cached_zone(refresh=True)
        if fresh == zone:
            return None
        logger.info(f"{self.LOG_NAME}.zone_changed", extra={self.ZONE_LOG_FIELD: fresh})
        return fresh

    def _suggests_wrong_zone(self, error: TargetError) -> bool:
        """Whether `error` may come from calling the wrong zone (see `_moved_zone`)."""
        status = (error.response or {}).get("status")
        if status == 401:
            return True
        if not self._zone_unconfirmed:
            return False
        if isinstance(status, int) and (300 <= status < 400 or status == 404):
            return True
        # No answer at all, and the request certainly not sent: the host is gone or refuses.
        return isinstance(error, AutotaskUnavailable) and not error.ambiguous and status is None

    def _confirm_zone(self, zone: str | None) -> None:
        """A call under `zone` succeeded: it is the right one, however it was learnt."""
        if zone is not None and zone == self._zone:
            self._zone_unconfirmed = False

    def _check_outbound_url(self, url: str, *, what: str) -> None:
        """Refuse a URL credentials must not go to (see `check_outbound_url`)."""
        check_outbound_url(url, self.allowed_zone_hosts, what=what)

    def check_request_url(self, url: str) -> None:
        """Refuse (TargetRejected) a request URL credentials must not go to: off the allowed zone
        hosts, or not under the integration's own zone (its scheme, host, port and API path).

        Why the zone and not only the host: a delivery request's URL is the admin's (or an API
        token holder's) to edit, and every request carries the API user's credentials. On an
        allowed host, another port or path (the local sandbox's controls, another service on a
        loopback port) would receive them and, through a test delivery, show its answer back.
        """
        self._check_outbound_url(url, what="request URL")
        zone = self._cached_zone()
        if any(is_under(url, base) for base in (zone, self._former_zone) if base):
            return
        raise TargetRejected(
            f"Autotask request URL {url!r} is not under the integration's zone {zone!r} (its"
            f" scheme, host, port and API path); {REFUSED_ADDRESS}."
        )

    # -- credentials ---------------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Make the one call that needs nothing but the credentials; its refusal is raised as is.

        No second opinion is asked: a refusal without a reason stays one (`UnexplainedRefusal`).
        """
        self._check_credentials()

    def _check_credentials(self) -> None:
        """A call that needs nothing but the credentials (each flavour has its own)."""
        raise NotImplementedError

    def _unless_credentials_refused(self, error: TargetError) -> TargetError:
        """After a refusal that gives no reason, ask whether Autotask still takes our credentials.

        Autotask answers an unknown user or tracking identifier exactly as it answers some
        refusals of the request itself (a bare 500 over REST, autotask-api.md §2 and apigrate
        #19; a ReturnCode ≠ 1 over SOAP, python-atws #64, §10); a refusal of the check too means
        the credentials are the problem.
        """
        try:
            self._check_credentials()
        except TargetError as probe:
            if isinstance(probe, TargetAuthError | UnexplainedRefusal):
                return credentials_refused(error, probe)
            # any other failure: the check could not run, so the refusal stands as it was
        return error

    def _sent_following_the_zone(self, url: str, zone: str | None, send: Callable[[str], _T]) -> _T:
        """`send(url)`, with a refusal that gives no reason checked against the credentials.

        A failure that suggests the wrong zone (a 401, as the database may have moved zone:
        django-autotask MAX_401_ATTEMPTS = 1, §2; more for a kept zone, see `_moved_zone`): a
        URL under the old zone `zone` is sent again under the new one, once, and only when the
        zone actually changed.
        """
        former = self._former_zone
        if former and zone and url.startswith(former) and not url.startswith(zone):
            # Rendered (##ZONEURL##) before a lookup found the zone had moved.
            url = zone + url[len(former) :]
            self._check_outbound_url(url, what="request URL")
        try:
            try:
                answer = send(url)
            except UnexplainedRefusal as e:
                raise self._unless_credentials_refused(e) from e
        except TargetError as e:
            if zone is None or not url.startswith(zone):
                raise
            fresh = self._moved_zone(e, zone)
            if fresh is None:
                raise
            moved = fresh + url[len(zone) :]
            self._check_outbound_url(moved, what="request URL")
            return send(moved)
        self._confirm_zone(zone)
        return answer

    # -- transport -----------------------------------------------------------------------------

    def _http(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
        note: CallNote | None = None,
    ) -> requests.Response:
        """Send one request with the timeouts and no redirects; a transport failure is typed.

        With a `note`, the request and its answer are kept on it for the integration log.
        """
        try:
            if note is not None:
                sent = requests.Request(
                    method, url, headers=dict(headers), params=params, json=json, data=data
                ).prepare()
                note.request = {
                    "url": self._redact(sent.url or url),
                    "headers": self._logged_headers(sent.headers),
                    "body": self._logged_body(_text(sent.body)),
                }
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=dict(headers),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as e:
            raise transport_error(what, e, self._redact) from e
        except RefusedAddress as e:
            raise TargetRejected(self._redact(f"Autotask {what}: {e}")) from e
        if note is not None:
            note.response = {
                "status": response.status_code,
                "headers": self._logged_headers(response.headers),
                "body": self._logged_body(_text(response.content)),
            }
        return response

    @contextmanager
    def _recorded(self, method: str, entity: str) -> Iterator[CallNote]:
        """Report the call made inside to the recorder exactly once, failed or not.

        The recorder must not raise (its exception would replace the call's result).
        """
        at = datetime.now(UTC)
        started = time.monotonic()
        note = CallNote()
        error: str | None = None
        try:
            yield note
        except TargetError as e:
            error = str(e)
            raise
        finally:
            record = ApiCallRecord(
                at=at,
                method=method,
                entity=entity,
                http_status=note.status,
                execution_ms=round((time.monotonic() - started) * 1000, 3),
                records=note.records,
                error=error,
                request=note.request,
                response=note.response,
            )
            logger.debug(
                f"{self.LOG_NAME}.call",
                extra={
                    "method": record.method,
                    "entity": record.entity,
                    "http_status": record.http_status,
                    "execution_ms": record.execution_ms,
                },
            )
            if self.recorder is not None:
                self.recorder(record)

    # -- redaction -----------------------------------------------------------------------------

    def _derived_secrets(self) -> tuple[str, ...]:
        """Values built from the secret (a Basic token, say) that redaction must hide too."""
        return ()

    def redact_also(self, secret: str) -> None:
        """Hide `secret` too, from now on, in every message and recorded call: a secret a call
        carries on the caller's behalf (a ticket webhook's signing secret, say)."""
        self._secrets = (*self._secrets, secret)
        self._secret_forms = secret_forms(*self._secrets)

    def _redact(self, text: str) -> str:
        """Never let a secret (the secret, the tracking identifier …) into a message or record."""
        return redact_text(text, self._secret_forms)

    def _redact_body(self, text: str) -> str:
        """`_redact` for a request's or answer's body (SOAP keeps its XML well-formed)."""
        return self._redact(text)

    def _logged_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers for the integration log: credentials' values hidden, the rest redacted."""
        return {
            name: REDACTED if name.lower() in LOGGED_SECRET_HEADERS else self._redact(value)
            for name, value in headers.items()
        }

    def _logged_body(self, text: str) -> str:
        """A body for the integration log: redacted, cut at LOG_BODY_KEEP_CHARS with a marker.

        The cut comes first and never splits a secret: a cut that would leave the start of one
        (of any of its forms) drops that start too, so no part of a secret is kept.
        """
        if len(text) <= LOG_BODY_KEEP_CHARS:
            return self._redact_body(text)
        head = text[:LOG_BODY_KEEP_CHARS]
        shortened = True
        while shortened:
            shortened = False
            for form in self._secret_forms:
                for size in range(min(len(form), len(head)) - 1, 0, -1):
                    if head.endswith(form[:size]):
                        head, shortened = head[:-size], True
                        break
        return self._redact_body(head) + cut_marker(len(text) - len(head))


def cut_marker(dropped: int) -> str:
    """What ends a body the integration log cut: how many characters are not kept."""
    return f"\n… [cut: {dropped} more characters not kept]"


def _text(body: str | bytes | None) -> str:
    """A request's or answer's body as text (UTF-8, whatever it declares; see response_text)."""
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return body


def check_outbound_url(url: str, allowed_hosts: Sequence[str], *, what: str) -> None:
    """Refuse a URL credentials must not go to (SSRF guard).

    https on an allowed host, or http to an allowed loopback host (the local sandbox).
    Reference: reliability-security.md §4.5 and S12.
    """
    parts = urlsplit(url)
    try:
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        host = ""
    problem = ""
    if not host or not _HOST_CHARS.fullmatch(host):
        problem = "has no valid host"
    elif parts.username is not None or parts.password is not None:
        problem = "carries user information"
    elif parts.query or parts.fragment:
        problem = "carries a query or fragment"
    elif not any(host_matches(host, pattern) for pattern in allowed_hosts):
        problem = f"is on host {host!r}, which is not in the allowed zone hosts"
    elif parts.scheme == "http" and not is_loopback(host):
        problem = "uses http; only https is allowed outside the local machine"
    elif parts.scheme not in ("https", "http"):
        problem = f"uses scheme {parts.scheme!r}"
    if problem:
        raise TargetRejected(f"Autotask {what} {url!r} {problem}; {REFUSED_ADDRESS}.")


def is_under(url: str, base: str) -> bool:
    """Whether `url` is `base` or below it: the same scheme, host and port, and a path that is
    `base`'s or under it (letter case aside, as Autotask's paths are), with no dot segment."""
    target, root = urlsplit(url), urlsplit(base)
    try:
        ports = (_port(target), _port(root))
    except ValueError:
        return False
    if (target.scheme.lower(), (target.hostname or "").lower(), ports[0]) != (
        root.scheme.lower(),
        (root.hostname or "").lower(),
        ports[1],
    ):
        return False
    path = unquote(target.path)
    if any(segment in (".", "..") for segment in path.split("/")) or "\\" in path:
        return False
    prefix = root.path.lower()
    path = path.lower()
    return path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/")


def _port(parts: SplitResult) -> int:
    """The port a URL connects to (its default when it names none)."""
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def host_matches(host: str, pattern: str) -> bool:
    """ "*.autotask.net" matches any subdomain of autotask.net; anything else matches exactly."""
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None.

    Whether Autotask sends one is UNCERTAIN (autotask-api.md §7); it is honoured when present.
    """
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transport_error(
    what: str, error: requests.RequestException, redact: Callable[[str], str]
) -> TargetError:
    """Map a requests exception; tell 'never sent' apart from 'sent, outcome unknown'."""
    name = type(error).__name__
    if isinstance(error, requests.ConnectTimeout):
        sent = False
    elif isinstance(error, requests.ConnectionError):
        # urllib3 wraps failures to connect (refused, DNS, TLS handshake) in MaxRetryError;
        # a connection dropped after the request went out arrives as a bare ProtocolError
        # ("Connection aborted."), re-raised without retry by requests' Retry(0, read=False).
        sent = not (
            isinstance(error, requests.exceptions.SSLError | requests.exceptions.ProxyError)
            or (error.args and isinstance(error.args[0], MaxRetryError))
        )
    elif isinstance(error, requests.Timeout | requests.exceptions.ChunkedEncodingError):
        sent = True  # ReadTimeout, or the answer broke off: Autotask may have acted
    elif isinstance(
        error,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidHeader,
    ):
        return TargetRejected(redact(f"Autotask {what}: {name}: {error}"))
    else:
        sent = True
    outcome = "no answer, outcome unknown" if sent else "request not sent"
    return AutotaskUnavailable(
        redact(f"Autotask {what}: {outcome} ({name}: {error})"), ambiguous=sent
    )


def merge_headers(extra: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """The admin's `extra` headers with the adapter's `own` (credentials, content type) winning."""
    merged: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for name, value in extra.items():
        if name.lower() not in TRANSPORT_HEADERS:
            merged[name] = value
    # Header names are case-insensitive (RFC 9110 §5.1): "secret" must not survive next to
    # "Secret", so the adapter's own headers replace the admin's whatever their spelling.
    merged.update(own)
    return dict(merged.items())


def sent_record(
    method: str, url: str, headers: Mapping[str, str], body: str, redact: Callable[[str], str]
) -> dict[str, object]:
    """A request as it went out, for the delivery log, with every credential redacted."""
    return {
        "method": method,
        "url": redact(url),
        "headers": {
            name: REDACTED if name.lower() in SECRET_HEADERS else redact(value)
            for name, value in headers.items()
        },
        "body": redact(body),
    }


def response_text(response: requests.Response, redact: Callable[[str], str]) -> str:
    """The answer's first RESPONSE_KEEP_BYTES as text, redacted."""
    # UTF-8 whatever the Content-Type says: JSON is UTF-8 (RFC 8259 §8.1) and ATWS answers
    # declare encoding="utf-8" (autotask-api.md §10). requests would guess ISO-8859-1 for a
    # text/xml without a charset (RFC 2616 §3.7.1) and garble the text.
    return redact(response.content[:RESPONSE_KEEP_BYTES].decode("utf-8", errors="replace"))

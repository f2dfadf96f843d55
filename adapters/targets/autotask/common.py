"""What Autotask's REST and SOAP adapters share: the outbound-URL guard, headers, errors."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError

from connector.errors import TargetAuthError, TargetError, TargetRejected, TargetUnavailable

#: Zones live on these hosts unless an integration allows others (the sandbox: 127.0.0.1).
DEFAULT_ALLOWED_ZONE_HOSTS = ("*.autotask.net",)

#: How much of an unexpected answer an error keeps for the dead letter.
BODY_KEEP_CHARS = 2000

#: Stands in for a secret wherever one would otherwise appear.
REDACTED = "<redacted>"

#: Thread limiting and the hourly threshold. n8n-nodes-autotask saw thread rejections (code
#: Itgenatr005, "API thread threshold of 3 threads has been exceeded") "arrive with a non-429
#: HTTP status", so these win on any status. The hourly threshold's own wording is not
#: published; it is answered with 429 (sandbox) and matched by "request threshold" only in case.
#: Reference: ../shared/reference/autotask-api.md §7, §8 and §14.
RATE_LIMIT_MARKERS = ("thread threshold", "itgenatr005", "request threshold")

#: Real Autotask words that mark a refusal of this very request (validation, a reference that
#: does not exist, a permission): the same request always meets it again, so it is never
#: retried. Each is quoted from a real answer, never from the sandbox:
#: "Reference value on field: contactID of type: Contact does not exist or is invalid. ; on
#: record number [1]." and "dueDateTime is required.; on record number [0]." (§14), "String value
#: exceeds maximum length (field:description)." (§14, n8n-nodes-autotask #48), "Value does not
#: reference an existing entity for taskType ." (§7, autotask-mcp #46), "… must be unique."
#: (§7, OFFICIAL REST_Creating_Resources_POST.htm), "The logged in Resource does not have the
#: adequate permissions" (§7, django-autotask), "Unable to find projectID in the TimeEntry
#: Entity" (§14, autotask-mcp PR #282), "Invalid query syntax." (§8, OFFICIAL thresholds page),
#: "you must assign both …" (§3, msp-claude-plugins #32).
VALIDATION_MARKERS = (
    "on record number [",
    "reference value on field",
    "is required",
    "exceeds maximum length",
    "does not reference an existing entity",
    "must be unique",
    "adequate permissions",
    "unable to find",
    "invalid query syntax",
    "you must assign both",
)

#: How often a request is tried that Autotask refused in its own error shape without saying why
#: (real tenants often answer just `{"errors":["Something went wrong"]}`, §14, apigrate #19).
#: Such a refusal usually repeats, but a passing fault on Autotask's side looks the same.
GENERIC_REFUSAL_ATTEMPTS = 3

#: Autotask field → the mapping setting that fills it, for refusals naming a required field
#: (API-only ticket categories make fields required, §14: API_only_Ticket_Categories.htm).
REQUIRED_FIELD_SETTINGS = {
    "queueid": "set a queue in the mapping (queue_id, or a monitor override's queue)",
    "billingcodeid": "set a work type in the mapping (work_type, or a monitor override's)",
    "allocationcodeid": "set a work type in the mapping (work_type, or a monitor override's)",
    "duedatetime": "set a due time in the mapping (due_days)",
    "issuetype": "set an issue type in the mapping (issue_type, or a monitor override's)",
    "subissuetype": "set a sub-issue type in the mapping (sub_issue_type)",
    "tickettype": "set a ticket type in the mapping (ticket_type)",
    "source": "set a ticket source in the mapping (source)",
    "resolution": "make the Cleared request set the ticket's resolution",
    "contactid": "add contactID to the create request",
}

_REQUIRED_FIELD = re.compile(r"(?:^|[\s;:])([A-Za-z]+) is required", re.IGNORECASE)
_MISSING_FIELD = re.compile(r"missing required field:?\s*([A-Za-z]+)", re.IGNORECASE)


def credentials_refused(refusal: TargetError, check: TargetError) -> TargetAuthError:
    """The error for a refusal whose credentials check (a call needing nothing else) failed too."""
    return TargetAuthError(
        f"{refusal}; Autotask refused a check of the credentials too ({check}): it does not"
        " accept this API user's username, secret or tracking identifier",
        response=refusal.response,
    )


def is_validation_refusal(messages: Sequence[str]) -> bool:
    """Whether Autotask's messages name a fault of the request itself (VALIDATION_MARKERS)."""
    text = " ".join(messages).lower()
    return any(marker in text for marker in VALIDATION_MARKERS)


def explain_refusal(messages: Sequence[str]) -> str:
    """Words for the admin when Autotask requires a field the request did not carry, or ""."""
    hints = []
    for message in messages:
        for pattern in (_REQUIRED_FIELD, _MISSING_FIELD):
            for name in pattern.findall(message):
                hint = REQUIRED_FIELD_SETTINGS.get(name.lower())
                line = (
                    f"Autotask requires {name} for tickets of this category: {hint}"
                    if hint
                    else f"Autotask requires {name} (its ticket category may demand it)"
                )
                if line not in hints:
                    hints.append(line)
    return "; ".join(hints)


#: How much of an answer's text a TargetResponse keeps (the delivery log shows it).
RESPONSE_KEEP_BYTES = 64 * 1024

#: Request headers whose values are credentials: a kept request shows REDACTED instead.
SECRET_HEADERS = frozenset({"secret", "apiintegrationcode", "authorization"})

#: Headers the HTTP transport owns; an admin's extra headers never set them (the delivery
#: request editor refuses them too, connector.payloads.requests.RESERVED_HEADERS).
TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "cookie"}
)

_HOST_CHARS = re.compile(r"[a-z0-9.:\-]+")


class AutotaskUnavailable(TargetUnavailable):
    """No usable answer from Autotask; retrying may help.

    `ambiguous` is True when the request may have reached Autotask and been applied (read timeout,
    connection dropped after sending, a gateway error or server fault, a 2xx whose body we could
    not read): for a create, the ticket may exist, so look its marker up before creating again.
    False means the request was certainly not applied (connection refused, connect timeout, 503).
    """

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool,
        response: dict[str, object] | None = None,
        retry_after: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        super().__init__(
            message, response=response, retry_after=retry_after, max_attempts=max_attempts
        )
        self.ambiguous = ambiguous


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
        raise TargetRejected(f"Autotask {what} {url!r} {problem}; refusing to call it.")


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


def secret_forms(*secrets: str) -> tuple[str, ...]:
    """Each secret as text may carry it: as is, XML-escaped and JSON-escaped; longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update({secret, xml_escape(secret), json.dumps(secret)[1:-1]})
    return tuple(sorted(forms, key=len, reverse=True))


def redact_text(text: str, forms: Sequence[str], marker: str = REDACTED) -> str:
    """`text` with every form of every secret (`secret_forms`) replaced by `marker`."""
    for form in forms:
        text = text.replace(form, marker)
    return text


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

"""Autotask's ticket webhook callouts: their signature and their body (connector.ports).

What is known (../shared/reference/autotask-api.md §14, "Webhooks"; all of it unconfirmed, from
n8n-nodes-autotask's types/webhook.ts and helpers/webhook/signature.ts, which cite autotask.net
DeveloperHelp SecretKeyPayloadVerification.htm): the body is
`{Action, Guid, EntityType, Id, Fields, EventTime, SequenceNumber, PersonID}`; the header
`X-Hook-Signature` carries `sha1=` and the base64 HMAC-SHA1 of the body keyed with the webhook's
SecretKey. That client signs a re-escaped copy of the body (some characters inside strings as
`\\uXXXX`) first and the raw body as a fallback, so both are accepted here. The header's name and
the algorithm are settings (TICKET_WEBHOOK_SIGNATURE_HEADER, _ALGORITHM) should a tenant differ.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from connector.domain import TicketChange, TicketChangeAction
from connector.errors import AuthError, ConfigError, PayloadError

#: Where Autotask puts the signature (SecretKeyPayloadVerification.htm via n8n-nodes-autotask).
SIGNATURE_HEADER = "X-Hook-Signature"
#: The HMAC's hash, also the value's prefix (`sha1=`).
SIGNATURE_ALGORITHM = "sha1"
#: The algorithms a setting may name instead.
ALGORITHMS = ("sha1", "sha256")

#: Autotask's Action words → what they say happened (types/webhook.ts).
ACTIONS = {
    "create": TicketChangeAction.CREATED,
    "update": TicketChangeAction.UPDATED,
    "delete": TicketChangeAction.DELETED,
    "deactivated": TicketChangeAction.DEACTIVATED,
}

#: The characters Autotask is reported to escape inside strings before signing, besides every
#: non-ASCII one (n8n-nodes-autotask helpers/webhook/signature.ts, customEscapeJsonStrings).
_ESCAPED = {"&", "<", ">", "'", "`", "+"}


class AutotaskTicketCallouts:
    """Verifies and reads Autotask's ticket webhook callouts (connector.ports.TicketCallouts)."""

    def __init__(self, header: str = "", algorithm: str = "") -> None:
        self.signature_header = header or SIGNATURE_HEADER
        self.algorithm = (algorithm or SIGNATURE_ALGORITHM).lower()
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"TICKET_WEBHOOK_SIGNATURE_ALGORITHM {algorithm!r} is unknown:"
                f" use {' or '.join(ALGORITHMS)}"
            )

    def verify(self, body: bytes, signature: str | None, secret: str) -> None:
        """Accept a signature of the raw body or of its Autotask-escaped form; AuthError else."""
        header = self.signature_header
        if not signature:
            raise AuthError(f"the callout has no {header} header")
        prefix, _, encoded = signature.strip().partition("=")
        if prefix.lower() != self.algorithm or not encoded:
            raise AuthError(f"the {header} header is not {self.algorithm}=<base64 HMAC>")
        try:
            presented = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise AuthError(f"the {header} header's HMAC is not base64") from None
        candidates = [body]
        escaped = autotask_escaped(body)
        if escaped != body:
            candidates.append(escaped)
        key = secret.encode()
        for candidate in candidates:
            expected = hmac.new(key, candidate, self.algorithm).digest()
            if hmac.compare_digest(expected, presented):
                return
        raise AuthError(f"the {header} signature does not match the body")

    def read(self, body: bytes) -> TicketChange:
        """The callout's action, ticket id, status, time and person; PayloadError when unread."""
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("the callout body is not JSON") from None
        if not isinstance(payload, dict):
            raise PayloadError("the callout body is not a JSON object")
        fields = _lowered(payload)
        action = ACTIONS.get(str(fields.get("action", "")).lower())
        if action is None:
            raise PayloadError(
                "the callout's Action is not Create, Update, Delete or Deactivated",
                details={"Action": str(fields.get("action"))[:100]},
            )
        if action is TicketChangeAction.DEACTIVATED:
            return TicketChange(action, None, event_id=str(fields.get("guid") or ""))
        entity = str(fields.get("entitytype", "")).lower()
        if entity not in ("ticket", "tickets"):
            raise PayloadError(
                "the callout is not about a ticket",
                details={"EntityType": str(fields.get("entitytype"))[:100]},
            )
        ticket_id = _whole(fields.get("id"))
        if ticket_id is None or ticket_id <= 0:
            raise PayloadError("the callout's Id is not a ticket id")
        changed = fields.get("fields")
        if changed is not None and not isinstance(changed, dict):
            raise PayloadError("the callout's Fields is not an object")
        status = _whole(_lowered(changed or {}).get("status"))
        person = fields.get("personid")
        return TicketChange(
            action,
            ticket_id,
            status=status,
            occurred_at=_time(fields.get("eventtime")),
            person=str(person) if person is not None else None,
            event_id=str(fields.get("guid") or ""),
        )


def autotask_escaped(body: bytes) -> bytes:
    """The body with `&<>'`+`, `\\"` and every non-ASCII character inside strings as `\\uXXXX`.

    The form n8n-nodes-autotask reports Autotask signs (helpers/webhook/signature.ts); outside
    strings nothing changes. A body that is not UTF-8 is returned as it is.
    """
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return body
    out: list[str] = []
    inside = escaped = False
    for char in text:
        if inside and escaped and char == '"':
            out[-1] = "\\u0022"  # replaces the backslash just written
            escaped = False
            continue
        if char == "\\" and not escaped:
            escaped = True
            out.append(char)
            continue
        if char == '"' and not escaped:
            inside = not inside
            out.append(char)
        elif inside and not escaped and (char in _ESCAPED or ord(char) > 127):
            out.extend(f"\\u{unit:04X}" for unit in _utf16_units(char))
        else:
            out.append(char)
        escaped = False
    return "".join(out).encode()


def _utf16_units(char: str) -> list[int]:
    """The UTF-16 code units of one character (JavaScript's charCodeAt sees these)."""
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _lowered(mapping: dict[str, Any]) -> dict[str, Any]:
    """The keys in lower case: Autotask's casing of callout keys is not documented."""
    return {str(key).lower(): value for key, value in mapping.items()}


def _whole(value: Any) -> int | None:
    """An integer from a number or a numeric string (picklist values come as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _time(value: Any) -> datetime | None:
    """EventTime as an aware datetime (UTC when it carries no zone); None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:
        # .NET writes up to seven fraction digits; Python reads up to six.
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

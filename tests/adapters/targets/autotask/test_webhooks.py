"""Autotask's ticket webhook callouts: the signature checked, the body read."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.targets.autotask.webhooks import AutotaskTicketCallouts, autotask_escaped
from connector.domain import TicketChange, TicketChangeAction
from connector.errors import AuthError, ConfigError, PayloadError
from tests import canaries

SECRET = canaries.TICKET_WEBHOOK_SECRET
BODY = json.dumps(
    {
        "Action": "Update",
        "Guid": "0b9f7c1e-3c5d-4d1b-9e55-3f0a7d1c2b11",
        "EntityType": "Ticket",
        "Id": 128926,
        "Fields": {"status": 5, "externalID": "aac-1"},
        "EventTime": "2026-12-03T17:30:00.1234567Z",
        "SequenceNumber": 7,
        "PersonID": 29682887,
    },
    separators=(",", ":"),
).encode()


def signed(body: bytes, secret: str = SECRET, algorithm: str = "sha1") -> str:
    digest = hmac.new(secret.encode(), body, algorithm).digest()
    return f"{algorithm}={base64.b64encode(digest).decode()}"


@pytest.mark.parametrize(
    ("signature", "refusal"),
    [
        (None, "the callout has no X-Hook-Signature header"),
        ("", "the callout has no X-Hook-Signature header"),
        ("c2hhMQ==", "the X-Hook-Signature header is not sha1=<base64 HMAC>"),
        ("sha256=" + signed(BODY).split("=", 1)[1], "is not sha1=<base64 HMAC>"),
        ("sha1=***", "the X-Hook-Signature header's HMAC is not base64"),
        (
            signed(BODY, secret=canaries.OTHER_TICKET_WEBHOOK_SECRET),
            "the X-Hook-Signature signature does not match the body",
        ),
        (signed(BODY + b" "), "the X-Hook-Signature signature does not match the body"),
    ],
)
def test_a_missing_malformed_or_wrong_signature_is_refused(
    signature: str | None, refusal: str
) -> None:
    with pytest.raises(AuthError) as refused:
        AutotaskTicketCallouts().verify(BODY, signature, SECRET)
    assert refusal in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("header", "algorithm", "signature"),
    [
        ("", "", signed(BODY)),
        ("", "SHA1", "SHA1=" + signed(BODY).split("=", 1)[1]),
        ("X-Signature", "sha256", signed(BODY, algorithm="sha256")),
    ],
)
def test_a_signature_of_the_raw_body_is_accepted(
    header: str, algorithm: str, signature: str
) -> None:
    callouts = AutotaskTicketCallouts(header, algorithm)
    assert callouts.signature_header == (header or "X-Hook-Signature")
    callouts.verify(BODY, signature, SECRET)


def test_a_signature_of_the_autotask_escaped_body_is_accepted() -> None:
    # n8n-nodes-autotask reports Autotask signs a copy with &<>'`+ and non-ASCII inside
    # strings escaped as \uXXXX (helpers/webhook/signature.ts).
    body = json.dumps(
        {"Action": "Update", "Fields": {"title": "Disk <full> & 'hot' +1 ü 𝄞"}}, ensure_ascii=False
    ).encode()
    escaped = autotask_escaped(body)
    assert escaped == (
        b'{"Action": "Update", "Fields": {"title": "Disk \\u003C'
        b'full\\u003E \\u0026 \\u0027hot\\u0027 \\u002B1 \\u00FC \\uD834\\uDD1E"}}'
    )
    AutotaskTicketCallouts().verify(body, signed(escaped), SECRET)


def test_an_escaped_quote_inside_a_string_is_escaped_as_unicode() -> None:
    assert autotask_escaped(b'{"a":"say \\"hi\\""}') == b'{"a":"say \\u0022hi\\u0022"}'


def test_an_unknown_algorithm_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="md5"):
        AutotaskTicketCallouts(algorithm="md5")


def callout(**changes: Any) -> bytes:
    body = json.loads(BODY)
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("body", "change"),
    [
        (
            BODY,
            TicketChange(
                TicketChangeAction.UPDATED,
                128926,
                status=5,
                occurred_at=datetime(2026, 12, 3, 17, 30, 0, 123456, tzinfo=UTC),
                person="29682887",
                event_id="0b9f7c1e-3c5d-4d1b-9e55-3f0a7d1c2b11",
            ),
        ),
        (
            callout(Action="Delete", Fields={}, EventTime="2026-12-03T17:30:00"),
            TicketChange(
                TicketChangeAction.DELETED,
                128926,
                occurred_at=datetime(2026, 12, 3, 17, 30, tzinfo=UTC),
                person="29682887",
                event_id="0b9f7c1e-3c5d-4d1b-9e55-3f0a7d1c2b11",
            ),
        ),
        (
            # Keys in another casing, the status as a picklist string, no time.
            json.dumps(
                {"action": "update", "entityType": "Tickets", "id": "42", "fields": {"Status": "5"}}
            ).encode(),
            TicketChange(TicketChangeAction.UPDATED, 42, status=5),
        ),
        (
            json.dumps({"Action": "Deactivated", "Guid": "g"}).encode(),
            TicketChange(TicketChangeAction.DEACTIVATED, None, event_id="g"),
        ),
    ],
)
def test_a_callout_is_read(body: bytes, change: TicketChange) -> None:
    assert AutotaskTicketCallouts().read(body) == change


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the callout body is not JSON"),
        (b"\xff\xfe", "the callout body is not JSON"),
        (b"[1]", "the callout body is not a JSON object"),
        (callout(Action="Explode"), "the callout's Action is not Create, Update, Delete"),
        (callout(EntityType="Contact"), "the callout is not about a ticket"),
        (callout(Id="abc"), "the callout's Id is not a ticket id"),
        (callout(Id=0), "the callout's Id is not a ticket id"),
        (callout(Fields=[1]), "the callout's Fields is not an object"),
    ],
)
def test_a_callout_that_cannot_be_read_is_a_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("(", r"\(")):
        AutotaskTicketCallouts().read(body)

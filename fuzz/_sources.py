"""A source harness's one input: a raw body read as POST /hooks/<source> reads it.

The only exceptions allowed are those the hook turns into a clear 4xx: PayloadError (400, its
LayoutError too) and UnsupportedContentTypeError (415). Whatever is read must also be what the
hook can answer and store: refusals whose details and bodies serialize to JSON, alerts whose
text fits the alert table and has no NUL or unpaired surrogate. Anything else is a finding.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.sources._common import NAME_LIMIT
from connector.domain import IncomingAlert, ParsedWebhook
from connector.errors import PayloadError
from connector.pipeline.intake import content_types, item_body, read_webhook
from connector.pipeline.rejections import excerpt
from connector.services import SourceAdapter

#: Text columns of the alert table that hold at most NAME_LIMIT characters.
_NAMES = ("fingerprint", "host", "tenant", "monitor", "actor", "raw_severity")
#: Every text field of an alert.
_TEXTS = (*_NAMES, "source", "title", "message", "note")


def answerable(details: Any) -> None:
    """The error envelope's `details` as Flask's jsonify writes them (sorted keys)."""
    json.dumps(details, sort_keys=True)


def storable(text: str, what: str) -> None:
    """Text PostgreSQL can store: no NUL, no unpaired surrogate."""
    assert "\x00" not in text, f"{what} holds a NUL"
    text.encode("utf-8")  # UnicodeEncodeError: an unpaired surrogate


def check_alert(alert: IncomingAlert) -> None:
    """An accepted alert fits the alert table."""
    for name in _TEXTS:
        storable(getattr(alert, name), name)
    for name in _NAMES:
        assert len(getattr(alert, name)) <= NAME_LIMIT, f"{name} is longer than {NAME_LIMIT}"
    assert alert.fingerprint.strip(), "an alert without a fingerprint"
    for key, value in alert.properties.items():
        storable(key, "a property name")
        storable(value, f"property {key!r}")


def check_parsed(parsed: ParsedWebhook) -> None:
    """What take_in does with a read webhook, short of the database."""
    for item in parsed.alerts:
        check_alert(item.alert)
    for refused in parsed.refused:
        answerable(refused.details)
        excerpt(item_body(refused.webhook))


def read_as_the_hook(adapter: SourceAdapter, raw: bytes) -> None:
    """Read `raw` with every content type the source takes; only a 4xx may come of it."""
    for content_type in content_types(adapter):
        try:
            parsed = read_webhook(adapter, raw, content_type)
        except PayloadError as e:
            str(e)
            answerable(e.details)
            continue
        check_parsed(parsed)

"""Fuzz the webhook credential checks (connector/web/auth.py, integrations/verification.py).

Each input is one request's headers and body: the connector's own HMAC (X-Connector-Timestamp,
X-Connector-Signature), Standard Webhooks (webhook-id, -timestamp, -signature lists), or an
Authorization header (Bearer, Basic). The harness sometimes puts a correctly signed value among
the fuzzed ones. Allowed: AuthError (401). Besides, a request is accepted only when the harness
signed it (or presented the stored bearer token or password): anything else is a forgery.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    from flask import Request

    from connector.errors import AuthError
    from connector.integrations.verification import sign, sign_standard
    from connector.secrets import SecretBox, token_hash
    from connector.web.auth import hook_caller

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BOX = SecretBox(["mTTjXK1cpA5QtPXKxv7iHmSk6hgv2hMRY2pHmklhTt8="])
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PLAIN_SECRET = "plain-hmac-secret-0123456789"
USER, PASSWORD = "monitor", "pass:word-0123456789"
SOURCE = "generic"


class FakeSession:
    """The two queries the checks make: the credentials of a scheme, and one row or None."""

    def __init__(self, rows: list[Any], found: Any) -> None:
        self.rows = rows
        self.found = found

    def scalars(self, _statement: Any) -> Any:
        return SimpleNamespace(all=lambda: list(self.rows))

    def scalar(self, _statement: Any) -> Any:
        return self.found


def _hmac_row(secret: str) -> Any:
    return SimpleNamespace(
        id=1, integration_id=7, scheme="hmac", secret_encrypted=BOX.encrypt(secret)
    )


HMAC_ROWS = [_hmac_row(SECRET), _hmac_row(PLAIN_SECRET)]
BASIC_ROWS = [
    SimpleNamespace(id=2, integration_id=7, scheme="basic", password_sha256=token_hash(PASSWORD))
]
BEARER_ROW = SimpleNamespace(id=3, integration_id=7, scheme="bearer")


def _text(fdp: atheris.FuzzedDataProvider, limit: int = 120) -> str:
    """Header text as a server hands it on: latin-1, no line breaks."""
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, limit))
    text = text.encode("latin-1", "replace").decode("latin-1")
    return text.replace("\r", "").replace("\n", "")


def _timestamp(fdp: atheris.FuzzedDataProvider) -> str:
    if fdp.ConsumeBool():
        return str(int(NOW.timestamp()) + fdp.ConsumeIntInRange(-400, 400))
    return _text(fdp, 20)


def test_one(data: bytes) -> None:
    """One request: accepted only if signed (or with the stored credentials), else AuthError."""
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    headers: dict[str, str] = {}
    genuine = False
    found: Any = None
    if mode == 0:  # the connector's own HMAC
        timestamp = _timestamp(fdp)
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2000))
        if fdp.ConsumeBool():
            signature = "sha256=" + sign(PLAIN_SECRET, timestamp, body)
            genuine = True
        else:
            signature = _text(fdp, 80)
        headers = {"X-Connector-Timestamp": timestamp, "X-Connector-Signature": signature}
        rows = HMAC_ROWS
    elif mode == 1:  # Standard Webhooks
        message_id, timestamp = _text(fdp, 40), _timestamp(fdp)
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2000))
        entries = [_text(fdp, 60) for _ in range(fdp.ConsumeIntInRange(0, 3))]
        if fdp.ConsumeBool():
            entries.insert(
                fdp.ConsumeIntInRange(0, len(entries)),
                sign_standard(SECRET, message_id, timestamp, body),
            )
            genuine = True
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": " ".join(entries),
        }
        rows = HMAC_ROWS
        if fdp.ConsumeBool():
            found = 1  # the message id was seen before: a retry (200) or a replay (401)
    else:  # Authorization
        body, user = b"", ""
        kind = fdp.ConsumeIntInRange(0, 2)
        if kind == 0:
            value = f"Bearer {_text(fdp, 60)}"
            if fdp.ConsumeBool():
                found, genuine = BEARER_ROW, True  # the database knows the token's hash
        elif kind == 1:
            user = USER if fdp.ConsumeBool() else _text(fdp, 20)
            password = PASSWORD if fdp.ConsumeBool() else _text(fdp, 30)
            genuine = (user, password) == (USER, PASSWORD)
            raw = f"{user}:{password}".encode("utf-8", "surrogatepass")
            value = "Basic " + base64.b64encode(raw).decode()
        else:
            value = _text(fdp)
        headers = {"Authorization": value}
        # The query selects the rows of the username presented (check_basic).
        rows = BASIC_ROWS if kind == 1 and user == USER else []
    environ = {"REQUEST_METHOD": "POST", "wsgi.url_scheme": "https", "SERVER_NAME": "x"}
    environ |= {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    request = Request(environ)
    try:
        caller = hook_caller(FakeSession(rows, found), request, SOURCE, now=NOW, body=body, box=BOX)
    except AuthError:
        return
    assert genuine, f"accepted without a valid credential: {headers!r}"
    assert caller.integration_id == 7


if __name__ == "__main__":
    _harness.main(test_one, _harness.seeds(_harness.REGRESSIONS / "signatures"))

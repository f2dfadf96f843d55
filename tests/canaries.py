"""Canary values for every kind of secret the tests give the service, in one place.

tests/canary_plugin.py fails a test when one of them shows up where a secret must never go: a log
record (any level), an answer of the service or the sandbox, the test's stdout/stderr, a stored row
or a started process's output. Each value keeps the shape the code wants (16+ character tokens,
Standard Webhooks' `whsec_` + base64, Fernet's url-safe base64 of 32 bytes) and is distinctive
enough never to occur by chance. A value's URL-encoded and JSON-escaped forms count as well.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

# -- Autotask API user (the user name is not a secret) -----------------------------------------
AUTOTASK_USERNAME = "alerts-api@sandbox.test"
AUTOTASK_SECRET = "canary-secret-7f3a9c"
#: The API user's tracking identifier (`ApiIntegrationCode`): 27 upper-case letters and digits.
AUTOTASK_INTEGRATION_CODE = "CANARYTRACKINGID0000000000A"
#: A second integration's credentials, and the ones a rotation or a typo brings.
OTHER_AUTOTASK_SECRET = "canary-other-secret-51e9aa"
OTHER_INTEGRATION_CODE = "CANARYOTHERTRACKINGID000042"
SECOND_AUTOTASK_SECRET = "canary-second-secret-7a1c"
SECOND_INTEGRATION_CODE = "CANARYSECONDTRACKINGID00007"
ROTATED_AUTOTASK_SECRET = "canary-rotated-secret-0d9e"
WRONG_AUTOTASK_SECRET = "wrong-secret-canary-5521"
WRONG_INTEGRATION_CODE = "WRONGTRACKINGCANARY0000000Z"
BROWSER_WRONG_AUTOTASK_SECRET = "wrong-secret-browser-canary-8812"
BROWSER_WRONG_INTEGRATION_CODE = "WRONGTRACKINGBROWSERCANARYQ"

# -- bearer tokens the connector checks --------------------------------------------------------
HOOK_TOKEN = "canary-hook-token-3b7e1d"
API_TOKEN = "canary-api-token-91c0aa"
METRICS_TOKEN = "canary-metrics-token-5d2f80"

# -- per-integration hook credentials (bearer, basic, HMAC, Standard Webhooks) ------------------
GENERIC_BEARER_TOKEN = "canary-bearer-generic-5e1f0a2b"
ALERTMANAGER_BEARER_TOKEN = "canary-bearer-alertmanager-77d2c4"
REVOKED_BEARER_TOKEN = "canary-bearer-revoked-0c9d31aa"
SECOND_INTEGRATION_TOKEN = "canary-second-integration-token-4f"
BASIC_PASSWORD = "canary-basic-password-4a8e9f"
#: Not ASCII on purpose: the HMAC key is the secret's UTF-8 bytes.
HMAC_SECRET = "canary-hmac-secret-d41c7730-é"
HMAC_ALERTMANAGER_SECRET = "canary-hmac-alertmanager-9b02ee"
HMAC_REFUSALS_SECRET = "canary-hmac-secret-for-refusals-5a1"
HMAC_SHARED_SECRET = "canary-hmac-shared-with-the-sender-6c"
#: A Standard Webhooks secret as such senders hand it out: "whsec_" + base64 of the key bytes.
STANDARD_WEBHOOKS_KEY = b"canary-standard-webhooks-key-32b"
STANDARD_WEBHOOKS_SECRET = "whsec_" + base64.b64encode(STANDARD_WEBHOOKS_KEY).decode()
#: Wrong credentials a sender tries: a typo of a real one is as secret as the real one.
WRONG_HMAC_SECRET = "canary-hmac-wrong-secret-111111"
WRONG_BEARER_TOKEN = "canary-wrong-bearer-token-8c41d7"
WRONG_BASIC_PASSWORD = "canary-wrong-basic-password-2b9e"
#: What the connector would generate for a new credential (a test puts it in new_token).
GENERATED_HOOK_SECRET = "canary-generated-hook-secret-0f4d8e2a9b71c3"
NOT_THE_BASIC_PASSWORD = "canary-not-the-password-22"
#: Secrets an API client offers where the connector makes its own: refused, never echoed.
OWN_BEARER_TOKEN = "canary-own-token-0123"
OWN_HMAC_SECRET = "canary-own-secret-0123"
NOT_THE_STANDARD_WEBHOOKS_KEY = b"canary-not-the-key-0000000000000"
OLD_STANDARD_WEBHOOKS_KEY = b"canary-old-key-00000000000000000"
#: A credential's old and new secret while it is rotated, by scheme.
ROTATED_HOOK_SECRETS = {
    scheme: (f"canary-{scheme}-old-0123456789", f"canary-{scheme}-new-0123456789")
    for scheme in ("bearer", "basic", "hmac")
}
#: The settings' tokens after a restart changed them.
RESTARTED_HOOK_TOKEN = "canary-hook-token-after-restart"
RESTARTED_API_TOKEN = "canary-api-token-after-restart"
#: A header a refused sender adds: no header value may end up in a record.
SENDER_HEADER_VALUE = "canary-header-value-6d0e2f"

# -- ticket webhooks (the ticket system signs its callouts) ------------------------------------
TICKET_WEBHOOK_SECRET = "canary-callout-secret-0123456789"
OTHER_TICKET_WEBHOOK_SECRET = "canary-another-callout-secret-4e"
EMERGENCY_TICKET_WEBHOOK_SECRET = "canary-emergency-secret-5e21"
#: What the connector would generate for a registration (tests put it in new_webhook_secret).
REGISTERED_TICKET_WEBHOOK_SECRET = "canary-registered-webhook-secret-7c3e0b9a"

# -- admin sign-in, SMTP, database --------------------------------------------------------------
ADMIN_PASSWORD = "canary-admin-pw-4b1d9e"
BROWSER_ADMIN_PASSWORD = "canary-browser-pw-7f3a9c"
WRONG_ADMIN_PASSWORD = "canary-wrong-pw-77aa31"
SMTP_PASSWORD = "canary-smtp-pw-3d8f1a"
SMTP_CONFIG_PASSWORD = "canary-smtp-config-pw-41c7"
EMERGENCY_SMTP_PASSWORD = "canary-emergency-smtp-pw-77b0"
MAIL_ADAPTER_SMTP_PASSWORD = "canary-smtp-pw-5e1c"
WRONG_SMTP_PASSWORD = "wrong-pw-canary-99"
REPR_SMTP_PASSWORD = "canary-repr-pw-6a0f1"
DATABASE_PASSWORD = "canary-db-password-90ad"

# -- SECRET_KEYS: Fernet keys (url-safe base64 of 32 bytes) -------------------------------------
SECRET_KEY_BYTES = b"canary-fernet-key-for-tests-0001"
SECRET_KEY = base64.urlsafe_b64encode(SECRET_KEY_BYTES).decode()
#: The key a rotation brings, and a key that opens nothing stored.
ROTATED_SECRET_KEY_BYTES = b"canary-fernet-key-for-tests-0002"
ROTATED_SECRET_KEY = base64.urlsafe_b64encode(ROTATED_SECRET_KEY_BYTES).decode()
WRONG_SECRET_KEY_BYTES = b"canary-fernet-key-for-tests-0003"
WRONG_SECRET_KEY = base64.urlsafe_b64encode(WRONG_SECRET_KEY_BYTES).decode()

#: Public names that are not secrets.
_NOT_SECRET = {"AUTOTASK_USERNAME"}


def _forms(value: str) -> set[str]:
    """The value as written, URL-encoded and JSON-escaped (ASCII-only, as json.dumps does)."""
    return {value, quote(value, safe=""), json.dumps(value)[1:-1]}


def _values(value: object) -> list[str]:
    """The texts in a constant: itself, or those in a dict's values or a tuple."""
    if isinstance(value, bytes):
        return [value.decode()]
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = tuple(value.values())
    if isinstance(value, tuple):
        return [text for item in value for text in _values(item)]
    return []


def _all() -> frozenset[str]:
    found: set[str] = set()
    for name, value in globals().items():
        if not name.isupper() or name.startswith("_") or name in _NOT_SECRET:
            continue
        for text in _values(value):
            found |= _forms(text)
    found.add(STANDARD_WEBHOOKS_SECRET.removeprefix("whsec_"))
    return frozenset(found)


#: Every canary, in every form looked for.
ALL: frozenset[str] = _all()


#: One of these is in every canary, in every form: a text without them needs no closer look.
MARKERS = ("canary", "CANARY", base64.b64encode(b"canary")[:8].decode())


def marked(value: str) -> bool:
    """Whether `value` holds one of the MARKERS."""
    return any(marker in value for marker in MARKERS)


def found_in(text: str, extra: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The canaries (and `extra` values) that occur in `text`, sorted."""
    found = [value for value in extra if value in text]
    if marked(text):
        found += [value for value in ALL if value in text]
    return sorted(found)

"""Fuzz Autotask's ticket webhook callouts (adapters/targets/autotask/webhooks.py).

`verify` (X-Hook-Signature: sha1=<base64 HMAC>) may only raise AuthError and may only accept
a signature the harness made; `read` may only raise PayloadError.
"""

from __future__ import annotations

import base64
import hmac

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    from adapters.targets.autotask.webhooks import AutotaskTicketCallouts, autotask_escaped
    from connector.errors import AuthError, PayloadError

CALLOUTS = AutotaskTicketCallouts()
SECRET = "callout-secret-0123456789"


def _signature(body: bytes) -> str:
    mac = hmac.new(SECRET.encode(), body, "sha1").digest()
    return "sha1=" + base64.b64encode(mac).decode()


def test_one(data: bytes) -> None:
    """One callout body: read, and verified with a fuzzed, a genuine or no signature."""
    try:
        CALLOUTS.read(data)
    except PayloadError:
        pass
    fdp = atheris.FuzzedDataProvider(data[-64:])
    choice = fdp.ConsumeIntInRange(0, 3)
    genuine = choice in (1, 2)
    if choice == 0:
        signature = fdp.ConsumeUnicodeNoSurrogates(64)
    elif choice == 1:
        signature = _signature(data)
    elif choice == 2:
        signature = _signature(autotask_escaped(data))
    else:
        signature = None
    try:
        CALLOUTS.verify(data, signature, SECRET)
    except AuthError:
        assert not genuine, "a genuine signature was refused"
        return
    assert genuine, f"accepted a signature the harness did not make: {signature!r}"


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(_harness.SEEDS / "callouts", _harness.REGRESSIONS / "ticket_callouts"),
        json_bodies=True,
        # A callout is a few hundred bytes; the escaping is a loop per character.
        max_len=1_024,
    )

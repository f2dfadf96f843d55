"""How Autotask's refusals become the core's typed errors; what REST and SOAP read alike."""

from __future__ import annotations

import re
from collections.abc import Sequence

from adapters.targets.autotask.profile import REQUIRED_FIELD_SETTINGS, VALIDATION_MARKERS
from connector.errors import TargetAuthError, TargetError, TargetUnavailable

_REQUIRED_FIELD = re.compile(r"(?:^|[\s;:])([A-Za-z]+) is required", re.IGNORECASE)
_MISSING_FIELD = re.compile(r"missing required field:?\s*([A-Za-z]+)", re.IGNORECASE)


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


class UnexplainedRefusal(TargetError):
    """Autotask refused in its own error shape without saying why: the credentials are checked.

    Each flavour's own refusal class derives from this and from the error it stands as.
    """


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

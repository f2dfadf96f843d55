"""The connector's error tree and the one JSON error envelope every HTTP error uses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask, Response

logger = logging.getLogger(__name__)


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose; `details` go into the JSON envelope."""

    status = 500

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.details = details


class ConfigError(ConnectorError):
    """A setting is missing or invalid; raised at startup so the service fails fast."""


class PayloadError(ConnectorError):
    """A webhook body that will never parse; the sender must not retry."""

    status = 400

    @classmethod
    def naming(cls, errors: Mapping[str, Any]) -> PayloadError:
        """The 400 for these field errors: the message names the fields, `details` says why."""
        names = sorted(errors)
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return cls(f"invalid alert field(s): {shown}", details=dict(errors))


class UnsupportedContentTypeError(ConnectorError):
    """A webhook sent with a content type its source does not read (415)."""

    status = 415


class AuthError(ConnectorError):
    """Bad or missing webhook credentials."""

    status = 401


class NotFoundError(ConnectorError):
    """The requested record does not exist."""

    status = 404


class InvalidInput(ConnectorError):
    """Input an edit refuses (an integration, a mapping, an imported file): a 400.

    The message names every bad field by its path ("settings.priority_map.critical: …");
    `details["fields"]` holds the same as nested messages.
    """

    status = 400


class ConflictError(ConnectorError):
    """The request does not fit the record's current state (a name in use, a change to confirm)."""

    status = 409


class TooManyRequests(ConnectorError):
    """The caller asked more often than allowed; it may ask again after `retry_after` seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class UnavailableError(ConnectorError):
    """The service cannot take the request now (database down); senders should retry."""

    status = 503


class UnknownSourceError(ConnectorError):
    """No source adapter is registered under the requested slug."""

    status = 404


class TemplateRejected(ConnectorError):
    """A payload template or id path that cannot be saved; `line` is its template line, if known."""

    status = 400

    def __init__(
        self, message: str, *, line: int | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message, details={**(details or {}), "line": line} if line else details)
        self.line = line


class RenderError(ConnectorError):
    """A saved template failed on one alert's data (limit hit, invalid payload); never retried."""

    status = 422

    def __init__(
        self, message: str, *, line: int | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message, details={**(details or {}), "line": line} if line else details)
        self.line = line


class TargetRefusal(StrEnum):
    """What a ticket system refused, as its adapter reads the refusal (see TargetProfile)."""

    #: The API user's username or secret.
    CREDENTIALS = "credentials"
    #: The API user itself: the zone lookup does not know it.
    UNKNOWN_USER = "unknown_user"
    #: The API tracking identifier (integration code).
    TRACKING_IDENTIFIER = "tracking_identifier"
    #: The company the ticket names does not exist.
    UNKNOWN_COMPANY = "unknown_company"
    #: The company the ticket names exists but cannot take tickets (inactive).
    INACTIVE_COMPANY = "inactive_company"
    #: The integration's address is not one credentials may be sent to.
    ADDRESS_NOT_ALLOWED = "address_not_allowed"


class TargetError(ConnectorError):
    """A call to the ticket system failed; `retryable` says whether trying again may help.

    `response` keeps what the ticket system answered (status and body, secrets never included)
    so that a dead letter shows it; `retry_after` is the wait it asked for, in seconds;
    `max_attempts`, when set, is how many attempts such a failure gets before it is dead.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        response: dict[str, object] | None = None,
        retry_after: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        self.response = response
        self.retry_after = retry_after
        self.max_attempts = max_attempts


class TargetAuthError(TargetError):
    """The ticket system refused our credentials (wrong secret, user or tracking identifier).

    Not the delivery's fault: the governor pauses the integration and the delivery waits for
    the credentials to be fixed, without spending an attempt.
    """

    retryable = False


class TargetRejected(TargetError):
    """The ticket system refused the request itself (validation); retrying cannot help."""

    retryable = False


class TargetRateLimited(TargetError):
    """The ticket system asked us to slow down (429, thread or hourly threshold)."""


class TargetUnavailable(TargetError):
    """No usable answer: connection failure, timeout, or a server error; retrying may help."""


class ExtractionError(TargetError):
    """The ticket system answered, but the ticket id is not where the delivery request says.

    The call may have changed Autotask (a create that answered 200), so it is not retried as is;
    `response` holds the path and the start of the body so that the dead letter shows both.
    """

    retryable = False


class MailError(ConnectorError):
    """A mail could not be sent (server unreachable, login or address refused); said in words."""

    status = 502


class MailNotConfigured(MailError):
    """No mail server is configured (the smtp settings), so no mail can be sent."""

    status = 409


def register_error_handlers(app: Flask) -> None:
    """Answer every error with `{"error": {"status", "message", "request_id"}}`."""
    from flask import jsonify
    from werkzeug.exceptions import HTTPException

    from connector.logs import request_id

    def envelope(
        status: int, message: str, details: dict[str, object] | None = None
    ) -> tuple[Response, int]:
        error: dict[str, object] = {
            "status": status,
            "message": message,
            "request_id": request_id(),
        }
        if details:
            error["details"] = details
        return jsonify({"error": error}), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return envelope(error.code or 500, error.description or error.name)

    @app.errorhandler(ConnectorError)
    def connector_error(error: ConnectorError) -> tuple[Response, int]:
        if error.status >= 500:
            logger.warning("connector.error", exc_info=error)
        response, status = envelope(error.status, str(error), error.details)
        if status == 503:
            response.headers["Retry-After"] = "5"
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = str(error.retry_after)
        return response, status

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[Response, int]:
        # Never a bare 500 page with a traceback: log it, answer the envelope.
        logger.exception("connector.unexpected_error", exc_info=error)
        return envelope(500, "internal error; the request id is in the logs")

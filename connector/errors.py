"""The connector's error tree and the one JSON error envelope every HTTP error uses."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask, Response

logger = logging.getLogger(__name__)


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    status = 500


class ConfigError(ConnectorError):
    """A setting is missing or invalid; raised at startup so the service fails fast."""


class PayloadError(ConnectorError):
    """A webhook body that will never parse; the sender must not retry."""

    status = 400


class AuthError(ConnectorError):
    """Bad or missing webhook credentials."""

    status = 401


class UnknownSourceError(ConnectorError):
    """No source adapter is registered under the requested slug."""

    status = 404


class TargetError(ConnectorError):
    """A call to the ticket system failed; `retryable` says whether trying again may help."""

    retryable = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


def register_error_handlers(app: Flask) -> None:
    """Answer every error with `{"error": {"status", "message", "request_id"}}`."""
    from flask import jsonify
    from werkzeug.exceptions import HTTPException

    def envelope(status: int, message: str) -> tuple[Response, int]:
        body = {"error": {"status": status, "message": message, "request_id": uuid.uuid4().hex}}
        return jsonify(body), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return envelope(error.code or 500, error.description or error.name)

    @app.errorhandler(ConnectorError)
    def connector_error(error: ConnectorError) -> tuple[Response, int]:
        if error.status >= 500:
            logger.exception("connector.error", exc_info=error)
        return envelope(error.status, str(error))

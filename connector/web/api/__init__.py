"""The JSON API (/api/v1), one module per resource, each call authenticated by an API token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, g, request
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from connector.errors import ConflictError as ConflictError  # re-exported: api modules use it
from connector.web.auth import bearer_token, check_api_token
from connector.web.hooks import services

PREFIX = "/api/v1"


def api_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint under /api/v1 whose every call needs a live API token."""
    bp = Blueprint(name, import_name, url_prefix=PREFIX)

    @bp.before_request
    def authenticate() -> None:
        token = bearer_token(request)
        with services().transaction() as session:
            # Who asks (for limits per caller, as the test delivery's): the token's id.
            g.api_token_id = check_api_token(session, token)

    return bp


def equal_filters(
    query: Select[Any], args: Mapping[str, Any], columns: Mapping[str, InstrumentedAttribute[Any]]
) -> Select[Any]:
    """`query` narrowed to the rows whose column equals each filter given in `args`."""
    for name, column in columns.items():
        if name in args:
            query = query.where(column == args[name])
    return query


def iso(value: Any) -> Any:
    """A stored time as ISO 8601 text; None stays None."""
    return value.isoformat() if value is not None else None

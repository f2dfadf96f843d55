"""The JSON API's request parameters, parsed in one place: path ids and list endpoints' queries.

A path id no database column can hold is a 404 (the `int` converter below); a query parameter
that is unknown, repeated, empty or out of its range or set is a 400 naming it and what it
accepts. Nothing a client sends reaches the database unchecked, so neither is ever a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, PathConverter

from connector.errors import ConnectorError
from connector.web.hooks import services

#: The largest id a database id column holds (BIGINT on PostgreSQL, INTEGER on SQLite).
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: How much of a refused value an error message repeats.
_SHOWN_CHARACTERS = 40
_DIGITS = re.compile(r"[0-9]+")


class DatabaseIdConverter(IntegerConverter):
    """`<int:…>` in the connector's routes: ASCII digits, 404 unless from 0 to MAX_ID.

    It takes none of werkzeug's converter arguments (min, max, signed): no route uses them.
    """

    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        """The id; NotFound when out of range.

        Not werkzeug's ValidationError: that would make a PUT to a path whose GET exists a 405.
        """
        if len(value.lstrip("0")) > len(str(MAX_ID)) or int(value) > MAX_ID:
            raise NotFound(f"no record has the id {_shown(value)}: ids run from 0 to {MAX_ID}")
        return int(value)


class TenantConverter(PathConverter):
    """`<tenant:…>`: the rest of the path, whatever it holds once percent-decoded.

    werkzeug's `path` refuses a leading slash; a tenant is the sender's text, so "/", "a//b"
    and "x/" are tenants too (the rule must set merge_slashes=False).
    """

    regex = ".+"
    # werkzeug guesses from the regex (no "/" in it) that the value stays within one segment.
    part_isolating = False


class QueryError(ConnectorError):
    """Query parameters a list endpoint cannot use; `details` name each and what it accepts."""

    status = 400


class Refused(Exception):
    """Why one query parameter's value is refused, and the values it accepts if they are few."""

    def __init__(self, reason: str, accepted: Sequence[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.accepted = list(accepted) if accepted is not None else None


#: Turns one parameter's (non-empty) value into what the endpoint filters on, or raises Refused.
Parser = Callable[[str], Any]


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_CHARACTERS else value[:_SHOWN_CHARACTERS] + "…")


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A parser of whole numbers from `low` to `high` (ASCII digits only)."""

    def parse(value: str) -> int:
        if _DIGITS.fullmatch(value) and len(value.lstrip("0")) <= len(str(high)):
            number = int(value)
            if low <= number <= high:
                return number
        raise Refused(f"must be a whole number from {low} to {high}, got {_shown(value)}")

    return parse


#: A database id: 0 to MAX_ID.
database_id = whole_number(0, MAX_ID)


def text(value: str) -> str:
    """Any text, matched exactly; no NUL character (no PostgreSQL text can hold one)."""
    if "\x00" in value:
        raise Refused("must not contain a NUL character")
    return value


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A parser accepting exactly one of `choices`."""

    def parse(value: str) -> str:
        if value not in choices:
            raise Refused(f"must be one of {', '.join(choices)}, got {_shown(value)}", choices)
        return value

    return parse


def known_source(value: str) -> str:
    """A source slug the app has an adapter for."""
    return one_of(sorted(services().sources))(value)


#: Every list endpoint pages with these.
PAGE: dict[str, Parser] = {
    "limit": whole_number(1, MAX_LIMIT),
    "offset": whole_number(0, MAX_ID),
}


def parse_query(parsers: Mapping[str, Parser]) -> dict[str, Any]:
    """The request's query parameters, each parsed by its parser; absent ones left out.

    Raises:
        QueryError: a parameter is unknown, given twice, empty or refused by its parser; the
            message and `details["parameters"]` name every such one, with what it accepts.
    """
    problems: list[dict[str, Any]] = []
    sentences: list[str] = []
    parsed: dict[str, Any] = {}
    for name, values in request.args.lists():
        parser = parsers.get(name)
        problem: dict[str, Any] = {"parameter": name}
        if parser is None:
            problem.update(reason="unknown query parameter", accepted=list(parsers))
            known = f"known: {', '.join(parsers)}" if parsers else "this list takes none"
            sentences.append(f"unknown query parameter {_shown(name)}; {known}")
            problems.append(problem)
            continue
        if len(values) > 1:
            problem["reason"] = f"given {len(values)} times; give it once"
        elif values[0] == "":
            problem["reason"] = "must not be empty"
        else:
            try:
                parsed[name] = parser(values[0])
                continue
            except Refused as refused:
                problem["reason"] = refused.reason
                if refused.accepted is not None:
                    problem["accepted"] = refused.accepted
        sentences.append(f"{name} {problem['reason']}")
        problems.append(problem)
    if problems:
        raise QueryError("; ".join(sentences), details={"parameters": problems})
    return parsed


def page_of(query: Mapping[str, Any]) -> tuple[int, int]:
    """The limit and offset of a parsed query, defaults filled in."""
    return query.get("limit", DEFAULT_LIMIT), query.get("offset", 0)

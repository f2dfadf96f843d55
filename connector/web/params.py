"""The JSON API's request parameters, parsed in one place: path ids first.

A path id no database column can hold is a 404 (the `int` converter below), never a 500.
"""

from __future__ import annotations

from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

#: The largest id a database id column holds (BIGINT on PostgreSQL, INTEGER on SQLite).
MAX_ID = 2**63 - 1
#: How much of a refused value an error message repeats.
_SHOWN_CHARACTERS = 40


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


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_CHARACTERS else value[:_SHOWN_CHARACTERS] + "…")

"""The canary check (issue 15, S9): no secret the tests hand the service may come out of it.

For every test this plugin looks for the values of tests/canaries.py, and for the admin session
cookies the service sets during the test, in:

- every log record made in the test process, at every level of the connector's, the adapters',
  werkzeug's and urllib3's loggers (a record LOG_LEVEL=DEBUG would write is a leak too, so those
  loggers make their records whatever their level; records below the level are looked at and
  dropped), formatted by the service's own text and JSON formatters, fields and tracebacks too;
- every answer a Flask test client gets (status, headers, body; the service's and the sandbox's)
  and every answer `requests` receives from a server (the sandbox's to the connector, a served
  process's; not what a test's `responses` mock makes up);
- the test's captured stdout and stderr;
- every stored row of the test's database (tests/conftest.py's `database_url` calls `scan_sqlite`
  or `scan_postgres_schema` before dropping it): dead letters, API calls, deliveries, refused
  webhooks, sessions …;
- the output of the processes the end-to-end tests start (tests/e2e/harness.py calls
  `scan_text` on their logs; `communicate()`, and so `subprocess.run`, is looked at here), and
  of the commands tests run in process with click's CliRunner.

What the sandbox receives (its job: it checks the credentials) and what a test client sends are
not looked at. A test whose point is to show a canary marks itself `shows_secret("why")`.
A found canary fails the test at its teardown, naming where it appeared.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import subprocess
import zlib
from collections.abc import Generator, Iterable, Mapping
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from connector.logs import JsonFormatter, TextFormatter
from tests import canaries

#: Loggers whose records are made at every level, to be looked at (and handled as configured).
#: Not SQLAlchemy's: at INFO it writes every statement, and what it would write is what the
#: stored rows hold, which are looked at themselves.
EVERY_LEVEL = frozenset({"connector", "adapters", "werkzeug", "urllib3", "tests"})
#: The admin session cookie's names (connector/web/admin/security.py).
SESSION_COOKIES = ("connector_admin", "__Host-connector_admin")
#: What the admin session cookie carries that is a secret by itself.
SESSION_TOKEN_KEY = "admin_token"

_leaks: list[str] = []
#: This test's session cookies (and the tokens in them): canaries the service made.
_made_secrets: set[str] = set()

_TEXT = TextFormatter()
_JSON = JsonFormatter()


def leaks() -> list[str]:
    """Where canaries appeared during the current test, in the order found."""
    return list(_leaks)


def forget() -> None:
    """Start a new test: no leak found, no session cookie seen."""
    _leaks.clear()
    _made_secrets.clear()


def scan_text(text: str, place: str) -> None:
    """Note every canary in `text` as a leak at `place`."""
    made = frozenset(_made_secrets)
    for value in canaries.found_in(text, made):
        shown = "an admin session cookie or its token" if value in made else repr(value)
        _leaks.append(f"{shown} in {place}")


# -- log records ---------------------------------------------------------------------------------


def record_text(record: logging.LogRecord) -> str:
    """The record as the service's text and JSON formatters write it (fields, traceback too)."""
    try:
        return _TEXT.format(record) + "\n" + _JSON.format(record)
    except Exception:  # noqa: BLE001 - a record logging cannot format is still looked at
        return f"{record.msg!r} {record.args!r} {vars(record)!r}"


def scan_log_record(record: logging.LogRecord) -> None:
    """Note the canaries in a log record, placed by its logger, level and source line."""
    place = f"a log record ({record.name} {record.levelname}, {record.pathname}:{record.lineno})"
    scan_text(record_text(record), place)


def _every_level(logger: logging.Logger) -> bool:
    return logger.name.partition(".")[0] in EVERY_LEVEL


_is_enabled_for = logging.Logger.isEnabledFor
_handle = logging.Logger.handle


def _is_enabled_for_every_level(self: logging.Logger, level: int) -> bool:
    return True if _every_level(self) else _is_enabled_for(self, level)


def _handle_looked_at(self: logging.Logger, record: logging.LogRecord) -> None:
    scan_log_record(record)
    if _every_level(self) and not _is_enabled_for(self, record.levelno):
        return  # made only to be looked at: the configured level drops it
    _handle(self, record)


# -- answers -------------------------------------------------------------------------------------


def session_secrets(set_cookie: str) -> set[str]:
    """The admin session cookie a Set-Cookie header sets, and the sign-in token inside it."""
    name, _, rest = set_cookie.partition("=")
    value = rest.split(";", 1)[0].strip().strip('"')
    if name.strip() not in SESSION_COOKIES or not value:
        return set()
    found = {value}
    payload = value.split(".")
    try:  # itsdangerous: [.]base64(payload).timestamp.signature, "." first when compressed
        data = payload[1] if value.startswith(".") else payload[0]
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        session = json.loads(zlib.decompress(raw) if value.startswith(".") else raw)
    except (ValueError, zlib.error, IndexError):
        return found
    token = session.get(SESSION_TOKEN_KEY) if isinstance(session, dict) else None
    if isinstance(token, str) and len(token) >= 16:
        found.add(token)
    return found


def scan_answer(
    what: str, status: object, headers: Iterable[tuple[str, str]], body: bytes | None
) -> None:
    """Note canaries in an answer's status, headers and body; learn its session cookies."""
    lines = [f"{status}"]
    for name, value in headers:
        if name.lower() == "set-cookie" and (made := session_secrets(value)):
            _made_secrets.update(made)
            continue  # the cookie is where the session cookie belongs
        lines.append(f"{name}: {value}")
    scan_text("\n".join(lines), f"the headers of {what}")
    if body:
        scan_text(body.decode("utf-8", "replace"), f"the body of {what}")


_flask_open = FlaskClient.open


def _flask_open_looked_at(self: FlaskClient, *args: Any, **kwargs: Any) -> Any:
    response = _flask_open(self, *args, **kwargs)
    for answer in [*getattr(response, "history", ()), response]:
        request = answer.request
        try:
            body = answer.get_data()
        except RuntimeError:  # a passthrough file: nothing the service wrote
            body = None
        what = f"the answer to {request.method} {request.path}"
        scan_answer(what, answer.status, answer.headers.items(), body)
    return response


_requests_send = requests.Session.send
#: Replaced while a test's `responses` mock answers in place of a server: then the answers are
#: the test's own words (say, an Autotask that echoes credentials), not a server's.
_adapter_send = requests.adapters.HTTPAdapter.send


def _requests_send_looked_at(
    self: requests.Session, request: requests.PreparedRequest, **kwargs: Any
) -> requests.Response:
    response = _requests_send(self, request, **kwargs)
    if requests.adapters.HTTPAdapter.send is not _adapter_send:
        return response
    body = None if kwargs.get("stream") else response.content
    what = f"the answer to {request.method} {str(request.url).split('?', 1)[0]}"
    scan_answer(what, response.status_code, response.headers.items(), body)
    return response


# -- processes -----------------------------------------------------------------------------------

_communicate = subprocess.Popen.communicate


def _communicate_looked_at(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
    outputs = _communicate(self, *args, **kwargs)
    command = " ".join(str(part) for part in self.args) if isinstance(self.args, list) else ""
    for name, output in zip(("stdout", "stderr"), outputs, strict=True):
        if output:
            text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
            scan_text(text, f"the {name} of `{command[-80:]}`")
    return outputs


_invoke = CliRunner.invoke


def _invoke_looked_at(self: CliRunner, cli: Any, args: Any = None, **kwargs: Any) -> Result:
    result = _invoke(self, cli, args, **kwargs)
    command = " ".join(args) if isinstance(args, list | tuple) else str(args or "")
    scan_text(result.output, f"the output of the command `{command[:80]}`")
    return result


# -- databases -----------------------------------------------------------------------------------


def _cell_text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def scan_rows(table: str, columns: list[str], rows: Iterable[Iterable[object]]) -> None:
    """Note canaries in a table's rows, placed by table, column and the row's first value."""
    made = frozenset(_made_secrets)
    for row in rows:
        cells = [_cell_text(value) for value in row]
        if not canaries.found_in("\x00".join(cells), made):
            continue
        for column, text in zip(columns, cells, strict=True):
            scan_text(text, f"the stored row {table}.{column} (row {cells[0]})")


def scan_sqlite(path: str) -> None:
    """Note canaries in every row of every table of a SQLite file."""
    connection = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - own names
            scan_rows(table, [d[0] for d in cursor.description], cursor)
    finally:
        connection.close()


#: Every column of every table in a schema, in order, and whether it holds bytes. Slow where
#: many schemas came and went (tens of ms: PostgreSQL's catalog grows), so only for a schema
#: the models do not describe.
_COLUMNS = """
SELECT c.relname, a.attname, a.atttypid = 'bytea'::regtype
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r' AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""


def model_columns() -> dict[str, list[tuple[str, bool]]]:
    """The newest schema's tables, as the models make them: columns, and whether bytes."""
    from sqlalchemy import LargeBinary

    from connector.persistence.models import Base

    return {
        table.name: [(column.name, isinstance(column.type, LargeBinary)) for column in table.c]
        for table in Base.metadata.sorted_tables
    }


def scan_postgres_schema(
    connection: Any, schema: str, tables: dict[str, list[tuple[str, bool]]] | None = None
) -> None:
    """Note canaries in every row of `tables` (else the catalog's) of a PostgreSQL schema."""
    # One query for every row of every table, each row one text: columns joined by the unit
    # separator, bytes as escaped text (ASCII kept as is).
    if tables is None:
        tables = {}
        for table, column, is_bytes in connection.exec_driver_sql(_COLUMNS, {"schema": schema}):
            tables.setdefault(table, []).append((column, is_bytes))
    if not tables:
        return
    selects = []
    for table, columns in tables.items():
        cells = ", ".join(
            f"coalesce(encode(\"{name}\", 'escape'), '')"
            if is_bytes
            else f"coalesce(\"{name}\"::text, '')"
            for name, is_bytes in columns
        )
        selects.append(
            f'SELECT \'{table}\', concat_ws(chr(31), {cells}) FROM "{schema}"."{table}"'  # noqa: S608
        )
    for table, text in connection.exec_driver_sql(" UNION ALL ".join(selects)):
        names = [name for name, _ in tables[table]]
        cells = text.split("\x1f")
        if len(cells) != len(names):  # a value held the separator: name the table alone
            names, cells = ["(a column)"], [text]
        scan_rows(table, names, [cells])


# -- pytest hooks --------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and start looking (log records, answers, process outputs)."""
    config.addinivalue_line(
        "markers",
        "shows_secret(why): the test makes a canary secret appear on purpose (see why); the "
        "canary check does not fail it",
    )
    logging.Logger.isEnabledFor = _is_enabled_for_every_level  # type: ignore[method-assign]
    logging.Logger.handle = _handle_looked_at  # type: ignore[method-assign]
    FlaskClient.open = _flask_open_looked_at  # type: ignore[method-assign]
    requests.Session.send = _requests_send_looked_at  # type: ignore[method-assign]
    subprocess.Popen.communicate = _communicate_looked_at  # type: ignore[method-assign]
    CliRunner.invoke = _invoke_looked_at  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop looking."""
    logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
    logging.Logger.handle = _handle  # type: ignore[method-assign]
    FlaskClient.open = _flask_open  # type: ignore[method-assign]
    requests.Session.send = _requests_send  # type: ignore[method-assign]
    subprocess.Popen.communicate = _communicate  # type: ignore[method-assign]
    CliRunner.invoke = _invoke  # type: ignore[method-assign]


def captured_output(sections: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """The captured stdout/stderr sections (the log sections are looked at as records)."""
    return {title: text for title, text in sections if not title.startswith("Captured log")}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """At teardown, fail the test if a canary appeared during it (or since the test before)."""
    outcome = yield
    if call.when != "teardown":
        return
    report: pytest.TestReport = outcome.get_result()
    for title, text in captured_output(report.sections).items():
        scan_text(text, f"the test's {title.lower().removeprefix('captured ')}")
    found = list(dict.fromkeys(_leaks))
    forget()
    if not found or item.get_closest_marker("shows_secret") is not None:
        return
    report.outcome = "failed"
    report.longrepr = "A canary secret appeared (tests/canary_plugin.py):\n" + "\n".join(
        f"  - {place}" for place in found
    )

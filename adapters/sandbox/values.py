"""Wire values: Autotask date-times, the JSON types of the Swagger models, and the wire form.

The sandbox stores every record in one canonical form (UTC date-times with milliseconds and a Z,
`None` for anything unset). `wire_record` turns a stored record into the form real Autotask
answers with: unset strings as `""` and date-times with a varying fraction and zone suffix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.sandbox.entities import FIELD_INFO, REST_PROPERTIES

#: String properties a recorded real answer showed as null when unset. Every other unset string
#: reads back as "": Autotask fills its own string columns with empty strings. Sources: the real
#: Ticket query answers in trepidity/autotask_ruby spec/fixtures/query_ticket_response.xml carry
#: `<Resolution xsi:type="xsd:string"/>` (likewise PurchaseOrderNumber, ChangeInfoField1-5,
#: ExternalID) on both tickets, while ticket 9136 has no Description element at all (null); the
#: real Company in the apigrate/autotask-restapi README has 20 unset strings as "" but address1,
#: address2 and webAddress as null. Reference: ../shared/reference/autotask-api.md §3, §12.
NULL_WHEN_UNSET: dict[str, frozenset[str]] = {
    "Tickets": frozenset({"description"}),
    "Companies": frozenset({"address1", "address2", "webAddress"}),
}

#: Date-time properties Autotask sets itself (read-only in getFieldInfo), per REST entity.
SERVER_SET: dict[str, frozenset[str]] = {
    entity: frozenset(
        str(row["rest_name"]) for row in rows if row["rest_name"] and row["read_only"]
    )
    for entity, rows in FIELD_INFO.items()
}

#: How many fraction digits a record's server-set date-times keep, chosen by `(id // 2) % 4`.
#: Real answers show all of these: `2018-07-26T09:00:00`, `2018-07-24T19:14:36.24`,
#: `2018-07-24T19:14:09.953` (trepidity/autotask_ruby query_ticket_response.xml) and
#: `2016-03-30T13:10:35.563` (apigrate/autotask-restapi README): .NET drops trailing zeros.
FRACTION_DIGITS = (0, 1, 2, 3)


def parse_datetime(text: str) -> datetime:
    """Parse an Autotask date-time; one without a zone is UTC, as Autotask stores all times in UTC.

    Real responses carry `2016-03-30T13:10:35.563`, `2018-07-26T09:00:00`, `…:36.24` and
    `2019-08-18T01:00:00.000Z`; .NET clients send up to seven fraction digits. Reference:
    ../shared/reference/autotask-api.md §3 and §10.
    """
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """Format as the sandbox stores date-times: UTC with milliseconds and a Z."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def wire_datetime(stored: str, record_id: int, *, server_set: bool) -> str:
    """Render a stored date-time the way Autotask answers it, deterministically per record id.

    The zone suffix `Z` is there for even ids and left off for odd ones: real answers carry both
    forms (autotask-api.md §3: `2016-03-30T13:10:35.563` from a real REST Company,
    `2019-08-18T01:00:00.000Z` in django-autotask's fixtures; real SOAP answers have no zone).
    Trailing zeros of the fraction are dropped, as .NET does. Date-times Autotask sets itself
    keep `FRACTION_DIGITS[(id // 2) % 4]` digits (it is the server's clock); those a client
    wrote keep all their milliseconds, so nothing a client sent is lost.
    """
    value = parse_datetime(stored)
    digits = FRACTION_DIGITS[(record_id // 2) % len(FRACTION_DIGITS)] if server_set else 3
    fraction = f"{value.microsecond // 1000:03d}"[:digits].rstrip("0")
    text = value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "")
    return text + ("Z" if record_id % 2 == 0 else "")


def wire_record(entity: str, record: dict[str, Any]) -> dict[str, Any]:
    """Return a stored record as Autotask answers it: unset strings "", date-times in wire form.

    See NULL_WHEN_UNSET for which unset strings stay null, and `wire_datetime` for the forms.
    """
    kinds = REST_PROPERTIES[entity]
    record_id = record.get("id")
    wired = dict(record)
    for prop, value in record.items():
        kind = kinds.get(prop)
        if kind == "string" and value is None and prop not in NULL_WHEN_UNSET.get(entity, ()):
            wired[prop] = ""
        elif kind == "date-time" and isinstance(value, str) and isinstance(record_id, int):
            server_set = prop in SERVER_SET.get(entity, ())
            wired[prop] = wire_datetime(value, record_id, server_set=server_set)
    return wired


def coerce_value(prop: str, kind: str, value: Any) -> Any:
    """Turn a request value into the stored form of its Swagger type, or raise ValueError.

    Autotask's JSON binder accepts numbers written as strings and anything for a string field.
    """
    if kind in ("int32", "int64"):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"Invalid value {value!r} for field {prop}: expected an integer.")
        try:
            number = int(value)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"Invalid value {value!r} for field {prop}: expected an integer."
            ) from e
        limit = 2**31 if kind == "int32" else 2**63
        if not -limit <= number < limit:
            raise ValueError(f"Value {value!r} for field {prop} is out of range for {kind}.")
        return number
    if kind == "double":
        if isinstance(value, bool):
            raise ValueError(f"Invalid value {value!r} for field {prop}: expected a number.")
        try:
            return float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Invalid value {value!r} for field {prop}: expected a number.") from e
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"Invalid value {value!r} for field {prop}: expected true or false.")
    if kind == "date-time":
        try:
            return format_datetime(parse_datetime(str(value)))
        except ValueError as e:
            raise ValueError(
                f"Invalid value {value!r} for field {prop}: expected a date-time."
            ) from e
    if isinstance(value, dict | list):
        raise ValueError(f"Invalid value for field {prop}: expected a string.")
    return value if isinstance(value, str) else str(value)

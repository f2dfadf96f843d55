"""Wire values: Autotask date-times and the JSON types of the Swagger models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_datetime(text: str) -> datetime:
    """Parse an Autotask date-time; one without a zone is UTC, as Autotask stores all times in UTC.

    Real responses carry both `2016-03-30T13:10:35.563` and `2019-08-18T01:00:00.000Z`.
    Reference: ../shared/reference/autotask-api.md §3.
    """
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """Format as the wire form the sandbox answers with: UTC with milliseconds and a Z."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


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

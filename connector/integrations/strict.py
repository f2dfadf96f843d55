"""marshmallow fields for JSON input an admin edits: exact types, no coercion, no control bytes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields

#: C0 controls and DEL: never in a name, username or tenant (they would corrupt logs and pages).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The same, but for text of several lines: tab, line feed and carriage return are allowed.
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class StrictBoolean(fields.Boolean):
    """true or false, nothing else ("yes", 1 and "true" are refused)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """A JSON number that is a whole number (not a string, not a boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


def no_control_characters(value: str) -> bool:
    """Refuse text holding a control character (NUL, newline, escape …)."""
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters")
    return True


def no_control_except_lines(value: str) -> bool:
    """Refuse text holding a control character other than tab and line breaks."""
    if _CONTROL_BUT_LINES.search(value):
        raise ValidationError("must not contain control characters (line breaks are fine)")
    return True


def not_blank(value: str) -> bool:
    """Refuse text that is empty or only white space."""
    if not value.strip():
        raise ValidationError("must not be blank")
    return True


def flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested messages as "field.sub: message" lines."""
    if isinstance(messages, Mapping):
        lines = []
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            lines.extend(flatten(value, name))
        return lines
    if isinstance(messages, list | tuple):
        lines = []
        for item in messages:
            lines.extend(flatten(item, prefix))
        return lines
    return [f"{prefix}: {messages}" if prefix else str(messages)]

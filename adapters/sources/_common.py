"""What the source adapters share: storable text, lenient fields, times, judging items.

Every adapter refuses what no database can store (NUL characters, unpaired surrogates), naming
the field, and the vendor adapters cut over-long display text (titles, host names) rather than
refusing it (`fitted`): a monitoring system cannot fix its own data. Items are judged one by one
(`judge_each`): a bad alert is refused alone and the others of its webhook are taken in, since a
400 makes a sender drop the whole webhook.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

from connector.domain import IncomingAlert, ParsedAlert, ParsedWebhook, RefusedAlert, Severity
from connector.errors import PayloadError

#: Most alerts one webhook may carry (as the generic source); more is refused with 400.
MAX_ALERTS = 500
#: A source's own alert id; longer is not an id but a wrong field.
ID_LIMIT = 200
#: host, tenant and monitor are String(255) columns of the alert table.
NAME_LIMIT = 255
#: Titles are cut to 255 characters in tickets; keep enough for the alert's own record.
TITLE_LIMIT = 1_000
MESSAGE_LIMIT = 100_000
NOTE_LIMIT = 32_000
ELLIPSIS = "…"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Epoch numbers at or past this are milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS_FROM = 100_000_000_000
_EPOCH_TEXT = re.compile(r"-?\d{1,20}(\.\d+)?")


def storable(text: str) -> str:
    """Refuse text no database can store: NUL characters (PostgreSQL) and unpaired surrogates."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValidationError("Must be valid Unicode (no unpaired surrogates).") from e
    return text


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, ending with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


class Text(fields.String):
    """A string that may also arrive as a number; `blank` matches placeholders that mean empty.

    Senders that fill a body template (LogicMonitor `##TOKEN##`, Datto RMM `[variable]`) leave a
    variable literally in place when they have no value for it; `blank` turns those into "".
    """

    def __init__(self, *, blank: re.Pattern[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blank = blank

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        text = storable(super()._deserialize(value, attr, data, **kwargs))
        if self.blank is not None and self.blank.fullmatch(text.strip()):
            return ""
        return text


class Scalar(fields.Field[str]):
    """A property or label value: string, number or boolean, kept as text."""

    def __init__(self, *, blank: re.Pattern[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blank = blank

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise ValidationError("Must be a string, number or boolean.")
        text = storable(str(value))
        if self.blank is not None and self.blank.fullmatch(text.strip()):
            return ""
        return text


class Instant(fields.Field[datetime | None]):
    """A moment in UTC: ISO 8601 text (naive is UTC), or epoch seconds or milliseconds.

    An empty value (or a blank placeholder) is None. `epoch=False` refuses numbers.
    """

    def __init__(
        self, *, epoch: bool = True, blank: re.Pattern[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.epoch = epoch
        self.blank = blank

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> datetime | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError("Must be an ISO 8601 timestamp or epoch seconds.")
        if isinstance(value, str):
            text = storable(value).strip()
            if not text or (self.blank is not None and self.blank.fullmatch(text)):
                return None
            return from_text(text) if self.epoch else from_iso(text)
        if not self.epoch:
            raise ValidationError("Must be an ISO 8601 timestamp.")
        try:
            number = float(value)
        except OverflowError as e:  # found by fuzzing: JSON integers have no size limit
            raise ValidationError("Out of the range of dates.") from e
        return from_epoch(number)


def from_epoch(number: float) -> datetime:
    """Epoch seconds, or milliseconds when the number is too large to be seconds, as UTC."""
    if number != number:  # NaN: json.loads accepts it
        raise ValidationError("Not a valid epoch time.")
    seconds = number / 1000 if abs(number) >= _MILLISECONDS_FROM else number
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError as e:
        raise ValidationError("Out of the range of dates.") from e


def from_text(text: str) -> datetime:
    """Epoch seconds or milliseconds written as text, else ISO 8601 text, as UTC."""
    return from_epoch(float(text)) if _EPOCH_TEXT.fullmatch(text) else from_iso(text)


def from_iso(text: str) -> datetime:
    """ISO 8601 text as UTC; a timestamp without an offset is taken as UTC."""
    try:
        moment = fields.DateTime().deserialize(text)
    except ValidationError as e:
        raise ValidationError("Not a valid ISO 8601 timestamp.") from e
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as e:  # e.g. 0001-01-01T00:00:00+01:00
        raise ValidationError("Out of the range of dates.") from e


def filled(limit: int) -> Any:
    """A validator: non-empty text of at most `limit` characters (ids, status words)."""

    def check(text: str) -> bool:
        if not text.strip():
            raise ValidationError(
                "Must not be empty (a sender leaves a variable it cannot fill literally in place:"
                " check the webhook body's variable names)."
            )
        if len(text) > limit:
            raise ValidationError(f"Longer than {limit} characters.")
        return True

    return check


def properties_field(blank: re.Pattern[str] | None = None) -> fields.Dict:
    """A map of property names to scalar values."""
    return fields.Dict(
        keys=Text(validate=lambda key: _named(key, NAME_LIMIT)),
        values=Scalar(blank=blank),
        load_default=dict,
    )


def _named(key: str, limit: int) -> bool:
    if not key.strip() or len(key) > limit:
        raise ValidationError(f"Property names are 1 to {limit} characters.")
    return True


def known_word(table: Mapping[str, Any], choices: str = "") -> Callable[[str], bool]:
    """A validator: empty (the default) or a word of `table` in any case; `choices` for the error.

    Without `choices` the error lists the table's words, sorted.
    """
    shown = choices or ", ".join(sorted(table))

    def check(word: str) -> bool:
        if word.strip() and word.strip().lower() not in table:
            raise ValidationError(f"Must be one of: {shown}.")
        return True

    return check


def severity_of(
    word: str, table: Mapping[str, Severity], default: Severity = Severity.WARNING
) -> Severity:
    """The severity a (case-insensitive) word names; `default` when it is empty or unknown."""
    return table.get(word.strip().lower(), default)


class SourceSchema(Schema):
    """A sender's alert (or group) fields: unknown ones are ignored, since vendors add fields.

    The fields named in `words` (status, severity …) are case-insensitive: stripped and lower-cased
    before loading.
    """

    class Meta:
        unknown = EXCLUDE

    words: ClassVar[tuple[str, ...]] = ()

    @pre_load
    def lower_case_words(self, data: Any, **_: Any) -> Any:
        """The `words` fields in lower case, without surrounding whitespace."""
        if isinstance(data, dict) and self.words:
            data = dict(data)
            for key in self.words:
                if isinstance(data.get(key), str):
                    data[key] = data[key].strip().lower()
        return data


def present(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The pairs that have a value, as properties: an empty value is no property (later wins)."""
    return {key: value for key, value in pairs if value}


def fitted(alert: IncomingAlert) -> IncomingAlert:
    """The alert with its display text cut to what tickets and the alert table hold.

    Cut, not refused: the monitoring system cannot fix its own data. The fingerprint is the
    adapter's to keep within NAME_LIMIT (cutting it could merge two alerts).
    """
    return dataclasses.replace(
        alert,
        title=clip(alert.title, TITLE_LIMIT),
        message=clip(alert.message, MESSAGE_LIMIT),
        host=clip(alert.host, NAME_LIMIT),
        tenant=clip(alert.tenant, NAME_LIMIT),
        monitor=clip(alert.monitor, NAME_LIMIT),
        note=clip(alert.note, NOTE_LIMIT),
        actor=clip(alert.actor, NAME_LIMIT),
        raw_severity=clip(alert.raw_severity, NAME_LIMIT),
    )


# -- loading and error paths -----------------------------------------------------------------


def items_of(payload: Any, key: str, what: str) -> tuple[list[Any], str]:
    """The items of a webhook: one object, or {key: [...]}; and the error path prefix for them."""
    if not isinstance(payload, dict):
        raise PayloadError(f"the body must be a JSON object: {what}")
    if key not in payload:
        return [payload], ""
    items = payload[key]
    if not isinstance(items, list) or not items:
        raise PayloadError(
            f"'{key}' must be a non-empty list", details={key: ["Must be a non-empty list."]}
        )
    if len(items) > MAX_ALERTS:
        raise PayloadError(
            f"too many alerts in one webhook: {len(items)} (at most {MAX_ALERTS})",
            details={key: [f"At most {MAX_ALERTS} alerts."]},
        )
    return items, f"{key}."


def load_one(schema: Schema, item: Any, where: str, *, nested: bool = True) -> dict[str, Any]:
    """Load one item with `schema`; PayloadError naming its bad fields under `where`.

    `nested=False` names top-level fields only ("properties", its messages nested within).
    """
    if not isinstance(item, dict):
        raise PayloadError.naming({where or "_": ["Must be an object."]})
    try:
        loaded: dict[str, Any] = schema.load(item)
    except ValidationError as e:
        if nested:
            raise PayloadError.naming(flatten(e.messages, where)) from e
        messages = e.messages if isinstance(e.messages, dict) else {"_": e.messages}
        at = f"{where}." if where else ""
        raise PayloadError.naming({f"{at}{k}": v for k, v in messages.items()}) from e
    return loaded


def loading(
    schema: Schema, normalize: Callable[[dict[str, Any]], IncomingAlert], *, nested: bool = True
) -> Callable[[Any, str], IncomingAlert]:
    """A `read` for judge_each: load the item with `schema` (see load_one), then `normalize` it."""
    return lambda item, where: normalize(load_one(schema, item, where, nested=nested))


def judge_each(
    items: Sequence[Any],
    prefix: str,
    read: Callable[[Any, str], IncomingAlert],
    alone: Callable[[Any], Any] = lambda item: item,
) -> ParsedWebhook:
    """Read every item on its own: one bad alert must not cost the others their tickets.

    `read(item, where)` makes the alert or raises PayloadError naming fields under `where` (the
    item's path, "alerts.2", or "" for a body that is one alert); `alone(item)` is the item as a
    webhook of its own, kept with its refusal so that it can be replayed alone.
    """
    parsed: list[ParsedAlert] = []
    refused: list[RefusedAlert] = []
    for index, item in enumerate(items):
        where = f"{prefix}{index}" if prefix else ""
        try:
            parsed.append(ParsedAlert(index, read(item, where)))
        except PayloadError as e:
            refused.append(RefusedAlert(index, str(e), dict(e.details or {}), alone(item)))
    return ParsedWebhook(tuple(parsed), tuple(refused))


def flatten(messages: Any, where: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as {"a.b.0.c": [message, ...]}, all keys text."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            segment = _segment(key)
            path = f"{where}.{segment}" if where else segment
            flat.update(flatten(value, path))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {where or "_": list(messages)}
    if isinstance(messages, list):
        flat = {}
        for value in messages:
            flat.update(flatten(value, where))
        return flat
    return {where or "_": [str(messages)]}


def _segment(key: Any) -> str:
    """A path segment that is safe to echo back in JSON and logs (sender text, cut short)."""
    text = str(key).replace("\x00", "\\x00") or '""'
    return clip(text.encode("utf-8", "backslashreplace").decode("utf-8"), 100)


#: The bodies to paste on the sending side (see bodies/README.md).
BODIES = Path(__file__).parent / "bodies"


def shipped_body(name: str) -> str:
    """A body shipped in bodies/, as the admin pastes it."""
    return (BODIES / name).read_text(encoding="utf-8")


class BatchSource(ABC):
    """A source whose webhook carries one or more alerts: `parse_items` judges them one by one."""

    @abstractmethod
    def parse_items(self, payload: Any) -> ParsedWebhook:
        """Judge a decoded webhook body alert by alert (see connector.services.SourceAdapter)."""

    def parse(self, payload: Any) -> list[IncomingAlert]:
        """All or nothing: every alert, or PayloadError naming every bad field of every item."""
        return self.parse_items(payload).all_or_nothing()

"""Bodies that senders fill without JSON escaping, read literally by the shipped body's layout.

LogicMonitor's custom HTTP delivery and Datto RMM's webhooks put each variable's value into the
body template as it is, without JSON escaping. A value with a double quote, a backslash (any
Windows path), a newline or a tab then makes the body invalid JSON, or worse, valid JSON saying
something else (`C:\\temp\\new` decodes to "C:<TAB>emp<NEWLINE>ew"). So a body pasted from
`bodies/` carries a layout marker as its first member (`"layout": "logicmonitor-raw-1"`), and a
body with a known marker is never JSON-decoded: `Layout.read` knows the member order of the
shipped body and takes every value as the literal text between its opening quote and the
separator that starts the next member:

    "  [whitespace]  ,  [whitespace]  "next_member"  [whitespace]  :  [whitespace]  "

(entering or leaving the nested `properties` object adds its `{` or `}`), the last value ending
at the closing `"` and `}` at the very end of the body. Whitespace between members is free (the
admin may reformat the body); the order is the layout's. Values are taken literally: no
backslash-unescaping, so quotes, backslashes (a lone one at the end too), newlines, CRLF, tabs,
braces, commas, colons and any Unicode arrive as they were.

The one thing that cannot be read: a value containing the exact text that separates its own
member or the next one (e.g. a value holding `", "level": "` before the `level` member). The
body could then be cut in two ways; it is refused (400) as ambiguous, never misread, and kept
whole as a rejected webhook. The free-text values (instance, message) come last in the shipped
bodies, where only their own separator can confuse them.

The reader is a linear scan: each separator is searched from where the previous one ended (no
pattern with nested or lazy groups, so no catastrophic backtracking on a hostile 1 MiB body).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

from connector.errors import PayloadError

#: JSON's whitespace (RFC 8259): space, tab, LF, CR.
WS = "[ \t\r\n]*"
_WHITESPACE = " \t\r\n"
#: A body that names a layout: `{"layout": "<name>"` at its start.
_MARKED = re.compile(r"\A" + WS + r"\{" + WS + r'"layout"' + WS + ":" + WS + r'"([^"\\]{0,100})"')
#: How much of a body an error message quotes.
QUOTED = 60


class LayoutError(PayloadError):
    """A body that does not follow the layout it claims (or that the layout cannot cut surely)."""


def _key(name: str) -> str:
    return '"' + re.escape(name) + '"' + WS + ":" + WS


class Layout:
    """The member order of a shipped body, and how to read a body filled in without escaping.

    `members` are the paths of the body's string members in order, e.g. ("alert_id",) or
    ("properties", "autotask.accountid") for a member of the nested `properties` object.
    `marker` is the value of the leading `"layout"` member; None for a body shipped before
    markers existed (read only when it is not valid JSON).
    """

    def __init__(self, name: str, members: Sequence[tuple[str, ...]], marker: str | None) -> None:
        if not members or any(not path for path in members):
            raise ValueError("a layout has at least one member, each with a name")
        self.name = name
        self.marker = marker
        self.members = tuple(tuple(path) for path in members)
        first = self.members[0]
        opening = "".join(_key(name) + r"\{" + WS for name in first[:-1]) + _key(first[-1]) + '"'
        marked = "" if marker is None else _key("layout") + '"' + re.escape(marker) + '"' + WS + ","
        self._head = re.compile(r"\A" + WS + r"\{" + WS + marked + WS + opening)
        #: _separators[i] ends member i and opens member i + 1, up to its opening quote.
        self._separators = tuple(
            re.compile(_separator(before, after))
            for before, after in zip(self.members, self.members[1:], strict=False)
        )
        #: Objects still open after the last member, closed before the body's own `}`.
        self._closing = len(self.members[-1]) - 1

    def starts(self, text: str) -> bool:
        """Whether `text` begins as this layout's body does (its first member included)."""
        return self._head.match(text) is not None

    def read(self, text: str) -> dict[str, Any]:
        """Every member's value, literally; LayoutError when the body does not follow the layout.

        Returns the members as a JSON body with this layout would decode (nested objects as
        dicts), without the `layout` member.
        """
        head = self._head.match(text)
        if head is None:
            raise LayoutError(
                f"the body does not begin as the {self.name} body does"
                f" ({self._describe(self.members[0])} first): {_quote(text[:QUOTED])}"
            )
        last_quote = self._last_quote(text)
        if last_quote < head.end():
            raise LayoutError(f"the body ends before its first member's value ({self.name})")
        starts, ends = [head.end()], []
        for index, separator in enumerate(self._separators):
            found = separator.search(text, starts[-1], last_quote)
            if found is None:
                raise LayoutError(
                    f"the body does not follow the {self.name} layout: no"
                    f" {self._describe(self.members[index + 1])} after"
                    f" {self._describe(self.members[index])}"
                )
            ends.append(found.start())
            starts.append(found.end())
        ends.append(last_quote)
        self._check_unambiguous(text, ends, last_quote)
        values: dict[str, Any] = {}
        for path, start, end in zip(self.members, starts, ends, strict=True):
            target = values
            for name in path[:-1]:
                target = target.setdefault(name, {})
            target[path[-1]] = text[start:end]
        return values

    def _last_quote(self, text: str) -> int:
        """Where the last value's closing quote is: before the `}`s that end the body."""
        position = len(text.rstrip(_WHITESPACE))
        for _ in range(self._closing + 1):
            if position == 0 or text[position - 1] != "}":
                raise self._bad_end(text)
            position = len(text[: position - 1].rstrip(_WHITESPACE))
        if position == 0 or text[position - 1] != '"':
            raise self._bad_end(text)
        return position - 1

    def _bad_end(self, text: str) -> LayoutError:
        return LayoutError(
            f"the body does not end as the {self.name} body does"
            f' (the last value\'s closing quote, then "}}"): {_quote(text[-QUOTED:])}'
        )

    def _check_unambiguous(self, text: str, ends: list[int], last_quote: int) -> None:
        """Refuse a body that could be cut in two ways: never guess which value is which.

        Each separator was taken where it first occurs. Were it to occur again before the next
        one, a value holds separator text and the cut is uncertain (if the first occurrence was
        inside a value, the true one follows it before the next separator, so every misread is
        caught here).
        """
        boundaries = [*ends[1:], last_quote]
        for index, separator in enumerate(self._separators):
            if separator.search(text, ends[index] + 1, boundaries[index]) is not None:
                before, after = self.members[index], self.members[index + 1]
                raise LayoutError(
                    f"the body cannot be read for certain: the value of"
                    f" {self._describe(before)} or of {self._describe(after)} contains the text"
                    f" that separates them ({_separator_text(before, after)}); it is kept as a"
                    " rejected webhook, not guessed"
                )

    def _describe(self, path: tuple[str, ...]) -> str:
        return "member " + repr(".".join(path))


def _shared(before: tuple[str, ...], after: tuple[str, ...]) -> int:
    """How many enclosing objects two consecutive members share."""
    shared = 0
    while shared < min(len(before), len(after)) - 1 and before[shared] == after[shared]:
        shared += 1
    return shared


def _separator(before: tuple[str, ...], after: tuple[str, ...]) -> str:
    """The text between the value of `before` and the value of `after`, as a pattern."""
    shared = _shared(before, after)
    closing = r"\}" + WS
    opening = "".join(_key(name) + r"\{" + WS for name in after[shared:-1])
    return (
        '"' + WS + closing * (len(before) - 1 - shared) + "," + WS + opening + _key(after[-1]) + '"'
    )


def _separator_text(before: tuple[str, ...], after: tuple[str, ...]) -> str:
    """The separator between two members as the shipped body writes it, for messages."""
    shared = _shared(before, after)
    closing = "}" * (len(before) - 1 - shared)
    opening = "".join(f'"{name}": {{' for name in after[shared:-1])
    return f'"{closing}, {opening}"{after[-1]}": "'


def _quote(text: str) -> str:
    """Sender text in a message: repr, so that control characters show."""
    return repr(text)


def known_marker(text: str, layouts: Sequence[Layout]) -> Layout | None:
    """The layout a body's marker names; None without a marker; LayoutError for an unknown one."""
    found = _MARKED.match(text)
    if found is None:
        return None
    for layout in layouts:
        if layout.marker == found[1]:
            return layout
    names = ", ".join(repr(layout.marker) for layout in layouts)
    raise LayoutError(
        f"the body names the layout {found[1]!r}, which this connector does not know"
        f" (it reads {names}): paste the body shipped with this version"
    )


def decode_text(raw: bytes, charset: str | None) -> str:
    """The body as text in its declared charset (UTF-8 when none); PayloadError if it is not."""
    encoding = (charset or "utf-8").strip().lower()
    if encoding in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a byte order mark some editors write is no part of the body
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise PayloadError(f"the body is not valid {encoding} text: {e.reason} at {e.start}") from e
    except UnicodeError as e:  # a codec's own complaint (idna: "label empty or too long")
        raise PayloadError(f"the body is not valid {encoding} text: {e}") from e
    except (LookupError, ValueError) as e:
        # ValueError, found by fuzzing: a charset with a NUL in it names no codec either, but
        # is not a LookupError (gunicorn refuses such a header; other servers may pass it on).
        raise PayloadError(f"unknown charset {charset!r} in the Content-Type") from e


def read_raw_body(
    raw: bytes, charset: str | None, layouts: Sequence[Layout], legacy: Layout
) -> Any:
    """A body a sender filled without escaping: by its layout marker, else JSON, else `legacy`.

    - A body with a known layout marker is read by that layout, literally, never as JSON.
    - Without a marker it is strict JSON (senders that escape, custom bodies, tests).
    - A body that is not JSON but follows `legacy` (the body shipped before markers) is read
      by that layout, so that deployments still using it stop losing alerts with a quote or a
      backslash; valid JSON is read as JSON even then, which misreads `\\t`-like sequences.
    """
    try:
        text = decode_text(raw, charset)
    except PayloadError:
        if charset is None:  # JSON may also be UTF-16 or -32 (RFC 8259 readers detect it)
            return _json(raw, len(raw))
        raise
    layout = known_marker(text, layouts)
    if layout is not None:
        return layout.read(text)
    try:
        return _json(text, len(raw))
    except PayloadError as not_json:
        if not legacy.starts(text):
            raise
        try:
            return legacy.read(text)
        except LayoutError as e:
            raise PayloadError(f"{not_json}; nor does it follow {e}") from e


def _json(text: str | bytes, size: int) -> Any:
    try:
        return json.loads(text)
    except RecursionError as e:  # "[[[[…" a million deep: the decoder gives up
        raise PayloadError(f"the body is nested too deeply to parse ({size} bytes)") from e
    except ValueError as e:
        raise PayloadError(f"the body is not valid JSON ({size} bytes): {e}") from e


def read_form(raw: bytes, charset: str | None, nested: Sequence[str] = ()) -> dict[str, Any]:
    """An application/x-www-form-urlencoded body as the JSON body with the same members.

    Percent-encoding makes any value arrive as it was. A key `<object>.<name>` for an object
    in `nested` (e.g. `properties.autotask.accountid`) becomes a member of that object. A key
    sent twice is refused: which one was meant cannot be told.
    """
    text = decode_text(raw, charset)
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding=charset or "utf-8",
            errors="strict",
            max_num_fields=1000,
        )
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"the form body cannot be read: {e}") from e
    body: dict[str, Any] = {}
    for key, value in pairs:
        target, name = body, key
        for parent in nested:
            if key.startswith(f"{parent}.") and len(key) > len(parent) + 1:
                target, name = body.setdefault(parent, {}), key[len(parent) + 1 :]
                break
        if not isinstance(target, dict) or name in target:
            raise PayloadError(
                f"the form body names {key!r} twice", details={key: ["Sent more than once."]}
            )
        target[name] = value
    return body


def media_type(content_type: str) -> tuple[str, str | None]:
    """A Content-Type header's media type (lower case) and its charset parameter, if any."""
    header = Message()
    header["Content-Type"] = content_type
    charset = header.get_param("charset")
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind, charset if isinstance(charset, str) else None


def without_marker(item: Any) -> Any:
    """An item of a JSON batch, kept alone for replay, without a `layout` member.

    The replay then reads it as the JSON it is (a marked body is read literally, escapes and all).
    """
    if isinstance(item, dict) and "layout" in item:
        return {key: value for key, value in item.items() if key != "layout"}
    return item

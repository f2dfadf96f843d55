"""Payload templates: render an alert into a JSON or XML request body, and read the ticket id back.

Templates are Jinja2, run in an immutable sandbox with `StrictUndefined` and autoescaping off.
Alert data enters only as context values, never as template source, so text such as `{{7*7}}` or
`##TITLE##` inside an alert arrives literally (reliability-security.md §4.7, S6).

Two ways to write a value
-------------------------
- `##NAME##` tokens, as in LogicMonitor's HTTP delivery (DESIGN.md §4). Built-in token names are
  case-insensitive (`##title##` is `##TITLE##`); any other name is an alert property looked up by
  its exact name (`##autotask.accountid##`), and renders empty when the alert lacks it. A name in
  capitals without a dot that is not a built-in is refused as a misspelt token. Tokens are found
  in the template's text only: inside `{{ … }}` and `{% … %}` they are ordinary characters.
- Jinja variables, with the same values:

  ==============  ===========================================================================
  `alert`         id, status, type, level (= severity), title, message, host, tenant,
                  datasource (= monitor), instance, datapoint, value, threshold, start,
                  occurred, note, admin (= actor), source, properties
  `ticket`        id (None before the ticket exists), number, marker, description
  `note`          title, text: the note the connector composed for this event
  `autotask`      company_id (= account_id), priority, status, queue_id, due_date,
                  issue_type, sub_issue_type, work_type, ticket_category, ticket_type, source,
                  note_type, publish, integration_code, zone_url
  `properties`    every alert property by name (`properties["autotask.accountid"]`)
  `tokens`        every built-in token by name (`tokens.TITLE`)
  ==============  ===========================================================================

  `TOKENS` below lists each built-in token with its variable and meaning; payload_templates/
  README.md is the admins' copy of that table.

Escaping
--------
Every emitted value (`{{ … }}` and `##…##` alike) is escaped for the payload's format:

- JSON: as the content of a JSON string, so string tokens go inside quotes (`"##TITLE##"`).
  Integers and booleans render as bare JSON (`"priority": ##PRIORITY##`); an unset value
  (None) renders as nothing, so a bare optional value that is unset makes the payload invalid,
  which the save-time check catches. `{{ value|tojson }}` emits a complete JSON value instead.
- XML: as text, with `& < > " '` and tab, newline and carriage return as references, and the
  characters XML 1.0 cannot carry (NUL, the other C0 controls, U+FFFE, U+FFFF) removed.
  CDATA sections are refused when the template is compiled: escaped text inside CDATA would
  arrive with its references showing.

Lone surrogates become U+FFFD in both formats (they cannot be encoded as UTF-8).

Optional values
---------------
Autotask answers an explicit null on create with HTTP 500, so leave unset fields out (Reference:
KelvinTegelaar/AutotaskAPI issue #26, autotask-api.md §3):

    {% if autotask.queue_id is not none %}
      "queueID": ##QUEUEID##,
    {% endif %}

Block tags on a line of their own leave no blank line behind (trim_blocks and lstrip_blocks).

Limits
------
The sandbox bounds what template code may touch, not how long it runs (§4.7), so rendering is
also bounded (`RenderLimits`): output size, loop iterations, the size of every intermediate
value, the characters allocated in total, and wall time. Filters and methods that multiply their
input by a number argument (`center`, `indent`, `format`, `batch`, `ljust`, `str % args` …) are
not available; list repetition (`[x] * n`) is refused.

After rendering, `enforce_limits` parses the payload (json.loads, or a hardened lxml parser that
refuses any DOCTYPE) and truncates Autotask's text fields with a visible marker.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import GeneratorType, TracebackType
from typing import Any, Literal, NoReturn, cast

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.lexer import (
    TOKEN_DATA,
    TOKEN_LBRACKET,
    TOKEN_NAME,
    TOKEN_RBRACKET,
    TOKEN_STRING,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_VARIABLE_END,
    Token,
    TokenStream,
)
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Namespace, pass_context, pass_environment
from jinja2.visitor import NodeTransformer
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from lxml import etree

from connector.domain import (
    AlertStatus,
    IncomingAlert,
    Severity,
    Step,
    StepKind,
    TicketDraft,
    TicketRef,
)
from connector.errors import ExtractionError, RenderError, TemplateRejected
from connector.integrations.settings import (
    DESCRIPTION_LIMIT,
    TITLE_LIMIT,
    IntegrationSettings,
    describe_alert,
    truncate,
    utf16_units,
)
from connector.safe_xml import XmlRefused, parse_untrusted

logger = logging.getLogger(__name__)

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")

#: Field limits (getFieldInfo: Ticket Title 255, Description 8000; TicketNote Title 250,
#: Description 32000 — autotask-api.md §3 and §5). Keys match JSON members case-insensitively
#: and XML element local names.
TICKET_LIMITS: Mapping[str, int] = {
    "title": TITLE_LIMIT,
    "description": DESCRIPTION_LIMIT,
    # Ticket Resolution holds 32000 characters (getFieldInfo, autotask-api.md §3).
    "resolution": 32000,
}
NOTE_LIMITS: Mapping[str, int] = {"title": 250, "description": 32000}
NO_LIMITS: Mapping[str, int] = {}

MAX_TEMPLATE_CHARS = 64 * 1024
RESPONSE_EXCERPT_CHARS = 2000

DEFAULT_JSON_ID_PATH = "$.itemId"
#: Where a SOAP createResponse carries the new entity's id (autotask-api.md §10).
DEFAULT_XML_ID_PATH = "//ATWS:EntityResults/ATWS:Entity/ATWS:id"
DEFAULT_NAMESPACES: Mapping[str, str] = {"ATWS": "http://autotask.net/ATWS/v1_6/"}

_TEMPLATE_FILENAME = "<payload template>"


# -- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSpec:
    """One built-in `##NAME##` token: its Jinja variable and what it means."""

    name: str
    variable: str
    meaning: str


TOKENS: tuple[TokenSpec, ...] = (
    TokenSpec("ALERTID", "alert.id", "The source's id for the alert (its fingerprint)."),
    TokenSpec("ALERTSTATUS", "alert.status", "active, acknowledged, escalated or cleared."),
    TokenSpec("ALERTTYPE", "alert.type", "The alert's `alert.type` property, else the source."),
    TokenSpec("ALERTSOURCE", "alert.source", "The source adapter's slug, e.g. `generic`."),
    TokenSpec("LEVEL", "alert.level", "The severity: critical, error, warning or info."),
    TokenSpec("TITLE", "alert.title", "The alert's title (cut to 255 characters in tickets)."),
    TokenSpec("MESSAGE", "alert.message", "The alert's message text."),
    TokenSpec("HOST", "alert.host", "The host (device, resource) the alert is about."),
    TokenSpec("TENANT", "alert.tenant", "The source's tenant, site or organization."),
    TokenSpec("DATASOURCE", "alert.datasource", "The monitor, check or datasource."),
    TokenSpec("INSTANCE", "alert.instance", "The alert's `instance` property."),
    TokenSpec("DATAPOINT", "alert.datapoint", "The alert's `datapoint` property."),
    TokenSpec("VALUE", "alert.value", "The alert's `value` property (the measured value)."),
    TokenSpec("THRESHOLD", "alert.threshold", "The alert's `threshold` property."),
    TokenSpec("START", "alert.start", "When the alert started, ISO 8601; empty if unknown."),
    TokenSpec("OCCURRED", "alert.occurred", "When this event happened, ISO 8601; may be empty."),
    TokenSpec("NOTE", "alert.note", "The note or comment that came with the event."),
    TokenSpec("ADMIN", "alert.admin", "Who acknowledged, escalated or cleared the alert."),
    TokenSpec(
        "DESCRIPTION",
        "ticket.description",
        "The ticket description the connector composes: message, host, monitor, severity,"
        " start and source.",
    ),
    TokenSpec(
        "EXTERNALTICKETID",
        "ticket.id",
        "The Autotask ticket id stored for the alert; empty before the ticket exists.",
    ),
    TokenSpec("TICKETNUMBER", "ticket.number", "The ticket number (T20240101.0001), if known."),
    TokenSpec("MARKER", "ticket.marker", "The correlation marker sent as the ticket's externalID."),
    TokenSpec("NOTETITLE", "note.title", "The title of the note the connector composed."),
    TokenSpec("NOTETEXT", "note.text", "The text of the note the connector composed."),
    TokenSpec("ACCOUNTID", "autotask.company_id", "The Autotask company (account) id."),
    TokenSpec("COMPANYID", "autotask.company_id", "Same as ACCOUNTID."),
    TokenSpec("PRIORITY", "autotask.priority", "The ticket priority mapped from the severity."),
    TokenSpec("STATUS", "autotask.status", "The ticket status mapped from the alert status."),
    TokenSpec("QUEUEID", "autotask.queue_id", "The queue id; unset if none is configured."),
    TokenSpec(
        "DUEDATE",
        "autotask.due_date",
        "The due date, UTC, as Autotask reads it (2024-01-01T09:00:00Z).",
    ),
    TokenSpec("ISSUETYPE", "autotask.issue_type", "The issue type id; may be unset."),
    TokenSpec("SUBISSUETYPE", "autotask.sub_issue_type", "The sub-issue type id; may be unset."),
    TokenSpec(
        "WORKTYPE",
        "autotask.work_type",
        "The work type id (billing code: REST billingCodeID, SOAP AllocationCodeID); may be unset.",
    ),
    TokenSpec(
        "TICKETCATEGORY", "autotask.ticket_category", "The ticket category id; may be unset."
    ),
    TokenSpec("TICKETTYPE", "autotask.ticket_type", "The ticket type id; may be unset."),
    TokenSpec("SOURCE", "autotask.source", "The ticket source picklist id; may be unset."),
    TokenSpec("NOTETYPE", "autotask.note_type", "The note type picklist id."),
    TokenSpec("PUBLISH", "autotask.publish", "The note publish picklist id."),
    TokenSpec(
        "INTEGRATIONCODE",
        "autotask.integration_code",
        "The API tracking identifier (SOAP AutotaskIntegrations header).",
    ),
    TokenSpec(
        "ZONEURL",
        "autotask.zone_url",
        "The API user's zone address as Autotask's zone lookup gives it (REST: ending in"
        " V1.0/; SOAP: the atws.asmx address); for request URLs.",
    ),
)
TOKEN_NAMES = frozenset(spec.name for spec in TOKENS)

#: `##NAME##`: a built-in token (any case) or an alert property by its exact name.
_TOKEN = re.compile(r"##([A-Za-z0-9_][A-Za-z0-9_.:\-]*)##")
#: A name shaped like a built-in token; one that is not built in is refused as misspelt.
_BUILTIN_SHAPE = re.compile(r"[A-Z][A-Z0-9_]*")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def wire_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a Z; a naive datetime is taken as UTC (Autotask stores UTC, §3)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The steps whose update sets the ticket's status.
_STATUS_CHANGES = frozenset({StepKind.SET_STATUS, StepKind.COMPLETE, StepKind.REOPEN})


@dataclass(frozen=True)
class MappedValues:
    """The Autotask values the integration's mappings chose for one alert event."""

    company_id: int | None = None
    priority: int | None = None
    status: int | None = None
    queue_id: int | None = None
    due_at: datetime | None = None
    issue_type: int | None = None
    sub_issue_type: int | None = None
    work_type: int | None = None
    ticket_category: int | None = None
    ticket_type: int | None = None
    source: int | None = None
    note_type: int | None = None
    publish: int | None = None
    integration_code: str = ""
    zone_url: str = ""


@dataclass(frozen=True)
class RenderContext:
    """Everything a payload template can read for one alert event."""

    alert: IncomingAlert
    mapped: MappedValues = field(default_factory=MappedValues)
    ticket_id: int | None = None
    ticket_number: str = ""
    marker: str = ""
    description: str = ""
    note_title: str = ""
    note_text: str = ""
    #: What an update changes: the ticket's status, or (a severity change) its priority; None
    #: for what it leaves alone, and for creates and notes.
    change_status: int | None = None
    change_priority: int | None = None

    @classmethod
    def build(
        cls,
        alert: IncomingAlert,
        *,
        settings: IntegrationSettings | None = None,
        draft: TicketDraft | None = None,
        step: Step | None = None,
        ticket: TicketRef | None = None,
        marker: str = "",
        integration_code: str = "",
        zone_url: str = "",
    ) -> RenderContext:
        """The context for `alert`: mapped values from `draft`, status from `step`, note text."""
        status: int | None = None
        if step is not None and step.status is not None:
            status = step.status
        elif draft is not None:
            status = draft.status
        elif settings is not None:
            status = settings.status_map.get(alert.status)
        priority = draft.priority if draft else None
        if step is not None and step.priority is not None:
            priority = step.priority
        mapped = MappedValues(
            company_id=draft.company_id if draft else None,
            priority=priority,
            status=status,
            queue_id=draft.queue_id if draft else None,
            due_at=draft.due_at if draft else None,
            issue_type=draft.issue_type if draft else None,
            sub_issue_type=draft.sub_issue_type if draft else None,
            work_type=draft.work_type if draft else None,
            ticket_category=draft.ticket_category if draft else None,
            ticket_type=draft.ticket_type if draft else None,
            source=draft.source if draft else None,
            note_type=settings.note_type if settings else None,
            publish=settings.publish if settings else None,
            integration_code=integration_code,
            zone_url=zone_url,
        )
        return cls(
            alert=alert,
            mapped=mapped,
            ticket_id=ticket.ticket_id if ticket else None,
            ticket_number=(ticket.ticket_number or "") if ticket else "",
            marker=marker or (draft.marker if draft else ""),
            description=draft.description if draft else describe_alert(alert, alert.started_at),
            note_title=step.title if step else "",
            note_text=step.text if step else "",
            change_status=step.status if step and step.kind in _STATUS_CHANGES else None,
            change_priority=step.priority if step and step.kind is StepKind.SET_PRIORITY else None,
        )

    def variables(self) -> dict[str, object]:
        """The Jinja variables (see the module docstring); fresh containers on every call."""
        a = self.alert
        props = dict(a.properties)
        m = self.mapped
        alert: dict[str, object] = {
            "id": a.fingerprint,
            "fingerprint": a.fingerprint,
            "status": a.status.value,
            "type": props.get("alert.type") or a.source,
            "source": a.source,
            "level": a.severity.value,
            "severity": a.severity.value,
            "title": a.title,
            "message": a.message,
            "host": a.host,
            "tenant": a.tenant,
            "datasource": a.monitor,
            "monitor": a.monitor,
            "instance": props.get("instance", ""),
            "datapoint": props.get("datapoint", ""),
            "value": props.get("value", ""),
            "threshold": props.get("threshold", ""),
            "start": _iso(a.started_at),
            "occurred": _iso(a.occurred_at),
            "note": a.note,
            "admin": a.actor,
            "actor": a.actor,
            "properties": props,
        }
        ticket: dict[str, object] = {
            "id": self.ticket_id,
            "number": self.ticket_number,
            "marker": self.marker,
            "description": self.description,
        }
        note: dict[str, object] = {"title": self.note_title, "text": self.note_text}
        autotask: dict[str, object] = {
            "company_id": m.company_id,
            "account_id": m.company_id,
            "priority": m.priority,
            "status": m.status,
            "queue_id": m.queue_id,
            "due_date": wire_datetime(m.due_at) if m.due_at is not None else None,
            "issue_type": m.issue_type,
            "sub_issue_type": m.sub_issue_type,
            "work_type": m.work_type,
            "ticket_category": m.ticket_category,
            "ticket_type": m.ticket_type,
            "source": m.source,
            "note_type": m.note_type,
            "publish": m.publish,
            "integration_code": m.integration_code,
            "zone_url": m.zone_url,
        }
        change: dict[str, object] = {
            "status": self.change_status,
            "priority": self.change_priority,
        }
        groups: dict[str, dict[str, object]] = {
            "alert": alert,
            "ticket": ticket,
            "note": note,
            "autotask": autotask,
            "change": change,
        }
        tokens: dict[str, object] = {}
        for spec in TOKENS:
            group, key = spec.variable.split(".")
            tokens[spec.name] = groups[group][key]
        return {
            **groups,
            "properties": dict(props),
            "tokens": tokens,
            _TOKENS_VAR: dict(tokens),
            _PROPERTIES_VAR: _LenientProperties(props),
        }


class _LenientProperties(dict[str, str]):
    """Alert properties for `##name##` tokens: a property the alert lacks renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


#: The hidden variables `##…##` tokens are rewritten to look up.
_TOKENS_VAR = "__connector_tokens__"
_PROPERTIES_VAR = "__connector_properties__"


# -- limits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderLimits:
    """How much one render may produce and take (reliability-security.md §4.7, S6)."""

    max_output_chars: int = 1024 * 1024
    #: Any one intermediate value: a string's length, a container's total size.
    max_value_chars: int = 1024 * 1024
    #: Characters produced by all operations together, so work stays bounded too.
    max_total_chars: int = 64 * 1024 * 1024
    max_iterations: int = 100_000
    #: Seconds of the rendering thread's own CPU time: a render waiting for a busy machine's
    #: CPU is not stopped for it, one that computes too long is.
    max_seconds: float = 2.0
    #: Integers wider than this many bits are refused (`10 ** 10 ** 10` would never finish).
    max_int_bits: int = 4096


class _LimitExceeded(Exception):
    """A render passed one of its RenderLimits."""


@dataclass
class _Budget:
    limits: RenderLimits
    deadline: float
    iterations: int = 0
    produced: int = 0
    #: id → (container, printed size) of the containers measured during this render.
    sizes: dict[int, tuple[object, int]] = field(default_factory=dict)

    def tick(self) -> None:
        if time.thread_time() > self.deadline:
            raise _LimitExceeded(
                f"rendering took longer than {self.limits.max_seconds:g} s and was stopped"
            )

    def iteration(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise _LimitExceeded(
                f"loops ran more than {self.limits.max_iterations} times in total and were stopped"
            )
        if self.iterations % 256 == 0:
            self.tick()

    def check_size(self, chars: int) -> None:
        if chars > self.limits.max_value_chars:
            raise _LimitExceeded(
                f"a value of {chars} characters is larger than the"
                f" {self.limits.max_value_chars} a template may build"
            )

    def charge(self, chars: int) -> None:
        self.check_size(chars)
        self.produced += chars
        if self.produced > self.limits.max_total_chars:
            raise _LimitExceeded(
                f"the template built more than {self.limits.max_total_chars} characters in total"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("connector_render_budget", default=None)


def _budget() -> _Budget:
    # Constant folding runs filters while compiling, outside any render: bounded by size only.
    return _BUDGET.get() or _Budget(RenderLimits(), deadline=math.inf)


def _children(item: object) -> list[object] | None:
    """The parts of a container that its printed form shows; None for anything else."""
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, list | tuple | set | frozenset):
        return list(item)
    if isinstance(item, Namespace):
        # str(namespace) prints its attributes, like a dict's.
        return [object.__getattribute__(item, "_Namespace__attrs")]
    return None


def _measure(value: object, budget: _Budget) -> int:
    """The printed size of `value`, roughly: string lengths plus one per item (capped).

    Shared parts count each time they appear, as they print; each container is walked once per
    render (sandboxed templates cannot change a list or dict), so nesting stays cheap to check.
    """
    cap = budget.limits.max_value_chars + 1
    sizes = budget.sizes
    pending: set[int] = set()
    local: dict[int, int] = {}

    def size(item: object) -> int:
        if isinstance(item, str | bytes):
            return len(item) + 1
        key = id(item)
        if key in sizes:
            return sizes[key][1]
        return local.get(key, cap if key in pending or _children(item) is not None else 1)

    stack: list[tuple[object, bool]] = [(value, False)]
    while stack:
        item, expanded = stack.pop()
        key = id(item)
        children = _children(item)
        if children is None or key in sizes or key in local:
            continue
        if not expanded:
            if key in pending:
                continue  # a cycle (through a namespace): counted as too large
            pending.add(key)
            stack.append((item, True))
            stack.extend((child, False) for child in children if _children(child) is not None)
            continue
        pending.discard(key)
        total = min(cap, 1 + sum(min(cap, size(child)) for child in children))
        if isinstance(item, Namespace):
            local[key] = total  # its attributes can be reassigned: not kept for the render
        else:
            sizes[key] = (item, total)  # the item is kept so that its id is not reused
    return size(value)


def _check_value(value: object) -> object:
    budget = _budget()
    if isinstance(value, str):
        budget.charge(len(value))
    elif isinstance(value, dict | list | tuple | set | frozenset | Namespace):
        budget.charge(_measure(value, budget))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > budget.limits.max_int_bits:
            raise _LimitExceeded(f"an integer wider than {budget.limits.max_int_bits} bits")
    return value


def _text(value: object) -> str:
    """`value` as text, refusing first anything whose text would be too large."""
    if isinstance(value, str):
        return value
    budget = _budget()
    budget.charge(_measure(value, budget))
    return str(value)


# -- filters, methods and operators ------------------------------------------------------------


class JsonText(str):
    """A complete JSON value made by the `tojson` filter; emitted as is into JSON payloads."""


#: Filters that multiply their input by an argument, print Python reprs, escape for HTML
#: (payloads are escaped for their own format already) or are random are left out.
_OMITTED_FILTERS = frozenset(
    {
        "batch",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "pprint",
        "random",
        "safe",
        "slice",
        "urlize",
        "wordwrap",
        "xmlattr",
    }
)


@pass_context
def _guard_value(context: Context, value: object) -> object:
    """Applied to every call, filter, concatenation and literal container a template makes."""
    _budget().tick()
    return _check_value(value)


@pass_context
def _guard_loop(context: Context, iterable: Iterable[object]) -> Iterator[object]:
    """Applied to every `{% for %}`: counts iterations against the budget."""
    budget = _budget()
    for item in iterable:
        budget.iteration()
        yield item


@pass_environment
def _join(env: Any, value: Iterable[object], d: object = "", attribute: str | None = None) -> str:
    """Jinja's `join`, refusing a result larger than the value limit before building it."""
    budget = _budget()
    separator = _text(d)
    getter = make_attrgetter(env, attribute) if attribute is not None else None
    parts: list[str] = []
    total = 0
    for item in value:
        budget.iteration()
        text = _text(getter(item) if getter is not None else item)
        total += len(text) + (len(separator) if parts else 0)
        budget.check_size(total)
        parts.append(text)
    budget.charge(total)
    return separator.join(parts)


def _replace(value: object, old: object, new: object, count: int | None = None) -> str:
    """Jinja's `replace`, refusing a result larger than the value limit before building it."""
    text, old_text, new_text = _text(value), _text(old), _text(new)
    found = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    _budget().charge(len(text) + found * (len(new_text) - len(old_text)))
    return text.replace(old_text, new_text, -1 if count is None else count)


@pass_environment
def _sum(env: Any, iterable: Iterable[object], attribute: str | None = None, start: int = 0) -> Any:
    """Jinja's `sum`, for numbers only (adding lists or strings could grow without bound)."""
    budget = _budget()
    getter = make_attrgetter(env, attribute) if attribute is not None else None
    total: Any = start
    for item in iterable:
        budget.iteration()
        number = getter(item) if getter is not None else item
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise TypeError("sum adds numbers only")
        total = _check_value(total + number)
    return total


def _tojson(value: object) -> JsonText:
    """The value as one JSON value, emitted unescaped into JSON payloads (`"x": {{ v|tojson }}`)."""
    budget = _budget()
    budget.charge(_measure(value, budget))
    return JsonText(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _safe_range(*args: int) -> range:
    for arg in args:
        if isinstance(arg, int) and arg.bit_length() > 64:
            raise OverflowError("range arguments are too large")
    return safe_range(*args)


#: Methods a template may call on built-in values. Anything else (`center`, `ljust`, `zfill`,
#: `format`, `join`, `replace`, `to_bytes` …) could multiply its input by an argument.
_SAFE_METHODS: Mapping[type, frozenset[str]] = {
    str: frozenset(
        {
            "capitalize",
            "casefold",
            "count",
            "endswith",
            "find",
            "isalnum",
            "isalpha",
            "isdecimal",
            "isdigit",
            "islower",
            "isnumeric",
            "isspace",
            "istitle",
            "isupper",
            "lower",
            "lstrip",
            "partition",
            "removeprefix",
            "removesuffix",
            "rfind",
            "rpartition",
            "rsplit",
            "rstrip",
            "split",
            "splitlines",
            "startswith",
            "strip",
            "swapcase",
            "title",
            "upper",
        }
    ),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    int: frozenset({"real", "imag", "numerator", "denominator"}),
    float: frozenset({"real", "imag", "is_integer"}),
}


def _builtin_type(obj: object) -> type | None:
    for kind in _SAFE_METHODS:
        if isinstance(obj, kind):
            return kind
    if isinstance(obj, set | frozenset | bytes | complex):
        return type(obj)
    return None


class _PayloadEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox for payload templates: bounded operators, methods, filters and output."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, fmt: Format) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            finalize=_finalize_json if fmt == "json" else _finalize_xml,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
            extensions=[_TokenExtension],
        )
        self.payload_format: Format = fmt
        self.filters = {
            name: func for name, func in FILTERS.items() if name not in _OMITTED_FILTERS
        }
        self.filters.update(
            {
                "join": _join,
                "replace": _replace,
                "sum": _sum,
                "tojson": _tojson,
                _GUARD_VALUE: _guard_value,
                _GUARD_LOOP: _guard_loop,
            }
        )
        self.globals.pop("lipsum", None)
        self.globals["range"] = _safe_range

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """The sandbox's rules, and on built-in values only the methods in _SAFE_METHODS."""
        if not super().is_safe_attribute(obj, attr, value):
            return False
        kind = _builtin_type(obj)
        if kind is None:
            return True
        return attr in _SAFE_METHODS.get(kind, frozenset())

    def wrap_str_format(self, value: Any) -> None:
        """No sandboxed `str.format`: `is_safe_attribute` refuses `format` (its widths pad)."""
        return None

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call in a template counts against the render's time limit."""
        _budget().tick()
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`+ * ** %` with their results bounded before they are built."""
        limits = _budget().limits
        sequences = (str, list, tuple)
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string % formatting is not available; use ~ and filters")
        if operator == "*":
            if isinstance(left, list | tuple) or isinstance(right, list | tuple):
                raise SecurityError("repeating a list with * is not available")
            if isinstance(left, str) or isinstance(right, str):
                text, times = (left, right) if isinstance(left, str) else (right, left)
                if isinstance(times, int):
                    _budget().charge(len(text) * max(times, 0))
            elif _is_int(left) and _is_int(right):
                if left.bit_length() + right.bit_length() > limits.max_int_bits:
                    raise _LimitExceeded(f"an integer wider than {limits.max_int_bits} bits")
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0:
            if abs(left) > 1 and left.bit_length() * right > limits.max_int_bits:
                raise _LimitExceeded(f"an integer wider than {limits.max_int_bits} bits")
        if operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
            budget = _budget()
            budget.charge(_measure(left, budget) + _measure(right, budget))
        return _check_value(super().call_binop(context, operator, left, right))

    def concat(self, parts: Iterable[str]) -> str:
        """Join a macro's or block's output, refusing a result larger than the value limit."""
        items = list(parts)
        _budget().charge(sum(len(item) for item in items))
        return "".join(items)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_GUARD_VALUE = "connector_guard_value"
_GUARD_LOOP = "connector_guard_loop"


class _TokenExtension(Extension):
    """Rewrites `##NAME##` in template text into variable lookups, at the token level.

    The name becomes a string token of the parsed template, never template source, and the value
    is looked up when rendering: nothing an alert contains is ever parsed as template syntax.
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        """Split each text token around its `##NAME##` tokens."""
        fmt = cast(_PayloadEnvironment, self.environment).payload_format
        for token in stream:
            if token.type != TOKEN_DATA:
                yield token
                continue
            if fmt == "xml" and "<![CDATA[" in token.value:
                line = token.lineno + token.value[: token.value.index("<![CDATA[")].count("\n")
                raise TemplateSyntaxError(
                    "CDATA sections are not allowed in XML payload templates: values are escaped"
                    " as XML text, which inside CDATA would arrive with its references showing",
                    line,
                )
            yield from self._split(token)

    def _split(self, token: Token) -> Iterator[Token]:
        position = 0
        lineno = token.lineno
        for match in _TOKEN.finditer(token.value):
            before = token.value[position : match.start()]
            if before:
                yield Token(lineno, TOKEN_DATA, before)
                lineno += before.count("\n")
            yield from _lookup_tokens(lineno, match.group(1))
            position = match.end()
        rest = token.value[position:]
        if rest:
            yield Token(lineno, TOKEN_DATA, rest)


def _lookup_tokens(lineno: int, name: str) -> Iterator[Token]:
    """`{{ __connector_tokens__["NAME"] }}` (or the properties table), as parser tokens."""
    if name.upper() in TOKEN_NAMES:
        table, key = _TOKENS_VAR, name.upper()
    elif _BUILTIN_SHAPE.fullmatch(name):
        raise TemplateSyntaxError(
            f"unknown token ##{name}##; alert properties are written by their exact name,"
            " e.g. ##autotask.accountid##",
            lineno,
        )
    else:
        table, key = _PROPERTIES_VAR, name
    yield Token(lineno, TOKEN_VARIABLE_BEGIN, "{{")
    yield Token(lineno, TOKEN_NAME, table)
    yield Token(lineno, TOKEN_LBRACKET, "[")
    yield Token(lineno, TOKEN_STRING, key)
    yield Token(lineno, TOKEN_RBRACKET, "]")
    yield Token(lineno, TOKEN_VARIABLE_END, "}}")


class _Harden(NodeTransformer):
    """Wraps loops and value-producing expressions in guard filters; refuses unsupported tags."""

    def __init__(self, environment: _PayloadEnvironment) -> None:
        self.environment = environment

    def _guard(self, node: nodes.Expr, name: str) -> nodes.Expr:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        wrapped.set_environment(self.environment)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._guard(cast(nodes.Expr, node.iter), _GUARD_LOOP)
        return node

    def _value(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return self._guard(node, _GUARD_VALUE)

    visit_Concat = _value
    visit_List = _value
    visit_Dict = _value
    visit_Call = _value

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":
            return node  # an assignment target: `{% for k, v in … %}`, `{% set a, b = … %}`
        return self._value(node)

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        if node.node is None:
            # The filter of a `{% filter %}` or `{% set x | f %}` block: it has no operand.
            self.generic_visit(node)
            return node
        return self._value(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        # `{% call %}` must keep its Call node as it is; guard the call's parts instead.
        self.generic_visit(node.call)
        node.args = [self.visit(arg) for arg in node.args]
        node.defaults = [self.visit(default) for default in node.defaults]
        node.body = [self.visit(child) for child in node.body]
        return node

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        if node.name == "self" and node.ctx == "load":
            raise TemplateSyntaxError("'self' is not available in payload templates", node.lineno)
        return node

    def _unsupported(self, node: nodes.Node) -> NoReturn:
        tag = type(node).__name__.lower()
        raise TemplateSyntaxError(
            f"{{% {tag} %}} is not available in payload templates: a template is one file",
            node.lineno,
        )

    visit_Extends = _unsupported
    visit_Include = _unsupported
    visit_Import = _unsupported
    visit_FromImport = _unsupported


# -- escaping ----------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Characters XML 1.0 cannot carry (§2.2 Char), even as references.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&apos;",
    "\t": "&#9;",
    "\n": "&#10;",
    "\r": "&#13;",
}
_XML_SPECIAL = re.compile("[&<>\"'\t\n\r]")


def _scalar_text(value: object) -> str | None:
    """Text for None, booleans and numbers, shared by both formats; None for anything else."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value, allow_nan=False)
    return None


def _printable(value: object) -> str:
    if isinstance(value, Undefined):
        return str(value)  # StrictUndefined raises: what it names is undefined or not allowed
    if isinstance(value, str | dict | list | tuple | set | frozenset | Namespace):
        return _SURROGATE.sub("\ufffd", _text(value))
    # Runtime objects (loop, cycler, namespace …): their type, never their repr.
    return f"<{type(value).__name__}>"


def escape_json(text: str) -> str:
    """`text` as the content of a JSON string (without the quotes)."""
    return json.dumps(_SURROGATE.sub("\ufffd", text), ensure_ascii=False)[1:-1]


def escape_xml(text: str) -> str:
    """`text` as XML text or attribute content; characters XML cannot carry are removed."""
    text = _NOT_XML.sub("", _SURROGATE.sub("\ufffd", text))
    return _XML_SPECIAL.sub(lambda m: _XML_ESCAPES[m.group()], text)


def _finalize_json(value: object) -> str:
    if isinstance(value, JsonText):
        return str.__str__(value)
    scalar = _scalar_text(value)
    if scalar is not None:
        return scalar
    return escape_json(_printable(value))


def _finalize_xml(value: object) -> str:
    scalar = _scalar_text(value)
    if scalar is not None:
        return scalar
    return escape_xml(_printable(value))


# -- compiling and rendering -------------------------------------------------------------------

_ENVIRONMENTS: dict[Format, _PayloadEnvironment] = {}


def _environment(fmt: Format) -> _PayloadEnvironment:
    if fmt not in FORMATS:
        raise ValueError(f"unknown payload format {fmt!r}; expected json or xml")
    env = _ENVIRONMENTS.get(fmt)
    if env is None:
        env = _ENVIRONMENTS[fmt] = _PayloadEnvironment(fmt)
    return env


@dataclass(frozen=True)
class Rendered:
    """A rendered payload and, for error messages, which template line produced which part."""

    text: str
    #: (offset in text, template line, whether the chunk is template text) per emitted chunk.
    spans: tuple[tuple[int, int, bool], ...] = ()

    def template_line(self, offset: int) -> int | None:
        """The template line that produced the character at `offset`, if known."""
        if not self.spans:
            return None
        index = bisect.bisect_right([span[0] for span in self.spans], offset) - 1
        start, line, literal = self.spans[max(index, 0)]
        # Inside template text, count the lines; a value's lines are all its expression's.
        return line + self.text[start:offset].count("\n") if literal else line


class CompiledTemplate:
    """A compiled payload template; `render` it once per alert event."""

    def __init__(self, source: str, fmt: Format, limits: RenderLimits) -> None:
        env = _environment(fmt)
        self.source = source
        self.format: Format = fmt
        self.limits = limits
        self._lines = source.splitlines(keepends=True)
        self._line_starts = [0]
        for line in self._lines:
            self._line_starts.append(self._line_starts[-1] + len(line))
        try:
            tree = env.parse(source, filename=_TEMPLATE_FILENAME)
            _Harden(env).visit(tree)
            code = env.compile(tree, filename=_TEMPLATE_FILENAME)
        except TemplateSyntaxError as e:
            raise TemplateRejected(
                f"line {e.lineno}: {e.message}", line=e.lineno, details={"reason": e.message}
            ) from e
        self._template = env.template_class.from_code(env, code, env.make_globals(None))
        self._chunk_lines: dict[tuple[int, str], tuple[int, bool]] = {}

    def render(self, context: RenderContext | Mapping[str, object]) -> str:
        """The payload for `context`; RenderError (with the template line) when it cannot be."""
        return self.render_traced(context).text

    def render_payload(
        self, context: RenderContext | Mapping[str, object], limits: Mapping[str, int]
    ) -> str:
        """Render, check the payload parses and cut its fields to `limits` (`enforce_limits`)."""
        rendered = self.render_traced(context)
        try:
            return _enforce(rendered.text, self.format, {k.lower(): v for k, v in limits.items()})
        except _InvalidPayload as e:
            line = rendered.template_line(e.offset) if e.offset is not None else None
            raise RenderError(_with_line(str(e), line), line=line) from e

    def render_traced(self, context: RenderContext | Mapping[str, object]) -> Rendered:
        """Render, keeping which template line produced each part of the output."""
        variables = context.variables() if isinstance(context, RenderContext) else dict(context)
        budget = _Budget(self.limits, time.thread_time() + self.limits.max_seconds)
        reset = _BUDGET.set(budget)
        chunks: list[str] = []
        spans: list[tuple[int, int, bool]] = []
        size = 0
        template = self._template
        generator = cast(
            "GeneratorType[str, None, None]",
            template.root_render_func(template.new_context(variables)),
        )
        try:
            for chunk in generator:
                budget.tick()
                frame = generator.gi_frame
                spans.append((size, *self._chunk_line(chunk, frame.f_lineno if frame else 0)))
                size += len(chunk)
                if size > self.limits.max_output_chars:
                    raise _LimitExceeded(
                        f"the payload is larger than {self.limits.max_output_chars} characters"
                    )
                chunks.append(chunk)
        # Template code can raise whatever Python can (TypeError, ZeroDivisionError …): every
        # failure of one render is that render's error, with its template line.
        except Exception as e:  # noqa: BLE001
            generator.close()
            raise _render_error(e, spans[-1][1] if spans else None) from e
        finally:
            _BUDGET.reset(reset)
        return Rendered("".join(chunks), tuple(spans))

    def _chunk_line(self, chunk: str, code_line: int) -> tuple[int, bool]:
        """Where a chunk starts: its place in the source if it is template text, else its line.

        Jinja maps generated code to the line of the last expression before it, so text after a
        block tag would be attributed to that tag; looking the text up from there is exact.
        """
        key = (code_line, chunk)
        known = self._chunk_lines.get(key)
        if known is not None:
            return known
        line = self._template.get_corresponding_lineno(code_line) if code_line else 1
        found = -1
        if chunk.strip() and line <= len(self._lines):
            found = self.source.find(chunk, self._line_starts[max(line - 1, 0)])
        result = (
            (bisect.bisect_right(self._line_starts, found), True) if found >= 0 else (line, False)
        )
        if len(self._chunk_lines) < 4096:  # template text repeats; values mostly do not
            self._chunk_lines[key] = result
        return result


def _with_line(message: str, line: int | None) -> str:
    return f"line {line}: {message}" if line else message


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line of the innermost template frame in a traceback."""
    line = None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _render_error(error: Exception, fallback_line: int | None = None) -> RenderError:
    line = _template_line(error.__traceback__) or fallback_line
    if isinstance(error, SecurityError):
        reason = f"not allowed in payload templates: {error}"
    elif isinstance(error, _LimitExceeded):
        reason = f"render limit: {error}"
    elif isinstance(error, OverflowError | RecursionError | MemoryError):
        reason = f"render limit: {error}"
    else:
        reason = f"{type(error).__name__}: {error}"
    return RenderError(
        _with_line(reason, line), line=line, details={"reason": reason, "kind": _kind(error)}
    )


def _kind(error: Exception) -> str:
    if isinstance(error, SecurityError):
        return "security"
    if isinstance(error, _LimitExceeded | OverflowError | RecursionError | MemoryError):
        return "limit"
    return "error"


def compile_template(
    source: str, fmt: Format, limits: RenderLimits | None = None
) -> CompiledTemplate:
    """Compile a payload template; TemplateRejected (with its line) if it is not valid Jinja."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateRejected(
            f"the template has {len(source)} characters; at most {MAX_TEMPLATE_CHARS} are allowed"
        )
    return CompiledTemplate(source, fmt, limits or RenderLimits())


# -- the parsed payload ------------------------------------------------------------------------


class _InvalidPayload(ValueError):
    """The rendered payload does not parse; `offset` is where in the text, if known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def parse_xml(data: bytes) -> etree._Element:
    """Parse a payload or an answer with the one hardened parser (connector.safe_xml).

    Processing instructions stay: a rendered payload is sent as the admin wrote it.
    """
    return parse_untrusted(data, keep_processing_instructions=True)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _cut(name: str, text: str, limit: int) -> str:
    units = utf16_units(text)
    if units <= limit:
        return text
    logger.warning(
        "payload.field.truncated", extra={"field": name, "utf16_units": units, "limit": limit}
    )
    return truncate(text, limit)


def _truncate_json(value: Any, limits: Mapping[str, int]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            limit = limits.get(key.lower())
            if limit is not None and isinstance(item, str):
                out[key] = _cut(key, item, limit)
            else:
                out[key] = _truncate_json(item, limits)
        return out
    if isinstance(value, list):
        return [_truncate_json(item, limits) for item in value]
    return value


def enforce_limits(payload: str, fmt: Format, limits: Mapping[str, int]) -> str:
    """Parse the payload, cut the fields named in `limits` with a marker, and serialize it again.

    JSON members match `limits` case-insensitively at any depth; XML elements by local name.
    RenderError says why a payload that does not parse is invalid.
    """
    try:
        return _enforce(payload, fmt, {k.lower(): v for k, v in limits.items()})
    except _InvalidPayload as e:
        raise RenderError(str(e)) from e


def _enforce(payload: str, fmt: Format, limits: Mapping[str, int]) -> str:
    if fmt == "json":
        try:
            data = json.loads(
                payload, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant
            )
        except json.JSONDecodeError as e:
            raise _InvalidPayload(
                f"the payload is not valid JSON: {e.msg}"
                f" (payload line {e.lineno}, column {e.colno})",
                e.pos,
            ) from e
        except ValueError as e:
            raise _InvalidPayload(f"the payload is not valid JSON: {e}") from e
        # A "\ud800" written into the template's own text parses to a lone surrogate.
        text = json.dumps(_truncate_json(data, limits), ensure_ascii=False)
        return _SURROGATE.sub("\ufffd", text)
    try:
        root = parse_xml(payload.encode("utf-8"))
    except XmlRefused as e:
        offset = _offset(payload, *e.position) if e.position is not None else None
        raise _InvalidPayload(f"the payload is not valid XML: {e}", offset) from e
    encoding = root.getroottree().docinfo.encoding or "utf-8"
    if encoding.lower() not in ("utf-8", "utf8"):
        raise _InvalidPayload(f"the payload declares encoding {encoding!r}; use utf-8")
    for element in root.iter():
        if not isinstance(element.tag, str) or len(element):
            continue
        limit = limits.get(etree.QName(element).localname.lower())
        if limit is not None and element.text:
            element.text = _cut(etree.QName(element).localname, element.text, limit)
    declared = payload.lstrip().startswith("<?xml")
    tree = root.getroottree()
    return etree.tostring(tree, xml_declaration=declared, encoding="utf-8").decode("utf-8")


def _offset(text: str, line: int, column: int) -> int:
    """The character offset of a 1-based line and column (libxml2 counts columns in bytes)."""
    lines = text.splitlines(keepends=True)
    start = sum(len(part) for part in lines[: max(line - 1, 0)])
    return start + max(column - 1, 0)


# -- save-time validation ----------------------------------------------------------------------

_SAMPLE_START = datetime(2024, 3, 21, 9, 30, tzinfo=UTC)

SAMPLE_ALERT = IncomingAlert(
    source="logicmonitor",
    fingerprint="LMD12345",
    status=AlertStatus.ACTIVE,
    severity=Severity.ERROR,
    title="CPU busy above 90 % on srv01",
    message="CPUBusyPercent on srv01 (cpu0) is 97.5, threshold > 90.\nSince 09:30 UTC.",
    host="srv01",
    tenant="contoso",
    monitor="CPU",
    properties={
        "autotask.accountid": "29683414",
        "alert.type": "dataSourceAlert",
        "instance": "cpu0",
        "datapoint": "CPUBusyPercent",
        "value": "97.5",
        "threshold": "> 90",
        "system.displayname": "srv01.contoso.local",
    },
    started_at=_SAMPLE_START,
    occurred_at=_SAMPLE_START,
    note="Looking into it.",
    actor="jane.doe",
    raw_severity="error",
)
_SAMPLE_MAPPED = MappedValues(
    company_id=29683414,
    priority=1,
    status=1,
    queue_id=29682833,
    due_at=datetime(2024, 3, 22, 9, 30, tzinfo=UTC),
    issue_type=2,
    sub_issue_type=201,
    work_type=29682801,
    ticket_category=3,
    ticket_type=1,
    source=8,
    note_type=1,
    publish=1,
    integration_code="SAMPLE-INTEGRATION-CODE",
    zone_url="https://webservices2.autotask.net/ATServicesRest/V1.0/",
)

#: A complete, realistic context: what the admin form's preview renders.
SAMPLE_CONTEXT = RenderContext(
    alert=SAMPLE_ALERT,
    mapped=_SAMPLE_MAPPED,
    ticket_id=128926,
    ticket_number="T20240321.0042",
    marker="lm:LMD12345:1",
    description=describe_alert(SAMPLE_ALERT, _SAMPLE_START),
    note_title="CPU busy above 90 % on srv01 — acknowledged",
    note_text="Alert acknowledged.\nBy: jane.doe\nNote: Looking into it.",
    change_status=8,
)

#: Text that breaks a payload wherever it is not escaped, or is placed outside a string.
HOSTILE_TEXT = (
    "quote \" apostrophe ' backslash \\ lt < gt > amp & cdata-end ]]> comment -- pi ?> "
    "{{7*7}} {% for x in range(10**9) %} ##EXTERNALTICKETID## ${x} %s\r\n\ttab nul \x00 "
    "bell \x07 esc \x1b emoji 😀 lone \ud800 end"
)


def _hostile_context() -> RenderContext:
    alert = SAMPLE_ALERT
    hostile_alert = replace(
        alert,
        source=HOSTILE_TEXT,
        fingerprint=HOSTILE_TEXT,
        title=HOSTILE_TEXT,
        message=HOSTILE_TEXT,
        host=HOSTILE_TEXT,
        tenant=HOSTILE_TEXT,
        monitor=HOSTILE_TEXT,
        properties={key: HOSTILE_TEXT for key in alert.properties},
        note=HOSTILE_TEXT,
        actor=HOSTILE_TEXT,
    )
    return RenderContext(
        alert=hostile_alert,
        mapped=replace(_SAMPLE_MAPPED, integration_code=HOSTILE_TEXT),
        ticket_id=SAMPLE_CONTEXT.ticket_id,
        ticket_number=HOSTILE_TEXT,
        marker=HOSTILE_TEXT,
        description=HOSTILE_TEXT,
        note_title=HOSTILE_TEXT,
        note_text=HOSTILE_TEXT,
        change_status=8,
        change_priority=4,
    )


def _sparse_context() -> RenderContext:
    alert = IncomingAlert(
        source="generic",
        fingerprint="fp-1",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        title="Disk full",
    )
    return RenderContext(
        alert=alert,
        mapped=MappedValues(company_id=0, priority=2, status=1, note_type=1, publish=1),
        ticket_id=SAMPLE_CONTEXT.ticket_id,
        marker="generic:fp-1:1",
        description=describe_alert(alert, None),
        note_title="Disk full — active",
        note_text="Alert active.",
    )


#: The samples every template must render to a valid payload at save time.
VALIDATION_SAMPLES: tuple[tuple[str, Callable[[], RenderContext]], ...] = (
    ("the sample alert", lambda: SAMPLE_CONTEXT),
    ("an alert whose every text breaks unescaped payloads", _hostile_context),
    (
        "an alert with optional values unset (wrap optional fields in"
        " {% if autotask.queue_id is not none %}…{% endif %})",
        _sparse_context,
    ),
)


def validate_template(
    source: str, fmt: Format, limits: Mapping[str, int], render_limits: RenderLimits | None = None
) -> None:
    """Refuse (TemplateRejected, with the reason and line) a template that could fail at delivery.

    The template must compile and render to a valid payload for every VALIDATION_SAMPLES
    context: a realistic one, one whose every text value is hostile, and a sparse one.
    """
    compiled = compile_template(source, fmt, render_limits)
    for name, make in VALIDATION_SAMPLES:
        try:
            compiled.render_payload(make(), limits)
        except RenderError as e:
            reason = str(e)
            if e.line:
                reason = reason.removeprefix(f"line {e.line}: ")
            raise TemplateRejected(
                _with_line(f"{reason} (rendering {name})", e.line),
                line=e.line,
                details={"reason": reason, "sample": name},
            ) from e


# -- ticket ids --------------------------------------------------------------------------------


def _excerpt(body: bytes | str) -> str:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return text[:RESPONSE_EXCERPT_CHARS]


def _extraction_error(message: str, path: str, body: bytes | str) -> ExtractionError:
    excerpt = _excerpt(body)
    return ExtractionError(
        f"{message} (path {path}); the response was: {excerpt}",
        response={"path": path, "body": excerpt},
    )


def _as_ticket_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if number > 0 else None


def validate_id_path(fmt: Format, path: str, namespaces: Mapping[str, str] | None = None) -> None:
    """Refuse (TemplateRejected) a JSONPath or XPath that does not compile."""
    try:
        if fmt == "json":
            parse_jsonpath(path)
        else:
            # Evaluating once finds what compiling does not, such as an undeclared prefix.
            etree.XPath(path, namespaces=dict(namespaces or DEFAULT_NAMESPACES))(etree.Element("r"))
    except (JSONPathError, etree.XPathError) as e:
        raise TemplateRejected(f"the id path {path!r} is not valid: {e}") from e


def extract_ticket_id(
    body: bytes | str,
    fmt: Format,
    path: str | None = None,
    namespaces: Mapping[str, str] | None = None,
) -> int:
    """The ticket id in a response, by JSONPath or (namespace-aware) XPath; else ExtractionError."""
    if fmt == "json":
        path = path or DEFAULT_JSON_ID_PATH
        try:
            expression = parse_jsonpath(path)
        except JSONPathError as e:
            raise _extraction_error(f"the JSONPath is not valid: {e}", path, body) from e
        try:
            data = json.loads(body)
        except ValueError as e:
            raise _extraction_error("the response is not JSON", path, body) from e
        values = [match.value for match in expression.find(data)]
    else:
        path = path or DEFAULT_XML_ID_PATH
        data_bytes = body.encode("utf-8") if isinstance(body, str) else body
        try:
            root = parse_xml(data_bytes)
        except XmlRefused as e:
            raise _extraction_error(f"the response is not valid XML: {e}", path, body) from e
        try:
            result = root.xpath(path, namespaces=dict(namespaces or DEFAULT_NAMESPACES))
        except etree.XPathError as e:
            raise _extraction_error(f"the XPath failed: {e}", path, body) from e
        found = result if isinstance(result, list) else [result]
        values = [item.text if isinstance(item, etree._Element) else item for item in found]
    if not values:
        raise _extraction_error("the response has no ticket id", path, body)
    ticket_id = _as_ticket_id(values[0])
    if ticket_id is None:
        raise _extraction_error(
            f"the ticket id {values[0]!r} is not a positive integer", path, body
        )
    return ticket_id


__all__ = [
    "DEFAULT_JSON_ID_PATH",
    "DEFAULT_NAMESPACES",
    "DEFAULT_XML_ID_PATH",
    "FORMATS",
    "HOSTILE_TEXT",
    "NOTE_LIMITS",
    "NO_LIMITS",
    "SAMPLE_CONTEXT",
    "TICKET_LIMITS",
    "TOKENS",
    "CompiledTemplate",
    "ExtractionError",
    "Format",
    "JsonText",
    "MappedValues",
    "RenderContext",
    "RenderError",
    "RenderLimits",
    "Rendered",
    "TemplateRejected",
    "TokenSpec",
    "compile_template",
    "enforce_limits",
    "escape_json",
    "escape_xml",
    "extract_ticket_id",
    "parse_xml",
    "validate_id_path",
    "validate_template",
    "wire_datetime",
]

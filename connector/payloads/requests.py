"""Delivery requests: for each alert status, the HTTP requests that carry an alert to Autotask.

An integration has one request per (status, action) slot (`SLOTS`): Active creates the ticket,
and every status may update the ticket and add a note. Each request is a method, a URL, extra
headers, a payload template and, for the create, where the answer carries the new ticket's id.
"Generate delivery options" (`generate_requests`) fills them from payload_templates/ for the
integration's API flavour; an admin may edit them, and `validate_request` refuses at save time
whatever could fail at delivery time.

URLs and header values take `##TOKEN##` tokens only (no Jinja): a value is percent-encoded in a
URL (except `##ZONEURL##`, the zone's address) and has its control characters removed in a
header. The target adds Autotask's credentials itself; a request cannot set or see them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from connector.domain import AlertStatus, OutboundRequest, RequestAction, redact
from connector.errors import TemplateRejected
from connector.payloads.context import RenderContext
from connector.payloads.extraction import validate_id_path
from connector.payloads.formats import FORMATS, Format
from connector.payloads.samples import SAMPLE_CONTEXT, VALIDATION_SAMPLES, validate_template
from connector.payloads.templates import CompiledTemplate, compile_template, source_line
from connector.payloads.tokens import TOKEN_PATTERN, UnknownToken, builtin_token
from connector.ports import TargetProfile

#: Every request slot an integration has, in the order an admin reads them.
SLOTS: tuple[tuple[AlertStatus, RequestAction], ...] = (
    (AlertStatus.ACTIVE, RequestAction.CREATE),
    (AlertStatus.ACTIVE, RequestAction.UPDATE),
    (AlertStatus.ACTIVE, RequestAction.NOTE),
    (AlertStatus.ACKNOWLEDGED, RequestAction.UPDATE),
    (AlertStatus.ACKNOWLEDGED, RequestAction.NOTE),
    (AlertStatus.ESCALATED, RequestAction.UPDATE),
    (AlertStatus.ESCALATED, RequestAction.NOTE),
    (AlertStatus.CLEARED, RequestAction.UPDATE),
    (AlertStatus.CLEARED, RequestAction.NOTE),
)

METHODS = ("POST", "PUT", "PATCH")

#: Headers the transport owns; a request may not set them (nor the target's own, its profile's).
TRANSPORT_HEADERS = frozenset(
    name.lower() for name in ("Host", "Content-Length", "Transfer-Encoding", "Connection", "Cookie")
)

#: Where the default templates live (payload_templates/ beside the package).
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "payload_templates"

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RequestSpec:
    """One delivery request as an admin sees and edits it."""

    status: AlertStatus
    action: RequestAction
    method: str
    url: str
    body: str
    #: "json" or "xml": the body's format and the answer's.
    format: Format
    headers: Mapping[str, str] = field(default_factory=dict)
    #: JSONPath (json) or XPath (xml) of the new ticket's id; create only. Empty: the target
    #: profile's, filled in when requests are generated, loaded or stored.
    id_path: str = ""

    @property
    def slot(self) -> tuple[AlertStatus, RequestAction]:
        """The (status, action) this request serves."""
        return self.status, self.action

    def to_json(self) -> dict[str, Any]:
        """The request as the API shows it."""
        return {
            "status": self.status.value,
            "action": self.action.value,
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body,
            "format": self.format,
            "id_path": self.id_path if self.action is RequestAction.CREATE else "",
        }


@dataclass(frozen=True)
class DeliveryOptions:
    """An integration's requests and which statuses are delivered."""

    requests: Mapping[tuple[AlertStatus, RequestAction], RequestSpec]
    #: The target flavour the requests are for: its field limits and id path namespaces.
    profile: TargetProfile
    #: "Use the same URL and data for every alert activity": Active's update and note requests
    #: serve every status.
    same_for_every_status: bool = False

    def request_for(self, status: AlertStatus, action: RequestAction) -> RequestSpec:
        """The request that carries `action` for an alert in `status`."""
        if action is RequestAction.CREATE or self.same_for_every_status:
            status = AlertStatus.ACTIVE
        return self.requests[(status, action)]


# -- defaults ------------------------------------------------------------------------------------


def default_template(name: str) -> str:
    """A default payload template from payload_templates/ by its relative name."""
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8")


def generate_requests(profile: TargetProfile) -> list[RequestSpec]:
    """The default request of every slot for a target flavour ("Generate delivery options")."""
    table = profile.default_requests
    specs = []
    for status, action in SLOTS:
        method, url, name = table.get((status, action)) or table[action]
        specs.append(
            RequestSpec(
                status=status,
                action=action,
                method=method,
                url=url,
                body=default_template(name),
                format=profile.body_format,
                id_path=profile.id_path if action is RequestAction.CREATE else "",
            )
        )
    return specs


def with_default_id_path(spec: RequestSpec, profile: TargetProfile) -> RequestSpec:
    """`spec`, a create with no id path of its own taking the profile's."""
    if spec.action is RequestAction.CREATE and not spec.id_path:
        return replace(spec, id_path=profile.id_path)
    return spec


def options_from(
    specs: Iterable[RequestSpec], profile: TargetProfile, *, same_for_every_status: bool = False
) -> DeliveryOptions:
    """Delivery options from stored requests; a slot with no stored request gets its default."""
    stored = {spec.slot: with_default_id_path(spec, profile) for spec in specs}
    defaults = (
        {spec.slot: spec for spec in generate_requests(profile)} if len(stored) < len(SLOTS) else {}
    )
    return DeliveryOptions(
        requests={slot: stored.get(slot) or defaults[slot] for slot in SLOTS},
        profile=profile,
        same_for_every_status=same_for_every_status,
    )


# -- rendering ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _compiled(body: str, fmt: Format) -> CompiledTemplate:
    return compile_template(body, fmt)


def _token_value(name: str, variables: Mapping[str, Any]) -> tuple[bool, object]:
    """(is a built-in token, its value) for a `##name##` in a URL or header."""
    try:
        builtin = builtin_token(name)
    except UnknownToken as e:
        raise TemplateRejected(str(e)) from e
    if builtin is not None:
        return True, variables["tokens"][builtin]
    return False, variables["properties"].get(name, "")


def render_text(text: str, context: RenderContext, *, url: bool) -> str:
    """Substitute `##TOKEN##`s in a URL (values percent-encoded) or a header value."""
    if "{{" in text or "{%" in text:
        raise TemplateRejected("URLs and headers take ##TOKEN## tokens, not Jinja")
    variables = context.variables()

    def value(match: re.Match[str]) -> str:
        builtin, raw = _token_value(match.group(1), variables)
        text = "" if raw is None else str(raw)
        if url:
            # The zone address is a URL prefix by design; every other value is one path segment.
            return text if builtin and match.group(1).upper() == "ZONEURL" else quote(text, "")
        return _CONTROL.sub("", text)

    return TOKEN_PATTERN.sub(value, text)


def render_request(
    spec: RequestSpec, context: RenderContext, profile: TargetProfile
) -> OutboundRequest:
    """Render a request for one alert event; RenderError/TemplateRejected if it cannot be."""
    body = _compiled(spec.body, spec.format).render_payload(
        context, profile.limits_for(spec.action)
    )
    return OutboundRequest(
        action=spec.action,
        method=spec.method,
        url=render_text(spec.url, context, url=True),
        body=body,
        body_format=spec.format,
        headers={name: render_text(v, context, url=False) for name, v in spec.headers.items()},
    )


# -- save-time checks ----------------------------------------------------------------------------


def validate_request(spec: RequestSpec, profile: TargetProfile) -> None:
    """Refuse (TemplateRejected, naming the slot, reason and line) a request that cannot work."""
    where = f"{spec.status.value} {spec.action.value} request"
    try:
        _validate(spec, profile)
    except TemplateRejected as e:
        raise TemplateRejected(
            f"{where}: {e}",
            line=e.line,
            details={**(e.details or {}), **slot_details(spec, e.line)},
        ) from e


def slot_details(spec: RequestSpec, line: int | None) -> dict[str, object]:
    """An error's details naming the request and, when the body's line is known, its text."""
    details: dict[str, object] = {"status": spec.status.value, "action": spec.action.value}
    text = source_line(spec.body, line)
    if text is not None:
        details["line_text"] = text
    return details


def _validate(spec: RequestSpec, profile: TargetProfile) -> None:
    if spec.slot not in SLOTS:
        raise TemplateRejected("there is no such request: create is for the active status only")
    if spec.format not in FORMATS:
        raise TemplateRejected(f"format must be one of {', '.join(FORMATS)}")
    only = profile.only_method
    if only and (spec.method != only or spec.format != profile.body_format):
        raise TemplateRejected(
            f"{profile.flavour.upper()} requests are {only}ed"
            f" {profile.body_format.upper()} envelopes"
        )
    if spec.method not in METHODS:
        raise TemplateRejected(f"method must be one of {', '.join(METHODS)}")
    for name, value in spec.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise TemplateRejected(f"{name!r} is not a valid header name")
        if name.lower() in TRANSPORT_HEADERS or name.lower() in {
            header.lower() for header in profile.target_headers
        }:
            raise TemplateRejected(
                f"the {name} header is set by the connector (credentials and transport)"
            )
        if _CONTROL.search(value):
            raise TemplateRejected(f"the {name} header value holds a control character")
    for name, make in VALIDATION_SAMPLES:
        sample = _in_sample_zone(make(), profile)
        url = render_text(spec.url, sample, url=True)
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise TemplateRejected(
                f"the URL does not render to an absolute http(s) URL for {name}: {url[:200]!r}"
            )
        for value in spec.headers.values():
            render_text(value, sample, url=False)
    validate_template(spec.body, spec.format, profile.limits_for(spec.action))
    if spec.action is RequestAction.CREATE:
        validate_id_path(spec.format, spec.id_path or profile.id_path, profile.namespaces)


def sample_context(profile: TargetProfile) -> RenderContext:
    """The realistic sample context, with a zone address of the flavour (for previews)."""
    return _in_sample_zone(SAMPLE_CONTEXT, profile)


def _in_sample_zone(context: RenderContext, profile: TargetProfile) -> RenderContext:
    zone = profile.sample_zone_url
    return replace(context, mapped=replace(context.mapped, zone_url=zone))


# -- showing requests ---------------------------------------------------------------------------


def request_json(request: OutboundRequest, secrets: Sequence[str]) -> dict[str, Any]:
    """A rendered request as the API shows it, secrets redacted."""
    shown = {
        "action": request.action.value,
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "body": request.body,
    }
    return dict(redact(shown, secrets))

"""An integration's delivery requests in the database: load, replace, generate."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.domain import AlertStatus, RequestAction
from connector.errors import ConflictError, InvalidInput
from connector.integrations.settings import load_settings
from connector.integrations.strict import flatten
from connector.payloads.formats import FORMATS, Format
from connector.payloads.requests import (
    METHODS,
    SLOTS,
    DeliveryOptions,
    RequestSpec,
    generate_requests,
    options_from,
    validate_request,
    with_default_id_path,
)
from connector.persistence.models import DeliveryRequest, Integration, utcnow
from connector.ports import TargetProfile

STATUSES = [status.value for status in AlertStatus]
ACTIONS = [action.value for action in RequestAction]


class RequestSchema(Schema):
    """One delivery request as JSON gives it (the API's PUT, an imported file)."""

    class Meta:
        unknown = RAISE

    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    headers = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=200)),
        values=fields.String(validate=validate.Length(max=2000)),
        load_default=dict,
    )
    body = fields.String(required=True)
    format = fields.String(validate=validate.OneOf(FORMATS), load_default=None)
    id_path = fields.String(validate=validate.Length(max=500), load_default="")

    @validates_schema
    def create_only_id_path(self, data: dict[str, Any], **_: Any) -> None:
        """An id path belongs to the create request only."""
        if data.get("id_path") and data.get("action") != RequestAction.CREATE.value:
            raise ValidationError("only the create request reads a ticket id", "id_path")


def one_request_per_slot(items: Iterable[Mapping[str, Any]]) -> None:
    """Refuse (ValidationError under "requests") a second request for one slot."""
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        slot = (item["status"], item["action"])
        if slot in seen:
            raise ValidationError(
                {str(index): [f"a second {slot[0]} {slot[1]} request"]}, "requests"
            )
        seen.add(slot)


def spec_from_json(item: Mapping[str, Any], profile: TargetProfile) -> RequestSpec:
    """A request loaded by RequestSchema; with no format named, the target's body format."""
    fmt: Format = "xml" if (item["format"] or profile.body_format) == "xml" else "json"
    return RequestSpec(
        status=AlertStatus(item["status"]),
        action=RequestAction(item["action"]),
        method=item["method"],
        url=item["url"],
        headers=dict(item["headers"]),
        body=item["body"],
        format=fmt,
        id_path=item["id_path"],
    )


def _spec(row: DeliveryRequest) -> RequestSpec:
    fmt: Format = "xml" if row.format == "xml" else "json"
    return RequestSpec(
        status=AlertStatus(row.status),
        action=RequestAction(row.action),
        method=row.method,
        url=row.url,
        headers={str(k): str(v) for k, v in (row.headers or {}).items()},
        body=row.body,
        format=fmt,
        id_path=row.id_path,
    )


def stored_requests(session: Session, integration_id: int) -> list[RequestSpec]:
    """The integration's stored requests, in no particular order (may be fewer than SLOTS)."""
    rows = session.scalars(
        select(DeliveryRequest).where(DeliveryRequest.integration_id == integration_id)
    )
    return [_spec(row) for row in rows]


def load_options(
    session: Session, integration: Integration, profile: TargetProfile
) -> DeliveryOptions:
    """The integration's delivery options; slots with no stored request get their default."""
    settings = load_settings(integration.settings)
    return options_from(
        stored_requests(session, integration.id),
        profile,
        same_for_every_status=settings.same_request_for_every_status,
    )


def replace_requests(
    session: Session,
    integration: Integration,
    specs: Iterable[RequestSpec],
    profile: TargetProfile,
) -> list[RequestSpec]:
    """Validate every request (TemplateRejected on the first bad one), then store them all.

    Slots not given keep what is stored. The integration's updated_at moves, so workers pick
    the new requests up.
    """
    specs = [with_default_id_path(spec, profile) for spec in specs]
    for spec in specs:
        validate_request(spec, profile)
    slots = {spec.slot for spec in specs}
    for row in session.scalars(
        select(DeliveryRequest).where(DeliveryRequest.integration_id == integration.id)
    ):
        if (AlertStatus(row.status), RequestAction(row.action)) in slots:
            session.delete(row)
    session.flush()
    for spec in specs:
        session.add(
            DeliveryRequest(
                integration_id=integration.id,
                status=spec.status.value,
                action=spec.action.value,
                method=spec.method,
                url=spec.url,
                headers=dict(spec.headers),
                body=spec.body,
                format=spec.format,
                id_path=spec.id_path,
            )
        )
    integration.updated_at = utcnow()
    session.flush()
    return specs


def save_requests(
    session: Session,
    integration: Integration,
    specs: Iterable[RequestSpec],
    profile: TargetProfile,
    *,
    same_for_every_status: bool | None = None,
    deliver: Mapping[str, bool] | None = None,
) -> None:
    """Replace some requests and switches, all or nothing (the API's PUT and the admin form).

    InvalidInput for switches the settings refuse; TemplateRejected (reason and line) for the
    first request that cannot work. The caller's transaction rolls back on either.
    """
    settings = dict(integration.settings or {})
    if same_for_every_status is not None:
        settings["same_request_for_every_status"] = same_for_every_status
    if deliver is not None:
        settings["deliver"] = {**(settings.get("deliver") or {}), **deliver}
    try:
        load_settings(settings)
    except ValidationError as e:
        raise InvalidInput(
            "invalid settings: " + "; ".join(flatten(e.messages)),
            details={"fields": e.messages},
        ) from e
    replace_requests(session, integration, specs, profile)
    if settings != integration.settings:
        integration.settings = settings  # a new dict: JSON columns do not track changes
        integration.updated_at = utcnow()


def generate_for(
    session: Session, integration: Integration, profile: TargetProfile
) -> list[RequestSpec]:
    """Generate delivery options: replace every request with its default for the flavour."""
    session.execute(delete(DeliveryRequest).where(DeliveryRequest.integration_id == integration.id))
    return replace_requests(session, integration, generate_requests(profile), profile)


@dataclass(frozen=True)
class CustomizedRequest:
    """A stored request that differs from what "Generate delivery options" would make."""

    status: AlertStatus
    action: RequestAction
    #: A unified diff from the stored request ("yours") to the generated one.
    diff: str

    def to_json(self) -> dict[str, str]:
        """As the API shows it."""
        return {"status": self.status.value, "action": self.action.value, "diff": self.diff}


def _readable(spec: RequestSpec) -> list[str]:
    """A request as lines of text, to compare two of them."""
    head = [
        f"method: {spec.method}",
        f"url: {spec.url}",
        *(f"header {name}: {value}" for name, value in sorted(spec.headers.items())),
        f"format: {spec.format}",
    ]
    if spec.action is RequestAction.CREATE:
        head.append(f"id path: {spec.id_path}")
    return [line + "\n" for line in head] + ["body:\n"] + spec.body.splitlines(keepends=True)


def customized_requests(
    session: Session, integration: Integration, profile: TargetProfile
) -> list[CustomizedRequest]:
    """The requests that differ from the defaults of `profile`'s flavour (an admin's), with how."""
    stored = options_from(stored_requests(session, integration.id), profile).requests
    defaults = {spec.slot: spec for spec in generate_requests(profile)}
    found = []
    for slot in SLOTS:
        if stored[slot] == defaults[slot]:
            continue
        where = f"{slot[0].value} {slot[1].value}"
        lines = difflib.unified_diff(
            _readable(stored[slot]),
            _readable(defaults[slot]),
            fromfile=f"your {where} request",
            tofile=f"generated {where} request",
        )
        diff = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        found.append(CustomizedRequest(slot[0], slot[1], diff))
    return found


def customized_slots(
    session: Session, integration: Integration, profile: TargetProfile
) -> list[tuple[AlertStatus, RequestAction]]:
    """The slots whose request differs from the default of `profile`'s flavour (an admin's)."""
    return [(c.status, c.action) for c in customized_requests(session, integration, profile)]


def regenerate_requests(
    session: Session,
    integration: Integration,
    profile: TargetProfile,
    *,
    replace_customized: bool,
) -> list[RequestSpec]:
    """ "Generate delivery options", never silently over an admin's changes.

    ConflictError (409) with each customized request's diff unless `replace_customized`.
    """
    customized = customized_requests(session, integration, profile)
    if customized and not replace_customized:
        names = ", ".join(f"{c.status.value} {c.action.value}" for c in customized)
        raise ConflictError(
            f"{len(customized)} delivery request(s) differ from what would be generated"
            f' ({names}); send {{"replace_customized": true}} to replace them',
            details={"customized": [c.to_json() for c in customized]},
        )
    return generate_for(session, integration, profile)

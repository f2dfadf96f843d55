"""Live configuration: create and edit integrations, effective for the next delivery.

The JSON API, the admin form, `connector config import` and the start-up seed all go through
these functions, so every rule is checked in one place. Each takes the caller's Session (the
caller commits, so a refused edit leaves nothing behind) and input loaded by the schemas below,
and raises InvalidInput (400: every bad field named by its path, "settings.priority_map.x: …"),
ConflictError (409) or NotFoundError (404).

Every edit that changes something moves the integration's `updated_at`: workers key their
targets and delivery options by (id, updated_at), so the next delivery reads the new
configuration without a restart. The API user's secret and the tracking identifier are
write-only: encrypted on the way in, never returned (`masked` shows at most the last 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.errors import ConfigError, ConflictError, InvalidInput, NotFoundError, TargetError
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.sources import check_source_options
from connector.integrations.store import customized_slots, generate_for
from connector.integrations.strict import (
    StrictBoolean,
    flatten,
    no_control_characters,
    not_blank,
)
from connector.persistence.models import Integration, utcnow
from connector.ports import TargetProfile
from connector.secrets import SecretBox

if TYPE_CHECKING:
    from connector.services import Services, SourceAdapter

#: How a write-only value is shown: that it is set, and at most its last 4 characters.
MASK = "••••"
#: Values shorter than this show no characters at all (4 of 8 would give half away).
_SHOW_TAIL_FROM = 12


@dataclass(frozen=True)
class EditContext:
    """What checking and storing an integration needs besides the session."""

    box: SecretBox
    #: Per API flavour, its target profile: the flavours an integration may use.
    profiles: Mapping[str, TargetProfile]
    #: The source adapters by slug (source options are checked by building them).
    sources: Mapping[str, SourceAdapter] = field(default_factory=dict)

    @classmethod
    def of(cls, services: Services) -> EditContext:
        """The context of a running app or command."""
        return cls(services.secret_box(), services.profiles, services.sources)


@dataclass(frozen=True)
class Updated:
    """What update_integration did."""

    integration: Integration
    #: The fields that changed ("secret" and "integration_code" when given and different).
    changed: tuple[str, ...]
    #: Whether every delivery request went back to its flavour's default.
    requests_regenerated: bool


# -- input ---------------------------------------------------------------------------------------

_PLAIN_TEXT = [not_blank, no_control_characters]


class IntegrationSchema(Schema):
    """A new integration; loaded with partial=True, the fields an edit changes."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=[validate.Length(1, 100), *_PLAIN_TEXT])
    #: One of the target profiles' flavours (checked against them, not listed here).
    api_flavour = fields.String(required=True, validate=validate.Length(1, 10))
    zone_lookup_url = fields.String(required=True, validate=[validate.Length(1, 500), *_PLAIN_TEXT])
    username = fields.String(required=True, validate=[validate.Length(1, 254), *_PLAIN_TEXT])
    secret = fields.String(required=True, load_only=True, validate=[validate.Length(1, 500)])
    integration_code = fields.String(
        required=True, load_only=True, validate=[validate.Length(1, 500), *_PLAIN_TEXT]
    )
    #: Ticket settings, checked as a whole by IntegrationSettingsSchema.
    settings = fields.Dict(keys=fields.String(), load_default=dict)


class IntegrationChangesSchema(IntegrationSchema):
    """PATCH: any of the fields, and whether to regenerate the delivery requests."""

    #: Replace every delivery request with its default for the (new) flavour; needed to change
    #: the flavour of an integration whose requests were customized.
    regenerate_requests = StrictBoolean()


def invalid(messages: Any, what: str) -> InvalidInput:
    """The 400 for marshmallow-style `messages`: "<what>: field.path: message; …"."""
    messages = _entry_paths(messages)
    return InvalidInput(f"{what}: " + "; ".join(flatten(messages)), details={"fields": messages})


def _entry_paths(messages: Any) -> Any:
    """Messages of a map's entries by the entry's own path: marshmallow files a Dict's errors
    under "key" and "value" ({"critical": {"value": […]}}); the path is "…critical"."""
    if not isinstance(messages, Mapping):
        return messages
    if messages and set(messages) <= {"key", "value"}:
        key = messages.get("key")
        value = _entry_paths(messages.get("value"))
        if key is None:
            return value
        if value is None:
            return key
        return [*key, *(value if isinstance(value, list) else [value])]
    return {name: _entry_paths(inner) for name, inner in messages.items()}


def load_input(
    schema: Schema, raw: Any, *, what: str = "invalid input", partial: bool = False
) -> dict[str, Any]:
    """`raw` loaded by `schema`; InvalidInput naming each bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{what}: must be a JSON object")
    try:
        loaded: dict[str, Any] = schema.load(dict(raw), partial=partial)
    except ValidationError as e:
        raise invalid(e.messages, what) from e
    return loaded


# -- checks --------------------------------------------------------------------------------------


def _flavour(ctx: EditContext, flavour: str, problems: dict[str, Any]) -> TargetProfile | None:
    profile = ctx.profiles.get(flavour)
    if profile is None:
        problems["api_flavour"] = [f"must be one of {', '.join(ctx.profiles)}, got {flavour!r}"]
    return profile


def _settings(
    raw: Mapping[str, Any], ctx: EditContext, problems: dict[str, Any]
) -> IntegrationSettings | None:
    """The settings checked as a whole (schema, then each source's options); None if refused."""
    try:
        settings = load_settings(raw)
    except ValidationError as e:
        problems["settings"] = e.messages
        return None
    try:
        check_source_options(settings.source_options, ctx.sources)
    except ConfigError as e:
        # The message names the source and what its adapter takes.
        problems["settings"] = {"source_options": [str(e)]}
        return None
    return settings


def _zone_lookup_url(
    url: str, profile: TargetProfile, hosts: Sequence[str], problems: dict[str, Any]
) -> None:
    """An absolute http(s) URL the target will call (allowed hosts: the settings' or its own)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        problems["zone_lookup_url"] = ["must be an absolute https URL"]
        return
    if "@" in parts.netloc:
        # Refused here, before the target's own check repeats the URL (and its password).
        problems["zone_lookup_url"] = ["must not carry user information (credentials go apart)"]
        return
    if profile.check_zone_lookup_url is not None:
        try:
            profile.check_zone_lookup_url(url, hosts)
        except TargetError as e:
            problems["zone_lookup_url"] = [str(e)]


def _name_free(session: Session, name: str, *, but: int | None = None) -> None:
    found = session.scalar(select(Integration).where(Integration.name == name))
    if found is not None and found.id != but:
        raise ConflictError(
            f"an integration named {name!r} exists already (id {found.id})",
            details={"fields": {"name": ["in use"]}},
        )


# -- create and update ---------------------------------------------------------------------------


def create_integration(
    session: Session,
    ctx: EditContext,
    data: Mapping[str, Any],
    *,
    what: str = "invalid integration",
) -> Integration:
    """Store a new integration (loaded by IntegrationSchema) with its flavour's default requests.

    Raises:
        InvalidInput: an unknown flavour, a zone lookup URL outside the allowed hosts, invalid
            settings or source options; `what` starts the message.
        ConflictError: the name is in use.
    """
    _name_free(session, data["name"])
    problems: dict[str, Any] = {}
    profile = _flavour(ctx, data["api_flavour"], problems)
    raw_settings = dict(data.get("settings") or {})
    settings = _settings(raw_settings, ctx, problems)
    if profile is not None and settings is not None:
        _zone_lookup_url(data["zone_lookup_url"], profile, settings.allowed_zone_hosts, problems)
    if problems or profile is None:
        raise invalid(problems, what)
    integration = Integration(
        name=data["name"],
        api_flavour=data["api_flavour"],
        zone_lookup_url=data["zone_lookup_url"],
        username=data["username"],
        secret_encrypted=ctx.box.encrypt(data["secret"]),
        integration_code_encrypted=ctx.box.encrypt(data["integration_code"]),
        settings=raw_settings,
        updated_at=utcnow(),
    )
    session.add(integration)
    try:
        session.flush()
    except IntegrityError as e:
        # Another request took the name between the check above and this insert.
        raise ConflictError(f"an integration named {data['name']!r} exists already") from e
    generate_for(session, integration, profile)
    return integration


def update_integration(
    session: Session,
    ctx: EditContext,
    integration: Integration,
    changes: Mapping[str, Any],
    *,
    replace_settings: bool = False,
    what: str = "invalid integration",
) -> Updated:
    """Apply an edit (loaded by IntegrationChangesSchema with partial=True).

    Fields left out keep their values; the secret and tracking identifier change only when given.
    `settings` is a PATCH of settings keys: each key given replaces that key's whole value (a
    map too), keys not given keep theirs, and the result is checked as a whole
    (`replace_settings`: the given settings are the whole settings, as an import has them).

    A new API flavour needs new delivery requests. Requests still at the old flavour's defaults
    are regenerated; customized ones are not thrown away unasked: without
    `regenerate_requests: true` such a change is a ConflictError listing them.

    Raises:
        InvalidInput: as create_integration.
        ConflictError: the new name is in use, or the flavour change would replace customized
            requests.
    """
    if "name" in changes:
        _name_free(session, changes["name"], but=integration.id)
    problems: dict[str, Any] = {}
    flavour = changes.get("api_flavour", integration.api_flavour)
    profile = _flavour(ctx, flavour, problems)
    stored = dict(integration.settings or {})
    given = dict(changes.get("settings") or {})
    raw_settings = given if replace_settings and "settings" in changes else stored | given
    settings = _settings(raw_settings, ctx, problems)
    url = changes.get("zone_lookup_url", integration.zone_lookup_url)
    address_changed = (
        url != integration.zone_lookup_url
        or flavour != integration.api_flavour
        or raw_settings.get("allowed_zone_hosts") != stored.get("allowed_zone_hosts")
    )
    if profile is not None and settings is not None and address_changed:
        _zone_lookup_url(url, profile, settings.allowed_zone_hosts, problems)
    if problems or profile is None:
        raise invalid(problems, what)
    flavour_changed = flavour != integration.api_flavour
    regenerate = bool(changes.get("regenerate_requests"))
    if flavour_changed and not regenerate:
        _refuse_losing_customized_requests(session, ctx, integration, flavour)
    changed = [
        key
        for key in ("name", "api_flavour", "zone_lookup_url", "username")
        if key in changes and changes[key] != getattr(integration, key)
    ]
    for key in changed:
        setattr(integration, key, changes[key])
    for key in ("secret", "integration_code"):
        column = f"{key}_encrypted"
        if key in changes and not _holds(ctx.box, getattr(integration, column), changes[key]):
            setattr(integration, column, ctx.box.encrypt(changes[key]))
            changed.append(key)
    if raw_settings != stored:
        integration.settings = raw_settings  # a new dict: JSON columns do not track changes
        changed.append("settings")
    if flavour_changed or regenerate:
        generate_for(session, integration, profile)
    if changed or flavour_changed or regenerate:
        integration.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError as e:
        raise ConflictError(f"an integration named {integration.name!r} exists already") from e
    return Updated(integration, tuple(changed), flavour_changed or regenerate)


#: What a connection check needs of an integration; the rest of it does not matter there.
CONNECTION_FIELDS = ("api_flavour", "zone_lookup_url", "username", "secret", "integration_code")


def unsaved_integration(
    ctx: EditContext,
    data: Mapping[str, Any],
    base: Integration | None = None,
    *,
    what: str = "invalid connection",
) -> Integration:
    """A transient Integration (added to no session) with `data`'s values over `base`'s: the
    admin form's values checked before they are saved (catalog.check_unsaved).

    `data` is loaded by IntegrationChangesSchema with partial=True; a field it leaves out keeps
    `base`'s value (a secret left blank keeps the stored one). The values are checked as
    create_integration and update_integration check them (flavour, zone lookup URL and its
    allowed hosts, settings); a connection value neither gives is refused naming it. The name
    is not checked: nothing is stored.

    Raises:
        InvalidInput: naming every bad or missing field; `what` starts the message.
    """
    problems: dict[str, Any] = {}
    missing = [key for key in CONNECTION_FIELDS if key not in data and base is None]
    for key in missing:
        problems[key] = ["Missing data for required field."]
    stored = dict(base.settings or {}) if base is not None else {}
    raw_settings = stored | dict(data.get("settings") or {})
    settings = _settings(raw_settings, ctx, problems)
    flavour = data.get("api_flavour", base.api_flavour if base is not None else "")
    profile = _flavour(ctx, flavour, problems) if "api_flavour" not in missing else None
    url = data.get("zone_lookup_url", base.zone_lookup_url if base is not None else "")
    if profile is not None and settings is not None and url:
        _zone_lookup_url(url, profile, settings.allowed_zone_hosts, problems)
    if problems or profile is None:
        raise invalid(problems, what)

    def sealed(key: str) -> str:
        if key in data or base is None:  # without a base, a missing field was refused above
            return ctx.box.encrypt(data[key])
        encrypted: str = getattr(base, f"{key}_encrypted")
        return encrypted

    return Integration(
        id=base.id if base is not None else None,
        name=data.get("name", base.name if base is not None else ""),
        api_flavour=flavour,
        zone_lookup_url=url,
        username=data.get("username", base.username if base is not None else ""),
        secret_encrypted=sealed("secret"),
        integration_code_encrypted=sealed("integration_code"),
        settings=raw_settings,
        active=base.active if base is not None else True,
        updated_at=base.updated_at if base is not None else utcnow(),
    )


def _refuse_losing_customized_requests(
    session: Session, ctx: EditContext, integration: Integration, flavour: str
) -> None:
    old = ctx.profiles.get(integration.api_flavour)
    # Requests of a flavour no adapter serves any more cannot be sent: nothing to keep.
    customized = customized_slots(session, integration, old) if old is not None else []
    if not customized:
        return
    names = ", ".join(f"{status.value} {action.value}" for status, action in customized)
    raise ConflictError(
        f"integration {integration.name!r}: changing api_flavour from"
        f" {integration.api_flavour!r} to {flavour!r} replaces its delivery requests, and"
        f" {len(customized)} of them are customized ({names}); send"
        f' "regenerate_requests": true to replace them with the {flavour} defaults',
        details={
            "customized": [
                {"status": status.value, "action": action.value} for status, action in customized
            ]
        },
    )


def _holds(box: SecretBox, encrypted: str, value: str) -> bool:
    """Whether the stored ciphertext holds `value` (a key that no longer opens it: no)."""
    try:
        return box.decrypt(encrypted) == value
    except ConfigError:
        return False


# -- showing ---------------------------------------------------------------------------------------


def masked(box: SecretBox | None, encrypted: str) -> str | None:
    """A write-only value as shown: "••••" and its last 4 characters (long values only).

    None when nothing is stored; "••••" alone when it cannot be decrypted.
    """
    if not encrypted:
        return None
    try:
        value = box.decrypt(encrypted) if box is not None else ""
    except ConfigError:
        value = ""
    return MASK + value[-4:] if len(value) >= _SHOW_TAIL_FROM else MASK


def integration_json(box: SecretBox | None, integration: Integration) -> dict[str, Any]:
    """An integration's fields as shown: never its secret, its tracking identifier masked."""
    return {
        "id": integration.id,
        "name": integration.name,
        "api_flavour": integration.api_flavour,
        "zone_lookup_url": integration.zone_lookup_url,
        "username": integration.username,
        "secret_set": bool(integration.secret_encrypted),
        "integration_code": masked(box, integration.integration_code_encrypted),
        "active": integration.active is not False,
        "deactivated_at": (
            integration.deactivated_at.isoformat() if integration.deactivated_at else None
        ),
        "created_at": integration.created_at.isoformat(),
        "updated_at": integration.updated_at.isoformat(),
    }


def find_integration(session: Session, integration_id: int) -> Integration:
    """The integration with this id; NotFoundError if there is none."""
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise NotFoundError(f"no integration {integration_id}")
    return integration

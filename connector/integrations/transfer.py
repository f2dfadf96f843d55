"""`connector config export|import`: every integration as one JSON document, to keep in git.

The document holds no secret. Import creates or updates integrations by name through the same
functions as the JSON API (integrations/editing.py, integrations/tenants.py), in the caller's one
transaction: a refusal anywhere leaves the database as it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import InvalidInput, TemplateRejected
from connector.integrations.editing import (
    EditContext,
    IntegrationSchema,
    create_integration,
    invalid,
    load_input,
    update_integration,
)
from connector.integrations.store import (
    RequestSchema,
    one_request_per_slot,
    replace_requests,
    spec_from_json,
    stored_requests,
)
from connector.integrations.strict import StrictInteger
from connector.integrations.tenants import entries_from, replace_tenants
from connector.payloads.requests import SLOTS, options_from, with_default_id_path
from connector.persistence.models import Integration, TenantMapping
from connector.ports import TargetProfile

FORMAT_VERSION = 1
#: Written into every export, so whoever opens the file knows what is not in it.
NOTE = (
    "Written by `connector config export`. It holds NO secret: no API user secret, no API"
    " tracking identifier (integration_code), no webhook credential. `connector config import`"
    ' keeps those of an integration that exists; a new integration needs its "secret" and'
    ' "integration_code" added to its entry (keep such a file out of version control).'
)


@dataclass(frozen=True)
class Imported:
    """What an import did to one integration."""

    name: str
    #: created, updated or unchanged.
    outcome: str
    #: What changed: fields, "settings", "tenants", "requests".
    changed: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the command's output."""
        what = f": {', '.join(self.changed)}" if self.outcome == "updated" else ""
        return f"{self.outcome} integration {self.name!r}{what}"


class DocumentSchema(Schema):
    """The whole file; each integration is loaded on its own, to name it in errors."""

    class Meta:
        unknown = RAISE

    version = StrictInteger(
        required=True,
        validate=validate.Equal(FORMAT_VERSION, error="must be {other} (this connector's format)"),
    )
    note = fields.String()
    integrations = fields.List(fields.Raw(), required=True)


class ImportedIntegrationSchema(IntegrationSchema):
    """One integration of the file: its fields, and optionally its whole tenant map and requests."""

    #: {tenant: company id | false | {"company_id", "enabled"}}; checked by entries_from.
    tenants = fields.Dict(keys=fields.String())
    requests = fields.List(fields.Nested(RequestSchema), validate=one_request_per_slot)


# -- export ----------------------------------------------------------------------------------------


def export_configuration(session: Session, profiles: Mapping[str, TargetProfile]) -> dict[str, Any]:
    """Every integration, by name: fields, settings, tenant map, delivery requests; no secret."""
    integrations = []
    for integration in session.scalars(select(Integration).order_by(Integration.name)):
        rows = session.scalars(
            select(TenantMapping)
            .where(TenantMapping.integration_id == integration.id)
            .order_by(TenantMapping.tenant)
        )
        entry: dict[str, Any] = {
            "name": integration.name,
            "api_flavour": integration.api_flavour,
            "zone_lookup_url": integration.zone_lookup_url,
            "username": integration.username,
            "settings": integration.settings or {},
            "tenants": {
                row.tenant: {"company_id": row.company_id, "enabled": row.enabled} for row in rows
            },
        }
        profile = profiles.get(integration.api_flavour)
        if profile is not None:
            options = options_from(stored_requests(session, integration.id), profile)
            entry["requests"] = [options.requests[slot].to_json() for slot in SLOTS]
        integrations.append(entry)
    return {"version": FORMAT_VERSION, "note": NOTE, "integrations": integrations}


def dump_document(document: Mapping[str, Any]) -> str:
    """The document as stable JSON text (sorted keys, so a diff shows only what changed)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_document(text: str) -> Any:
    """The JSON of an import file; InvalidInput with the line and column when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(
            f"the file is not JSON: {e.msg} at line {e.lineno}, column {e.colno}",
            details={"line": e.lineno},
        ) from e


# -- import ----------------------------------------------------------------------------------------


def import_configuration(session: Session, ctx: EditContext, document: Any) -> list[Imported]:
    """Create or update every integration the document names; the caller commits (or not).

    Per integration: fields given replace the stored ones; `settings`, `tenants` and `requests`,
    when given, are the whole settings, tenant map and delivery requests; whatever is left out
    is kept, the secret and tracking identifier too. Integrations the file does not name are
    left alone.

    Raises:
        InvalidInput: the file or an integration is refused; the message names the integration
            and the field.
        ConflictError: a flavour change would replace customized requests the file does not give.
    """
    doc = load_input(DocumentSchema(), document, what="the file")
    seen: set[str] = set()
    results = []
    for index, raw in enumerate(doc["integrations"]):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        what = f"integration {name!r}" if isinstance(name, str) else f"integrations.{index}"
        if isinstance(name, str) and name in seen:
            raise InvalidInput(f"{what}: named twice in the file")
        seen.add(str(name))
        results.append(_import_one(session, ctx, raw, what))
    return results


def _import_one(session: Session, ctx: EditContext, raw: Any, what: str) -> Imported:
    existing = None
    if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
        existing = session.scalar(select(Integration).where(Integration.name == raw["name"]))
    schema = ImportedIntegrationSchema()
    data = load_input(schema, raw, what=what, partial=existing is not None)
    given_tenants = data.pop("tenants", None)
    given_requests = data.pop("requests", None)
    try:
        tenants = entries_from(given_tenants) if given_tenants is not None else None
    except ValidationError as e:
        raise invalid({"tenants": e.messages}, what) from e
    if existing is None:
        integration = create_integration(session, ctx, data, what=what)
        changed: list[str] = []
    else:
        integration = existing
        new_flavour = data.get("api_flavour", integration.api_flavour)
        if given_requests is not None and new_flavour != integration.api_flavour:
            data["regenerate_requests"] = True  # the file gives the new flavour's requests
        updated = update_integration(
            session, ctx, integration, data, replace_settings=True, what=what
        )
        changed = list(updated.changed) + (["requests"] if updated.requests_regenerated else [])
    if tenants is not None and replace_tenants(session, integration, tenants):
        changed.append("tenants")
    replaced = given_requests is not None and _replace_requests(
        session, ctx, integration, given_requests, what
    )
    if replaced and "requests" not in changed:
        changed.append("requests")
    if existing is None:
        return Imported(integration.name, "created")
    return Imported(integration.name, "updated" if changed else "unchanged", tuple(changed))


def _replace_requests(
    session: Session,
    ctx: EditContext,
    integration: Integration,
    given: list[dict[str, Any]],
    what: str,
) -> bool:
    """Store the file's requests unless they are the stored ones; True when they changed."""
    profile = ctx.profiles[integration.api_flavour]
    specs = [with_default_id_path(spec_from_json(item, profile), profile) for item in given]
    current = options_from(stored_requests(session, integration.id), profile).requests
    if all(current.get(spec.slot) == spec for spec in specs):
        return False
    try:
        replace_requests(session, integration, specs, profile)
    except TemplateRejected as e:
        raise InvalidInput(f"{what}: requests: {e}", details=e.details) from e
    return True

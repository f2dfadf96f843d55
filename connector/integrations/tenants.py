"""An integration's tenant → company map, edited live; and the tenants alerts name but it lacks.

Each change moves the integration's `updated_at` (see integrations/editing.py); deliveries read
the map afresh anyway, so the next alert of a tenant goes to the company it is mapped to now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, validate, validates_schema
from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.domain import CompanyChoice
from connector.errors import ConflictError, InvalidInput, NotFoundError
from connector.integrations.strict import StrictBoolean, StrictInteger
from connector.persistence.models import Alert, Integration, TenantMapping, utcnow

#: A company id: Autotask-style ids are 32-bit (and the column is INTEGER on PostgreSQL).
MAX_COMPANY_ID = 2**31 - 1
#: The longest tenant an alert can carry (alert.tenant).
MAX_TENANT_LENGTH = 255


@dataclass(frozen=True)
class TenantEntry:
    """One row of the map: the tenant's company, and whether its alerts are ticketed at all."""

    tenant: str
    company_id: int | None
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        """The entry as the API shows it."""
        return {"tenant": self.tenant, "company_id": self.company_id, "enabled": self.enabled}


@dataclass(frozen=True)
class UnmappedTenant:
    """A tenant alerts of the integration named that has no mapping."""

    tenant: str
    #: How many alerts (not events) carry it.
    alerts: int
    last_seen_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The tenant as the API shows it."""
        seen = self.last_seen_at.isoformat() if self.last_seen_at is not None else None
        return {"tenant": self.tenant, "alerts": self.alerts, "last_seen_at": seen}


class TenantMappingSchema(Schema):
    """A tenant's mapping as PUT sends it: `{"company_id", "enabled"}`."""

    class Meta:
        unknown = RAISE

    company_id = StrictInteger(
        allow_none=True, load_default=None, validate=validate.Range(0, MAX_COMPANY_ID)
    )
    enabled = StrictBoolean(load_default=True)

    @validates_schema
    def company_while_enabled(self, data: dict[str, Any], **_: Any) -> None:
        """A switched-on tenant needs its company; a switched-off one may keep or lack one."""
        if data.get("enabled", True) and data.get("company_id") is None:
            raise ValidationError("required while the tenant is enabled", "company_id")


def check_tenant(tenant: str) -> str:
    """The tenant as given; InvalidInput if no alert could carry it (empty, too long, NUL)."""
    if not tenant:
        raise InvalidInput("tenant: must not be empty", details={"fields": {"tenant": ["empty"]}})
    problem = ""
    if len(tenant) > MAX_TENANT_LENGTH:
        problem = f"is {len(tenant)} characters; alerts carry at most {MAX_TENANT_LENGTH}"
    elif "\x00" in tenant:
        problem = "must not contain a NUL character"
    if problem:
        raise InvalidInput(f"tenant: {problem}", details={"fields": {"tenant": [problem]}})
    return tenant


def entry_from(tenant: str, value: Any) -> TenantEntry:
    """A configured or imported tenant's value: a company id, false (switched off), or
    `{"company_id", "enabled"}`; ValidationError saying why when it is none of them."""
    shape = "must be a company id, false (switched off) or {company_id, enabled}"
    if isinstance(value, bool):
        if value:
            raise ValidationError(f"true names no company: {shape}")
        return TenantEntry(tenant, None, enabled=False)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # CONNECTOR_INTEGRATION written with quoted ids
    if isinstance(value, int):
        if not 0 <= value <= MAX_COMPANY_ID:
            raise ValidationError(f"a company id runs from 0 to {MAX_COMPANY_ID}")
        return TenantEntry(tenant, value)
    if isinstance(value, Mapping):
        loaded = TenantMappingSchema().load(dict(value))
        return TenantEntry(tenant, loaded["company_id"], loaded["enabled"])
    raise ValidationError(shape)


def entries_from(raw: Any) -> dict[str, TenantEntry]:
    """A whole configured or imported map, `{tenant: value}` (see entry_from).

    Raises:
        ValidationError: messages by tenant, for every bad one.
    """
    if not isinstance(raw, Mapping):
        raise ValidationError("must map tenants to company ids (or false, or an object)")
    entries: dict[str, TenantEntry] = {}
    problems: dict[str, Any] = {}
    for tenant, value in raw.items():
        try:
            entries[str(tenant)] = entry_from(check_tenant(str(tenant)), value)
        except InvalidInput as e:
            problems[str(tenant)] = [str(e).removeprefix("tenant: ")]
        except ValidationError as e:
            problems[str(tenant)] = e.messages
    if problems:
        raise ValidationError(problems)
    return entries


def _touch(integration: Integration) -> None:
    integration.updated_at = utcnow()


def list_tenants(
    session: Session, integration_id: int, *, search: str = "", limit: int = 100, offset: int = 0
) -> tuple[list[TenantEntry], int]:
    """The map's entries whose tenant contains `search` (any case), by tenant; and how many."""
    query = select(TenantMapping).where(TenantMapping.integration_id == integration_id)
    if search:
        query = query.where(TenantMapping.tenant.icontains(search, autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(TenantMapping.tenant, TenantMapping.id).limit(limit).offset(offset)
    )
    return [TenantEntry(row.tenant, row.company_id, row.enabled) for row in rows], total


def set_tenant(session: Session, integration: Integration, entry: TenantEntry) -> bool:
    """Map a tenant (a new row, or the existing one changed); True when it is new."""
    check_tenant(entry.tenant)
    row = session.scalar(
        select(TenantMapping).where(
            TenantMapping.integration_id == integration.id, TenantMapping.tenant == entry.tenant
        )
    )
    created = row is None
    if row is None:
        row = TenantMapping(integration_id=integration.id, tenant=entry.tenant)
        session.add(row)
    if created or (row.company_id, row.enabled) != (entry.company_id, entry.enabled):
        row.company_id = entry.company_id
        row.enabled = entry.enabled
        _touch(integration)
    try:
        session.flush()
    except IntegrityError as e:
        # Two requests mapped the same new tenant at once; the other one's mapping stands.
        raise ConflictError(f"tenant {entry.tenant!r} was mapped at the same time; retry") from e
    return created


def delete_tenant(session: Session, integration: Integration, tenant: str) -> None:
    """Remove a tenant's mapping: its alerts are unmapped again (NotFoundError if it had none)."""
    row = session.scalar(
        select(TenantMapping).where(
            TenantMapping.integration_id == integration.id, TenantMapping.tenant == tenant
        )
    )
    if row is None:
        raise NotFoundError(f"integration {integration.id} has no mapping for tenant {tenant!r}")
    session.delete(row)
    _touch(integration)
    session.flush()


def replace_tenants(
    session: Session, integration: Integration, entries: Mapping[str, TenantEntry]
) -> bool:
    """Make the map exactly `entries` (an import, a seed); True when that changed it."""
    for tenant in entries:
        check_tenant(tenant)
    current = {
        row.tenant: TenantEntry(row.tenant, row.company_id, row.enabled)
        for row in session.scalars(
            select(TenantMapping).where(TenantMapping.integration_id == integration.id)
        )
    }
    if current == dict(entries):
        return False
    session.execute(delete(TenantMapping).where(TenantMapping.integration_id == integration.id))
    for entry in entries.values():
        session.add(
            TenantMapping(
                integration_id=integration.id,
                tenant=entry.tenant,
                company_id=entry.company_id,
                enabled=entry.enabled,
            )
        )
    _touch(integration)
    session.flush()
    return True


def _unmapped_query(integration_id: int, search: str) -> Select[str, int, datetime]:
    mapped = select(TenantMapping.id).where(
        TenantMapping.integration_id == integration_id, TenantMapping.tenant == Alert.tenant
    )
    query = select(
        Alert.tenant,
        func.count(Alert.id).label("alerts"),
        func.max(Alert.last_event_at).label("last_seen_at"),
    ).where(Alert.integration_id == integration_id, Alert.tenant != "", ~mapped.exists())
    if search:
        query = query.where(Alert.tenant.icontains(search, autoescape=True))
    return query.group_by(Alert.tenant)


def unmapped_tenants(
    session: Session, integration_id: int, *, search: str = "", limit: int = 100, offset: int = 0
) -> tuple[list[UnmappedTenant], int]:
    """Tenants the integration's alerts carry that its map lacks, most recently seen first.

    What "map by identical name" offers; `search` narrows them (any case). Also how many.
    """
    query = _unmapped_query(integration_id, search)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(func.max(Alert.last_event_at).desc(), Alert.tenant)
        .limit(limit)
        .offset(offset)
    )
    return [UnmappedTenant(row.tenant, int(row.alerts), row.last_seen_at) for row in rows], total


@dataclass(frozen=True)
class NameMatch:
    """An unmapped tenant and the one company of the same name, or why there is none."""

    tenant: str
    company: CompanyChoice | None
    #: Why `company` is None: no company has the name, or several do.
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        """The match as the API shows it."""
        company = None
        if self.company is not None:
            company = {"id": self.company.id, "name": self.company.name}
        return {"tenant": self.tenant, "company": company, "problem": self.problem or None}


def _same_name(text: str) -> str:
    """A name as "identical" compares it: any case, spaces around and doubled ignored."""
    return " ".join(text.split()).casefold()


def identical_name_matches(
    tenants: Iterable[str], find: Callable[[str], Iterable[CompanyChoice]]
) -> list[NameMatch]:
    """Each tenant with the company whose name is the tenant's (`find(name)`: candidates).

    Only one company of that name is a match; several are reported, never guessed between.
    """
    matches = []
    for tenant in tenants:
        wanted = _same_name(tenant)
        same = [
            company
            for company in find(" ".join(tenant.split()))
            if _same_name(company.name) == wanted
        ]
        if len(same) == 1:
            matches.append(NameMatch(tenant, same[0]))
        elif not same:
            matches.append(NameMatch(tenant, None, "no company has this name"))
        else:
            matches.append(NameMatch(tenant, None, f"{len(same)} companies have this name"))
    return matches

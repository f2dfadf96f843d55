"""An integration's ticket system as its admin sets it up: "Check connection", and the ticket
system's own lists (picklists, work types, companies) so that settings are picked by name.

Every call goes through the governor like the worker's (budget, thread slots, pause, breaker) and
is stored as API activity; the lists are kept per process for `CATALOG_CACHE_SECONDS`, keyed by
the integration and the time it was last saved, so editing the integration forgets them. The web
pages and the JSON API call `check_connection`, `picklists` and `search_companies`; the admin
form checks values before saving them with `check_unsaved` (and reads the lists with them).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from connector.domain import CompanyChoice, ConnectionReport, TicketPicklists
from connector.errors import ConnectorError, NotFoundError, TargetError
from connector.integrations.settings import IntegrationSettings, load_settings
from connector.integrations.tenants import NameMatch, identical_name_matches, unmapped_tenants
from connector.persistence.models import Integration, utcnow
from connector.pipeline.dispatch import CallLog
from connector.pipeline.governor import Governor, Limits, Throttled
from connector.ports import TicketSystemCatalog
from connector.services import Services

T = TypeVar("T")

#: Which setting each list fills: the setup pages offer the list's labels for that setting (and
#: for the same field of monitor overrides; the status and priority maps take statuses and
#: priorities as values). Companies (default_company_id, tenant maps) come from
#: `search_companies`.
PICKLIST_SETTINGS: Mapping[str, str] = {
    "queue_id": "queues",
    "status_map": "statuses",
    "priority_map": "priorities",
    "ticket_category": "ticket_categories",
    "ticket_type": "ticket_types",
    "issue_type": "issue_types",
    "sub_issue_type": "sub_issue_types",
    "work_type": "work_types",
    "source": "sources",
    "note_type": "note_types",
    "publish": "note_publish",
}

#: How many companies a search answers by default, and at most.
DEFAULT_COMPANY_LIMIT = 25
MAX_COMPANY_LIMIT = 100

#: How many answers one process keeps at most (the oldest go first).
CACHE_ENTRIES = 512


class CatalogUnavailable(ConnectorError):
    """The ticket system could not give its lists; the message says why in words."""

    status = 502


class CatalogThrottled(ConnectorError):
    """The governor holds calls to the ticket system back now; `retry_after` says how long."""

    status = 503

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Cached(Generic[T]):
    """A list as the ticket system gave it, and when it was asked."""

    value: T
    read_at: datetime
    #: Whether it came from this process's cache rather than from the ticket system now.
    from_cache: bool = False


class CatalogCache:
    """Answers kept for a while in this process, by key; thread-safe, bounded."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Cached[Any]]] = OrderedDict()

    def get(self, key: Hashable) -> Cached[Any] | None:
        """The answer kept under `key`, if it has not expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[Hashable, ...], answer: Cached[Any]) -> None:
        """Keep `answer` under `key` (integration id, its last save, what) for the TTL.

        Answers about the same integration from before another save go: it was edited.
        """
        if self.ttl <= 0:
            return
        with self._lock:
            for old in [
                k
                for k in self._entries
                if isinstance(k, tuple) and k[:1] == key[:1] and k[1:2] != key[1:2]
            ]:
                del self._entries[old]
            self._entries[key] = (self.clock() + self.ttl, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > CACHE_ENTRIES:
                self._entries.popitem(last=False)


_CACHE_LOCK = threading.Lock()


def cache_of(services: Services) -> CatalogCache:
    """The process's cache of catalog answers (made on first use)."""
    with _CACHE_LOCK:
        if services.catalog_cache is None:
            ttl = float(services.settings.get("CATALOG_CACHE_SECONDS", 900.0))
            services.catalog_cache = CatalogCache(ttl)
        return services.catalog_cache


# -- what the pages and the API call -------------------------------------------------------------


def check_connection(services: Services, integration_id: int) -> ConnectionReport:
    """Check the integration's connection to its ticket system now, step by step (never cached).

    A check that fails is part of the report, in words. Raises NotFoundError for an unknown
    integration, CatalogThrottled when the governor holds its calls back.
    """
    integration, settings = _load(services, integration_id)
    report: ConnectionReport = _governed(
        services, integration, settings, lambda catalog: catalog.check_connection()
    )
    return report


def picklists(
    services: Services, integration_id: int, *, refresh: bool = False
) -> Cached[TicketPicklists]:
    """The ticket system's own lists for the integration's settings (cached; `refresh`: ask now).

    Raises NotFoundError, CatalogUnavailable (why, in words) or CatalogThrottled.
    """
    return _cached(services, integration_id, ("picklists",), refresh, lambda c: c.picklists())


def search_companies(
    services: Services,
    integration_id: int,
    text: str = "",
    *,
    limit: int = DEFAULT_COMPANY_LIMIT,
    refresh: bool = False,
) -> Cached[tuple[CompanyChoice, ...]]:
    """Up to `limit` (1–100) companies whose name contains `text`, by name (cached per search).

    Raises NotFoundError, CatalogUnavailable (why, in words) or CatalogThrottled.
    """
    limit = max(1, min(int(limit), MAX_COMPANY_LIMIT))
    text = text.strip()
    key = ("companies", text.casefold(), limit)
    return _cached(
        services,
        integration_id,
        key,
        refresh,
        lambda catalog: tuple(catalog.search_companies(text, limit)),
    )


#: "Map by identical name" looks up at most this many unmapped tenants at once (one search each).
IDENTICAL_NAME_BATCH = 50


def identical_name_proposals(services: Services, integration_id: int) -> list[NameMatch]:
    """The unmapped tenants seen in alerts (most recent first, at most IDENTICAL_NAME_BATCH),
    each with the one company of the same name, or why there is none.

    Raises NotFoundError, CatalogUnavailable (why, in words) or CatalogThrottled.
    """
    with services.transaction() as session:
        unmapped, _ = unmapped_tenants(session, integration_id, limit=IDENTICAL_NAME_BATCH)

    def companies_named(name: str) -> tuple[CompanyChoice, ...]:
        return search_companies(services, integration_id, name, limit=MAX_COMPANY_LIMIT).value

    return identical_name_matches([seen.tenant for seen in unmapped], companies_named)


# -- connection values not saved yet (the admin form's "Check connection" before saving) --------


def check_unsaved(services: Services, integration: Integration) -> ConnectionReport:
    """Check connection values before they are saved, as `check_connection` checks saved ones.

    `integration` is transient, never added to a session: the values typed into the form (see
    editing.unsaved_integration), with `id` the saved integration they would change, or None
    for a new one. The calls of an edit are governed and stored as that integration's (its
    budget, slots, pause and breaker hold them back), but what they meet does not pause it or
    trip its breaker: those values are not its own yet. A new integration has no budget or
    activity to count them against: its few calls go ungoverned and are not stored.
    """
    settings = load_settings(integration.settings)
    report: ConnectionReport = _governed(
        services, integration, settings, lambda catalog: catalog.check_connection(), judge=False
    )
    return report


def unsaved_picklists(services: Services, integration: Integration) -> TicketPicklists:
    """The ticket system's lists read with connection values not saved yet (never cached).

    As `check_unsaved` for `integration` and the governor; raises CatalogUnavailable or
    CatalogThrottled as `picklists` does.
    """
    settings = load_settings(integration.settings)
    found: TicketPicklists = _governed(
        services, integration, settings, lambda catalog: catalog.picklists(), judge=False
    )
    return found


def unsaved_companies(
    services: Services, integration: Integration, text: str = "", *, limit: int = 100
) -> tuple[CompanyChoice, ...]:
    """Companies whose name contains `text`, read with connection values not saved yet."""
    limit = max(1, min(int(limit), MAX_COMPANY_LIMIT))
    settings = load_settings(integration.settings)
    return _governed(
        services,
        integration,
        settings,
        lambda catalog: tuple(catalog.search_companies(text.strip(), limit)),
        judge=False,
    )


# -- plumbing -------------------------------------------------------------------------------------


def _load(services: Services, integration_id: int) -> tuple[Integration, IntegrationSettings]:
    """The integration (read in one short transaction) and its settings; NotFoundError if none."""
    with services.transaction() as session:
        integration = session.get(Integration, integration_id)
        if integration is None:
            raise NotFoundError(f"no integration {integration_id}")
        return integration, load_settings(integration.settings)


def _cached(
    services: Services,
    integration_id: int,
    what: tuple[Hashable, ...],
    refresh: bool,
    use: Callable[[TicketSystemCatalog], T],
) -> Cached[T]:
    """`use(catalog)`, kept under (integration, its last save, `what`) for the TTL."""
    integration, settings = _load(services, integration_id)
    saved = integration.updated_at
    key = (integration_id, saved.isoformat() if saved else "", *what)
    cache = cache_of(services)
    if not refresh:
        kept = cache.get(key)
        if kept is not None:
            return Cached(kept.value, kept.read_at, from_cache=True)
    read_at = utcnow()
    answer = Cached(_governed(services, integration, settings, use), read_at)
    cache.put(key, answer)
    return answer


def _governed(
    services: Services,
    integration: Integration,
    settings: IntegrationSettings,
    use: Callable[[TicketSystemCatalog], T],
    *,
    judge: bool = True,
) -> T:
    """`use` the integration's catalog, each call admitted by the governor and stored at once.

    As for the worker and the test delivery (pipeline.dispatch.governed_target): the hourly
    budget is counted from the stored calls, so each is stored as it ends. A call the ticket
    system refused becomes CatalogUnavailable in the catalog's words; one the governor held
    back, CatalogThrottled. Not `judge`: values not saved yet (check_unsaved); an integration
    without an id has nothing to govern or store the calls under.
    """
    integration_id = integration.id
    calls = CallLog()
    governor = Governor(services, Limits.from_settings(services.settings))
    holder = f"catalog:{uuid.uuid4().hex[:12]}"

    def store(session: Session) -> None:
        calls.store_in(session, integration_id)

    @contextmanager
    def gate(endpoint: str, *, limited: bool = True) -> Iterator[object]:
        if integration_id is None:
            yield None
            calls.records.clear()
            return
        with governor.call(
            integration_id, endpoint, holder, slot=limited, store=store, judge=judge
        ) as permit:
            yield permit

    catalog = services.catalogs()(integration, settings, calls, gate)
    try:
        return use(catalog)
    except Throttled as e:
        raise CatalogThrottled(str(e), retry_after=e.retry_after or 1.0) from e
    except TargetError as e:
        raise CatalogUnavailable(catalog.explain(e)) from e
    finally:
        # Each call is stored as the gate releases it; whatever a call outside the gate
        # recorded (none is expected) is stored too, so the budget counts it.
        if calls.records and integration_id is not None:
            with services.transaction() as session:
                calls.store_in(session, integration_id)

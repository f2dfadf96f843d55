"""Where each integration's ticket system lives: its zone, looked up once and kept.

A zone lookup answers where the API user's database is, and which database it is (its id: the
governor counts the calls of integrations of one database together). Its answer is kept in this
process and on the integration's row (`zone_url`, `zone_checked_at`, `database_id`), so that
neither a new target in this process nor a restarted or second process asks again. A kept zone
is offered to a new target only when it was looked up after the integration was last saved (a
save may change the username or the lookup address) and less than `ZONE_KEPT_FOR` ago; the
target still looks it up again when a call suggests a wrong zone (a redirect, a 401 or 404, an
unreachable host), and every new answer replaces the kept one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, inspect, update
from sqlalchemy.exc import SQLAlchemyError

from connector.domain import ZoneAnswer
from connector.errors import UnavailableError
from connector.persistence.models import Integration, utcnow
from connector.ports import ZoneListener
from connector.services import Services

logger = logging.getLogger(__name__)

#: How long a kept zone is offered to a new target. Zones change rarely (a database moves);
#: a day bounds how long a stale one is tried first, and the target looks the zone up again
#: anyway when a call suggests it is wrong.
ZONE_KEPT_FOR = timedelta(days=1)


@dataclass(frozen=True)
class KeptZone:
    """A zone address as a lookup answered it, and when."""

    url: str
    checked_at: datetime


#: What a zone belongs to: the integration, and what its lookup asks with (flavour, lookup
#: address, username); a zone kept for other values is not theirs.
ZoneKey = tuple[int, str, str, str]


def _key(integration: Integration) -> ZoneKey:
    return (
        integration.id,
        integration.api_flavour,
        integration.zone_lookup_url,
        integration.username.lower(),
    )


def _saved(integration: Integration) -> bool:
    """Whether `integration` is a stored row (not values typed into the form, unsaved)."""
    state = inspect(integration, raiseerr=False)
    return state is not None and (state.persistent or state.detached)


class ZoneMemory:
    """The zones of this process's integrations, kept here and on each integration's row."""

    def __init__(self, services: Services, clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.clock = clock
        self._lock = threading.Lock()
        self._zones: dict[ZoneKey, KeptZone] = {}

    def known(self, integration: Integration) -> str | None:
        """The integration's kept zone, if it may be used without a lookup; else None.

        Values not saved yet (the form's "Check connection") get none: they are looked up.
        """
        if not _saved(integration):
            return None
        kept = [
            KeptZone(integration.zone_url, integration.zone_checked_at)
            if integration.zone_url and integration.zone_checked_at is not None
            else None
        ]
        with self._lock:
            kept.append(self._zones.get(_key(integration)))
        now = self.clock()
        usable = [
            zone
            for zone in kept
            if zone is not None
            and zone.checked_at >= integration.updated_at
            and now - zone.checked_at < ZONE_KEPT_FOR
        ]
        if not usable:
            return None
        return max(usable, key=lambda zone: zone.checked_at).url

    def listener(self, integration: Integration) -> ZoneListener:
        """What keeps the zones a target of `integration` looks up (here and on its row).

        The zone of values not saved yet is not kept: it is not the integration's.
        """
        if not _saved(integration):
            return _forget
        key = _key(integration)

        def remember(answer: ZoneAnswer) -> None:
            self.remember(key, answer)

        return remember

    def remember(self, key: ZoneKey, answer: ZoneAnswer) -> None:
        """Keep a zone lookup's answer; a failure to store it costs only a later lookup."""
        now = self.clock()
        with self._lock:
            self._zones[key] = KeptZone(answer.url, now)
        integration_id, flavour, lookup_url, username = key
        try:
            with self.services.transaction() as session:
                session.execute(
                    update(Integration)
                    # Only while the row still asks with the values the zone was looked up for.
                    .where(
                        Integration.id == integration_id,
                        Integration.api_flavour == flavour,
                        Integration.zone_lookup_url == lookup_url,
                        func.lower(Integration.username) == username,
                    )
                    # Not a change of the integration: updated_at (which forgets cached
                    # settings, and marks a kept zone as older than the last save) stays.
                    .values(
                        zone_url=answer.url,
                        zone_checked_at=now,
                        database_id=answer.database_id,
                        updated_at=Integration.updated_at,
                    )
                )
        except (SQLAlchemyError, UnavailableError) as e:
            logger.warning(
                "integration.zone_not_stored",
                extra={"integration_id": integration_id, "error": str(e)},
            )


def _forget(answer: ZoneAnswer) -> None:
    """The listener of values not saved: their zone is not kept."""

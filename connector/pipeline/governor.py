"""The governor: keep every Autotask call under the hourly budget, 3 per endpoint, and a breaker.

Autotask allows 10,000 requests per rolling hour per database, shared by every integration of the
tenant, and 3 concurrent requests per (tracking identifier, object endpoint); more get a 429
(reference: autotask-api.md §8). Workers run as threads or processes on any host sharing one
database, so everything the governor knows lives there:

- the hourly budget is counted from the stored ApiCall rows of the last 60 minutes plus the calls
  in flight (held slots) of every integration of the same ticket-system database (the zone
  lookup's database id; an integration whose database is not known yet counts alone), as the
  threshold is the database's; creates of new tickets may use only ceiling × (1 − reserve), so
  notes, status changes and completions still go through during a burst of new alerts;
- the database's count as the ticket system reports it (every integration and tool of the
  tenant, polled by pipeline/thresholds.py) plus this connector's calls since the report must stay
  under a safety share of its threshold: the connector slows down before Autotask does;
- concurrency: `api_slot` rows, API_SLOTS_PER_ENDPOINT per (integration, endpoint), taken by a
  conditional UPDATE with a lease, so a crashed worker's slot frees itself;
- a 429 pauses the whole integration (`governor_state.paused_until`) for its Retry-After;
- a circuit breaker per integration (`governor_state`): BREAKER_FAILURES consecutive retryable
  failures open it for BREAKER_COOLDOWN_SECONDS; then one probe at a time (half-open); a success
  closes it, a failure opens it again.

A call that may not go now raises `Throttled`, which the worker turns into a reschedule that does
not consume an attempt. `GovernedTarget` applies all this around any TicketTarget.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from connector.errors import TargetAuthError, TargetError, TargetRateLimited
from connector.persistence.db import insert_for
from connector.persistence.models import (
    ApiCall,
    ApiSlot,
    DatabaseUsage,
    GovernorState,
    Integration,
    utcnow,
)
from connector.services import Services

logger = logging.getLogger(__name__)

#: Autotask counts requests over a rolling 60 minutes (autotask-api.md §8).
WINDOW = timedelta(minutes=60)
#: Autotask's thread limit per (tracking identifier, object endpoint) since 2023.1.
API_SLOTS_PER_ENDPOINT = 3
#: The pause after a 429 that names no Retry-After (thread threshold), in seconds.
DEFAULT_PAUSE_SECONDS = 5.0
#: The pause after Autotask refused the integration's credentials: no delivery of the
#: integration calls until then (one tries again after it), and none is spent or dead for it.
CREDENTIALS_PAUSE_SECONDS = 300.0
#: Every pause_reason for refused credentials starts so.
CREDENTIALS_REFUSED = "Autotask refused the integration's credentials"
#: How long a worker waits for a free slot (or for a half-open probe) before rescheduling.
SLOT_WAIT_SECONDS = 2.0
#: How often a waiting call asks again, at first; a slot freed in the same process wakes it at
#: once. Slots freed by other processes are looked for less often the longer it waits (up to
#: SLOT_POLL_MAX_SECONDS), so many waiting threads do not keep the database busy asking.
SLOT_POLL_SECONDS = 0.1
SLOT_POLL_MAX_SECONDS = 0.4
#: When a delivery that found no slot is tried again.
BUSY_RETRY_SECONDS = 1.0
#: A held slot (or probe) whose holder vanished frees itself after this long; longer than any
#: call can take (connect + read timeouts, and a SOAP update's two calls).
MIN_LEASE_SECONDS = 30.0

#: For this long after a zone lookup the adapter answers from its cache (it keeps it an hour).
ZONE_RECHECK_SECONDS = 600.0

#: Defaults of the threshold settings: how often the database's reported usage is asked for,
#: the share of the threshold the connector stops at, and how long a report is trusted.
THRESHOLD_POLL_SECONDS = 300.0
THRESHOLD_SAFETY_SHARE = 0.9
THRESHOLD_REPORT_MAX_AGE_SECONDS = 900.0
#: A call held back at the threshold's safety share is tried again no sooner than this: the
#: count falls only as calls leave the window or a new report shows it.
THRESHOLD_RETRY_MIN_SECONDS = 30.0

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: Every Throttled message starts so: a held-back delivery's last_error is recognisable by it.
THROTTLED_PREFIX = "throttled: "


class Throttled(TargetError):
    """The governor held a call back; the delivery waits `retry_after` seconds, attempt unspent."""

    retryable = True
    consumes_attempt = False

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(THROTTLED_PREFIX + message, retry_after=max(retry_after, 0.0))


class _Wait(Exception):
    """Nothing free right now, but soon: wait a little and ask again (internal)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """The governor's settings."""

    hourly_ceiling: int = 3000
    reserve_fraction: float = 0.1
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    slot_wait: float = SLOT_WAIT_SECONDS
    lease: float = MIN_LEASE_SECONDS
    credentials_pause: float = CREDENTIALS_PAUSE_SECONDS
    threshold_poll: float = THRESHOLD_POLL_SECONDS
    threshold_share: float = THRESHOLD_SAFETY_SHARE
    report_max_age: float = THRESHOLD_REPORT_MAX_AGE_SECONDS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        """The limits named by API_HOURLY_CEILING, API_RESERVE_FRACTION, BREAKER_* settings."""
        timeouts = float(settings.get("AUTOTASK_CONNECT_TIMEOUT", 5.0)) + float(
            settings.get("AUTOTASK_READ_TIMEOUT", 30.0)
        )
        return cls(
            hourly_ceiling=int(settings["API_HOURLY_CEILING"]),
            reserve_fraction=float(settings["API_RESERVE_FRACTION"]),
            breaker_failures=int(settings["BREAKER_FAILURES"]),
            breaker_cooldown=float(settings["BREAKER_COOLDOWN_SECONDS"]),
            lease=max(MIN_LEASE_SECONDS, 2 * timeouts + 5),
            credentials_pause=float(
                settings.get("CREDENTIALS_PAUSE_SECONDS", CREDENTIALS_PAUSE_SECONDS)
            ),
            threshold_poll=float(settings.get("THRESHOLD_POLL_SECONDS", THRESHOLD_POLL_SECONDS)),
            threshold_share=float(settings.get("THRESHOLD_SAFETY_SHARE", THRESHOLD_SAFETY_SHARE)),
            report_max_age=float(
                settings.get("THRESHOLD_REPORT_MAX_AGE_SECONDS", THRESHOLD_REPORT_MAX_AGE_SECONDS)
            ),
        )

    def budget(self, creates: bool) -> int:
        """Calls allowed per rolling hour: creates keep the reserve free for everything else."""
        if creates:
            return math.floor(self.hourly_ceiling * (1 - self.reserve_fraction))
        return self.hourly_ceiling

    def threshold_limit(self, threshold: int, creates: bool) -> int:
        """The database's count (as reported, plus ours since) calls stop at: the safety share
        of its threshold, and for creates that less the reserve."""
        limit = threshold * self.threshold_share
        if creates:
            limit *= 1 - self.reserve_fraction
        return math.floor(limit)

    def trusts(self, reported_at: datetime | None, now: datetime) -> bool:
        """Whether a usage report made at `reported_at` still says something at `now`."""
        return reported_at is not None and (now - reported_at).total_seconds() <= (
            self.report_max_age
        )


@dataclass(frozen=True)
class Permit:
    """One admitted call: the slot it holds and whether it is the half-open probe."""

    integration_id: int
    endpoint: str
    #: None for a call that needs no slot (zone lookups: not counted, not thread-limited).
    slot_id: int | None
    holder: str
    probe: bool


class Governor:
    """Admission and accounting of Autotask calls, shared through the database.

    One governor serves every thread of a worker: a call waiting for a slot is woken as soon
    as a call of the same process gives one back, and asks again every SLOT_POLL_SECONDS for
    slots freed by other processes. `sleep` replaces that wait (tests).
    """

    def __init__(
        self,
        services: Services,
        limits: Limits,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.services = services
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        #: Per (integration, endpoint): how many calls of this process gave a slot back, and the
        #: condition its waiting calls wait on.
        self._freed: dict[tuple[int, str], tuple[threading.Condition, list[int]]] = {}

    # -- admission ----------------------------------------------------------------------------

    def admit(
        self,
        integration_id: int,
        endpoint: str,
        holder: str,
        *,
        creates: bool,
        cost: int = 1,
        slot: bool = True,
        heed_usage: bool = True,
    ) -> Permit:
        """Take a slot for one call, or raise Throttled saying why and for how long.

        A full endpoint (or a probe already in flight) is waited for up to `slot_wait` seconds.
        Without `slot`, only the pause and the breaker apply (a zone lookup). Without
        `heed_usage`, the database's reported usage does not hold the call back (the call that
        asks for it: else a high report could never be replaced by a lower one).
        """
        deadline = time.monotonic() + self.limits.slot_wait
        freed, count = self._slot_freed(integration_id, endpoint)
        poll = SLOT_POLL_SECONDS
        while True:
            seen = count[0]
            try:
                return self._admit_once(
                    integration_id, endpoint, holder, creates, cost, slot, heed_usage
                )
            except _Wait as e:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Throttled(e.reason, retry_after=BUSY_RETRY_SECONDS) from None
                if self.sleep is not None:
                    self.sleep(SLOT_POLL_SECONDS)
                    continue
                with freed:
                    if count[0] == seen:  # none given back since this try: wait for one
                        freed.wait(min(poll, left))
                poll = min(poll * 2, SLOT_POLL_MAX_SECONDS)

    def _slot_freed(
        self, integration_id: int, endpoint: str
    ) -> tuple[threading.Condition, list[int]]:
        """The condition notified when a call of this process gives a slot of the endpoint
        back, with the count of such releases."""
        key = (integration_id, endpoint.lower())
        with self._lock:
            found = self._freed.get(key)
            if found is None:
                found = self._freed[key] = (threading.Condition(), [0])
            return found

    def _wake_one(self, permit: Permit) -> None:
        """The permit's slot is free again: wake one call of this process waiting for it."""
        freed, count = self._slot_freed(permit.integration_id, permit.endpoint)
        with freed:
            count[0] += 1
            freed.notify()

    def _admit_once(
        self,
        integration_id: int,
        endpoint: str,
        holder: str,
        creates: bool,
        cost: int,
        slot: bool,
        heed_usage: bool = True,
    ) -> Permit:
        now = self.clock()
        lease = timedelta(seconds=self.limits.lease)
        with self.services.transaction() as session:
            state = _locked_state(session, integration_id)
            if _credentials_changed_since_refused(session, state, self.limits):
                state.paused_until = None
                state.pause_reason = None
            if state.paused_until is not None and now < state.paused_until:
                wait = (state.paused_until - now).total_seconds()
                raise Throttled(
                    f"{state.pause_reason or 'Autotask asked to slow down'};"
                    f" no call for {wait:.0f} s",
                    retry_after=wait,
                )
            probe = False
            if state.breaker == OPEN:
                if state.open_until is not None and now < state.open_until:
                    wait = (state.open_until - now).total_seconds()
                    raise Throttled(
                        f"circuit breaker open after {state.failures} consecutive"
                        f" failures; next probe in {wait:.0f} s",
                        retry_after=wait,
                    )
                state.breaker = HALF_OPEN
                state.probe_holder = None
            if state.breaker == HALF_OPEN:
                if (
                    state.probe_holder is not None
                    and state.probe_expires_at is not None
                    and now < state.probe_expires_at
                ):
                    raise _Wait("circuit breaker half-open, a probe call is in flight")
                probe = True
                state.probe_holder = holder
                state.probe_expires_at = now + lease
            if not slot:
                return Permit(integration_id, endpoint, None, holder, probe)
            self._check_budget(session, integration_id, now, creates, cost, heed_usage)
            slot_id = _take_slot(session, integration_id, endpoint, holder, now, now + lease)
            if slot_id is None:
                # Rolled back with the transaction: the probe is not taken either.
                raise _Wait(f"{API_SLOTS_PER_ENDPOINT} calls to {endpoint} already in flight")
            return Permit(integration_id, endpoint, slot_id, holder, probe)

    def _check_budget(
        self,
        session: Session,
        integration_id: int,
        now: datetime,
        creates: bool,
        cost: int,
        heed_usage: bool = True,
    ) -> None:
        """Raise Throttled when the call would pass the hourly budget of the integration's
        database (or of the integration alone, while its database is not known), or the safety
        share of the threshold the database's reported usage leaves."""
        pool = _budget_pool(session, integration_id)
        budget = self.limits.budget(creates)
        since = now - WINDOW
        counted = _calls_since(session, pool.members, since)
        in_flight = _in_flight(session, pool.members, now)
        excess = counted + in_flight + cost - budget
        if excess > 0:
            # The budget frees up when the `excess`-th oldest counted call leaves the window.
            oldest = session.scalar(
                select(ApiCall.at)
                .where(ApiCall.integration_id.in_(pool.members), ApiCall.at > since)
                .order_by(ApiCall.at)
                .offset(min(excess, max(counted, 1)) - 1)
                .limit(1)
            )
            wait = (oldest + WINDOW - now).total_seconds() if oldest is not None else 0.0
            kind = "creates" if creates else "calls"
            whose = (
                f" of Autotask database {pool.database_id} (shared by"
                f" {len(pool.members)} integrations)"
                if pool.usage is not None and len(pool.members) > 1
                else ""
            )
            raise Throttled(
                f"hourly API budget for {kind}{whose} used ({counted + in_flight} of {budget}"
                f" in the last 60 minutes); next call possible in {wait:.0f} s",
                retry_after=max(wait, BUSY_RETRY_SECONDS),
            )
        usage = pool.usage
        if not heed_usage or usage is None or usage.threshold is None:
            return
        reported_at = usage.reported_at
        if reported_at is None or usage.reported_count is None:
            return
        if not self.limits.trusts(reported_at, now):
            return  # an old report says nothing of the rolling window now
        ours_since = _calls_since(session, pool.members, reported_at)
        estimate = usage.reported_count + ours_since + in_flight
        limit = self.limits.threshold_limit(usage.threshold, creates)
        if estimate + cost <= limit:
            return
        next_report = reported_at + timedelta(seconds=self.limits.threshold_poll)
        wait = max((next_report - now).total_seconds(), THRESHOLD_RETRY_MIN_SECONDS)
        kind = "creates" if creates else "calls"
        raise Throttled(
            f"Autotask database {pool.database_id} is near its hourly threshold: about"
            f" {estimate} of {usage.threshold} calls in the last 60 minutes (Autotask reported"
            f" {usage.reported_count} at {reported_at:%H:%M:%S} UTC, every integration and"
            f" tool of the tenant; this connector made {ours_since} since);"
            f" {kind} stop at {limit} ({self.limits.threshold_share:.0%} of the threshold);"
            f" next try in {wait:.0f} s",
            retry_after=wait,
        )

    # -- accounting ---------------------------------------------------------------------------

    def release(
        self,
        permit: Permit,
        error: BaseException | None,
        store: Callable[[Session], None] | None = None,
        *,
        judge: bool = True,
    ) -> None:
        """Free the slot, store the call's records (`store`), and update pause and breaker.

        `error` is what the call raised (None: it succeeded). A 429 pauses the integration; a
        retryable failure counts towards the breaker; any answer that proves Autotask is
        serving (a success or a rejection) resets and closes it. Not `judge`: the call was made
        with connection values not saved (a check before saving), so what it met says nothing
        of the integration's own: pause and breaker stay as they are.
        """
        try:
            self._release(permit, error, store, judge)
        finally:
            self._wake_one(permit)

    def _release(
        self,
        permit: Permit,
        error: BaseException | None,
        store: Callable[[Session], None] | None,
        judge: bool,
    ) -> None:
        now = self.clock()
        with self.services.transaction() as session:
            # The state row first, as admission locks it: the same order in both, no deadlock.
            state = _locked_state(session, permit.integration_id)
            if permit.slot_id is not None:
                session.execute(
                    update(ApiSlot)
                    .where(ApiSlot.id == permit.slot_id, ApiSlot.holder == permit.holder)
                    .values(holder=None, expires_at=None)
                    .execution_options(synchronize_session=False)
                )
            if store is not None:
                store(session)
            if permit.probe and state.probe_holder == permit.holder:
                state.probe_holder = None
                state.probe_expires_at = None
            if not judge:
                return
            if isinstance(error, TargetRateLimited):
                wait = error.retry_after if error.retry_after else DEFAULT_PAUSE_SECONDS
                self._pause(state, now, wait, f"Autotask asked to pause calls: {error}")
            elif isinstance(error, TargetAuthError):
                self._pause(
                    state,
                    now,
                    self.limits.credentials_pause,
                    f"{CREDENTIALS_REFUSED}: {error}. Deliveries wait, none is lost: fix the"
                    " API user's username, secret or tracking identifier; one delivery tries"
                    " again when the pause ends",
                )
            elif isinstance(error, TargetError) and error.retryable:
                self._failure(state, now)
            elif error is None or isinstance(error, TargetError):
                self._success(state)

    def _pause(self, state: GovernorState, now: datetime, seconds: float, reason: str) -> None:
        """No call of the integration for `seconds`; `reason` says why to whoever is held back."""
        until = now + timedelta(seconds=seconds)
        if state.paused_until is None or state.paused_until < until:
            state.paused_until = until
            state.pause_reason = reason[:1000]
        logger.warning(
            "governor.paused",
            extra={"integration_id": state.integration_id, "seconds": seconds, "reason": reason},
        )

    def _failure(self, state: GovernorState, now: datetime) -> None:
        state.failures += 1
        reopen = state.breaker == HALF_OPEN
        if reopen or (state.breaker == CLOSED and state.failures >= self.limits.breaker_failures):
            state.breaker = OPEN
            state.open_until = now + timedelta(seconds=self.limits.breaker_cooldown)
            state.probe_holder = None
            state.probe_expires_at = None
            logger.warning(
                "breaker.open",
                extra={
                    "integration_id": state.integration_id,
                    "failures": state.failures,
                    "cooldown_seconds": self.limits.breaker_cooldown,
                },
            )

    def _success(self, state: GovernorState) -> None:
        state.failures = 0
        if state.pause_reason and (
            state.paused_until is None or state.paused_until <= self.clock()
        ):
            # Autotask serves again: the last pause is history.
            state.pause_reason = None
            state.paused_until = None
        if state.breaker != CLOSED:
            state.breaker = CLOSED
            state.open_until = None
            state.probe_holder = None
            state.probe_expires_at = None
            logger.info("breaker.closed", extra={"integration_id": state.integration_id})

    @contextmanager
    def call(
        self,
        integration_id: int,
        endpoint: str,
        holder: str,
        *,
        creates: bool = False,
        cost: int = 1,
        slot: bool = True,
        store: Callable[[Session], None] | None = None,
        judge: bool = True,
        heed_usage: bool = True,
    ) -> Iterator[Permit]:
        """Admit, run the block (the call), then release with what it raised (see release)."""
        permit = self.admit(
            integration_id,
            endpoint,
            holder,
            creates=creates,
            cost=cost,
            slot=slot,
            heed_usage=heed_usage,
        )
        try:
            yield permit
        except BaseException as e:
            self.release(permit, e, store, judge=judge)
            raise
        self.release(permit, None, store, judge=judge)


def _credentials_changed_since_refused(
    session: Session, state: GovernorState, limits: Limits
) -> bool:
    """Whether the integration was saved after Autotask refused its credentials.

    Then the refusal is old news: the next call tries the new credentials at once, instead of
    waiting out a pause meant for the old ones.
    """
    if state.paused_until is None or not (state.pause_reason or "").startswith(CREDENTIALS_REFUSED):
        return False
    refused_at = state.paused_until - timedelta(seconds=limits.credentials_pause)
    saved_at = session.scalar(
        select(Integration.updated_at).where(Integration.id == state.integration_id)
    )
    return saved_at is not None and saved_at > refused_at


def calls_status(session: Session, integration_id: int, now: datetime) -> dict[str, Any]:
    """Whether the integration's calls to Autotask go now, and if not, why and until when.

    `state` is ok, paused (Autotask asked to slow down), credentials_refused (until a call is
    accepted again), or breaker_open / breaker_half_open.
    """
    state = session.get(GovernorState, integration_id)
    refused = state is not None and (state.pause_reason or "").startswith(CREDENTIALS_REFUSED)
    if state is not None and state.paused_until is not None and now < state.paused_until:
        kind = "credentials_refused" if refused else "paused"
        return {"state": kind, "message": state.pause_reason, "until": state.paused_until}
    if state is not None and refused:
        return {"state": "credentials_refused", "message": state.pause_reason, "until": None}
    if state is not None and state.breaker != CLOSED:
        return {
            "state": f"breaker_{state.breaker}",
            "message": f"circuit breaker {state.breaker.replace('_', '-')} after"
            f" {state.failures} consecutive failed calls",
            "until": state.open_until,
        }
    return {"state": "ok", "message": None, "until": None}


@dataclass(frozen=True)
class BudgetPool:
    """The integrations whose calls count against one hourly budget: those of one database, or
    one integration alone while its database is not known (`database_id` None)."""

    database_id: str | None
    members: tuple[int, ...]
    #: The database's row (locked by admissions), None for an integration alone.
    usage: DatabaseUsage | None


def _budget_pool(session: Session, integration_id: int) -> BudgetPool:
    """The integration's budget pool; its database's row made if missing and locked, so
    admissions of the database's integrations count one at a time."""
    database_id = _database_of(session, integration_id)
    if database_id is None:
        return BudgetPool(None, (integration_id,), None)
    usage = usage_row(session, database_id)
    return BudgetPool(database_id, _members(session, database_id, integration_id), usage)


def _database_of(session: Session, integration_id: int) -> str | None:
    """The database the integration's zone lookup named, or None while it is not known."""
    found = session.scalar(select(Integration.database_id).where(Integration.id == integration_id))
    return found or None


def _members(session: Session, database_id: str, integration_id: int) -> tuple[int, ...]:
    """Every integration of the database (at least `integration_id`, which is in it)."""
    members = session.scalars(
        select(Integration.id).where(Integration.database_id == database_id)
    ).all()
    return tuple(members) or (integration_id,)


def usage_row(session: Session, database_id: str, *, lock: bool = True) -> DatabaseUsage:
    """The database's usage row, made if missing (locked for this transaction with `lock`)."""
    query = (
        select(DatabaseUsage)
        .where(DatabaseUsage.database_id == database_id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()
    usage = session.scalars(query).one_or_none()
    if usage is not None:
        return usage
    session.execute(
        insert_for(session.get_bind().dialect.name, DatabaseUsage)
        .values(database_id=database_id)
        .on_conflict_do_nothing(index_elements=["database_id"])
    )
    return session.scalars(query).one()


def _calls_since(session: Session, members: tuple[int, ...], since: datetime) -> int:
    """The stored calls of `members` made after `since`."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ApiCall)
            .where(ApiCall.integration_id.in_(members), ApiCall.at > since)
        )
        or 0
    )


def _in_flight(session: Session, members: tuple[int, ...], now: datetime) -> int:
    """The calls of `members` in flight now (held slots whose lease runs)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ApiSlot)
            .where(
                ApiSlot.integration_id.in_(members),
                ApiSlot.holder.is_not(None),
                ApiSlot.expires_at > now,
            )
        )
        or 0
    )


def budget_status(
    session: Session, integration_id: int, now: datetime, limits: Limits
) -> dict[str, Any]:
    """The integration's hourly budget now: whose calls it counts, how many, and what the
    ticket system last reported of its database (for the API; reads, locks nothing)."""
    database_id = _database_of(session, integration_id)
    members: tuple[int, ...] = (integration_id,)
    usage: DatabaseUsage | None = None
    if database_id is not None:
        members = _members(session, database_id, integration_id)
        usage = session.get(DatabaseUsage, database_id)
    reported: dict[str, Any] | None = None
    if usage is not None and usage.reported_at is not None and usage.threshold is not None:
        ours_since = _calls_since(session, members, usage.reported_at)
        reported = {
            "count": usage.reported_count,
            "threshold": usage.threshold,
            "timeframe_minutes": usage.timeframe_minutes,
            "at": usage.reported_at.isoformat(),
            "calls_since": ours_since,
            "trusted": limits.trusts(usage.reported_at, now),
            "stop_at": limits.threshold_limit(usage.threshold, creates=False),
        }
    return {
        "database_id": database_id,
        "integrations": list(members),
        "calls_last_hour": _calls_since(session, members, now - WINDOW)
        + _in_flight(session, members, now),
        "ceiling": limits.hourly_ceiling,
        "autotask_reported": reported,
    }


def _locked_state(session: Session, integration_id: int) -> GovernorState:
    """The integration's governor row, made if missing, locked for this transaction."""
    locked = (
        select(GovernorState)
        .where(GovernorState.integration_id == integration_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    # Every call admits and releases: the row exists nearly always, so it is read first and
    # made only when missing (one statement less per transaction).
    state = session.scalars(locked).one_or_none()
    if state is not None:
        return state
    session.execute(
        insert_for(session.get_bind().dialect.name, GovernorState)
        .values(integration_id=integration_id, breaker=CLOSED, failures=0)
        .on_conflict_do_nothing(index_elements=["integration_id"])
    )
    return session.scalars(locked).one()


def _take_slot(
    session: Session,
    integration_id: int,
    endpoint: str,
    holder: str,
    now: datetime,
    expires: datetime,
) -> int | None:
    """Take a free (or expired) slot of the endpoint by conditional UPDATE; None if all held.

    A slot still held by `holder` itself counts as free, and is taken first: a holder (a worker
    lane, one call at a time) asking for a slot is in no call, so its slot is one whose release
    never reached the database (it went down during the call). Without this, a database restart
    during calls left their slots held until the lease ran out: no call to the endpoint for
    30 s after the database was back.
    """
    key = endpoint.lower()
    own = ApiSlot.holder == holder
    free = or_(ApiSlot.holder.is_(None), ApiSlot.expires_at < now, own)
    slots = select(ApiSlot.id, free.label("free"), own.label("own")).where(
        ApiSlot.integration_id == integration_id, ApiSlot.endpoint == key
    )
    rows = session.execute(slots.order_by(ApiSlot.slot)).all()
    if len(rows) < API_SLOTS_PER_ENDPOINT:  # the endpoint's first call: make its slots
        session.execute(
            insert_for(session.get_bind().dialect.name, ApiSlot)
            .values(
                [
                    {"integration_id": integration_id, "endpoint": key, "slot": n}
                    for n in range(API_SLOTS_PER_ENDPOINT)
                ]
            )
            .on_conflict_do_nothing(index_elements=["integration_id", "endpoint", "slot"])
        )
        rows = session.execute(slots.order_by(ApiSlot.slot)).all()
    # Its own slot first, then in slot order (sorted is stable), so that none stays stranded.
    candidates = [row.id for row in sorted(rows, key=lambda row: not row.own) if row.free]
    for slot_id in candidates:
        taken = session.execute(
            update(ApiSlot)
            .where(ApiSlot.id == slot_id, free)
            .values(holder=holder, expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) == 1:
            return int(slot_id)
    return None


def breaker_snapshot(session: Session) -> dict[int, GovernorState]:
    """Every integration's governor row (for metrics), by integration id."""
    return {state.integration_id: state for state in session.scalars(select(GovernorState))}

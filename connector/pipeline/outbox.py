"""The outbox: deliveries enqueued at ingest, claimed in per-alert order, leased, retried, dead.

A delivery moves pending → in_progress (claimed, leased to one worker) → done or dead, or back
to pending to be tried again. Delivery.state stores the strings of DeliveryState.

A delivery of an inactive integration is held instead of pending: no worker claims it, and
activating the integration sends it on or finishes it as skipped (integrations/activation.py).

A dead letter waits for an admin: replayed (pending again, in its old place in its alert's
order, with a fresh deadline) or discarded with a reason (state discarded, for good; it stays
listed). Neither dead nor discarded is unfinished, so neither holds back a later delivery of its
alert: the worker never claims them, and a replayed one waits only behind its alert's earlier
unfinished deliveries, as any other. `connector_dead_letters` counts only the dead ones.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, aliased

from connector.errors import ConflictError, InvalidInput, NotFoundError
from connector.persistence.db import insert_for
from connector.persistence.models import Delivery, Integration
from connector.pipeline.governor import THROTTLED_PREFIX
from connector.services import Services

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the delivery over (this one's lease ran out): leave it to that one."""


class HandedBack(Exception):
    """The worker is stopping: the delivery goes back to the queue between two steps, due at once
    and its attempt unspent (the steps done so far stay done)."""


class DeliveryState(StrEnum):
    """Where a delivery is in the outbox (Delivery.state)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DEAD = "dead"
    #: Kept while its integration is inactive; never claimed (activation decides what follows).
    HELD = "held"
    #: A dead letter an admin gave up on (discarded_at, discard_reason): never tried again.
    DISCARDED = "discarded"


UNFINISHED = (DeliveryState.PENDING, DeliveryState.IN_PROGRESS)

#: Delivery.outcome of a dead-lettered delivery (it did not do what its plan said).
FAILED = "failed"
#: The longest reason an admin may give for a discard, in characters.
DISCARD_REASON_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between attempts: the schedule (last entry repeats) with ± jitter."""

    delays: Sequence[float]
    jitter: float = 0.2

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        base = float(self.delays[min(max(attempts, 1), len(self.delays)) - 1])
        spread = base * self.jitter
        wait = base + rng.uniform(-spread, spread)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return max(wait, 0.0)


# -- enqueue -------------------------------------------------------------------------------------


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """The delivery insert that a repeat of an event leaves alone, built once per dialect."""
    statement = insert_for(dialect, Delivery.__table__)
    return statement.on_conflict_do_nothing(
        index_elements=[Delivery.alert_id, Delivery.dedupe_key]
    ).returning(Delivery.__table__.c.event_id)


@dataclass(frozen=True)
class NewDelivery:
    """What a delivery is enqueued for: an alert's event and its dedupe key."""

    alert_id: int
    event_id: int
    dedupe_key: str


def enqueue(
    session: Session,
    integration_id: int,
    deliveries: Sequence[NewDelivery],
    now: datetime,
    max_age: timedelta,
    *,
    held: bool = False,
) -> set[int]:
    """Insert each delivery unless one exists for the same event (alert and dedupe key, also
    earlier in `deliveries`); return the event ids whose delivery is new.

    `held`: the integration is inactive, so the deliveries are kept as held, not sent. One
    statement for them all (a Core insert of many rows on the session's connection): a webhook
    of 500 alerts made 500 round trips here.
    """
    if not deliveries:
        return set()
    state = DeliveryState.HELD if held else DeliveryState.PENDING
    rows = [
        {
            "alert_id": delivery.alert_id,
            "event_id": delivery.event_id,
            "integration_id": integration_id,
            "dedupe_key": delivery.dedupe_key,
            "state": state,
            "attempts": 0,
            "progress": 0,
            "next_attempt_at": now,
            "deadline_at": now + max_age,
            "created_at": now,
        }
        for delivery in deliveries
    ]
    connection = session.connection()
    statement = _enqueue_statement(connection.dialect.name)
    return set(connection.execute(statement, rows).scalars())


# -- one worker's view of the queue --------------------------------------------------------------


@dataclass
class Outbox:
    """The queue as one worker (`owner`) sees it: its claims, their leases, how attempts end.

    The endings (`finish`, `postpone`, `fail`) change a delivery this worker still owns, inside
    the caller's transaction (`owned` gives it), and always give its lease up.
    """

    services: Services
    owner: str
    lease: timedelta
    batch: int
    retry: RetryPolicy
    clock: Callable[[], datetime]
    rng: random.Random

    def claim(self, limit: int | None = None) -> list[int]:
        """Lease up to `limit` (default `batch`) due deliveries, oldest first, never two of one
        alert at once: an alert's delivery is due only once every earlier one is finished, so
        while one is claimed (in progress) none after it is, by this worker or any other.

        Only deliveries of active integrations: one pending while its integration is inactive
        (a retry of a delivery that was in flight when it was switched off, a replayed dead
        letter) waits for the activation; held ones are never claimed.
        """
        now = self.clock()
        earlier = aliased(Delivery)
        blocked = exists().where(
            earlier.alert_id == Delivery.alert_id,
            earlier.id < Delivery.id,
            earlier.state.in_(UNFINISHED),
        )
        due = or_(
            and_(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now),
            and_(Delivery.state == DeliveryState.IN_PROGRESS, Delivery.lease_expires_at < now),
        )
        active = Delivery.integration_id.in_(
            select(Integration.id).where(Integration.active.is_(True))
        )
        with self.services.transaction() as session:
            ids = list(
                session.scalars(
                    select(Delivery.id)
                    .where(due, ~blocked, active)
                    .order_by(Delivery.id)
                    .limit(self.batch if limit is None else limit)
                    # PostgreSQL: workers on any host share the queue without waiting on each
                    # other. SQLite ignores it; its BEGIN IMMEDIATE serializes claims instead.
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            )
            if ids:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        state=DeliveryState.IN_PROGRESS,
                        lease_owner=self.owner,
                        lease_expires_at=now + self.lease,
                        attempts=Delivery.attempts + 1,
                    )
                )
        return ids

    def wake_throttled(self) -> int:
        """Make deliveries the governor held back due now; return how many.

        Their wait was computed under the limits of the worker that held them back; a worker
        starting (perhaps with a raised API_HOURLY_CEILING) looks again rather than leaving them
        asleep for up to an hour. A delivery still over the limits is simply held back again.
        """
        now = self.clock()
        with self.services.transaction() as session:
            woken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(Delivery)
                .where(
                    Delivery.state == DeliveryState.PENDING,
                    Delivery.next_attempt_at > now,
                    Delivery.last_error.startswith(THROTTLED_PREFIX),
                )
                .values(next_attempt_at=now)
            )
        return int(woken.rowcount or 0)

    def renew_lease(self, session: Session, delivery_id: int) -> bool:
        """Extend this worker's lease on the delivery; False when it is no longer this worker's.

        A conditional UPDATE, so it also locks the row for the rest of the transaction: no other
        worker can claim the delivery between this check and the commit.
        """
        renewed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.lease_owner == self.owner,
                Delivery.state == DeliveryState.IN_PROGRESS,
            )
            .values(lease_expires_at=self.clock() + self.lease)
            .execution_options(synchronize_session=False)
        )
        return renewed.rowcount == 1

    def owned(self, session: Session, delivery_id: int) -> Delivery | None:
        """The delivery, with its lease renewed, if this worker still holds it; else None."""
        if not self.renew_lease(session, delivery_id):
            return None
        return session.get(Delivery, delivery_id, populate_existing=True)

    def finish(self, delivery: Delivery, outcome: str, note: str | None) -> None:
        """The delivery did what it set out to do (or found nothing to do): done."""
        delivery.outcome = outcome
        delivery.finished_at = self.clock()
        delivery.last_error = note
        _release(delivery, DeliveryState.DONE)

    def postpone(self, delivery: Delivery, wait: float, why: str | None) -> None:
        """Try again in `wait` seconds; the attempt is not spent and it is never dead for it.

        `why` becomes its last error; None leaves that as it was (nothing went wrong).
        """
        # The claim counted this pass as an attempt; it was none.
        delivery.attempts = max(delivery.attempts - 1, 0)
        delivery.next_attempt_at = self.clock() + timedelta(seconds=max(wait, 0.0))
        if why is not None:
            delivery.last_error = why
        _release(delivery, DeliveryState.PENDING)

    def fail(
        self,
        delivery: Delivery,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None,
        max_attempts: int | None,
    ) -> None:
        """A failed attempt: retried after the policy's wait while it may be, else dead-lettered."""
        now = self.clock()
        delivery.last_error = message
        attempts_left = max_attempts is None or delivery.attempts < max_attempts
        if retryable and attempts_left and now < delivery.deadline_at:
            wait = self.retry.delay(delivery.attempts, retry_after, self.rng)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            _release(delivery, DeliveryState.PENDING)
            return
        delivery.outcome = FAILED
        delivery.finished_at = now
        _release(delivery, DeliveryState.DEAD)
        logger.warning("delivery.dead_letter", extra={"delivery_id": delivery.id, "error": message})


def _release(delivery: Delivery, state: DeliveryState) -> None:
    """Give the delivery's lease up, leaving it in `state`."""
    delivery.state = state
    delivery.lease_owner = None
    delivery.lease_expires_at = None


class LeaseKeeper:
    """Renews a delivery's lease from a thread while the worker works on it.

    A call to Autotask may take longer than the lease (a slow zone lookup and create); without
    renewal another worker would take the delivery over and, its create still in flight, find no
    ticket by the marker and create a second one. The keeper renews every third of the lease;
    when a renewal finds the delivery taken over, `check()` stops the worker before its next
    call.
    """

    def __init__(self, outbox: Outbox, delivery_id: int) -> None:
        self.outbox = outbox
        self.delivery_id = delivery_id
        self.interval = max(outbox.lease.total_seconds() / 3, 0.05)
        self.lost = False
        self._done = threading.Event()

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease in the background for as long as the block runs."""
        thread = threading.Thread(
            target=self._renew_until_done, name=f"lease-{self.delivery_id}", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            thread.join()

    def check(self) -> None:
        """Raise LeaseLost once a renewal found the delivery taken over."""
        if self.lost:
            raise LeaseLost()

    def _renew_until_done(self) -> None:
        while not self._done.wait(self.interval):
            try:
                with self.outbox.services.transaction() as session:
                    if not self.outbox.renew_lease(session, self.delivery_id):
                        self.lost = True
                        return
            except Exception:  # a database hiccup: try again at the next interval
                logger.warning("delivery.lease_renewal_failed", exc_info=True)


# -- dead letters: replay and discard (the API and the admin form) ----------------------------


def reason_problem(reason: object) -> str | None:
    """What is wrong with a discard's reason (required, at most DISCARD_REASON_CHARS); None."""
    if not isinstance(reason, str):
        return "must be text"
    text = reason.strip()
    if not text:
        return "must not be blank: say why it is discarded"
    if len(text) > DISCARD_REASON_CHARS:
        return f"at most {DISCARD_REASON_CHARS} characters, got {len(text)}"
    if "\x00" in text:
        return "must not contain a NUL character (no PostgreSQL text can hold one)"
    return None


def checked_reason(reason: object) -> str:
    """A discard's reason, stripped; InvalidInput naming the field when it is refused."""
    problem = reason_problem(reason)
    if problem is not None or not isinstance(reason, str):
        raise InvalidInput(f"reason: {problem}")
    return reason.strip()


def _replayed(now: datetime, max_age: timedelta) -> dict[str, Any]:
    """What a replay sets on a dead letter: due now, a fresh deadline, unfinished."""
    return {
        "state": DeliveryState.PENDING,
        "next_attempt_at": now,
        "deadline_at": now + max_age,
        "finished_at": None,
    }


def _changed_dead_letter(session: Session, delivery_id: int, values: dict[str, Any]) -> Delivery:
    """Set `values` on the delivery if it is (still) dead; NotFound or Conflict otherwise.

    A conditional UPDATE: of a replay and a discard at once, one wins and the other is told.
    """
    changed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.DEAD)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    delivery = session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    if changed.rowcount != 1:
        raise ConflictError(f"delivery {delivery_id} is {delivery.state}, not dead")
    return delivery


def replay_dead_letter(
    session: Session, delivery_id: int, *, now: datetime, max_age: timedelta
) -> Delivery:
    """Queue a dead letter again with a fresh deadline; it keeps its place in its alert's order.

    Attempts, last error and last exchange stay as they were until the next attempt.
    """
    return _changed_dead_letter(session, delivery_id, _replayed(now, max_age))


def replay_dead_letters(
    session: Session, *, now: datetime, max_age: timedelta, integration_id: int | None = None
) -> int:
    """Replay every dead letter (of one integration, if given) as one replay does; how many."""
    statement = update(Delivery).where(Delivery.state == DeliveryState.DEAD)
    if integration_id is not None:
        statement = statement.where(Delivery.integration_id == integration_id)
    replayed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        statement.values(**_replayed(now, max_age)).execution_options(synchronize_session=False)
    )
    return int(replayed.rowcount or 0)


def discard_dead_letter(
    session: Session, delivery_id: int, reason: object, *, now: datetime
) -> Delivery:
    """Give a dead letter up with a reason (required): discarded, never replayed, still listed."""
    text = checked_reason(reason)
    return _changed_dead_letter(
        session,
        delivery_id,
        {"state": DeliveryState.DISCARDED, "discarded_at": now, "discard_reason": text},
    )

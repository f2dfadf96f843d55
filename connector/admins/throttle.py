"""Slowing down password guessing: failed sign-ins counted per username and per remote address.

Up to FREE_FAILURES failures within WINDOW cost nothing; from then on each further attempt for
that username, or from that address, is refused without checking the password until a pause
after the newest failure has passed: FIRST_PAUSE, doubled with every further failure, at most
MAX_PAUSE. A success clears the username's failures (not the address's). The counts live in the
database, so they hold across web processes and restarts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from connector.persistence.models import LoginFailure

WINDOW = timedelta(minutes=15)
FREE_FAILURES = 5
FIRST_PAUSE = timedelta(seconds=30)
MAX_PAUSE = timedelta(minutes=15)

#: What a column of login_failure holds at most (longer names are cut to it).
_KEY_LENGTH = 100


def pause_after(failures: int) -> timedelta:
    """How long attempts are refused after the newest of `failures` failures (0 below the limit)."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES, 32)
    pause: timedelta = min(FIRST_PAUSE * (1 << doublings), MAX_PAUSE)
    return pause


def refused_for(session: Session, username: str, remote_addr: str, now: datetime) -> int:
    """Seconds (rounded up) until an attempt for `username` from `remote_addr` is heard; 0 now."""
    wait = timedelta(0)
    for column, value in (
        (LoginFailure.username, username[:_KEY_LENGTH]),
        (LoginFailure.remote_addr, remote_addr[:_KEY_LENGTH]),
    ):
        wait = max(wait, _wait_for(session, column, value, now))
    return math.ceil(wait.total_seconds())


def _wait_for(
    session: Session, column: InstrumentedAttribute[str], value: str, now: datetime
) -> timedelta:
    count, newest = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            column == value, LoginFailure.at > now - WINDOW
        )
    ).one()
    if newest is None:
        return timedelta(0)
    return max(timedelta(0), newest + pause_after(int(count)) - now)


def record_failure(session: Session, username: str, remote_addr: str, now: datetime) -> None:
    """Count a failed sign-in; failures older than the window are forgotten on the way."""
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
    session.add(
        LoginFailure(username=username[:_KEY_LENGTH], remote_addr=remote_addr[:_KEY_LENGTH], at=now)
    )


def clear_failures(session: Session, username: str) -> None:
    """Forget the username's failures (after it signed in)."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username[:_KEY_LENGTH]))

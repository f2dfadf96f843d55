"""Emergency mail: a real local SMTP server (aiosmtpd) gets one mail per broken condition, a
reminder after the repeat interval and one recovery mail; on SQLite and PostgreSQL.

Each condition is made the way the pipeline makes it: the governor refuses credentials and opens
its breaker through its own admit and release, dead letters and calls are rows like the worker's.
`check_emergencies` is called directly, with the time it is given as `now`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from connector import create_app
from connector.cli import prepare_database
from connector.errors import TargetAuthError, TargetUnavailable
from connector.persistence.models import (
    Alert,
    AlertEvent,
    ApiCall,
    Delivery,
    EmergencyCondition,
    Integration,
)
from connector.pipeline.emergency import (
    Condition,
    Episode,
    Finding,
    MailKind,
    Rules,
    Watched,
    check_emergencies,
    emergency_mail,
)
from connector.pipeline.governor import Governor, Limits
from connector.pipeline.outbox import discard_dead_letter
from connector.services import Services
from connector.wiring import mail_sender
from tests import canaries
from tests.e2e.harness import free_port
from tests.smtp_inbox import Inbox, Received, smtp_inbox

CONTACT = "on-call@example.net"
SECRET = canaries.EMERGENCY_TICKET_WEBHOOK_SECRET
TRACKING = "CANARYEMERGENCYTRACKING0001"
SMTP_LOGIN = ("mailer", canaries.EMERGENCY_SMTP_PASSWORD)
#: Budget: 10 calls per hour, creates may use 8 of them.
CEILING, CREATES_BUDGET = 10, 8
BREAKER_FAILURES = 3
T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
REPEAT = timedelta(hours=6)
BREAKER_OPEN_FOR = timedelta(minutes=10)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """The SMTP server the contact's mail arrives at; it wants a login."""
    with smtp_inbox(login=SMTP_LOGIN) as found:
        yield found


@pytest.fixture
def app(database_url: str, secret_key: str, inbox: Inbox) -> Iterator[Flask]:
    """A connector on the test database mailing through `inbox`, with a small budget."""
    made = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEYS": [secret_key],
            "WORKER_ENABLED": False,
            "API_HOURLY_CEILING": CEILING,
            "API_RESERVE_FRACTION": 0.2,
            "BREAKER_FAILURES": BREAKER_FAILURES,
            "BREAKER_COOLDOWN_SECONDS": 30.0,
            "EMERGENCY_REPEAT_HOURS": REPEAT.total_seconds() / 3600,
            "EMERGENCY_BREAKER_OPEN_MINUTES": BREAKER_OPEN_FOR.total_seconds() / 60,
            "SMTP_TIMEOUT_SECONDS": 5.0,
            **inbox.settings(),
        }
    )
    try:
        prepare_database(made.extensions["connector"])
        yield made
    finally:
        made.extensions["connector"].dispose()


@pytest.fixture
def services(app: Flask) -> Services:
    found: Services = app.extensions["connector"]
    return found


def add_integration(services: Services, name: str, contact: str | None) -> int:
    """An integration whose stored secrets are canaries; `contact` its emergency contact."""
    box = services.secret_box()
    with services.transaction() as session:
        integration = Integration(
            name=name,
            zone_lookup_url="https://zones.example.invalid/",
            username=f"{name}-api@example.net",
            secret_encrypted=box.encrypt(SECRET),
            integration_code_encrypted=box.encrypt(TRACKING),
            settings={"emergency_contact": contact} if contact else {},
            # Saved before anything is refused (a save after a refusal makes it old news).
            created_at=T0 - timedelta(days=1),
            updated_at=T0 - timedelta(days=1),
        )
        session.add(integration)
        session.flush()
        return int(integration.id)


@pytest.fixture
def integration_id(services: Services) -> int:
    return add_integration(services, "acme-rmm", CONTACT)


# -- the conditions, made as the pipeline makes them ----------------------------------------------


def governor(services: Services, when: datetime) -> Governor:
    return Governor(services, Limits.from_settings(services.settings), clock=lambda: when)


def refuse_credentials(services: Services, integration_id: int, when: datetime) -> None:
    """Autotask answers a call with an authentication error (401)."""
    with suppress(TargetAuthError), governor(services, when).call(integration_id, "Tickets", "t"):
        raise TargetAuthError("Autotask answered 401: the API user is not known")


def accept_a_call(services: Services, integration_id: int, when: datetime) -> None:
    """A call goes through (credentials fixed, breaker's probe succeeds)."""
    with governor(services, when).call(integration_id, "Tickets", "t"):
        pass


def fail_calls(services: Services, integration_id: int, when: datetime) -> None:
    """Autotask answers 503 until the breaker opens."""
    gate = governor(services, when)
    for _ in range(BREAKER_FAILURES):
        with suppress(TargetUnavailable), gate.call(integration_id, "Tickets", "t"):
            raise TargetUnavailable("Autotask answered 503")


def dead_letter(services: Services, integration_id: int, when: datetime) -> None:
    """A delivery of a new alert dead-letters at `when`."""
    with services.transaction() as session:
        count = session.scalar(select(Alert.id).order_by(Alert.id.desc()).limit(1)) or 0
        alert = Alert(
            integration_id=integration_id,
            fingerprint=f"disk-{count + 1}",
            source="generic",
            status="active",
            severity="error",
            title="Disk full",
        )
        session.add(alert)
        session.flush()
        event = AlertEvent(alert_id=alert.id, status="active", severity="error", dedupe_key="k")
        session.add(event)
        session.flush()
        session.add(
            Delivery(
                alert_id=alert.id,
                event_id=event.id,
                integration_id=integration_id,
                dedupe_key="k",
                state="dead",
                outcome="failed",
                finished_at=when,
                last_error="Autotask refused the ticket: the company is inactive",
            )
        )


def discard_dead_letters(services: Services, integration_id: int, when: datetime) -> None:
    """An admin discards every dead letter of the integration."""
    with services.transaction() as session:
        dead = session.scalars(
            select(Delivery.id).where(
                Delivery.integration_id == integration_id, Delivery.state == "dead"
            )
        ).all()
        for delivery_id in dead:
            discard_dead_letter(session, delivery_id, "handled by hand", now=when)


def spend_budget(services: Services, integration_id: int, when: datetime) -> None:
    """The calls creates may use in an hour, all made a minute before `when`."""
    with services.transaction() as session:
        for _ in range(CREATES_BUDGET):
            session.add(
                ApiCall(
                    integration_id=integration_id,
                    at=when - timedelta(minutes=1),
                    method="POST",
                    entity="Tickets",
                    http_status=200,
                    execution_ms=12.0,
                )
            )


def nothing(services: Services, integration_id: int, when: datetime) -> None:
    """The condition stays as it is (or ends by itself: the budget's hour rolls on)."""


@dataclass(frozen=True)
class Case:
    """One condition: how it starts, is kept up before each check, and ends; what its mail says."""

    condition: Condition
    subject: str
    recovered: str
    link: str
    start: Callable[[Services, int, datetime], None]
    end: Callable[[Services, int, datetime], None]
    #: Before every check while it lasts (the budget's calls leave the hour otherwise).
    keep: Callable[[Services, int, datetime], None] = nothing
    #: How long it must last before its first mail.
    mailed_after: timedelta = timedelta(0)


CASES = [
    Case(
        Condition.CREDENTIALS_REFUSED,
        "Autotask refuses the integration's credentials",
        "Autotask accepts the integration's credentials again",
        "/admin/integrations/{id}/edit",
        refuse_credentials,
        accept_a_call,
    ),
    Case(
        Condition.BREAKER_OPEN,
        "calls to Autotask keep failing (circuit breaker open)",
        "calls to Autotask go through again",
        "/admin/log?integration_id={id}",
        fail_calls,
        accept_a_call,
        mailed_after=BREAKER_OPEN_FOR,
    ),
    Case(
        Condition.DEAD_LETTERS,
        "deliveries are dead-lettered",
        "no dead-lettered delivery waits any more",
        "/admin/dead-letters?integration_id={id}",
        dead_letter,
        discard_dead_letters,
    ),
    Case(
        Condition.BUDGET_EXHAUSTED,
        "the hourly Autotask API budget is used up",
        "the hourly Autotask API budget has room again",
        "/admin/api-activity",
        spend_budget,
        nothing,
        keep=spend_budget,
    ),
]


def check(services: Services, case: Case, integration_id: int, when: datetime) -> None:
    """One periodic check at `when`, the condition kept up as long as it lasts."""
    case.keep(services, integration_id, when)
    check_emergencies(services, when)


def check_until_mailed(
    services: Services, inbox: Inbox, case: Case, integration_id: int, when: datetime
) -> datetime:
    """Checks from `when` until the condition's first mail is due; when that mail went."""
    before = len(inbox.mails)
    check(services, case, integration_id, when)
    if case.mailed_after:
        check(services, case, integration_id, when + case.mailed_after - timedelta(seconds=1))
        assert len(inbox.mails) == before, "mailed before the condition lasted long enough"
        when += case.mailed_after
        check(services, case, integration_id, when)
    assert len(inbox.mails) == before + 1
    return when


def subject(mail: Received) -> str:
    """The mail's subject (unfolded: the standard library folds long ones from their start)."""
    return str(mail.message["Subject"]).strip()


def no_secret_in(mail: Received) -> None:
    text = f"{subject(mail)}\n{mail.body}"
    for secret in (SECRET, TRACKING, SMTP_LOGIN[1]):
        assert secret not in text


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.condition.value for case in CASES])
def test_a_broken_condition_is_mailed_once_then_once_per_interval_then_its_recovery_once(
    services: Services, inbox: Inbox, integration_id: int, case: Case
) -> None:
    case.start(services, integration_id, T0)

    first = check_until_mailed(services, inbox, case, integration_id, T0)
    # Checks inside the repeat interval send nothing more.
    for later in (timedelta(minutes=1), timedelta(hours=1), REPEAT - timedelta(seconds=1)):
        check(services, case, integration_id, first + later)
    assert len(inbox.mails) == 1

    (broken,) = inbox.mails
    assert broken.rcpt_tos == [CONTACT]
    title = subject(broken)
    assert "acme-rmm" in title
    assert case.subject in title
    assert not title.startswith("Recovered")
    assert '"acme-rmm" needs a person' in broken.body
    assert "Since: 2026-12-03 08:0" in broken.body
    assert case.link.format(id=integration_id) in broken.body
    assert "What to do:" in broken.body
    no_secret_in(broken)

    # The interval over and the condition still there: one reminder, then quiet again.
    reminder_at = first + REPEAT
    check(services, case, integration_id, reminder_at)
    check(services, case, integration_id, reminder_at + timedelta(minutes=1))
    assert len(inbox.mails) == 2
    assert case.subject in subject(inbox.mails[1])

    # It ends (the budget's calls leave the hour): one recovery mail.
    ended_at = reminder_at + timedelta(hours=2)
    case.end(services, integration_id, ended_at)
    check_emergencies(services, ended_at + timedelta(minutes=1))
    check_emergencies(services, ended_at + timedelta(minutes=2))
    check_emergencies(services, ended_at + REPEAT * 2)
    assert len(inbox.mails) == 3
    recovery = inbox.mails[2]
    assert recovery.rcpt_tos == [CONTACT]
    assert subject(recovery).startswith("Recovered")
    assert "acme-rmm" in subject(recovery)
    assert case.recovered in recovery.body
    assert "from 2026-12-03 08:" in recovery.body
    no_secret_in(recovery)

    # Broken again later: a new episode, mailed at once, however recent the last mail.
    again = ended_at + timedelta(hours=1)
    case.start(services, integration_id, again)
    check_until_mailed(services, inbox, case, integration_id, again)
    assert case.subject in subject(inbox.mails[3])
    assert not subject(inbox.mails[3]).startswith("Recovered")


def test_every_broken_condition_is_its_own_mail(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    refuse_credentials(services, integration_id, T0)
    dead_letter(services, integration_id, T0)
    spend_budget(services, integration_id, T0)

    check_emergencies(services, T0)
    check_emergencies(services, T0 + timedelta(minutes=5))

    subjects = sorted(subject(mail) for mail in inbox.mails)
    assert len(subjects) == 3
    for case in CASES:
        wanted = case.condition is not Condition.BREAKER_OPEN
        assert any(case.subject in subject for subject in subjects) == wanted


def test_a_dead_letters_reminder_says_how_many_are_new_since_the_last_mail(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    dead_letter(services, integration_id, T0)
    check_emergencies(services, T0)
    dead_letter(services, integration_id, T0 + timedelta(hours=1))
    dead_letter(services, integration_id, T0 + timedelta(hours=2))
    check_emergencies(services, T0 + timedelta(hours=3))  # inside the interval: no mail
    check_emergencies(services, T0 + REPEAT)
    check_emergencies(services, T0 + REPEAT * 2)

    first, reminder, quiet_reminder = inbox.mails
    assert "1 delivery is dead-lettered" in first.body
    assert "since the last mail" not in first.body
    assert "3 deliveries are dead-lettered, the newest at 2026-12-03 10:00 UTC" in reminder.body
    assert "2 of them since the last mail." in reminder.body
    assert "None is new since the last mail." in quiet_reminder.body


def test_an_integration_without_a_contact_is_not_mailed(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    quiet = add_integration(services, "no-contact", None)
    for broken in (quiet, integration_id):
        dead_letter(services, broken, T0)
        refuse_credentials(services, broken, T0)

    check_emergencies(services, T0)
    check_emergencies(services, T0 + REPEAT)

    assert len(inbox.mails) == 4  # the contact's: two conditions, each mailed and reminded
    assert all(mail.rcpt_tos == [CONTACT] for mail in inbox.mails)
    assert not any("no-contact" in subject(mail) for mail in inbox.mails)
    with services.transaction() as session:
        kept = session.scalars(
            select(EmergencyCondition.integration_id).where(
                EmergencyCondition.integration_id == quiet
            )
        ).all()
    assert kept == []


def test_a_breaker_that_closes_within_the_threshold_mails_nobody(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    fail_calls(services, integration_id, T0)
    check_emergencies(services, T0)
    check_emergencies(services, T0 + BREAKER_OPEN_FOR / 2)
    accept_a_call(services, integration_id, T0 + BREAKER_OPEN_FOR / 2)

    check_emergencies(services, T0 + BREAKER_OPEN_FOR)
    check_emergencies(services, T0 + BREAKER_OPEN_FOR * 2)

    assert inbox.mails == []


@pytest.mark.parametrize("failure", ["refused", "down"])
def test_a_mail_the_server_does_not_take_is_sent_at_the_next_check(
    services: Services,
    inbox: Inbox,
    integration_id: int,
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    working = services.mail_sender
    if failure == "refused":
        inbox.refusing = "451 4.3.0 mailbox busy, try again later"
    else:  # nobody listens where the connector mails
        services.mail_sender = mail_sender(
            {**services.settings, **inbox.settings(), "SMTP_PORT": free_port()}
        )
    dead_letter(services, integration_id, T0)

    with caplog.at_level(logging.WARNING, logger="connector.pipeline.emergency"):
        check_emergencies(services, T0)
    assert inbox.mails == []
    failed = [r for r in caplog.records if r.getMessage() == "emergency.mail_failed"]
    assert len(failed) == 1
    assert failed[0].condition == "dead_letters"  # type: ignore[attr-defined]
    assert SMTP_LOGIN[1] not in caplog.text
    with services.transaction() as session:
        row = session.scalars(select(EmergencyCondition)).one()
        assert row.last_mailed_at is None
        assert row.mail_claimed_by is None
        assert row.last_error is not None
        assert ("451" if failure == "refused" else "refused the connection") in row.last_error

    inbox.refusing = None
    services.mail_sender = working
    check_emergencies(services, T0 + timedelta(minutes=1))
    check_emergencies(services, T0 + timedelta(minutes=2))

    assert len(inbox.mails) == 1
    assert "deliveries are dead-lettered" in subject(inbox.mails[0])
    with services.transaction() as session:
        row = session.scalars(select(EmergencyCondition)).one()
        assert row.last_mailed_at == T0 + timedelta(minutes=1)
        assert row.last_error is None


def test_credentials_saved_after_a_refusal_are_not_reminded_of_until_a_call_tells(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    refuse_credentials(services, integration_id, T0)
    check_emergencies(services, T0)
    assert len(inbox.mails) == 1
    with services.transaction() as session:  # an admin saves new credentials
        saved = session.get(Integration, integration_id)
        assert saved is not None
        saved.updated_at = T0 + timedelta(hours=1)

    check_emergencies(services, T0 + REPEAT)
    check_emergencies(services, T0 + REPEAT * 2)
    assert len(inbox.mails) == 1  # neither a reminder nor a recovery: no call has told yet

    refuse_credentials(services, integration_id, T0 + REPEAT * 2)  # the new ones are wrong too
    check_emergencies(services, T0 + REPEAT * 2 + timedelta(minutes=1))
    assert len(inbox.mails) == 2
    assert "refuses the integration's credentials" in subject(inbox.mails[1])
    with services.transaction() as session:
        row = session.scalars(select(EmergencyCondition)).one()
        assert (row.episode, row.since) == (1, T0)  # the same episode, still going on


def test_a_failed_recovery_mail_is_sent_at_the_next_check(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    refuse_credentials(services, integration_id, T0)
    check_emergencies(services, T0)
    accept_a_call(services, integration_id, T0 + timedelta(hours=1))

    inbox.refusing = "421 4.3.2 service shutting down"
    check_emergencies(services, T0 + timedelta(hours=1, minutes=1))
    assert len(inbox.mails) == 1
    inbox.refusing = None
    check_emergencies(services, T0 + timedelta(hours=1, minutes=2))
    check_emergencies(services, T0 + timedelta(hours=1, minutes=3))

    assert len(inbox.mails) == 2
    assert subject(inbox.mails[1]).startswith("Recovered")


def test_checkers_running_at_once_send_each_mail_once(
    services: Services, inbox: Inbox, integration_id: int
) -> None:
    """Several checkers (threads with their own connections, as processes would be) race."""

    def race(when: datetime, checkers: int = 4) -> None:
        start = threading.Barrier(checkers)
        errors: list[BaseException] = []

        def one() -> None:
            try:
                start.wait(timeout=10)
                check_emergencies(services, when)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=one) for _ in range(checkers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []

    dead_letter(services, integration_id, T0)
    race(T0)
    assert len(inbox.mails) == 1
    race(T0 + REPEAT)
    assert len(inbox.mails) == 2
    discard_dead_letters(services, integration_id, T0 + REPEAT)
    race(T0 + REPEAT + timedelta(minutes=1))
    assert len(inbox.mails) == 3
    assert subject(inbox.mails[2]).startswith("Recovered")


@pytest.mark.parametrize(
    ("public_url", "link"),
    [
        ("https://alerts.example.net/", "https://alerts.example.net/admin/integrations/7/edit"),
        ("", "- the integration's setup: /admin/integrations/7/edit"),
    ],
)
def test_the_mail_links_the_admin_pages_at_the_public_url(public_url: str, link: str) -> None:
    from connector.config import load_settings

    rules = Rules.from_settings(load_settings({"PUBLIC_URL": public_url}))
    integration = Watched(7, "acme-rmm", "acme-api@example.net", CONTACT)
    finding = Finding(Condition.CREDENTIALS_REFUSED, True, "Autotask refused them.")
    episode = Episode(1, 1, T0, None, None, None, None)

    mail = emergency_mail(
        integration, finding, episode, MailKind.BROKEN, rules, T0 + timedelta(hours=2)
    )

    assert mail.to == (CONTACT,)
    assert link in mail.body
    assert "Since: 2026-12-03 08:00 UTC (2 h ago)." in mail.body
    assert ("set public_url" in mail.body) == (not public_url)

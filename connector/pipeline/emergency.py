"""Mail an integration's emergency contact when the integration breaks, and when it recovers.

`check_emergencies` is a periodic job (the scheduler runs it every EMERGENCY_CHECK_SECONDS, in
any number of processes). For each active integration with an emergency contact it reads four
conditions from what the pipeline already records:

- credentials_refused: Autotask refused the integration's credentials. The governor records a
  TargetAuthError (a 401, or the API's own refusal) as a pause whose `pause_reason` starts with
  CREDENTIALS_REFUSED, kept until a call is accepted again (governor_state; `calls_status` shows
  the same to the API). Once the integration is saved after the refusal, as the governor does,
  the refusal is old news: until the next call tells, nothing is mailed about it either way;
- breaker_open: the integration's circuit breaker has stayed open or half-open for
  EMERGENCY_BREAKER_OPEN_MINUTES, counted from the check that first saw it so;
- dead_letters: deliveries of the integration are dead-lettered and wait for a person (replay
  or discard ends it);
- budget_exhausted: the integration's calls of the last 60 minutes (the activity log) reach
  the part of its hourly budget creates may use: new tickets wait.

Each (integration, condition) keeps its episode in emergency_condition: since when it is broken,
when its contact was last mailed, when it cleared and when the recovery was mailed. A condition
is mailed when it starts, again at most every EMERGENCY_REPEAT_HOURS while it lasts, and once
when it ends (only if its start was mailed). A checker claims a mail by a conditional UPDATE
before it sends it, so two checkers never send the same mail; a send that fails is logged,
releases the claim and is tried again at the next check (a checker that dies holding a claim
loses it after CLAIM_TIMEOUTS × the SMTP timeout, and the mail may then go twice). Mails name
the integration, the condition, since when and what to do, with links to the admin pages;
never a secret.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from connector.errors import MailError, UnavailableError
from connector.integrations.contact import CONTACT_SETTING
from connector.persistence.db import insert_for
from connector.persistence.models import (
    ApiCall,
    Delivery,
    EmergencyCondition,
    GovernorState,
    Integration,
)
from connector.pipeline.governor import CLOSED, CREDENTIALS_REFUSED, WINDOW, Limits
from connector.pipeline.heartbeat import host_process
from connector.pipeline.outbox import DeliveryState
from connector.ports import MailMessage
from connector.services import Services

logger = logging.getLogger(__name__)

#: A claimed mail not sent within this many SMTP timeouts (and never less than a minute) is
#: taken as lost with its checker: another checker may send it.
CLAIM_TIMEOUTS = 6
MIN_CLAIM_SECONDS = 60.0
#: The longest mail server reason kept on the row, in characters.
ERROR_CHARS = 1000


class Condition(StrEnum):
    """A way an integration can be broken that its emergency contact is told of."""

    CREDENTIALS_REFUSED = "credentials_refused"
    BREAKER_OPEN = "breaker_open"
    DEAD_LETTERS = "dead_letters"
    BUDGET_EXHAUSTED = "budget_exhausted"


class MailKind(StrEnum):
    """Which mail a condition's episode is due: it is broken, or it is over."""

    BROKEN = "broken"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class Rules:
    """The emergency settings, and what the mails quote of the governor's."""

    repeat: timedelta
    breaker_open_for: timedelta
    claim_lease: timedelta
    limits: Limits
    public_url: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Rules:
        """The rules of EMERGENCY_*, SMTP_TIMEOUT_SECONDS, the governor's and PUBLIC_URL."""
        lease = max(MIN_CLAIM_SECONDS, CLAIM_TIMEOUTS * float(settings["SMTP_TIMEOUT_SECONDS"]))
        return cls(
            repeat=timedelta(hours=float(settings["EMERGENCY_REPEAT_HOURS"])),
            breaker_open_for=timedelta(minutes=float(settings["EMERGENCY_BREAKER_OPEN_MINUTES"])),
            claim_lease=timedelta(seconds=lease),
            limits=Limits.from_settings(settings),
            public_url=str(settings.get("PUBLIC_URL") or "").rstrip("/"),
        )


@dataclass(frozen=True)
class Watched:
    """An integration whose contact is told: its id, name, API user and the contact's address."""

    id: int
    name: str
    api_user: str
    contact: str
    #: When the integration was last saved (new credentials make a refusal old news).
    saved_at: datetime | None = None


@dataclass(frozen=True)
class Finding:
    """What one check found of one condition: broken or not, and what it saw, in words."""

    condition: Condition
    #: None: the records cannot tell now; the episode stays as it is and no mail goes.
    broken: bool | None
    #: What is wrong, for the mail (never a secret).
    facts: str = ""
    #: When the records say it started; None: when a check first saw it.
    started: datetime | None = None


@dataclass(frozen=True)
class Episode:
    """A condition's row as a check left it."""

    row_id: int
    episode: int
    since: datetime
    cleared_at: datetime | None
    last_mailed_at: datetime | None
    recovery_mailed_at: datetime | None
    claimed_until: datetime | None


def check_emergencies(services: Services, now: datetime) -> None:
    """Mail each integration's emergency contact about conditions that started, last or ended."""
    rules = Rules.from_settings(services.settings)
    checker = _checker_id()
    try:
        watched = _watched(services)
        for integration in watched:
            for finding in _findings(services, integration, rules, now):
                _follow(services, integration, finding, rules, now, checker)
    except UnavailableError as e:
        # The database is down or busy: nothing half-done is lost, the next check goes on.
        logger.warning("emergency.check_interrupted", extra={"error": str(e)})


def _checker_id() -> str:
    """Who claims a mail: host, process and a random part (one per check)."""
    return f"{host_process()[:70]}:{uuid.uuid4().hex[:12]}"


def _watched(services: Services) -> list[Watched]:
    """The active integrations with an emergency contact, by id."""
    with services.transaction() as session:
        rows = session.execute(
            select(
                Integration.id,
                Integration.name,
                Integration.username,
                Integration.settings,
                Integration.updated_at,
            )
            .where(Integration.active.is_(True))
            .order_by(Integration.id)
        ).all()
    found = []
    for integration_id, name, username, settings, saved_at in rows:
        contact = (settings or {}).get(CONTACT_SETTING)
        if isinstance(contact, str) and contact.strip():
            found.append(Watched(int(integration_id), name, username, contact.strip(), saved_at))
    return found


# -- the conditions, read from what the pipeline records ----------------------------------------


def _findings(
    services: Services, integration: Watched, rules: Rules, now: datetime
) -> list[Finding]:
    """The four conditions of one integration as the database shows them now."""
    with services.transaction() as session:
        state = session.get(GovernorState, integration.id)
        return [
            _credentials(state, integration, rules),
            _breaker(state, rules),
            _dead_letters(session, integration.id),
            _budget(session, integration.id, rules, now),
        ]


def _credentials(state: GovernorState | None, integration: Watched, rules: Rules) -> Finding:
    refused: bool | None = state is not None and (state.pause_reason or "").startswith(
        CREDENTIALS_REFUSED
    )
    if refused and state is not None and state.paused_until is not None:
        # As the governor judges it: saved after the last refusal, the next call tries anew.
        refused_at = state.paused_until - timedelta(seconds=rules.limits.credentials_pause)
        if integration.saved_at is not None and integration.saved_at > refused_at:
            refused = None
    return Finding(
        Condition.CREDENTIALS_REFUSED,
        refused,
        f"Autotask refused the credentials of the integration's API user {integration.api_user}"
        " (an authentication error). Its calls are paused and its deliveries wait; none is lost"
        " or spent for it.",
    )


def _breaker(state: GovernorState | None, rules: Rules) -> Finding:
    if state is None or state.breaker == CLOSED:
        return Finding(Condition.BREAKER_OPEN, False)
    return Finding(
        Condition.BREAKER_OPEN,
        True,
        f"{state.failures} consecutive calls to Autotask failed (server errors, timeouts or no"
        f" connection), so the circuit breaker is {state.breaker.replace('_', '-')}: one probe"
        f" call goes every {rules.limits.breaker_cooldown:g} s, and deliveries wait until one"
        " succeeds.",
    )


def _dead_letters(session: Session, integration_id: int) -> Finding:
    count, oldest, newest = session.execute(
        select(func.count(), func.min(Delivery.finished_at), func.max(Delivery.finished_at)).where(
            Delivery.integration_id == integration_id, Delivery.state == DeliveryState.DEAD
        )
    ).one()
    if not count:
        return Finding(Condition.DEAD_LETTERS, False)
    several = "deliveries are" if count != 1 else "delivery is"
    they = "they were" if count != 1 else "it was"
    newest_words = f", the newest at {_when(newest)}" if newest is not None else ""
    return Finding(
        Condition.DEAD_LETTERS,
        True,
        f"{count} {several} dead-lettered{newest_words}: Autotask did not get what {they}"
        " to write (a ticket, a note, a status), and no more attempts are made.",
        started=oldest,
    )


def _since_last_mail(
    services: Services, integration_id: int, finding: Finding, mailed_at: datetime
) -> Finding:
    """A reminder's finding, saying what is new since the last mail (dead letters: how many)."""
    if finding.condition is not Condition.DEAD_LETTERS:
        return finding
    with services.transaction() as session:
        new = int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.integration_id == integration_id,
                    Delivery.state == DeliveryState.DEAD,
                    Delivery.finished_at > mailed_at,
                )
            )
            or 0
        )
    words = f"{new} of them since the last mail." if new else "None is new since the last mail."
    return replace(finding, facts=f"{finding.facts} {words}")


def _budget(session: Session, integration_id: int, rules: Rules, now: datetime) -> Finding:
    used = int(
        session.scalar(
            select(func.count())
            .select_from(ApiCall)
            .where(ApiCall.integration_id == integration_id, ApiCall.at > now - WINDOW)
        )
        or 0
    )
    creates = rules.limits.budget(creates=True)
    ceiling = rules.limits.hourly_ceiling
    return Finding(
        Condition.BUDGET_EXHAUSTED,
        used >= creates,
        f"{used} calls in the last 60 minutes, of the integration's {ceiling} per hour"
        f" (api_hourly_ceiling); new tickets wait from {creates} on, everything else from"
        f" {ceiling}. Deliveries wait until older calls leave the 60 minutes; none is lost.",
    )


# -- an episode's state, and its mails ------------------------------------------------------------


def _follow(
    services: Services,
    integration: Watched,
    finding: Finding,
    rules: Rules,
    now: datetime,
    checker: str,
) -> None:
    """Record what the check found, and send the mail it makes due, if this checker may."""
    if finding.broken is None:
        return
    with services.transaction() as session:
        episode = _recorded(session, integration.id, finding, now)
    kind = _due(episode, finding.condition, rules, now) if episode is not None else None
    if episode is None or kind is None:
        return
    if not _claim(services, episode, kind, rules, now, checker):
        return  # another checker sends it, or sent it just now
    if kind is MailKind.BROKEN and episode.last_mailed_at is not None:
        finding = _since_last_mail(services, integration.id, finding, episode.last_mailed_at)
    message = emergency_mail(integration, finding, episode, kind, rules, now)
    try:
        services.mail().send(message)
    except MailError as e:
        _release(services, episode, checker, str(e))
        logger.warning(
            "emergency.mail_failed",
            extra={
                "integration_id": integration.id,
                "condition": finding.condition.value,
                "mail": kind.value,
                "error": str(e),
            },
        )
        return
    _mark_sent(services, episode, kind, checker, now)
    logger.info(
        "emergency.mailed",
        extra={
            "integration_id": integration.id,
            "condition": finding.condition.value,
            "mail": kind.value,
            "to": integration.contact,
        },
    )


def _row(session: Session, integration_id: int, condition: Condition) -> EmergencyCondition | None:
    return session.scalars(
        select(EmergencyCondition)
        .where(
            EmergencyCondition.integration_id == integration_id,
            EmergencyCondition.condition == condition.value,
        )
        .execution_options(populate_existing=True)
    ).one_or_none()


def _recorded(
    session: Session, integration_id: int, finding: Finding, now: datetime
) -> Episode | None:
    """Start, go on with or end the condition's episode as `finding` says; the row after it.

    Every change is a conditional statement, so checkers that race agree on one episode.
    """
    row = _row(session, integration_id, finding.condition)
    table = EmergencyCondition
    if finding.broken and row is None:
        session.execute(
            insert_for(session.get_bind().dialect.name, table)
            .values(
                integration_id=integration_id,
                condition=finding.condition.value,
                episode=1,
                since=finding.started or now,
            )
            .on_conflict_do_nothing(index_elements=["integration_id", "condition"])
        )
    elif finding.broken and row is not None and row.cleared_at is not None:
        session.execute(  # a new episode
            update(table)
            .where(table.id == row.id, table.episode == row.episode, table.cleared_at.is_not(None))
            .values(
                episode=table.episode + 1,
                since=finding.started or now,
                cleared_at=None,
                last_mailed_at=None,
                recovery_mailed_at=None,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
    elif not finding.broken and row is not None and row.cleared_at is None:
        session.execute(
            update(table)
            .where(table.id == row.id, table.episode == row.episode, table.cleared_at.is_(None))
            .values(cleared_at=now)
            .execution_options(synchronize_session=False)
        )
    row = _row(session, integration_id, finding.condition)
    if row is None:
        return None
    return Episode(
        row_id=row.id,
        episode=row.episode,
        since=row.since,
        cleared_at=row.cleared_at,
        last_mailed_at=row.last_mailed_at,
        recovery_mailed_at=row.recovery_mailed_at,
        claimed_until=row.mail_claimed_until,
    )


def _due(episode: Episode, condition: Condition, rules: Rules, now: datetime) -> MailKind | None:
    """The mail the episode is due now, if any."""
    if episode.claimed_until is not None and now < episode.claimed_until:
        return None
    if episode.cleared_at is None:
        if condition is Condition.BREAKER_OPEN and now - episode.since < rules.breaker_open_for:
            return None
        if episode.last_mailed_at is not None and now - episode.last_mailed_at < rules.repeat:
            return None
        return MailKind.BROKEN
    if episode.last_mailed_at is not None and episode.recovery_mailed_at is None:
        return MailKind.RECOVERED
    return None


def _claim(
    services: Services,
    episode: Episode,
    kind: MailKind,
    rules: Rules,
    now: datetime,
    checker: str,
) -> bool:
    """Take the episode's due mail for `checker`, committed before it is sent; False: not due
    any more, or another checker holds it."""
    table = EmergencyCondition
    where = [
        table.id == episode.row_id,
        table.episode == episode.episode,
        or_(table.mail_claimed_until.is_(None), table.mail_claimed_until <= now),
    ]
    if kind is MailKind.BROKEN:
        where += [
            table.cleared_at.is_(None),
            or_(table.last_mailed_at.is_(None), table.last_mailed_at <= now - rules.repeat),
        ]
    else:
        where += [
            table.cleared_at.is_not(None),
            table.last_mailed_at.is_not(None),
            table.recovery_mailed_at.is_(None),
        ]
    with services.transaction() as session:
        taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(table)
            .where(*where)
            .values(mail_claimed_by=checker, mail_claimed_until=now + rules.claim_lease)
            .execution_options(synchronize_session=False)
        )
        return taken.rowcount == 1


def _mark_sent(
    services: Services, episode: Episode, kind: MailKind, checker: str, now: datetime
) -> None:
    """The claimed mail went: stamp it on its episode and give the claim back."""
    table = EmergencyCondition
    sent = {"last_mailed_at": now} if kind is MailKind.BROKEN else {"recovery_mailed_at": now}
    with services.transaction() as session:
        session.execute(
            update(table)
            .where(
                table.id == episode.row_id,
                table.episode == episode.episode,
                table.mail_claimed_by == checker,
            )
            .values(**sent, last_error=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(table)
            .where(table.id == episode.row_id, table.mail_claimed_by == checker)
            .values(mail_claimed_by=None, mail_claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def _release(services: Services, episode: Episode, checker: str, error: str) -> None:
    """The claimed mail did not go: give the claim back, keeping why; the next check retries."""
    table = EmergencyCondition
    with services.transaction() as session:
        session.execute(
            update(table)
            .where(table.id == episode.row_id, table.mail_claimed_by == checker)
            .values(mail_claimed_by=None, mail_claimed_until=None, last_error=error[:ERROR_CHARS])
            .execution_options(synchronize_session=False)
        )


# -- the mails ------------------------------------------------------------------------------------

#: Per condition: what is wrong, and what is right again, in words.
TITLES: dict[Condition, tuple[str, str]] = {
    Condition.CREDENTIALS_REFUSED: (
        "Autotask refuses the integration's credentials",
        "Autotask accepts the integration's credentials again",
    ),
    Condition.BREAKER_OPEN: (
        "calls to Autotask keep failing (circuit breaker open)",
        "calls to Autotask go through again (circuit breaker closed)",
    ),
    Condition.DEAD_LETTERS: (
        "deliveries are dead-lettered",
        "no dead-lettered delivery waits any more (replayed or discarded)",
    ),
    Condition.BUDGET_EXHAUSTED: (
        "the hourly Autotask API budget is used up",
        "the hourly Autotask API budget has room again",
    ),
}

#: Per condition: what a person should do.
ADVICE: dict[Condition, str] = {
    Condition.CREDENTIALS_REFUSED: (
        "Check the API user in Autotask (active? its secret and API tracking identifier as"
        " given to the connector?) and save the right values on the integration's setup page."
        " The next delivery tries them at once."
    ),
    Condition.BREAKER_OPEN: (
        "Check whether Autotask is up (its status page) and whether this host reaches it"
        " (network, proxy, firewall, DNS). The integration log shows each"
        " failed call and Autotask's answer. Deliveries resume by themselves once a call"
        " succeeds; a delivery still failing at its deadline is dead-lettered."
    ),
    Condition.DEAD_LETTERS: (
        "Open the dead letters page: each dead letter says why it failed. Fix the cause (a"
        " mapping, a company, a request), then replay it, or discard it with a reason."
    ),
    Condition.BUDGET_EXHAUSTED: (
        "Look at what spends the calls on the API activity page (an alert storm, a request"
        " that reads much). The deliveries catch up by themselves as older calls leave the"
        " hour; if the usual load needs more, raise api_hourly_ceiling while Autotask's"
        " 10,000 calls per hour, shared by every tool of the database, leave room."
    ),
}


def _links(integration_id: int, condition: Condition) -> list[tuple[str, str]]:
    """The admin pages that help with the condition: (words, path)."""
    setup = ("the integration's setup", f"/admin/integrations/{integration_id}/edit")
    log = ("the integration log", f"/admin/log?integration_id={integration_id}")
    contact = ("this emergency contact", f"/admin/integrations/{integration_id}/contact")
    pages = {
        Condition.CREDENTIALS_REFUSED: [setup, log],
        Condition.BREAKER_OPEN: [log, setup],
        Condition.DEAD_LETTERS: [
            ("dead letters", f"/admin/dead-letters?integration_id={integration_id}"),
            log,
        ],
        Condition.BUDGET_EXHAUSTED: [("API activity", "/admin/api-activity"), log],
    }
    return [*pages[condition], contact]


def emergency_mail(
    integration: Watched,
    finding: Finding,
    episode: Episode,
    kind: MailKind,
    rules: Rules,
    now: datetime,
) -> MailMessage:
    """The mail telling the contact that a condition is broken (or is over): plain text."""
    broken, fixed = TITLES[finding.condition]
    name = integration.name
    if kind is MailKind.RECOVERED:
        ended = episode.cleared_at or now
        subject = f"Recovered: Autotask Alert Connector, integration {name}: {fixed}"
        body = [
            f'The Autotask Alert Connector\'s integration "{name}" has recovered: {fixed}.',
            "",
            f"It was broken ({broken}) from {_when(episode.since)} until {_when(ended)}"
            f" ({_duration(ended - episode.since)}).",
            "",
            "Nothing more needs doing about it.",
        ]
    else:
        subject = f"Autotask Alert Connector, integration {name}: {broken}"
        body = [
            f'The Autotask Alert Connector\'s integration "{name}" needs a person: {broken}.',
            "",
            f"Since: {_when(episode.since)} ({_duration(now - episode.since)} ago).",
            finding.facts,
            "",
            "What to do:",
            ADVICE[finding.condition],
            "",
            "Pages that help:",
            *(
                f"- {words}: {rules.public_url}{path}"
                for words, path in _links(integration.id, finding.condition)
            ),
        ]
        if not rules.public_url:
            body.append("(Paths on the connector's web address; set public_url for whole links.)")
        body += [
            "",
            f"While this lasts, a reminder follows every {_duration(rules.repeat)}; a mail says"
            " when it is over.",
        ]
    body += [
        "",
        f"You get this mail as the integration's emergency contact ({integration.contact}).",
    ]
    return MailMessage(to=(integration.contact,), subject=subject, body="\n".join(body) + "\n")


def _when(moment: datetime) -> str:
    """A moment as the mails say it: to the minute, in UTC."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(span: timedelta) -> str:
    """A span in hours and minutes, as words."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"

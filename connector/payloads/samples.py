"""Save-time checks: the sample contexts every template must render to a valid payload.

A realistic sample (also the admin form's preview), one whose every text value is hostile to
unescaped payloads, and a sparse one with optional values unset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from connector.domain import AlertStatus, IncomingAlert, Severity
from connector.errors import RenderError, TemplateRejected
from connector.payloads.context import MappedValues, RenderContext
from connector.payloads.formats import Format
from connector.payloads.render_limits import RenderLimits
from connector.payloads.templates import compile_template, with_line
from connector.payloads.text import describe_alert

_SAMPLE_START = datetime(2024, 3, 21, 9, 30, tzinfo=UTC)

SAMPLE_ALERT = IncomingAlert(
    source="logicmonitor",
    fingerprint="LMD12345",
    status=AlertStatus.ACTIVE,
    severity=Severity.ERROR,
    title="CPU busy above 90 % on srv01",
    message="CPUBusyPercent on srv01 (cpu0) is 97.5, threshold > 90.\nSince 09:30 UTC.",
    host="srv01",
    tenant="contoso",
    monitor="CPU",
    properties={
        "autotask.accountid": "29683414",
        "alert.type": "dataSourceAlert",
        "instance": "cpu0",
        "datapoint": "CPUBusyPercent",
        "value": "97.5",
        "threshold": "> 90",
        "system.displayname": "srv01.contoso.local",
    },
    started_at=_SAMPLE_START,
    occurred_at=_SAMPLE_START,
    note="Looking into it.",
    actor="jane.doe",
    raw_severity="error",
)
_SAMPLE_MAPPED = MappedValues(
    company_id=29683414,
    priority=1,
    status=1,
    queue_id=29682833,
    due_at=datetime(2024, 3, 22, 9, 30, tzinfo=UTC),
    issue_type=2,
    sub_issue_type=201,
    work_type=29682801,
    ticket_category=3,
    ticket_type=1,
    source=8,
    note_type=1,
    publish=1,
    # The target's sample zone fills this in (payloads.requests.sample_context).
    zone_url="",
)

#: A complete, realistic context: what the admin form's preview renders.
SAMPLE_CONTEXT = RenderContext(
    alert=SAMPLE_ALERT,
    mapped=_SAMPLE_MAPPED,
    ticket_id=128926,
    ticket_number="T20240321.0042",
    marker="lm:LMD12345:1",
    description=describe_alert(SAMPLE_ALERT, _SAMPLE_START),
    note_title="CPU busy above 90 % on srv01 — acknowledged",
    note_text="Alert acknowledged.\nBy: jane.doe\nNote: Looking into it.",
    change_status=8,
)

#: Text that breaks a payload wherever it is not escaped, or is placed outside a string.
HOSTILE_TEXT = (
    "quote \" apostrophe ' backslash \\ lt < gt > amp & cdata-end ]]> comment -- pi ?> "
    "{{7*7}} {% for x in range(10**9) %} ##EXTERNALTICKETID## ${x} %s\r\n\ttab nul \x00 "
    "bell \x07 esc \x1b emoji 😀 lone \ud800 end"
)


def _hostile_context() -> RenderContext:
    alert = SAMPLE_ALERT
    hostile_alert = replace(
        alert,
        source=HOSTILE_TEXT,
        fingerprint=HOSTILE_TEXT,
        title=HOSTILE_TEXT,
        message=HOSTILE_TEXT,
        host=HOSTILE_TEXT,
        tenant=HOSTILE_TEXT,
        monitor=HOSTILE_TEXT,
        properties={key: HOSTILE_TEXT for key in alert.properties},
        note=HOSTILE_TEXT,
        actor=HOSTILE_TEXT,
    )
    return RenderContext(
        alert=hostile_alert,
        mapped=_SAMPLE_MAPPED,
        ticket_id=SAMPLE_CONTEXT.ticket_id,
        ticket_number=HOSTILE_TEXT,
        marker=HOSTILE_TEXT,
        description=HOSTILE_TEXT,
        note_title=HOSTILE_TEXT,
        note_text=HOSTILE_TEXT,
        change_status=8,
        change_priority=4,
    )


def _sparse_context() -> RenderContext:
    alert = IncomingAlert(
        source="generic",
        fingerprint="fp-1",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        title="Disk full",
    )
    return RenderContext(
        alert=alert,
        mapped=MappedValues(company_id=0, priority=2, status=1, note_type=1, publish=1),
        ticket_id=SAMPLE_CONTEXT.ticket_id,
        marker="generic:fp-1:1",
        description=describe_alert(alert, None),
        note_title="Disk full — active",
        note_text="Alert active.",
    )


#: The samples every template must render to a valid payload at save time.
VALIDATION_SAMPLES: tuple[tuple[str, Callable[[], RenderContext]], ...] = (
    ("the sample alert", lambda: SAMPLE_CONTEXT),
    ("an alert whose every text breaks unescaped payloads", _hostile_context),
    (
        "an alert with optional values unset (wrap optional fields in"
        " {% if autotask.queue_id is not none %}…{% endif %})",
        _sparse_context,
    ),
)


#: A template naming the tracking identifier's variable (not the legacy ##INTEGRATIONCODE##
#: token, which renders blank): refused on save, though it would read nothing (issue 15).
_READS_A_SECRET = re.compile(r"\bintegration_code\b")


def validate_template(
    source: str, fmt: Format, limits: Mapping[str, int], render_limits: RenderLimits | None = None
) -> None:
    """Refuse (TemplateRejected, with the reason and line) a template that could fail at delivery.

    The template must compile and render to a valid payload for every VALIDATION_SAMPLES
    context: a realistic one, one whose every text value is hostile, and a sparse one.
    """
    secret = _READS_A_SECRET.search(source)
    if secret is not None:
        line = source.count("\n", 0, secret.start()) + 1
        reason = (
            "a template cannot read the API tracking identifier: the connector adds it to every"
            " request itself after rendering (the REST header, the SOAP IntegrationCode); remove"
            f" {secret.group(0)!r}"
        )
        raise TemplateRejected(
            with_line(reason, line), line=line, details={"reason": reason, "sample": ""}
        )
    compiled = compile_template(source, fmt, render_limits)
    for name, make in VALIDATION_SAMPLES:
        try:
            compiled.render_payload(make(), limits)
        except RenderError as e:
            reason = str(e)
            if e.line:
                reason = reason.removeprefix(f"line {e.line}: ")
            raise TemplateRejected(
                with_line(f"{reason} (rendering {name})", e.line),
                line=e.line,
                details={"reason": reason, "sample": name},
            ) from e

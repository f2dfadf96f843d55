"""An integration's settings: what it decides about its tickets, validated by one schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from connector.domain import (
    DEFAULT_PRIORITY_LABELS,
    AlertStatus,
    LifecyclePolicy,
    Severity,
    SeverityChanges,
)
from connector.ports import TargetProfile

DEFAULT_PRIORITY_MAP = {
    Severity.CRITICAL: 4,  # Critical
    Severity.ERROR: 1,  # High
    Severity.WARNING: 2,  # Medium
    Severity.INFO: 3,  # Low
}
DEFAULT_UNMAPPED_PER_SOURCE = {"office_protect": "drop"}
DEFAULT_STATUS_MAP = {
    AlertStatus.ACTIVE: 1,  # New
    AlertStatus.ACKNOWLEDGED: 8,  # In Progress
    AlertStatus.ESCALATED: 11,  # Escalate
    AlertStatus.CLEARED: 5,  # Complete
}


@dataclass(frozen=True)
class MonitorOverride:
    """Ticket settings for alerts of one monitor (check, datasource)."""

    queue_id: int | None = None
    issue_type: int | None = None
    sub_issue_type: int | None = None
    work_type: int | None = None
    priority: int | None = None


@dataclass(frozen=True)
class IntegrationSettings:
    """Everything an integration decides about its tickets besides credentials."""

    default_company_id: int | None = None
    #: What happens to alerts of tenants with no mapping: "default" company, or "drop".
    unmapped: str = "default"
    #: `unmapped` per source slug. Office Protect's security events belong to one Microsoft 365
    #: tenant each; filing an unknown tenant's sign-in alerts under the default company would
    #: show them to the wrong customer, so its default is "drop" (as in Office Protect's own
    #: Autotask integration, which tickets only mapped tenants).
    unmapped_per_source: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_UNMAPPED_PER_SOURCE)
    )
    #: The tenant → company switch: off, every alert goes to the default company.
    tenant_mapping: bool = True
    queue_id: int | None = None
    due_days: float = 1.0
    ticket_category: int | None = None
    ticket_type: int | None = None
    issue_type: int | None = None
    sub_issue_type: int | None = None
    #: The default work type (Autotask billing code id); a monitor override beats it.
    work_type: int | None = None
    source: int | None = None
    #: Per source slug, the sender's severity words (lower case) onto the connector's severities;
    #: a word not listed keeps the adapter's default. Applied at ingest, before anything is stored.
    severity_maps: Mapping[str, Mapping[str, Severity]] = field(default_factory=dict)
    #: Per source slug, constructor parameters for that source's adapter (integrations/sources.py).
    source_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    priority_map: Mapping[Severity, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    #: What a severity change of an open alert does to its ticket's priority: follow (both
    #: ways), escalate (worse only) or never.
    severity_changes: SeverityChanges = SeverityChanges.FOLLOW
    #: Priority names by id, for notes; Autotask's standard four unless the tenant names others.
    priority_labels: Mapping[int, str] = field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_LABELS)
    )
    status_map: Mapping[AlertStatus, int] = field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    complete_on_clear: bool = True
    #: Whether an acknowledgement sets the ticket's status (status_map's acknowledged) or only
    #: adds its note; None: the target flavour's default (on, unless an update costs a read of
    #: the ticket first, as SOAP's does: TargetProfile.update_reads_ticket).
    status_on_acknowledge: bool | None = None
    repeat_note_minutes: int | None = 60
    reopen_window_minutes: int = 1440
    monitor_overrides: Mapping[str, MonitorOverride] = field(default_factory=dict)
    #: The hosts the zone may be on; none given: the target adapter's own (Autotask's zone hosts).
    allowed_zone_hosts: tuple[str, ...] = ()
    note_type: int = 1
    publish: int = 1
    #: Per alert status, whether its delivery requests run at all (the per-status on/off).
    deliver: Mapping[AlertStatus, bool] = field(
        default_factory=lambda: dict.fromkeys(AlertStatus, True)
    )
    #: "Use the same URL and data for every alert activity": Active's update and note requests
    #: serve every status.
    same_request_for_every_status: bool = False
    #: Who is mailed when the integration needs a person (integrations/contact.py); None: nobody.
    emergency_contact: str | None = None

    def acknowledge_sets_status(self, profile: TargetProfile | None) -> bool:
        """Whether an acknowledgement sets the ticket's status, the flavour deciding when unset."""
        if self.status_on_acknowledge is not None:
            return self.status_on_acknowledge
        return profile is None or not profile.update_reads_ticket

    def policy(self, profile: TargetProfile | None = None) -> LifecyclePolicy:
        """The lifecycle policy the planner applies, for the integration's target flavour."""
        repeat = self.repeat_note_minutes
        return LifecyclePolicy(
            status_map=self.status_map,
            complete_status=self.status_map[AlertStatus.CLEARED],
            complete_on_clear=self.complete_on_clear,
            status_on_acknowledge=self.acknowledge_sets_status(profile),
            repeat_note_interval=timedelta(minutes=repeat) if repeat is not None else None,
            reopen_window=timedelta(minutes=self.reopen_window_minutes),
            delivered=frozenset(status for status, on in self.deliver.items() if on),
            severity_changes=self.severity_changes,
            priority_map=self.priority_map,
            monitor_priorities={
                monitor: override.priority
                for monitor, override in self.monitor_overrides.items()
                if override.priority
            },
            priority_labels=self.priority_labels,
        )


class WholeNumber(fields.Integer):
    """An integer (an id, a priority, minutes); a number with a fraction is refused, not cut.

    marshmallow's Integer takes 4.5 as 4: an id typed wrong would silently name another record.
    """

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def _word(word: str) -> bool:
    """A sender's severity word: not blank, at most 100 characters."""
    if not word.strip() or len(word) > 100:
        raise ValidationError("A severity word is 1 to 100 characters, not blank.")
    return True


class MonitorOverrideSchema(Schema):
    class Meta:
        unknown = RAISE

    queue_id = WholeNumber(allow_none=True, load_default=None)
    issue_type = WholeNumber(allow_none=True, load_default=None)
    sub_issue_type = WholeNumber(allow_none=True, load_default=None)
    work_type = WholeNumber(allow_none=True, load_default=None)
    priority = WholeNumber(allow_none=True, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MonitorOverride:
        return MonitorOverride(**data)


class IntegrationSettingsSchema(Schema):
    """Validates an integration's settings; unknown keys are refused so typos surface."""

    class Meta:
        unknown = RAISE

    default_company_id = WholeNumber(allow_none=True, load_default=None)
    unmapped = fields.String(load_default="default", validate=validate.OneOf(["default", "drop"]))
    unmapped_per_source = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.String(validate=validate.OneOf(["default", "drop"])),
        load_default=dict,
    )
    tenant_mapping = fields.Boolean(load_default=True)
    queue_id = WholeNumber(allow_none=True, load_default=None)
    due_days = fields.Float(load_default=1.0, validate=validate.Range(0, 365))
    ticket_category = WholeNumber(allow_none=True, load_default=None)
    ticket_type = WholeNumber(allow_none=True, load_default=None)
    issue_type = WholeNumber(allow_none=True, load_default=None)
    sub_issue_type = WholeNumber(allow_none=True, load_default=None)
    work_type = WholeNumber(allow_none=True, load_default=None)
    source = WholeNumber(allow_none=True, load_default=None)
    severity_maps = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.Dict(
            keys=fields.String(validate=_word),
            values=fields.String(
                validate=validate.OneOf(
                    [s.value for s in Severity], error="Must be one of: {choices}."
                )
            ),
        ),
        load_default=dict,
    )
    #: Checked loosely here (a map of maps); the adapter's constructor checks the parameters.
    source_options = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.Dict(
            keys=fields.String(validate=validate.Length(min=1)), values=fields.Raw()
        ),
        load_default=dict,
    )
    priority_map = fields.Dict(
        keys=fields.String(validate=validate.OneOf([s.value for s in Severity])),
        values=WholeNumber(),
        load_default=dict,
    )
    severity_changes = fields.String(
        load_default=SeverityChanges.FOLLOW.value,
        validate=validate.OneOf([s.value for s in SeverityChanges]),
    )
    priority_labels = fields.Dict(
        keys=WholeNumber(),
        values=fields.String(validate=validate.Length(1, 64)),
        load_default=dict,
    )
    status_map = fields.Dict(
        keys=fields.String(validate=validate.OneOf([s.value for s in AlertStatus])),
        values=WholeNumber(),
        load_default=dict,
    )
    complete_on_clear = fields.Boolean(load_default=True)
    status_on_acknowledge = fields.Boolean(allow_none=True, load_default=None)
    repeat_note_minutes = WholeNumber(
        allow_none=True, load_default=60, validate=validate.Range(min=0)
    )
    reopen_window_minutes = WholeNumber(load_default=1440, validate=validate.Range(min=0))
    monitor_overrides = fields.Dict(
        keys=fields.String(), values=fields.Nested(MonitorOverrideSchema), load_default=dict
    )
    allowed_zone_hosts = fields.List(
        fields.String(validate=validate.Length(min=1)), load_default=list
    )
    note_type = WholeNumber(load_default=1)
    publish = WholeNumber(load_default=1)
    deliver = fields.Dict(
        keys=fields.String(validate=validate.OneOf([s.value for s in AlertStatus])),
        values=fields.Boolean(),
        load_default=dict,
    )
    same_request_for_every_status = fields.Boolean(load_default=False)
    emergency_contact = fields.Email(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=254),
        error_messages={"invalid": "must be an e-mail address"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> IntegrationSettings:
        data["priority_map"] = DEFAULT_PRIORITY_MAP | {
            Severity(k): v for k, v in data["priority_map"].items()
        }
        data["status_map"] = DEFAULT_STATUS_MAP | {
            AlertStatus(k): v for k, v in data["status_map"].items()
        }
        data["severity_maps"] = _severity_maps(data["severity_maps"])
        data["severity_changes"] = SeverityChanges(data["severity_changes"])
        data["priority_labels"] = DEFAULT_PRIORITY_LABELS | data["priority_labels"]
        data["allowed_zone_hosts"] = tuple(data["allowed_zone_hosts"])
        data["unmapped_per_source"] = DEFAULT_UNMAPPED_PER_SOURCE | data["unmapped_per_source"]
        data["deliver"] = dict.fromkeys(AlertStatus, True) | {
            AlertStatus(k): v for k, v in data["deliver"].items()
        }
        return IntegrationSettings(**data)


def _severity_maps(raw: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Severity]]:
    """Words as keys in lower case; two spellings of one word that disagree are refused."""
    maps: dict[str, dict[str, Severity]] = {}
    for slug, words in raw.items():
        table: dict[str, Severity] = {}
        for word, severity in words.items():
            key = word.strip().lower()
            if key in table and table[key] is not Severity(severity):
                raise ValidationError(
                    {slug: [f"{word!r} is given twice (words are case-insensitive)."]},
                    field_name="severity_maps",
                )
            table[key] = Severity(severity)
        maps[slug] = table
    return maps


def load_settings(raw: Mapping[str, Any]) -> IntegrationSettings:
    """Validate stored or configured settings; raise ValidationError naming each bad field."""
    loaded: IntegrationSettings = IntegrationSettingsSchema().load(dict(raw))
    return loaded


__all__ = ["IntegrationSettings", "MonitorOverride", "ValidationError", "load_settings"]

"""The integration setup form, in LogicMonitor's order, and switching an integration on and off.

Name, API user, secret and tracking identifier (the zone lookup address under "advanced"),
then "Check connection" on the values in the form, before anything is saved, each failure in
words; then REST or SOAP; then the ticket settings picked from Autotask's own lists. Saving goes
through connector.integrations.editing (create_integration, update_integration), the JSON API's
functions, so the checks are the same; a refusal is shown beside the field it concerns.

Secrets are write-only: a saved secret or tracking identifier is never put in a page again (a
blank field keeps it). What was typed before a check or a refused save is carried to the next
submit sealed (encrypted with SECRET_KEYS), never as typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response as BaseResponse

from connector.domain import Choice, CompanyChoice, ConnectionReport, TicketPicklists
from connector.errors import ConfigError, ConflictError, ConnectorError, InvalidInput
from connector.integrations import catalog
from connector.integrations.activation import BACKFILL_WINDOW, activate, backfill_of, deactivate
from connector.integrations.editing import (
    EditContext,
    IntegrationChangesSchema,
    IntegrationSchema,
    create_integration,
    find_integration,
    load_input,
    masked,
    unsaved_integration,
    update_integration,
)
from connector.integrations.settings import load_settings
from connector.integrations.strict import flatten
from connector.persistence.models import Integration, utcnow
from connector.secrets import SecretBox
from connector.web.admin import bp
from connector.web.hooks import services

#: The write-only fields: never shown once saved; blank keeps the stored value.
WRITE_ONLY = ("secret", "integration_code")
#: Sealed values carry this prefix, so no other ciphertext (a stored secret's) passes for one.
SEAL_PURPOSE = "connector admin form, typed value v1:"


@dataclass(frozen=True)
class ListSetting:
    """A ticket setting picked from one of Autotask's lists."""

    key: str
    label: str
    #: The TicketPicklists field it is picked from.
    source: str
    #: The label of "no value" (the setting is left out of the ticket); None: a value is needed.
    blank: str | None
    hint: str = ""


#: The ticket settings the form picks from Autotask's lists, in the order shown.
LIST_SETTINGS = (
    ListSetting("queue_id", "Queue", "queues", "(none)"),
    ListSetting("ticket_category", "Ticket category", "ticket_categories", "(Autotask's default)"),
    ListSetting("ticket_type", "Ticket type", "ticket_types", "(Autotask's default)"),
    ListSetting("issue_type", "Issue type", "issue_types", "(none)"),
    ListSetting(
        "sub_issue_type",
        "Sub-issue type",
        "sub_issue_types",
        "(none)",
        "Grouped by issue type: pick one of the issue type chosen above.",
    ),
    ListSetting("source", "Source", "sources", "(none)"),
    ListSetting(
        "work_type", "Work type", "work_types", "(none)", "The billing code of time entered."
    ),
    ListSetting("note_type", "Note type", "note_types", None),
    ListSetting("publish", "Notes shown to", "note_publish", None),
)
#: Whole-number settings of the form (the lists' and the default company).
WHOLE_SETTINGS = ("default_company_id", *(s.key for s in LIST_SETTINGS))
#: What an acknowledgement does, as the form's choice says it: blank is the API's default.
ACKNOWLEDGE_CHOICES: Mapping[str, bool | None] = {"": None, "true": True, "false": False}


@dataclass
class FormState:
    """What the page shows: the values as typed, the errors by field, what was read."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    #: A refusal that concerns no field of the form, or the whole of it.
    error: str | None = None
    report: ConnectionReport | None = None
    lists: TicketPicklists | None = None
    #: Why the lists cannot be read; None with no lists: not read yet (a new integration).
    lists_error: str | None = None
    companies: tuple[CompanyChoice, ...] = ()
    companies_error: str | None = None
    #: Write-only values typed before, sealed for the next submit.
    sealed: dict[str, str] = field(default_factory=dict)
    #: How a refusal starts: what did not happen.
    refused: str = "Not saved"


# -- sealing what was typed -----------------------------------------------------------------------


def seal(box: SecretBox, value: str) -> str:
    """A typed secret as the page may carry it to the next submit: encrypted, not readable."""
    return box.encrypt(SEAL_PURPOSE + value)


def unseal(box: SecretBox, token: str) -> str | None:
    """The value `seal` sealed; None for anything else (tampered, another key, not a seal)."""
    try:
        opened = str(box.decrypt(token))
    except (ConfigError, ValueError):
        return None
    return opened[len(SEAL_PURPOSE) :] if opened.startswith(SEAL_PURPOSE) else None


# -- reading the form -----------------------------------------------------------------------------


def _profiles_default(flavour: str) -> str:
    profile = services().profiles.get(flavour)
    return profile.default_zone_lookup_url if profile is not None else ""


def _zone_lookup_url(typed: str, flavour: str) -> str:
    """Blank, or another flavour's default: the chosen flavour's default zone lookup URL."""
    defaults = {p.default_zone_lookup_url for p in services().profiles.values()}
    if not typed or typed in defaults:
        return _profiles_default(flavour) or typed
    return typed


def _hosts(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _read_form(box: SecretBox, *, new: bool) -> tuple[dict[str, Any], FormState]:
    """The posted form as the schemas take it (fields left blank left out), and its state."""
    form = request.form
    values = {key: form.get(key, "").strip() for key in _FORM_KEYS}
    state = FormState(values=values)
    data: dict[str, Any] = {}
    for key in ("name", "username"):
        data[key] = values[key]
    for key in WRITE_ONLY:
        typed = form.get(key, "")
        if typed.strip():
            data[key] = typed  # as typed: the API stores a secret exactly as given
        else:
            kept = unseal(box, form.get(f"{key}_sealed", ""))
            if kept:
                data[key] = kept
        if key in data:
            state.sealed[key] = seal(box, data[key])
    flavour = values["api_flavour"] or "rest"
    data["api_flavour"] = flavour
    data["zone_lookup_url"] = _zone_lookup_url(values["zone_lookup_url"], flavour)
    settings: dict[str, Any] = {}
    for key in WHOLE_SETTINGS:
        text = values[key]
        if not text:
            if key not in ("note_type", "publish"):
                settings[key] = None
            continue
        if not text.isascii() or not text.isdigit() or len(text) > 10:
            state.errors[key] = f"must be picked from the list (a whole number), got {text[:40]!r}"
            continue
        settings[key] = int(text)
    if values["due_days"]:
        try:
            settings["due_days"] = float(values["due_days"])
        except ValueError:
            state.errors["due_days"] = f"must be a number of days, got {values['due_days'][:40]!r}"
    acknowledge = values["status_on_acknowledge"]
    if acknowledge in ACKNOWLEDGE_CHOICES:
        settings["status_on_acknowledge"] = ACKNOWLEDGE_CHOICES[acknowledge]
    else:
        state.errors["status_on_acknowledge"] = (
            f"must be picked from the list, got {acknowledge[:40]!r}"
        )
    hosts = _hosts(values["allowed_zone_hosts"])
    if hosts or not new:
        settings["allowed_zone_hosts"] = hosts
    if new:
        settings = {key: value for key, value in settings.items() if value is not None}
    elif form.get("regenerate_requests") == "on":
        data["regenerate_requests"] = True
    data["settings"] = settings
    return data, state


_FORM_KEYS = (
    "name",
    "username",
    "api_flavour",
    "zone_lookup_url",
    "allowed_zone_hosts",
    "due_days",
    "status_on_acknowledge",
    "company_search",
    *WHOLE_SETTINGS,
)


def _values_of(integration: Integration) -> dict[str, str]:
    """A saved integration's values as the form shows them (never a secret)."""
    settings = dict(integration.settings or {})
    values = dict.fromkeys(_FORM_KEYS, "")
    values.update(
        name=integration.name,
        username=integration.username,
        api_flavour=integration.api_flavour,
        zone_lookup_url=(
            ""
            if integration.zone_lookup_url == _profiles_default(integration.api_flavour)
            else integration.zone_lookup_url
        ),
        allowed_zone_hosts=", ".join(settings.get("allowed_zone_hosts") or ()),
    )
    loaded = load_settings(settings)
    for key in WHOLE_SETTINGS:
        value = getattr(loaded, key)
        values[key] = "" if value is None else str(value)
    values["due_days"] = f"{loaded.due_days:g}"
    acknowledge = loaded.status_on_acknowledge
    values["status_on_acknowledge"] = "" if acknowledge is None else str(acknowledge).lower()
    return values


def _field_errors(error: ConnectorError, state: FormState) -> None:
    """Put a refusal's messages beside the fields they name; the rest above the form."""
    fields = (error.details or {}).get("fields")
    if not isinstance(fields, Mapping):
        state.error = str(error)
        return
    rest: dict[str, Any] = {}
    for name, messages in fields.items():
        if name == "settings" and isinstance(messages, Mapping):
            for key, inner in messages.items():
                if key in _FORM_KEYS:
                    state.errors[key] = "; ".join(flatten(inner))
                else:
                    rest[f"settings.{key}"] = inner
        elif name in _FORM_KEYS or name in WRITE_ONLY:
            state.errors[name] = "; ".join(flatten(messages))
            if isinstance(error, ConflictError):
                state.errors[name] = str(error)
        else:
            rest[name] = messages
    if rest:
        state.error = "; ".join(flatten(rest))


# -- what Autotask's lists say --------------------------------------------------------------------


def _saved_lists(integration_id: int, state: FormState, search: str) -> None:
    """The lists and companies of a saved integration (cached), or why they cannot be read."""
    try:
        state.lists = catalog.picklists(services(), integration_id).value
    except ConnectorError as e:
        state.lists_error = str(e)
    try:
        state.companies = catalog.search_companies(
            services(), integration_id, search, limit=catalog.MAX_COMPANY_LIMIT
        ).value
    except ConnectorError as e:
        state.companies_error = str(e)


def _unsaved_lists(candidate: Integration, state: FormState, search: str) -> None:
    """The lists and companies read with values not saved yet, or why they cannot be read."""
    try:
        state.lists = catalog.unsaved_picklists(services(), candidate)
    except ConnectorError as e:
        state.lists_error = str(e)
    try:
        state.companies = catalog.unsaved_companies(services(), candidate, search)
    except ConnectorError as e:
        state.companies_error = str(e)


def _company_choices(state: FormState) -> list[CompanyChoice]:
    """The companies offered, the chosen one always among them (by its id if not found)."""
    choices = list(state.companies)
    current = state.values.get("default_company_id", "")
    if current.isdigit() and all(str(c.id) != current for c in choices):
        choices.insert(0, CompanyChoice(int(current), f"Company #{current} (the current one)"))
    return choices


# -- pages ----------------------------------------------------------------------------------------


def _page(state: FormState, integration: Integration | None, status: int = 200) -> Response:
    box = services().secret_box()
    page = render_template(
        "admin/integration_form.html",
        state=state,
        values=state.values,
        integration=integration,
        secret_set=bool(integration and integration.secret_encrypted),
        code_masked=masked(box, integration.integration_code_encrypted) if integration else None,
        flavours=list(services().profiles),
        defaults={name: p.default_zone_lookup_url for name, p in services().profiles.items()},
        list_settings=LIST_SETTINGS,
        # Per flavour, whether an acknowledgement sets the status unless the form says otherwise.
        acknowledge_defaults={
            name: not p.update_reads_ticket for name, p in services().profiles.items()
        },
        companies=_company_choices(state),
        sub_issue_groups=_sub_issue_groups(state.lists),
    )
    return Response(page, status=status)


def _sub_issue_groups(
    lists: TicketPicklists | None,
) -> list[tuple[str, list[Choice]]]:
    """Sub-issue types under their issue type's label, in the issue types' order."""
    if lists is None:
        return []
    groups: dict[int | None, list[Choice]] = {}
    for choice in lists.sub_issue_types:
        groups.setdefault(choice.parent_id, []).append(choice)
    labels = {c.id: c.label for c in lists.issue_types}
    order: list[int | None] = [c.id for c in lists.issue_types if c.id in groups]
    order += [parent for parent in groups if parent not in labels]
    return [
        (labels.get(parent, "Other") if parent is not None else "Other", groups[parent])
        for parent in order
    ]


@bp.get("/integrations/new")
def new_integration() -> Response:
    """The empty setup form: connection first, then REST or SOAP, then the ticket settings."""
    values = dict.fromkeys(_FORM_KEYS, "")
    values.update(api_flavour="rest", due_days="1")
    return _page(FormState(values=values), None)


@bp.post("/integrations/new")
def post_new_integration() -> BaseResponse:
    """Check the connection with the form's values, search companies, or create it."""
    svc = services()
    box = svc.secret_box()
    data, state = _read_form(box, new=True)
    action = request.form.get("action", "save")
    if action == "save" and not state.errors:
        try:
            loaded = load_input(IntegrationSchema(), data, what="invalid integration")
            with svc.transaction() as session:
                integration = create_integration(session, EditContext.of(svc), loaded)
                created_id, name = integration.id, integration.name
                flavour = integration.api_flavour.upper()
        except (InvalidInput, ConflictError) as e:
            _field_errors(e, state)
        else:
            flash(
                f"Integration “{name}” created, its delivery options generated for {flavour}."
                " Alerts sent to it are ticketed from now on."
            )
            return redirect(url_for("admin.edit_integration", integration_id=created_id))
    _check_or_list(state, data, None, check=action == "check")
    return _page(state, None, status=400 if action == "save" else 200)


@bp.get("/integrations/<int:integration_id>/edit")
def edit_integration(integration_id: int) -> Response:
    """A saved integration in the setup form: secrets never shown (blank keeps them)."""
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        state = FormState(values=_values_of(integration))
    _saved_lists(integration_id, state, "")
    return _page(state, integration)


@bp.post("/integrations/<int:integration_id>/edit")
def post_edit_integration(integration_id: int) -> BaseResponse:
    """Check the connection with the form's values, search companies, or save the changes."""
    svc = services()
    box = svc.secret_box()
    data, state = _read_form(box, new=False)
    action = request.form.get("action", "save")
    with svc.transaction() as session:
        integration = find_integration(session, integration_id)
    data["settings"] = _changed_settings(integration, data["settings"])
    if action == "save" and not state.errors:
        try:
            loaded = load_input(
                IntegrationChangesSchema(), data, what="invalid integration", partial=True
            )
            with svc.transaction() as session:
                integration = find_integration(session, integration_id)
                updated = update_integration(session, EditContext.of(svc), integration, loaded)
        except (InvalidInput, ConflictError) as e:
            _field_errors(e, state)
        else:
            changed = ", ".join(updated.changed) or "nothing changed"
            flash(f"Saved ({changed}); the next alert uses it.")
            return redirect(url_for("admin.edit_integration", integration_id=integration_id))
    _check_or_list(state, data, integration, check=action == "check")
    return _page(state, integration, status=400 if action == "save" else 200)


def _changed_settings(integration: Integration, given: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the form changes: those whose value differs from what is in effect, so a
    form saved as it was shown changes nothing (and forgets no cached list)."""
    try:
        current = load_settings(integration.settings)
    except ValidationError:  # settings no longer valid: every key given is a change
        return dict(given)
    changed = {}
    for key, value in given.items():
        now = getattr(current, key, None)
        if isinstance(now, tuple):
            now = list(now)
        if now != value:
            changed[key] = value
    return changed


def _check_or_list(
    state: FormState, data: dict[str, Any], integration: Integration | None, *, check: bool
) -> None:
    """Run "Check connection" on the form's values (`check`), and read the lists to offer."""
    svc = services()
    search = state.values.get("company_search", "")
    candidate: Integration | None = None
    if check or integration is None:
        try:
            loaded = load_input(
                IntegrationChangesSchema(), data, what="invalid connection", partial=True
            )
            candidate = unsaved_integration(EditContext.of(svc), loaded, integration)
        except InvalidInput as e:
            if check:
                _field_errors(e, state)
    if check:
        state.refused = "Not checked"
    if check and candidate is not None:
        try:
            state.report = catalog.check_unsaved(svc, candidate)
        except ConnectorError as e:
            state.error = f"The connection could not be checked now: {e}"
    if integration is not None:
        _saved_lists(integration.id, state, search)
    elif candidate is not None and (state.report is None or state.report.ok):
        # A new integration's lists need its credentials: read once they were checked, or
        # kept (sealed) from a check before.
        if state.report is not None or state.sealed.keys() >= set(WRITE_ONLY):
            _unsaved_lists(candidate, state, search)


# -- active or inactive ---------------------------------------------------------------------------


@bp.get("/integrations/<int:integration_id>/activation")
def activation(integration_id: int) -> str:
    """Switch an integration off, or on: first how many held deliveries and tickets there are."""
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        backfill = backfill_of(session, integration_id, utcnow())
        return render_template(
            "admin/activation.html",
            integration=integration,
            backfill=backfill,
            window_hours=int(BACKFILL_WINDOW.total_seconds() // 3600),
        )


@bp.post("/integrations/<int:integration_id>/deactivate")
def deactivate_integration(integration_id: int) -> BaseResponse:
    """Switch the integration off: events are kept, deliveries held, nothing is sent."""
    with services().transaction() as session:
        integration = find_integration(session, integration_id)
        held = deactivate(session, integration, utcnow())
        name = integration.name
    also = f" ({held} waiting were held too)" if held else ""
    flash(f"“{name}” is inactive: its alerts are kept, nothing is sent to Autotask{also}.")
    return redirect(url_for("admin.activation", integration_id=integration_id))


@bp.post("/integrations/<int:integration_id>/activate")
def activate_integration(integration_id: int) -> BaseResponse:
    """Switch the integration on, delivering what it held in the last 48 hours, or not."""
    svc = services()
    backfill = request.form.get("backfill") == "yes"
    with svc.transaction() as session:
        integration = find_integration(session, integration_id)
        done = activate(
            session,
            integration,
            utcnow(),
            backfill=backfill,
            max_delivery_age=svc.max_delivery_age,
        )
        name = integration.name
    parts = [f"“{name}” is active again."]
    if done.delivered:
        parts.append(f"{done.delivered} held deliveries are being sent.")
    if done.skipped:
        parts.append(f"{done.skipped} held deliveries were skipped (not sent).")
    flash(" ".join(parts))
    return redirect(url_for("admin.integrations"))


@bp.app_template_filter("choices_of")
def choices_of(lists: TicketPicklists | None, name: str) -> Iterable[Any]:
    """A list of `lists` by its field name (empty when the lists are not read)."""
    return getattr(lists, name, ()) if lists is not None else ()

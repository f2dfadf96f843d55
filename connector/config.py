"""Settings: defaults in code (mirrored in config/default.toml), a TOML file, CONNECTOR_* env."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate

from connector.admins.passwords import password_problem
from connector.errors import ConfigError

#: Every setting with its default. config/default.toml documents each; a test keeps them equal.
DEFAULTS: dict[str, Any] = {
    # Web service
    "HOST": "127.0.0.1",
    "PORT": 8080,
    # Web processes (gunicorn workers) of `connector run` and `connector serve`
    "WEB_CONCURRENCY": 2,
    "MAX_CONTENT_LENGTH": 1_048_576,
    # Authenticated webhooks refused with a 4xx, kept per integration (the oldest go first)
    "REJECTED_WEBHOOKS_KEPT": 1000,
    # Persistence and secrets
    "DATABASE_URL": "sqlite:///var/connector.sqlite",
    "SECRET_KEYS": [],
    # Tokens preset at start (stored hashed): webhooks of the configured integration, JSON API
    "HOOK_TOKEN": "",
    "API_TOKEN": "",
    # GET /metrics needs `Authorization: Bearer <this>` when set; "" = open (internal network)
    "METRICS_TOKEN": "",
    # The integration seeded at start when none of its name exists (then edited live); {} = none
    "INTEGRATION": {},
    # Log lines on stderr: text (for people) or json (one object per line), and the least level
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "INFO",
    # Delivery worker
    "WORKER_ENABLED": True,
    "WORKER_POLL_SECONDS": 0.5,
    "WORKER_LEASE_SECONDS": 60,
    "WORKER_BATCH": 20,
    # Deliveries a worker carries out at once; the governor holds every endpoint to Autotask's 3
    # concurrent calls, and the extra threads do their database work while those 3 wait
    "WORKER_THREADS": 12,
    # A running worker records that it is alive this often (GET /readyz reads it)
    "WORKER_HEARTBEAT_SECONDS": 5.0,
    # How far below the web processes a worker runs (Unix niceness; 0 = the same): webhooks first
    "WORKER_NICENESS": 5,
    "RETRY_DELAYS": [5, 30, 120, 300, 900, 1800],
    "RETRY_JITTER": 0.2,
    "DELIVERY_MAX_AGE_HOURS": 72.0,
    # Periodic jobs in every worker process, each run once per period across all of them
    "SCHEDULER_ENABLED": True,
    # Retention: pruned every PRUNE_EVERY_SECONDS, PRUNE_BATCH rows per transaction
    "PRUNE_EVERY_SECONDS": 3600.0,
    "PRUNE_BATCH": 500,
    "API_ACTIVITY_RETENTION_DAYS": 30.0,
    "DELIVERY_RETENTION_DAYS": 90.0,
    "EVENT_RETENTION_DAYS": 90.0,
    # Reconciliation: how often sources that can be asked (Alertmanager's api_urls) are asked
    # which alerts they have, and how long one must be missing before its ticket is resolved
    "RECONCILE_EVERY_SECONDS": 300.0,
    "RECONCILE_GRACE_SECONDS": 300.0,
    # Open tickets asked about per integration and run (the least recently asked first)
    "RECONCILE_TICKETS_PER_RUN": 200,
    # API flavour of the sandbox integration `make run` configures: rest or soap
    "AUTOTASK_API": "rest",
    # Outbound calls to Autotask
    "AUTOTASK_CONNECT_TIMEOUT": 5.0,
    "AUTOTASK_READ_TIMEOUT": 30.0,
    # Test deliveries (admin page, API, `connector send-test`): how long one waits for each
    # Autotask answer, and how many one admin or API token may send per minute
    "TEST_DELIVERY_TIMEOUT_SECONDS": 10.0,
    "TEST_DELIVERIES_PER_MINUTE": 10,
    # Governor: this connector's share of Autotask's 10,000 calls per hour, the part of it creates
    # of new tickets leave free, and the circuit breaker
    "API_HOURLY_CEILING": 3000,
    "API_RESERVE_FRACTION": 0.1,
    # Autotask's own threshold of calls per hour per database: the API activity report marks
    # an hour over it
    "API_HOURLY_THRESHOLD": 10_000,
    "BREAKER_FAILURES": 5,
    "BREAKER_COOLDOWN_SECONDS": 30.0,
    # After Autotask refused the credentials, no call of that integration for this long
    "CREDENTIALS_PAUSE_SECONDS": 300.0,
    # The database's count as Autotask reports it (every tool of the tenant): asked for at most
    # this often per database, trusted this long, and calls stop at this share of its threshold
    "THRESHOLD_POLL_SECONDS": 300.0,
    "THRESHOLD_REPORT_MAX_AGE_SECONDS": 900.0,
    "THRESHOLD_SAFETY_SHARE": 0.9,
    # The admin web form (/admin/): the first admin for unattended starts (made only while no
    # admin exists), the session cookie's Secure flag (set behind TLS) and a session's lifetime
    "ADMIN_USERNAME": "",
    "ADMIN_PASSWORD": "",
    "ADMIN_COOKIE_SECURE": False,
    "ADMIN_SESSION_HOURS": 12.0,
    # The address senders and browsers reach this service at (https://alerts.example.net), when
    # it differs from what requests say (a proxy in front): the sender snippets name it, and on
    # https the admin cookie is Secure. Empty: taken from each request.
    "PUBLIC_URL": "",
    # The ticket system's webhook callouts (POST /ticket-webhooks/<integration id>): the header
    # that carries their signature and its HMAC algorithm ("" = the ticket system's own:
    # X-Hook-Signature and sha1 for Autotask), and the largest body taken
    "TICKET_WEBHOOK_SIGNATURE_HEADER": "",
    "TICKET_WEBHOOK_SIGNATURE_ALGORITHM": "",
    "TICKET_WEBHOOK_MAX_BYTES": 65_536,
    # How long the ticket system's lists read for the admin's setup are cached (0: not at all)
    "CATALOG_CACHE_SECONDS": 900.0,
    # Mail (the integrations' emergency contacts) through an SMTP server; no host: no mail
    "SMTP_HOST": "",
    "SMTP_PORT": 587,
    "SMTP_FROM": "",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": True,
    "SMTP_SSL": False,
    "SMTP_TIMEOUT_SECONDS": 10.0,
    # Mails to an integration's emergency contact when it breaks: a broken condition is mailed
    # again at most this often while it lasts; a circuit breaker counts once open this long
    "EMERGENCY_CHECK_SECONDS": 60.0,
    "EMERGENCY_REPEAT_HOURS": 6.0,
    "EMERGENCY_BREAKER_OPEN_MINUTES": 10.0,
    # Autotask sandbox (the local simulator started by `make run` and `connector sandbox`)
    "SANDBOX_HOST": "127.0.0.1",
    "SANDBOX_PORT": 8081,
    "SANDBOX_USERNAME": "",
    "SANDBOX_SECRET": "",
    "SANDBOX_INTEGRATION_CODE": "",
    "SANDBOX_STATE_FILE": "",
    "SANDBOX_HOURLY_THRESHOLD": 10_000,
    "SANDBOX_THRESHOLD_TIMEFRAME_MINUTES": 60,
    "SANDBOX_LATENCY_TIERS": [[0.5, 0.5], [0.75, 1.0]],
    "SANDBOX_THREAD_LIMIT": 3,
    # Seconds every sandbox call takes (a realistic Autotask: about 0.25); 0 = at once
    "SANDBOX_LATENCY_SECONDS": 0.0,
    "SANDBOX_STRICT_PROPERTIES": True,
    "SANDBOX_REFUSE_INACTIVE_COMPANIES": True,
    "SANDBOX_API_TICKET_CATEGORY": {},
    "SANDBOX_OPAQUE_ERRORS": False,
}


#: Settings whose values are never shown: not in errors, not by `connector config`.
SECRET_SETTINGS = frozenset(
    {
        "SANDBOX_SECRET",
        "SANDBOX_INTEGRATION_CODE",
        "SECRET_KEYS",
        "HOOK_TOKEN",
        "API_TOKEN",
        "METRICS_TOKEN",
        "INTEGRATION",
        "ADMIN_PASSWORD",
        "SMTP_PASSWORD",
    }
)


def load_settings(override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return validated settings: defaults, $CONNECTOR_CONFIG, CONNECTOR_* env, then override."""
    settings = dict(DEFAULTS)
    config_file = os.environ.get("CONNECTOR_CONFIG")
    if config_file:
        settings.update(_read_toml(Path(config_file)))
    settings.update(_read_env(os.environ))
    # DATABASE_URL and WEB_CONCURRENCY are the conventional names (the latter gunicorn's and
    # every PaaS's); the CONNECTOR_ names win when both are set.
    conventional = {
        name: os.environ[name]
        for name in ("DATABASE_URL", "WEB_CONCURRENCY")
        if os.environ.get(name) and not os.environ.get(f"CONNECTOR_{name}")
    }
    settings.update(_read_env({f"CONNECTOR_{k}": v for k, v in conventional.items()}))
    if override:
        settings.update(override)
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as e:
        raise ConfigError(f"CONNECTOR_CONFIG names {path}, which does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from e
    return _flatten(raw)


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn `[sandbox] port = 1` into SANDBOX_PORT = 1, so TOML can group settings in tables."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}".upper()
        if isinstance(value, Mapping) and not isinstance(DEFAULTS.get(name), dict):
            flat.update(_flatten(value, prefix=f"{name}_"))
        else:
            flat[name] = value
    return flat


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read CONNECTOR_<KEY> for every known key, read as its field reads environment text."""
    found: dict[str, Any] = {}
    fields_by_name = _SCHEMA.fields
    for key in DEFAULTS:
        raw = environ.get(f"CONNECTOR_{key}")
        if raw is None:
            continue
        field = fields_by_name[key]
        try:
            found[key] = field.from_env(raw) if isinstance(field, _FromEnv) else raw
        except ValidationError as e:
            shown = "" if key in SECRET_SETTINGS else f", got {raw!r}"
            raise ConfigError(f"CONNECTOR_{key}: {_first(e.messages)}{shown}") from e
    return found


def _validate(settings: Mapping[str, Any]) -> None:
    """Fail fast, naming the setting, on any value the service cannot run with."""
    unknown = sorted(set(settings) - set(DEFAULTS))
    unknown = [key for key in unknown if not key.startswith(("TESTING", "DEBUG"))]
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    try:
        _SCHEMA.load({key: settings[key] for key in DEFAULTS})
    except ValidationError as e:
        messages = e.messages
        if not isinstance(messages, dict):
            raise ConfigError(f"settings: {_first(messages)}") from e
        key = next(key for key in DEFAULTS if key in messages)
        shown = "" if key in SECRET_SETTINGS else f", got {settings[key]!r}"
        raise ConfigError(f"{key} {_first(messages[key])}{shown}") from e
    if bool(settings["ADMIN_USERNAME"]) != bool(settings["ADMIN_PASSWORD"]):
        raise ConfigError(
            "ADMIN_USERNAME and ADMIN_PASSWORD go together: set both (the first admin, made"
            " at start while no admin exists) or neither"
        )
    _validate_smtp(settings)


def _validate_smtp(settings: Mapping[str, Any]) -> None:
    """The smtp settings fit together: a sender with a host, a password with a username."""
    if settings["SMTP_STARTTLS"] and settings["SMTP_SSL"]:
        raise ConfigError(
            "SMTP_STARTTLS and SMTP_SSL exclude each other: STARTTLS upgrades a plain connection"
            " (port 587), SMTP_SSL starts with TLS (port 465); set one"
        )
    if settings["SMTP_HOST"] and not settings["SMTP_FROM"]:
        raise ConfigError("SMTP_FROM is needed with SMTP_HOST: the address mails are sent from")
    if bool(settings["SMTP_USERNAME"]) != bool(settings["SMTP_PASSWORD"]):
        raise ConfigError(
            "SMTP_USERNAME and SMTP_PASSWORD go together: set both (the mail server's login)"
            " or neither"
        )


def _first(messages: Any) -> str:
    """The first message of a marshmallow error tree."""
    while not isinstance(messages, str):
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return messages


# -- the schema: one field per setting, reading environment text as its default's type ---------


class _FromEnv:
    """A setting's field that also reads the text an environment variable carries."""

    def from_env(self, raw: str) -> Any:
        """The value `raw` (environment text) stands for; ValidationError when it is not one."""
        raise NotImplementedError


class _Whole(_FromEnv, fields.Field[int]):
    """A whole number (never a bool or a float)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError("must be a whole number")
        return value

    def from_env(self, raw: str) -> int:
        """Decimal digits."""
        try:
            return int(raw)
        except ValueError as e:
            raise ValidationError("expected a whole number") from e


class _Number(_FromEnv, fields.Field[float]):
    """A number, whole or not (never a bool)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValidationError("must be a number")
        return value

    def from_env(self, raw: str) -> float:
        """A decimal number."""
        try:
            return float(raw)
        except ValueError as e:
            raise ValidationError("expected a number") from e


class _Switch(_FromEnv, fields.Field[bool]):
    """On or off."""

    _WORDS = {"1": True, "true": True, "yes": True, "on": True}
    _WORDS |= {"0": False, "false": False, "no": False, "off": False}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value

    def from_env(self, raw: str) -> bool:
        """true/false, yes/no, on/off or 1/0, in any case."""
        try:
            return self._WORDS[raw.strip().lower()]
        except KeyError as e:
            raise ValidationError("expected true or false") from e


class _Json(_FromEnv, fields.Field[Any]):
    """A list or a table (TOML), written as JSON in the environment."""

    def __init__(self, kind: type[list[Any]] | type[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.word = "list" if kind is list else "object"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, self.kind):
            raise ValidationError(f"must be a {'list' if self.kind is list else 'table'}")
        return value

    def from_env(self, raw: str) -> Any:
        """JSON text of the field's kind."""
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValidationError(f"expected a JSON {self.word}") from e
        if not isinstance(value, self.kind):
            raise ValidationError(f"expected a JSON {self.word}")
        return value


def _at_least_one() -> validate.Range:
    return validate.Range(min=1, error="must be a whole number of at least 1")


def _positive_seconds() -> validate.Range:
    return validate.Range(min=0, min_inclusive=False, error="must be a positive number of seconds")


def _positive_days() -> validate.Range:
    return validate.Range(min=0, min_inclusive=False, error="must be a positive number of days")


def _latency_tiers(tiers: list[Any]) -> None:
    if not all(
        isinstance(tier, list | tuple)
        and len(tier) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in tier)
        and 0 < tier[0] <= 1
        and tier[1] >= 0
        for tier in tiers
    ):
        raise ValidationError(
            "must be a list of [fraction of threshold (0-1], delay seconds] pairs"
        )


def _retry_delays(delays: list[Any]) -> None:
    if not delays or not all(
        isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delays
    ):
        raise ValidationError("must be a non-empty list of seconds")


#: A preset token is a password: shorter ones are refused at start (issue 15).
MIN_TOKEN_LENGTH = 16


def _token(value: str) -> None:
    if value != value.strip():
        raise ValidationError("must not start or end with whitespace")
    if value and len(value) < MIN_TOKEN_LENGTH:
        raise ValidationError(
            f"must be at least {MIN_TOKEN_LENGTH} characters (empty: none preset); make one with"
            " `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


_PORT = validate.Range(min=0, max=65535, error="must be a port number from 0 to 65535")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _level(value: str) -> None:
    if value.upper() not in _LEVELS:
        raise ValidationError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")


def _public_url(value: str) -> None:
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("must be an http or https URL, e.g. https://alerts.example.net")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError("must have no query, fragment or user information")


def _admin_password(value: str) -> None:
    problem = password_problem(value) if value else None
    if problem:
        raise ValidationError(problem.removeprefix("the password "))


def _no_whitespace(value: str) -> None:
    if any(c.isspace() for c in value):
        raise ValidationError("must not contain whitespace")


def _mail_address(value: str) -> None:
    if value:
        validate.Email(error="must be an e-mail address")(value)


def _text(**kwargs: Any) -> fields.String:
    """A string setting."""
    return fields.String(error_messages={"invalid": "must be a string"}, **kwargs)


class SettingsSchema(Schema):
    """Every setting's type and allowed values; `load_settings` fails naming the first bad one."""

    HOST = _text()
    PORT = _Whole(validate=_PORT)
    WEB_CONCURRENCY = _Whole(validate=_at_least_one())
    MAX_CONTENT_LENGTH = _Whole(validate=_at_least_one())
    REJECTED_WEBHOOKS_KEPT = _Whole(validate=_at_least_one())
    DATABASE_URL = _text()
    SECRET_KEYS = _Json(list)
    HOOK_TOKEN = fields.String(validate=_token, error_messages={"invalid": "must be a string"})
    API_TOKEN = fields.String(validate=_token, error_messages={"invalid": "must be a string"})
    METRICS_TOKEN = fields.String(
        validate=_token,
        error_messages={"invalid": "must be a string (empty: /metrics needs no token)"},
    )
    INTEGRATION = _Json(dict)
    LOG_FORMAT = fields.String(
        validate=validate.OneOf(("text", "json"), error="must be text or json")
    )
    LOG_LEVEL = _text(validate=_level)
    WORKER_ENABLED = _Switch()
    WORKER_POLL_SECONDS = _Number(validate=_positive_seconds())
    WORKER_LEASE_SECONDS = _Whole(validate=_at_least_one())
    WORKER_BATCH = _Whole(validate=_at_least_one())
    WORKER_THREADS = _Whole(validate=_at_least_one())
    WORKER_HEARTBEAT_SECONDS = _Number(validate=_positive_seconds())
    WORKER_NICENESS = _Whole(validate=validate.Range(0, 19, error="must be 0 to 19"))
    RETRY_DELAYS = _Json(list, validate=_retry_delays)
    RETRY_JITTER = _Number()
    DELIVERY_MAX_AGE_HOURS = _Number()
    SCHEDULER_ENABLED = _Switch()
    PRUNE_EVERY_SECONDS = _Number(
        validate=validate.Range(min=1, error="must be a number of seconds, 1 or more")
    )
    PRUNE_BATCH = _Whole(validate=_at_least_one())
    API_ACTIVITY_RETENTION_DAYS = _Number(validate=_positive_days())
    DELIVERY_RETENTION_DAYS = _Number(validate=_positive_days())
    EVENT_RETENTION_DAYS = _Number(validate=_positive_days())
    RECONCILE_EVERY_SECONDS = _Number(
        validate=validate.Range(min=1, error="must be a number of seconds, 1 or more")
    )
    RECONCILE_GRACE_SECONDS = _Number(
        validate=validate.Range(min=0, error="must be a number of seconds, 0 or more")
    )
    RECONCILE_TICKETS_PER_RUN = _Whole(
        validate=validate.Range(min=0, error="must be a whole number, 0 or more")
    )
    # The flavours themselves are the target adapters' (checked where they are wired).
    AUTOTASK_API = _text(validate=validate.Length(min=1))
    AUTOTASK_CONNECT_TIMEOUT = _Number(validate=_positive_seconds())
    AUTOTASK_READ_TIMEOUT = _Number(validate=_positive_seconds())
    TEST_DELIVERY_TIMEOUT_SECONDS = _Number(validate=_positive_seconds())
    TEST_DELIVERIES_PER_MINUTE = _Whole(validate=_at_least_one())
    API_HOURLY_CEILING = _Whole(validate=_at_least_one())
    API_RESERVE_FRACTION = _Number(
        validate=validate.Range(
            min=0, max=1, max_inclusive=False, error="must be a fraction from 0 to below 1"
        )
    )
    API_HOURLY_THRESHOLD = _Whole(validate=_at_least_one())
    BREAKER_FAILURES = _Whole(validate=_at_least_one())
    BREAKER_COOLDOWN_SECONDS = _Number(validate=_positive_seconds())
    CREDENTIALS_PAUSE_SECONDS = _Number(validate=_positive_seconds())
    THRESHOLD_POLL_SECONDS = _Number(
        validate=validate.Range(min=1, error="must be a number of seconds, 1 or more")
    )
    THRESHOLD_REPORT_MAX_AGE_SECONDS = _Number(validate=_positive_seconds())
    THRESHOLD_SAFETY_SHARE = _Number(
        validate=validate.Range(
            min=0, max=1, min_inclusive=False, error="must be a fraction above 0, at most 1"
        )
    )
    ADMIN_USERNAME = _text()
    ADMIN_PASSWORD = fields.String(
        validate=_admin_password, error_messages={"invalid": "must be a string"}
    )
    ADMIN_COOKIE_SECURE = _Switch()
    ADMIN_SESSION_HOURS = _Number(
        validate=validate.Range(min=0, min_inclusive=False, error="must be a positive number")
    )
    PUBLIC_URL = _text(validate=_public_url)
    TICKET_WEBHOOK_SIGNATURE_HEADER = _text(validate=_no_whitespace)
    TICKET_WEBHOOK_SIGNATURE_ALGORITHM = _text(
        validate=validate.OneOf(("", "sha1", "sha256"), error="must be sha1, sha256 or empty")
    )
    TICKET_WEBHOOK_MAX_BYTES = _Whole(validate=_at_least_one())
    CATALOG_CACHE_SECONDS = _Number(
        validate=validate.Range(min=0, error="must be a number of seconds, 0 or more")
    )
    SMTP_HOST = _text(validate=_no_whitespace)
    SMTP_PORT = _Whole(validate=validate.Range(min=1, max=65535, error="must be a port number"))
    SMTP_FROM = _text(validate=_mail_address)
    SMTP_USERNAME = _text()
    SMTP_PASSWORD = _text()
    SMTP_STARTTLS = _Switch()
    SMTP_SSL = _Switch()
    SMTP_TIMEOUT_SECONDS = _Number(validate=_positive_seconds())
    EMERGENCY_CHECK_SECONDS = _Number(
        validate=validate.Range(min=1, error="must be a number of seconds, 1 or more")
    )
    EMERGENCY_REPEAT_HOURS = _Number(
        validate=validate.Range(min=0, min_inclusive=False, error="must be a positive number")
    )
    EMERGENCY_BREAKER_OPEN_MINUTES = _Number(
        validate=validate.Range(min=0, error="must be a number of minutes, 0 or more")
    )
    SANDBOX_HOST = _text()
    SANDBOX_PORT = _Whole(validate=_PORT)
    SANDBOX_USERNAME = _text()
    SANDBOX_SECRET = _text()
    SANDBOX_INTEGRATION_CODE = _text()
    SANDBOX_STATE_FILE = _text()
    SANDBOX_HOURLY_THRESHOLD = _Whole(validate=_at_least_one())
    SANDBOX_THRESHOLD_TIMEFRAME_MINUTES = _Whole(validate=_at_least_one())
    SANDBOX_LATENCY_TIERS = _Json(list, validate=_latency_tiers)
    SANDBOX_THREAD_LIMIT = _Whole(validate=_at_least_one())
    SANDBOX_LATENCY_SECONDS = _Number(
        validate=validate.Range(min=0, max=60, error="must be 0 to 60 seconds")
    )
    SANDBOX_STRICT_PROPERTIES = _Switch()
    SANDBOX_REFUSE_INACTIVE_COMPANIES = _Switch()
    SANDBOX_API_TICKET_CATEGORY = _Json(dict)
    SANDBOX_OPAQUE_ERRORS = _Switch()


_SCHEMA = SettingsSchema()

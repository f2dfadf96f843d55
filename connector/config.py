"""Settings: defaults in code (mirrored in config/default.toml), a TOML file, CONNECTOR_* env."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector.errors import ConfigError

#: Every setting with its default. config/default.toml documents each; a test keeps them equal.
DEFAULTS: dict[str, Any] = {
    # Web service
    "HOST": "127.0.0.1",
    "PORT": 8080,
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
    # The integration configured from settings (the admin form comes later); {} = none
    "INTEGRATION": {},
    # Log lines on stderr: text (for people) or json (one object per line), and the least level
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "INFO",
    # Delivery worker
    "WORKER_ENABLED": True,
    "WORKER_POLL_SECONDS": 0.5,
    "WORKER_LEASE_SECONDS": 60,
    "WORKER_BATCH": 20,
    "RETRY_DELAYS": [5, 30, 120, 300, 900, 1800],
    "RETRY_JITTER": 0.2,
    "DELIVERY_MAX_AGE_HOURS": 72.0,
    # API flavour of the sandbox integration `make run` configures: rest or soap
    "AUTOTASK_API": "rest",
    # Outbound calls to Autotask
    "AUTOTASK_CONNECT_TIMEOUT": 5.0,
    "AUTOTASK_READ_TIMEOUT": 30.0,
    # Governor: this connector's share of Autotask's 10,000 calls per hour, the part of it creates
    # of new tickets leave free, and the circuit breaker
    "API_HOURLY_CEILING": 3000,
    "API_RESERVE_FRACTION": 0.1,
    "BREAKER_FAILURES": 5,
    "BREAKER_COOLDOWN_SECONDS": 30.0,
    # After Autotask refused the credentials, no call of that integration for this long
    "CREDENTIALS_PAUSE_SECONDS": 300.0,
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
    "SANDBOX_STRICT_PROPERTIES": True,
    "SANDBOX_REFUSE_INACTIVE_COMPANIES": True,
    "SANDBOX_API_TICKET_CATEGORY": {},
    "SANDBOX_OPAQUE_ERRORS": False,
}


def load_settings(override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return validated settings: defaults, $CONNECTOR_CONFIG, CONNECTOR_* env, then override."""
    settings = dict(DEFAULTS)
    config_file = os.environ.get("CONNECTOR_CONFIG")
    if config_file:
        settings.update(_read_toml(Path(config_file)))
    settings.update(_read_env(os.environ))
    # DATABASE_URL is the conventional name; CONNECTOR_DATABASE_URL wins when both are set.
    if os.environ.get("DATABASE_URL") and not os.environ.get("CONNECTOR_DATABASE_URL"):
        settings["DATABASE_URL"] = os.environ["DATABASE_URL"]
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
    """Read CONNECTOR_<KEY> for every known key, coerced to the type of its default."""
    found: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        raw = environ.get(f"CONNECTOR_{key}")
        if raw is None:
            continue
        found[key] = _coerce(key, raw, default)
    return found


def _coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"CONNECTOR_{key}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError as e:
            raise ConfigError(f"CONNECTOR_{key}: expected a whole number, got {raw!r}") from e
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError as e:
            raise ConfigError(f"CONNECTOR_{key}: expected a number, got {raw!r}") from e
    if isinstance(default, list | dict):
        kind, wanted = ("list", list) if isinstance(default, list) else ("object", dict)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(f"CONNECTOR_{key}: expected a JSON {kind}, got {raw!r}") from e
        if not isinstance(value, wanted):
            raise ConfigError(f"CONNECTOR_{key}: expected a JSON {kind}, got {raw!r}")
        return value
    return raw


def _validate(settings: Mapping[str, Any]) -> None:
    """Fail fast, naming the setting, on any value the service cannot run with."""
    for key in ("PORT", "SANDBOX_PORT"):
        port = settings[key]
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"{key} must be a port number from 0 to 65535, got {port!r}")
    for key in (
        "MAX_CONTENT_LENGTH",
        "REJECTED_WEBHOOKS_KEPT",
        "WORKER_LEASE_SECONDS",
        "WORKER_BATCH",
        "SANDBOX_HOURLY_THRESHOLD",
        "SANDBOX_THRESHOLD_TIMEFRAME_MINUTES",
        "SANDBOX_THREAD_LIMIT",
        "API_HOURLY_CEILING",
        "BREAKER_FAILURES",
    ):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a whole number of at least 1, got {value!r}")
    tiers = settings["SANDBOX_LATENCY_TIERS"]
    if not isinstance(tiers, list) or not all(
        isinstance(tier, list | tuple)
        and len(tier) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in tier)
        and 0 < tier[0] <= 1
        and tier[1] >= 0
        for tier in tiers
    ):
        raise ConfigError(
            "SANDBOX_LATENCY_TIERS must be a list of [fraction of threshold (0-1], delay seconds]"
            f" pairs, got {tiers!r}"
        )
    reserve = settings["API_RESERVE_FRACTION"]
    if not isinstance(reserve, int | float) or isinstance(reserve, bool) or not 0 <= reserve < 1:
        raise ConfigError(
            f"API_RESERVE_FRACTION must be a fraction from 0 to below 1, got {reserve!r}"
        )
    for key in (
        "WORKER_POLL_SECONDS",
        "AUTOTASK_CONNECT_TIMEOUT",
        "AUTOTASK_READ_TIMEOUT",
        "BREAKER_COOLDOWN_SECONDS",
        "CREDENTIALS_PAUSE_SECONDS",
    ):
        value = settings[key]
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} must be a positive number of seconds, got {value!r}")
    delays = settings["RETRY_DELAYS"]
    if not delays or not all(
        isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delays
    ):
        raise ConfigError(f"RETRY_DELAYS must be a non-empty list of seconds, got {delays!r}")
    if settings["AUTOTASK_API"] not in ("rest", "soap"):
        raise ConfigError(f"AUTOTASK_API must be rest or soap, got {settings['AUTOTASK_API']!r}")
    if not isinstance(settings["METRICS_TOKEN"], str):
        raise ConfigError("METRICS_TOKEN must be a string (empty: /metrics needs no token)")
    if settings["METRICS_TOKEN"] != settings["METRICS_TOKEN"].strip():
        raise ConfigError("METRICS_TOKEN must not start or end with whitespace")
    if settings["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be text or json, got {settings['LOG_FORMAT']!r}")
    if str(settings["LOG_LEVEL"]).upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL,"
            f" got {settings['LOG_LEVEL']!r}"
        )
    if not isinstance(settings["INTEGRATION"], dict):
        raise ConfigError("INTEGRATION must be a table (a JSON object in the environment)")
    unknown = sorted(set(settings) - set(DEFAULTS))
    unknown = [key for key in unknown if not key.startswith(("TESTING", "DEBUG"))]
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")

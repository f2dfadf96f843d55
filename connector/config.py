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
}


def load_settings(override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return validated settings: defaults, $CONNECTOR_CONFIG, CONNECTOR_* env, then override."""
    settings = dict(DEFAULTS)
    config_file = os.environ.get("CONNECTOR_CONFIG")
    if config_file:
        settings.update(_read_toml(Path(config_file)))
    settings.update(_read_env(os.environ))
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
        if isinstance(value, Mapping):
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
    if isinstance(default, list):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(f"CONNECTOR_{key}: expected a JSON list, got {raw!r}") from e
        if not isinstance(value, list):
            raise ConfigError(f"CONNECTOR_{key}: expected a JSON list, got {raw!r}")
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
        "SANDBOX_HOURLY_THRESHOLD",
        "SANDBOX_THRESHOLD_TIMEFRAME_MINUTES",
        "SANDBOX_THREAD_LIMIT",
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
    unknown = sorted(set(settings) - set(DEFAULTS))
    unknown = [key for key in unknown if not key.startswith(("TESTING", "DEBUG"))]
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")

"""Settings: defaults mirrored in config/default.toml, TOML file, CONNECTOR_* environment."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.config import DEFAULTS, SettingsSchema, _flatten, load_settings
from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in DEFAULTS:
        monkeypatch.delenv(f"CONNECTOR_{key}", raising=False)
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)


@pytest.mark.parametrize("name", ["default.toml", "example.toml"])
def test_documented_defaults_equal_the_defaults_in_code(name: str) -> None:
    with (ROOT / "config" / name).open("rb") as handle:
        documented = _flatten(tomllib.load(handle))
    assert documented == DEFAULTS


def test_without_anything_set_the_defaults_apply() -> None:
    assert load_settings() == DEFAULTS


def test_toml_file_then_environment_then_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text('port = 9000\n[sandbox]\nport = 9001\nusername = "file-user"\n')
    monkeypatch.setenv("CONNECTOR_CONFIG", str(config))
    monkeypatch.setenv("CONNECTOR_SANDBOX_PORT", "9002")
    settings = load_settings({"SANDBOX_USERNAME": "override-user"})
    assert settings["PORT"] == 9000
    assert settings["SANDBOX_PORT"] == 9002
    assert settings["SANDBOX_USERNAME"] == "override-user"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("SANDBOX_STRICT_PROPERTIES", "off", False),
        ("SANDBOX_STRICT_PROPERTIES", "TRUE", True),
        ("SANDBOX_HOURLY_THRESHOLD", "250", 250),
        ("SANDBOX_LATENCY_TIERS", "[[0.9, 2]]", [[0.9, 2]]),
        ("SANDBOX_SECRET", "s3cret", "s3cret"),
        ("SANDBOX_REFUSE_INACTIVE_COMPANIES", "off", False),
        ("SANDBOX_API_TICKET_CATEGORY", '{"id": 5}', {"id": 5}),
    ],
)
def test_environment_values_take_the_type_of_their_default(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, expected: object
) -> None:
    monkeypatch.setenv(f"CONNECTOR_{name}", raw)
    assert load_settings()[name] == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("PORT", "eighty", "CONNECTOR_PORT: expected a whole number"),
        ("PORT", "70000", "PORT must be a port number"),
        ("SANDBOX_STRICT_PROPERTIES", "maybe", "expected true or false"),
        ("SANDBOX_LATENCY_TIERS", "[[2, 1]]", "SANDBOX_LATENCY_TIERS must be a list"),
        ("SANDBOX_LATENCY_TIERS", "{}", "expected a JSON list"),
        ("SANDBOX_API_TICKET_CATEGORY", "[5]", "expected a JSON object"),
        ("SANDBOX_THREAD_LIMIT", "0", "SANDBOX_THREAD_LIMIT must be a whole number of at least 1"),
        ("API_HOURLY_CEILING", "0", "API_HOURLY_CEILING must be a whole number of at least 1"),
        ("API_RESERVE_FRACTION", "1.0", "API_RESERVE_FRACTION must be a fraction"),
        ("BREAKER_FAILURES", "0", "BREAKER_FAILURES must be a whole number of at least 1"),
        ("BREAKER_COOLDOWN_SECONDS", "-1", "BREAKER_COOLDOWN_SECONDS must be a positive number"),
        # A preset token is a password (issue 15).
        ("HOOK_TOKEN", "short-token", "HOOK_TOKEN must be at least 16 characters"),
        ("API_TOKEN", "x" * 15, "API_TOKEN must be at least 16 characters"),
        ("METRICS_TOKEN", "metrics", "METRICS_TOKEN must be at least 16 characters"),
        ("RECONCILE_EVERY_SECONDS", "0", "RECONCILE_EVERY_SECONDS must be a number of seconds"),
        ("PRUNE_BATCH", "0", "PRUNE_BATCH must be a whole number of at least 1"),
    ],
)
def test_bad_values_fail_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, message: str
) -> None:
    monkeypatch.setenv(f"CONNECTOR_{name}", raw)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_unknown_setting_in_the_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text("prot = 9000\n")
    monkeypatch.setenv("CONNECTOR_CONFIG", str(config))
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings()


def test_missing_or_broken_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="absent.toml"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    monkeypatch.setenv("CONNECTOR_CONFIG", str(broken))
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings()


def test_run_refuses_an_api_flavour_the_sandbox_does_not_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flavours are the adapters' words, so the settings schema takes any; `run` checks
    # before it starts anything.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_AUTOTASK_API", "graphql")
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code != 0
    assert "AUTOTASK_API must be rest or soap, got 'graphql'" in result.output
    assert not (tmp_path / "var").exists()


def test_the_schema_has_one_field_per_setting_and_takes_the_defaults() -> None:
    assert set(SettingsSchema().fields) == set(DEFAULTS)
    assert SettingsSchema().load(DEFAULTS) == DEFAULTS


def test_the_conventional_names_are_read_as_their_settings_and_lose_to_connector_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/conventional.sqlite")
    settings = load_settings()
    assert (settings["WEB_CONCURRENCY"], settings["DATABASE_URL"]) == (
        4,
        "sqlite:////tmp/conventional.sqlite",
    )
    monkeypatch.setenv("CONNECTOR_WEB_CONCURRENCY", "3")
    assert load_settings()["WEB_CONCURRENCY"] == 3
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    monkeypatch.delenv("CONNECTOR_WEB_CONCURRENCY")
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY"):
        load_settings()

"""The smtp settings: read from a [smtp] table or CONNECTOR_SMTP_*, checked, the password hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.mail.smtp import SmtpMailSender
from connector.cli import main
from connector.config import DEFAULTS, load_settings
from connector.errors import ConfigError
from connector.wiring import mail_sender
from tests import canaries

PASSWORD = canaries.SMTP_CONFIG_PASSWORD


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in DEFAULTS:
        monkeypatch.delenv(f"CONNECTOR_{key}", raising=False)
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)


def test_an_smtp_table_in_the_file_and_the_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(
        '[smtp]\nhost = "mail.example.net"\nport = 465\nfrom = "alerts@example.net"\n'
        'username = "alerts"\nstarttls = false\nssl = true\ntimeout_seconds = 3.5\n'
    )
    monkeypatch.setenv("CONNECTOR_CONFIG", str(config))
    monkeypatch.setenv("CONNECTOR_SMTP_PASSWORD", PASSWORD)

    settings = load_settings()

    sender = mail_sender(settings)
    assert isinstance(sender, SmtpMailSender)
    assert (sender.host, sender.port, sender.sender) == (
        "mail.example.net",
        465,
        "alerts@example.net",
    )
    assert (sender.username, sender.starttls, sender.use_ssl, sender.timeout) == (
        "alerts",
        False,
        True,
        3.5,
    )
    assert PASSWORD not in repr(sender)


def test_without_a_host_there_is_no_mail_sender() -> None:
    assert mail_sender(load_settings()) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"SMTP_STARTTLS": True, "SMTP_SSL": True},
            "SMTP_STARTTLS and SMTP_SSL exclude each other",
        ),
        ({"SMTP_HOST": "mail.example.net"}, "SMTP_FROM is needed with SMTP_HOST"),
        ({"SMTP_FROM": "not an address"}, "SMTP_FROM must be an e-mail address"),
        ({"SMTP_HOST": "mail example"}, "SMTP_HOST must not contain whitespace"),
        ({"SMTP_PORT": 0}, "SMTP_PORT must be a port number"),
        ({"SMTP_TIMEOUT_SECONDS": 0}, "SMTP_TIMEOUT_SECONDS must be a positive number"),
        ({"SMTP_USERNAME": "alerts"}, "SMTP_USERNAME and SMTP_PASSWORD go together"),
    ],
)
def test_settings_that_cannot_work_fail_naming_them(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(settings)


def test_a_refused_password_is_never_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"SMTP_PASSWORD": PASSWORD})  # without a username
    assert PASSWORD not in str(refused.value)


def test_connector_config_hides_the_smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_SMTP_HOST", "mail.example.net")
    monkeypatch.setenv("CONNECTOR_SMTP_FROM", "alerts@example.net")
    monkeypatch.setenv("CONNECTOR_SMTP_USERNAME", "alerts")
    monkeypatch.setenv("CONNECTOR_SMTP_PASSWORD", PASSWORD)

    result = CliRunner().invoke(main, ["config"])

    assert result.exit_code == 0, result.output
    assert "SMTP_PASSWORD = <secret>" in result.output
    assert "SMTP_HOST = 'mail.example.net'" in result.output
    assert PASSWORD not in result.output

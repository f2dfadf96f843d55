"""The SMTP mail sender against a real local SMTP server (aiosmtpd): sent, or refused in words."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from adapters.mail.smtp import SmtpMailSender
from connector.errors import MailError
from connector.ports import MailMessage
from tests import canaries
from tests.e2e.harness import free_port
from tests.smtp_inbox import self_signed_certificate, smtp_inbox

LOGIN = ("mailer", canaries.MAIL_ADAPTER_SMTP_PASSWORD)
MESSAGE = MailMessage(
    to=("oncall@example.net",), subject="Über alles: a test 🚀", body="Line one\nLine two ✓\n"
)


def sender(port: int, **options: object) -> SmtpMailSender:
    defaults: dict[str, object] = {"starttls": False, "timeout": 5.0}
    return SmtpMailSender("127.0.0.1", port, "connector@example.net", **(defaults | options))  # type: ignore[arg-type]


def test_a_mail_arrives_with_its_recipient_subject_and_body() -> None:
    with smtp_inbox() as inbox:
        sender(inbox.port).send(MESSAGE)
        (mail,) = inbox.wait_for(1)
    assert mail.rcpt_tos == ["oncall@example.net"]
    assert mail.message["To"] == "oncall@example.net"
    assert mail.message["From"] == "connector@example.net"
    assert mail.message["Subject"] == "Über alles: a test 🚀"
    assert mail.message["Message-ID"] and mail.message["Date"]
    assert mail.body == "Line one\nLine two ✓\n"


def test_with_a_login_the_mail_goes_after_logging_in() -> None:
    with smtp_inbox(login=LOGIN) as inbox:
        sender(inbox.port, username=LOGIN[0], password=LOGIN[1]).send(MESSAGE)
        assert len(inbox.wait_for(1)) == 1


def test_a_refused_login_is_said_in_words_without_the_password() -> None:
    with smtp_inbox(login=LOGIN) as inbox:
        wrong = sender(inbox.port, username=LOGIN[0], password=canaries.WRONG_SMTP_PASSWORD)
        with pytest.raises(MailError) as refused:
            wrong.send(MESSAGE)
        assert inbox.mails == []
    words = str(refused.value)
    assert f"the mail server 127.0.0.1:{inbox.port} refused the login of 'mailer'" in words
    assert "(SMTP 535)" in words and "check smtp username and smtp password" in words
    assert canaries.WRONG_SMTP_PASSWORD not in words
    plain = base64.b64encode(f"\0mailer\0{canaries.WRONG_SMTP_PASSWORD}".encode()).decode()
    assert plain not in words
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_nobody_listening_is_said_in_words() -> None:
    port = free_port()
    with pytest.raises(MailError, match=f"127.0.0.1:{port} refused the connection: no SMTP"):
        sender(port).send(MESSAGE)


def test_a_server_without_starttls_is_said_in_words() -> None:
    with smtp_inbox() as inbox:
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            sender(inbox.port, starttls=True).send(MESSAGE)
        assert inbox.mails == []


def test_the_sender_shows_no_password_in_its_repr() -> None:
    shown = repr(sender(25, username="u", password=canaries.REPR_SMTP_PASSWORD))
    assert canaries.REPR_SMTP_PASSWORD not in shown
    assert "127.0.0.1" in shown


def test_starttls_checks_the_servers_certificate(tmp_path: Path) -> None:
    with smtp_inbox(starttls_with=self_signed_certificate(tmp_path)) as inbox:
        with pytest.raises(
            MailError,
            match=f"TLS with the mail server 127.0.0.1:{inbox.port} failed: .*certificate verify",
        ):
            sender(inbox.port, starttls=True).send(MESSAGE)
        assert inbox.mails == []


def test_starttls_with_a_trusted_certificate_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # trusted as the machine's CAs are
    with smtp_inbox(login=LOGIN, starttls_with=(certificate, key)) as inbox:
        sender(inbox.port, starttls=True, username=LOGIN[0], password=LOGIN[1]).send(MESSAGE)
        (mail,) = inbox.wait_for(1)
    assert mail.rcpt_tos == ["oncall@example.net"]

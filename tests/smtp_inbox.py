"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 and a free port, keeping what it got."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.e2e.harness import free_port, wait_until


@dataclass
class Received:
    """One mail as the server took it: the envelope's recipients and the parsed message."""

    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")


@dataclass
class Inbox:
    """The mails an SMTP server received, and the login it takes (none: no AUTH)."""

    host: str = "127.0.0.1"
    port: int = 0
    login: tuple[str, str] | None = None
    mails: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.mails.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept only the configured login."""
        ok = (
            self.login is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """The mails once `count` have arrived (fails after `timeout` seconds)."""
        wait_until(lambda: len(self.mails) >= count, timeout, f"{count} mail(s)")
        return list(self.mails)

    def settings(self) -> dict[str, object]:
        """The connector's smtp settings for this server (no TLS; the login when it takes one)."""
        found: dict[str, object] = {
            "SMTP_HOST": self.host,
            "SMTP_PORT": self.port,
            "SMTP_FROM": "connector@example.net",
            "SMTP_STARTTLS": False,
        }
        if self.login is not None:
            found |= {"SMTP_USERNAME": self.login[0], "SMTP_PASSWORD": self.login[1]}
        return found


@contextmanager
def smtp_inbox(login: tuple[str, str] | None = None) -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 and a free port while the block runs."""
    inbox = Inbox(port=free_port(), login=login)
    extra: dict[str, Any] = {}
    if login is not None:
        extra = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port, **extra)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()

"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 and a free port, keeping what it got."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
    #: While set, every mail is refused with this reply (e.g. "451 4.3.0 try again later"),
    #: and kept nowhere.
    refusing: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusing is not None:
            return self.refusing
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


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to `folder`: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_inbox(
    login: tuple[str, str] | None = None, *, starttls_with: tuple[Path, Path] | None = None
) -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 and a free port while the block runs; with a certificate
    and key (`starttls_with`), it offers STARTTLS and wants it before anything is sent."""
    inbox = Inbox(port=free_port(), login=login)
    extra: dict[str, Any] = {}
    if login is not None:
        extra = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    if starttls_with is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*starttls_with)
        extra |= {"tls_context": context, "require_starttls": True}
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port, **extra)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()

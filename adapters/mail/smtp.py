"""Mail through an SMTP server with the standard library's smtplib (connector.ports.MailSender).

Plain SMTP, STARTTLS or SMTP over TLS (`use_ssl`), with a login when a username is given. Every
failure becomes a MailError in words naming the server, never its password.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from connector.domain import redact_text, secret_forms
from connector.errors import MailError
from connector.ports import MailMessage


class SmtpMailSender:
    """Sends each mail over a new connection to one SMTP server."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        use_ssl: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self._password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = timeout
        # What a server might echo of the login: the password, and AUTH PLAIN's base64 token.
        plain = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
        self._secret_forms = secret_forms(password, plain) if password else ()

    def __repr__(self) -> str:
        return f"SmtpMailSender(host={self.host!r}, port={self.port}, sender={self.sender!r})"

    @property
    def where(self) -> str:
        """The server as the words name it."""
        return f"{self.host}:{self.port}"

    def send(self, message: MailMessage) -> None:
        """Send `message`; MailError saying why in words when it cannot."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = ", ".join(message.to)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mail.set_content(message.body)
        try:
            with self._connect() as smtp:
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as e:
            raise MailError(self._redact(self._explain(e))) from None

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _explain(self, error: smtplib.SMTPException | OSError) -> str:
        """Words for why the mail did not leave."""
        where = f"the mail server {self.where}"
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return (
                f"{where} refused the login of {self.username!r} (SMTP {error.smtp_code}):"
                " check smtp username and smtp password"
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            what = "STARTTLS" if self.starttls and "STARTTLS" in str(error) else "logging in"
            return f"{where} does not offer {what}: {_text(error)}"
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            refused = ", ".join(
                f"{address} ({code} {_decoded(reply)})"
                for address, (code, reply) in error.recipients.items()
            )
            return f"{where} refused the recipient {refused}"
        if isinstance(error, smtplib.SMTPSenderRefused):
            return (
                f"{where} refused the sender address {self.sender!r}"
                f" ({error.smtp_code} {_decoded(error.smtp_error)}): check smtp from"
            )
        if isinstance(error, smtplib.SMTPResponseException):
            return f"{where} answered {error.smtp_code} {_decoded(error.smtp_error)}"
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return f"{where} closed the connection: {_text(error)}"
        if isinstance(error, smtplib.SMTPException):
            return f"{where} refused the mail: {_text(error)}"
        if isinstance(error, ssl.SSLError):
            return f"TLS with {where} failed: {_text(error)}"
        if isinstance(error, TimeoutError):
            return f"{where} did not answer within {self.timeout:g} seconds"
        if isinstance(error, ConnectionRefusedError):
            return f"{where} refused the connection: no SMTP server listens there"
        return f"{where} cannot be reached: {_text(error)}"

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secret_forms)


def _decoded(reply: bytes | str) -> str:
    """A server's reply as text."""
    return reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else str(reply)


def _text(error: Exception) -> str:
    """An exception's message, or its kind when it has none."""
    return str(error) or type(error).__name__

"""Mail to subjects: a console backend for development (logs the message) and SMTP."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from app.core.config import Settings

log = logging.getLogger("app.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, mail: Mail) -> None:
        """Never raises: a mail that cannot go out is logged (without its content) and the request stands."""
        try:
            if self.settings.mail_backend == "console":
                # Development only (production refuses this backend): the content is what a developer needs.
                log.info(
                    "mail (console backend)",
                    extra={"to": mail.to, "subject": mail.subject, "body": mail.body},
                )
            else:
                await asyncio.to_thread(self._send_smtp, mail)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail could not be sent", extra={"error": type(exc).__name__})

    def _send_smtp(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.settings.mail_from, mail.to, mail.subject
        message.set_content(mail.body)
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)

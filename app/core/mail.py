"""Mail to subjects: a console backend for development (logs the message, and keeps the last few for the
development mail viewer, GET /dev/mail) and SMTP."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from app.core.config import Settings
from app.core.time import utc_now

log = logging.getLogger("app.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class SentMail:
    mail: Mail
    sent_at: datetime


# How many mails the console backend keeps for the development mail viewer (per process: per worker).
KEPT_MAILS = 20


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The console backend's last mails, newest last; always empty with SMTP (and so in production).
        self.recent: deque[SentMail] = deque(maxlen=KEPT_MAILS)

    async def send(self, mail: Mail) -> None:
        """Never raises: a mail that cannot go out is logged (without its content) and the request stands."""
        try:
            if self.settings.mail_backend == "console":
                # Development only (production refuses this backend): the content is what a developer needs.
                self.recent.append(SentMail(mail, utc_now()))
                log.info(
                    "mail (console backend; also at /dev/mail)",
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

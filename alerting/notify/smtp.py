"""The e-mail receiver: one multipart mail (plain text + HTML) per notification over SMTP.

Standard-library ``smtplib`` in a worker thread (``asyncio.to_thread``): the
mail server is the operator's relay, a connection per notification is cheap,
and no extra dependency is needed. UTF-8 throughout; the subject is RFC 2047
encoded so every mail client shows the Japanese. The Message-ID is derived
from the notification id, so a redelivery after a crash is recognisably the
same mail.

The password is never logged nor shown in ``repr``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime

from alerting.model import Notification
from alerting.notify.codec import delivery_key
from alerting.notify.jpdate import jst
from alerting.notify.receivers import DeliveryError, RejectedError
from alerting.notify.compose import html_body


@dataclass(frozen=True)
class EmailReceiver:
    host: str
    port: int
    sender: str
    to: list[str]
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    async def deliver(self, n: Notification) -> None:
        await asyncio.to_thread(self._send, message(n, self.sender, self.to))

    def _send(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user is not None:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg, from_addr=self.sender, to_addrs=self.to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = RejectedError if all(code >= 500 for code in codes) else DeliveryError
            raise error(f"smtp {self.host}:{self.port}: every recipient refused {codes}") from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            error = RejectedError if exc.smtp_code >= 500 else DeliveryError
            raise error(f"smtp {self.host}:{self.port}: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, auth, TLS: the relay, not the mail
            raise DeliveryError(f"smtp {self.host}:{self.port}: {type(exc).__name__}: {exc}") from None


def message(n: Notification, sender: str, to: list[str]) -> EmailMessage:
    """The mail for ``n``: plain text first (what NOC mail readers show), HTML as the alternative."""
    msg = EmailMessage()
    msg["Subject"] = n.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(jst(n.created))
    msg["Message-ID"] = f"<{delivery_key(n)}@jukimon>"
    msg["X-Jukimon-Kind"] = n.kind
    msg["X-Jukimon-Drill"] = "yes" if n.drill else "no"
    msg.set_content(n.body, cte="base64")
    msg.add_alternative(html_body(n), subtype="html", cte="base64")
    return msg


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply

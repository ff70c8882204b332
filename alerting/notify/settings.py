"""Notification delivery settings (the ``notify:`` section of the configuration); light to import.

    notify:
      smtp: {host: smtp.noc.example.lg.jp, port: 587, sender: jukimon@noc.example.lg.jp,
             starttls: true, user: jukimon, password: env:JUKIMON_SMTP_PASSWORD}
      mail_sink: state/mail        # with no smtp.host: the embedded sink receives the mail (demo)
      webhook_timeout: 10
      retry_initial: 2             # seconds; doubles per failed attempt up to retry_max
      retry_max: 300
      console_keep: 200
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from monitor.configerror import ConfigError


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None = None  # None: no relay, the embedded mail sink (``notify.mail_sink``) takes the mail
    port: int = 25
    sender: str = "jukimon@localhost"
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    def check(self, key: str) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"{key}.port: must be 1..65535")
        if "@" not in self.sender:
            raise ConfigError(f"{key}.sender: must be a mail address")
        if self.password is not None and self.user is None:
            raise ConfigError(f"{key}.user: needed with a password")


@dataclass(frozen=True)
class NotifySettings:
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    mail_sink: Path = Path("state/mail")
    webhook_timeout: float = 10.0
    retry_initial: float = 2.0
    retry_max: float = 300.0
    console_keep: int = 200

    def check(self, key: str) -> None:
        self.smtp.check(f"{key}.smtp")
        for name in ("webhook_timeout", "retry_initial", "retry_max"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{key}.{name}: must be a number > 0")
        if self.retry_max < self.retry_initial:
            raise ConfigError(f"{key}.retry_max: must be at least retry_initial")
        if self.console_keep < 1:
            raise ConfigError(f"{key}.console_keep: must be at least 1")

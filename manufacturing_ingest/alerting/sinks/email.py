"""Email alerts over SMTP: one plain-text message per alert, with the same content as the chat one.

The password is handed in already resolved (the Dagster layer reads it with ``dg.EnvVar``); it
is kept out of reprs and error messages, including its base64 form that AUTH PLAIN/LOGIN send.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime

from manufacturing_ingest.alerting.alert import Alert
from manufacturing_ingest.alerting.sinks.base import AlertSink, SinkError
from manufacturing_ingest.errors import ConfigurationError

__all__ = ["EmailSink", "SmtpOptions", "email_message"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to send alert emails. ``starttls`` upgrades a plain connection (port 587)."""

    host: str
    sender: str
    recipients: Sequence[str]
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigurationError("the SMTP host for alert emails is empty")
        if not self.sender or "@" not in self.sender:
            raise ConfigurationError("the alert email sender must be an address, e.g. "
                                     "dagster@example.com")
        if not self.recipients or any("@" not in r for r in self.recipients):
            raise ConfigurationError("alert email recipients must be one or more addresses")
        if bool(self.username) != bool(self.password):
            raise ConfigurationError("set both the SMTP username and password, or neither")


class EmailSink(AlertSink):
    """Sends each alert as a plain-text email; one SMTP connection per alert."""

    def __init__(self, options: SmtpOptions, name: str = "email"):
        self.name = name
        self.options = options

    def __repr__(self) -> str:
        return f"EmailSink(name={self.name!r}, host={self.options.host!r}, password=<secret>)"

    def deliver(self, alert: Alert) -> None:
        opts = self.options
        problem = None
        try:
            with smtplib.SMTP(opts.host, opts.port, timeout=opts.timeout) as smtp:
                if opts.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if opts.username and opts.password:
                    smtp.login(opts.username, opts.password)
                refused = smtp.send_message(email_message(alert, opts.sender, opts.recipients),
                                            from_addr=opts.sender, to_addrs=list(opts.recipients))
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS, or no AUTH
            problem = f"the SMTP server lacks what the settings ask for: {exc}"
        except smtplib.SMTPAuthenticationError as exc:
            problem = f"SMTP login refused for {opts.username!r}: {self._redact(_smtp_reply(exc))}"
        except smtplib.SMTPResponseException as exc:
            problem = f"SMTP server answered {self._redact(_smtp_reply(exc))}"
        except smtplib.SMTPRecipientsRefused as exc:
            problem = f"SMTP server refused the recipients {sorted(exc.recipients)}"
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, dropped, TLS
            problem = f"SMTP {type(exc).__name__}: {self._redact(str(exc))}"
        if problem is not None:
            # Raised outside the except blocks, so no chained exception rides along.
            raise SinkError(f"email via {opts.host}:{opts.port}: {problem}")
        if refused:
            # The others have it; retrying would send them a second copy.
            logger.warning("alert %s not emailed to %s: the SMTP server refused them",
                           alert.id, ", ".join(sorted(refused)))

    def _redact(self, text: str) -> str:
        password = self.options.password
        if not password:
            return text
        user = (self.options.username or "").encode()
        forms = {
            password,
            base64.b64encode(password.encode()).decode(),
            base64.b64encode(b"\0" + user + b"\0" + password.encode()).decode(),
        }
        for secret in sorted(forms, key=len, reverse=True):
            text = text.replace(secret, "<secret>")
        return text


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The plain-text email for ``alert``; its Message-ID comes from the alert id."""
    message = EmailMessage()
    message["Subject"] = alert.headline
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(alert.created_at)
    # The same alert always has the same Message-ID, so a re-sent copy threads with the first.
    message["Message-ID"] = f"<{alert.id}@manufacturing-ingest.alerts>"
    lines = [alert.title, ""]
    if alert.text:
        lines += [alert.text, ""]
    for name, value in (("Severity", alert.severity.upper()), ("Asset", alert.asset),
                        ("Check", alert.check), ("Partition", alert.partition),
                        ("Kind", alert.kind.value)):
        if value:
            lines.append(f"{name}: {value}")
    if alert.figures:
        lines += ["", "Figures:"]
        lines += [f"  {name}: {value}" for name, value in alert.figures.items()]
    if alert.run_url:
        lines += ["", f"Run in Dagster: {alert.run_url}"]
    lines += ["", f"Subject: {alert.subject}",
              f"Alert {alert.id} at {alert.created_at:%Y-%m-%d %H:%M:%S} UTC"]
    message.set_content("\n".join(lines) + "\n")
    return message


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    reply = exc.smtp_error
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{exc.smtp_code} {text}"

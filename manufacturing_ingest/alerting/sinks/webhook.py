"""Chat alerts: a Slack-compatible incoming-webhook POST (Slack; Mattermost and others read it too).

An incoming-webhook URL is itself the credential (anyone holding it can post), so it is kept
out of every message, log line and repr; errors say what the server answered, not where.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from manufacturing_ingest.alerting.alert import Alert
from manufacturing_ingest.alerting.sinks.base import AlertSink, SinkError
from manufacturing_ingest.errors import ConfigurationError

__all__ = ["WebhookSink", "slack_payload"]

# Slack's limits: header text 150 characters, section text 3000, at most 10 fields.
_HEADER_CHARS = 150
_SECTION_CHARS = 3000


class WebhookSink(AlertSink):
    """POSTs each alert as Slack ``{"text", "blocks"}`` JSON to an incoming-webhook URL."""

    def __init__(self, url: str, timeout: float = 10.0, name: str = "webhook"):
        parsed = urllib.parse.urlsplit(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            # The value is a secret: name the setting's expected shape, never echo it.
            raise ConfigurationError("the alert webhook URL must be an http(s):// URL, "
                                     "e.g. https://hooks.slack.com/services/…")
        self.name = name
        self._url = url.strip()
        self._timeout = timeout
        self._secrets = _url_parts(self._url)

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, url=<secret>)"

    def deliver(self, alert: Alert) -> None:
        body = json.dumps(slack_payload(alert)).encode()
        request = urllib.request.Request(
            self._url, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8",
                     "User-Agent": "manufacturing-ingest-alerts"},
        )
        problem = None
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status = response.status
                answer = response.read(300)
            if not 200 <= status < 300:
                problem = f"webhook answered HTTP {status}{self._snippet(answer)}"
        except urllib.error.HTTPError as exc:
            problem = f"webhook answered HTTP {exc.code}{self._snippet(exc.read(300))}"
        except urllib.error.URLError as exc:
            problem = f"webhook unreachable: {self._redact(str(exc.reason))}"
        except (OSError, ValueError) as exc:  # timeouts, resets, malformed answers
            problem = f"webhook request failed: {type(exc).__name__}: {self._redact(str(exc))}"
        if problem is not None:
            # Raised outside the except blocks, so no chained exception carries the URL along.
            raise SinkError(problem)

    def _snippet(self, answer: bytes) -> str:
        text = answer.decode("utf-8", "replace").strip().splitlines()
        return f": {self._redact(text[0][:200])}" if text else ""

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<webhook>")
        return text


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The Slack message: fallback ``text`` plus blocks (header, text, fields, figures, link)."""
    fields = [(name, value) for name, value in (
        ("Severity", alert.severity.upper()),
        ("Asset", alert.asset),
        ("Check", alert.check),
        ("Partition", alert.partition),
        ("Kind", alert.kind.value),
    ) if value]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert.headline,
                                                                         _HEADER_CHARS)}},
    ]
    if alert.text:
        blocks.append(_section(_escape(alert.text)))
    blocks.append({"type": "section", "fields": [
        {"type": "mrkdwn", "text": f"*{name}*\n{_escape(str(value))}"} for name, value in fields
    ]})
    if alert.figures:
        lines = [f"• {_escape(name)}: {_escape(str(value))}"
                 for name, value in alert.figures.items()]
        blocks.append(_section("*Figures*\n" + "\n".join(lines)))
    if alert.run_url:
        blocks.append(_section(f"<{alert.run_url}|Open the run in Dagster>"))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(
        f"{alert.subject} · {alert.created_at:%Y-%m-%d %H:%M:%S} UTC · alert {alert.id}")}]})
    text = alert.headline + (f" — {alert.run_url}" if alert.run_url else "")
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_CHARS)}}


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _url_parts(url: str) -> list[str]:
    """The URL and the parts of it that hold the token, longest first, for redaction."""
    parsed = urllib.parse.urlsplit(url)
    parts = {url, parsed.path, parsed.query, urllib.parse.unquote(parsed.path),
             parsed.username or "", parsed.password or ""}
    parts.update(segment for segment in parsed.path.split("/") if len(segment) >= 6)
    return sorted((p for p in parts if p and p != "/"), key=len, reverse=True)

"""Stand-ins for the alert transports, on loopback: a chat webhook and an SMTP server.

Real servers (``http.server``, aiosmtpd) on 127.0.0.1 and a free port, so the sinks are tested
through their real clients. Shared by tests and benchmarks; both can be told to fail.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class WebhookRequest:
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON


class WebhookServer:
    """An incoming-webhook endpoint: answers ``ok`` on ``path``, 404 ``no_service`` elsewhere.

    ``fail_next(n)`` makes the next ``n`` requests on ``path`` answer ``status`` (500) instead;
    failed requests are counted in ``failed``, not recorded in ``requests``.
    """

    def __init__(self, path: str = "/services/T000/B000/XXXX"):
        self.path = path
        self.requests: list[WebhookRequest] = []
        self.failed = 0
        self._fail_left = 0
        self._fail_status = 500
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("start the WebhookServer first")
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}{self.path}"

    @property
    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests]

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail_left, self._fail_status = n, status

    def start(self) -> WebhookServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    if self.path != server.path:
                        status, answer = 404, b"no_service"
                    elif server._fail_left > 0:
                        server._fail_left -= 1
                        server.failed += 1
                        status, answer = server._fail_status, b"internal_error"
                    else:
                        server.requests.append(WebhookRequest(
                            self.path, dict(self.headers.items()), json.loads(raw)))
                        status, answer = 200, b"ok"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds the secret path; keep it off stderr

        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name="webhook-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._httpd = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None  # the authenticated user, if any


class SmtpServer:
    """An SMTP server (aiosmtpd) on loopback that keeps every message it accepts.

    With ``username``/``password`` it requires AUTH (PLAIN or LOGIN, over plain loopback) and
    records each attempt in ``auth_attempts`` as ``(mechanism, login, password)``.
    ``fail_next(n)`` answers the next ``n`` messages with a temporary 451; ``stall(seconds)``
    holds every ``MAIL FROM`` that long before accepting it (a slow relay), until
    ``stall(0)``. A client that gives up while stalled leaves no message behind.
    """

    def __init__(self, username: str | None = None, password: str | None = None):
        self.username = username
        self.password = password
        self.messages: list[ReceivedMail] = []
        self.auth_attempts: list[tuple[str, str, str]] = []
        self.failed = 0
        self._fail_left = 0
        self._stall = 0.0
        self._lock = threading.Lock()
        self._controller = None
        self.port = 0

    @property
    def host(self) -> str:
        return LOOPBACK

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._fail_left = n

    def stall(self, seconds: float) -> None:
        with self._lock:
            self._stall = seconds

    def start(self) -> SmtpServer:
        import asyncio

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        server = self

        class Handler:
            async def handle_MAIL(self, smtp, session, envelope, address, mail_options) -> str:
                with server._lock:
                    stall = server._stall
                if stall:
                    await asyncio.sleep(stall)
                envelope.mail_from = address
                envelope.mail_options.extend(mail_options)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope) -> str:
                with server._lock:
                    if server._fail_left > 0:
                        server._fail_left -= 1
                        server.failed += 1
                        return "451 4.3.0 Try again later"
                    message = email.message_from_bytes(envelope.original_content
                                                       or envelope.content,
                                                       policy=email.policy.default)
                    auth = session.auth_data if session.authenticated else None
                    login = auth.login.decode() if auth is not None else None
                    server.messages.append(ReceivedMail(
                        envelope.mail_from, list(envelope.rcpt_tos), message, login))
                return "250 Message accepted for delivery"

        def authenticator(smtp, session, envelope, mechanism, auth_data) -> AuthResult:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            login, password = auth_data.login.decode(), auth_data.password.decode()
            with server._lock:
                server.auth_attempts.append((mechanism, login, password))
            ok = (login, password) == (server.username, server.password)
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        self.port = free_port()
        auth = self.username is not None
        kwargs: dict[str, Any] = {}
        if auth:
            kwargs = {"authenticator": authenticator, "auth_required": True,
                      "auth_require_tls": False}
        class QuietController(Controller):
            def factory(self):
                # aiosmtpd warns about AUTH without TLS on every connection: fine on loopback.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return super().factory()

        self._controller = QuietController(Handler(), hostname=LOOPBACK, port=self.port,
                                           server_hostname="alerts.test", **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

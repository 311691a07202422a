"""A real S3 API server (moto in server mode) and a fault-injecting proxy, both on loopback."""

from __future__ import annotations

import http.client
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``moto_server`` as a child process; ``endpoint`` is its URL."""

    def __init__(self, log_path: Path, env: dict[str, str] | None = None):
        import os

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")
        script = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen([str(script), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"moto_server exited: see {log_path}") from None
                time.sleep(0.2)
        raise RuntimeError(f"moto_server did not answer on {self.endpoint} within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self._log.close()


SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


class FaultProxy:
    """An HTTP proxy in front of the S3 server that throttles, stalls and drops requests.

    Each request, by a seeded draw: answered 503 SlowDown; delayed, then forwarded; its
    connection reset without an answer; or forwarded untouched. Counts are kept per kind, and
    every request in ``requests`` as ``(method, path, SQS action or "")``. With all odds at 0 it
    is a counting proxy.
    """

    def __init__(self, upstream_port: int, seed: int = 1, slow_down: float = 0.15,
                 delay: float = 0.1, reset: float = 0.1, delay_seconds: float = 0.3):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.odds = (slow_down, delay, reset)
        self.delay_seconds = delay_seconds
        self.counts = {"slow_down": 0, "delay": 0, "reset": 0, "forwarded": 0}
        self.methods: dict[str, int] = {}
        self.requests: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                with proxy.lock:
                    proxy.requests.append((self.command, self.path, action))
                fate = proxy._draw(self.command)
                if fate == "slow_down":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                if fate == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    self.close_connection = True
                    return
                if fate == "delay":
                    time.sleep(proxy.delay_seconds)
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length",
                                           "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _draw(self, method: str) -> str:
        with self.lock:
            self.methods[method] = self.methods.get(method, 0) + 1
            roll = self.rng.random()
            slow_down, delay, reset = self.odds
            fate = ("slow_down" if roll < slow_down else
                    "delay" if roll < slow_down + delay else
                    "reset" if roll < slow_down + delay + reset else "forwarded")
            self.counts[fate] += 1
            return fate

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def is_list_request(request: tuple[str, str, str]) -> bool:
    """An S3 LIST (ListObjectsV2 or V1) among ``FaultProxy.requests``."""
    method, path, action = request
    if method != "GET" or action:
        return False
    bucket_path, _, query = path.partition("?")
    return bucket_path.strip("/").count("/") == 0 and ("list-type" in query or "prefix" in query
                                                       or not query)

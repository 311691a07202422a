"""A local Spark Connect server for the tests, started once per test session.

With ``pytest --spark-connect`` the engine's tests run on a Spark Connect session: the client
model of Databricks Connect and of Unity Catalog shared clusters, where the JVM is out of reach
(``spark._jvm`` raises), so a test passing there proves the engine needs nothing but public APIs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ConnectServer:
    """``manufacturing-ingest spark-server`` on a free loopback port: Spark's Connect server with
    the project's Delta settings, from this process's environment."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"sc://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        # Started the way a user starts one (``manufacturing-ingest spark-server``), so the
        # Connect pass of the suite runs on exactly that server.
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("manufacturing-ingest")), "spark-server",
             "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MANUFACTURING_SPARK_REMOTE": ""},
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Spark Connect server exited with {self.process.returncode}:"
                                   f"\n{self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Spark Connect server not listening after {START_TIMEOUT_SECONDS} s; "
                           f"see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

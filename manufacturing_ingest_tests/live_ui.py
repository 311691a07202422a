"""A live Dagster deployment on loopback for the UI tests: ``dagster-webserver`` and
``dagster-daemon run`` over the project's own workspace (``workspace.yaml``: the module
``manufacturing_ingest.definitions``, as ``make dev`` and the production services load it), with
the instance config ``make dev`` ships (``dagster.yaml``), each in its own process group.

``graphql`` posts to the webserver's ``/graphql``, the endpoint the UI itself calls.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from manufacturing_ingest_tests.s3_server import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 180

_LOCATION_STATUS = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


class LiveDagster:
    """The webserver (``url``) and the daemon of one instance under ``root/dagster_home``
    (created, or the one a test made there, such as the demo's);
    ``env`` is the environment both run with (settings, AWS, alert sinks)."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dagster.yaml", self.home / "dagster.yaml")  # what `make dev` does
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "DAGSTER_HOME": str(self.home),
            "MANUFACTURING_UI_URL": self.url,
        }
        self.webserver_log = root / "webserver.log"
        self.daemon_log = root / "daemon.log"
        self._processes: list[subprocess.Popen] = []

    def start(self, daemon: bool = True) -> LiveDagster:
        """Start the webserver, and the daemon unless ``daemon`` is false (a UI that only shows
        what the instance holds: no sensor ticks, no runs launched)."""
        # Create the instance's storage first, so the two processes do not race to create the
        # same SQLite schema.
        import dagster as dg

        with dg.DagsterInstance.from_config(str(self.home)):
            pass
        workspace = str(REPO / "workspace.yaml")
        self._spawn([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port),
                     "-w", workspace], self.webserver_log)
        if daemon:
            self._spawn([str(BIN / "dagster-daemon"), "run", "-w", workspace], self.daemon_log)
        self._wait_until_loaded()
        return self

    def _spawn(self, command: list[str], log_path: Path) -> None:
        with log_path.open("ab") as log:
            self._processes.append(subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))

    def _wait_until_loaded(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n"
                                       f"{self.tail()}")
            try:
                data = self.graphql(_LOCATION_STATUS)["workspaceOrError"]
                entries = data.get("locationEntries") or []
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [e["locationOrLoadError"] for e in entries
                              if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if errors:
                        self.stop()
                        raise RuntimeError(f"the code location failed to load: {errors}")
                    return
                last = json.dumps(data)[:500]
            except (OSError, GraphQLError) as exc:
                last = str(exc)
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the webserver did not load the workspace within "
                           f"{START_TIMEOUT_SECONDS} s ({last}):\n{self.tail()}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None,
                timeout: float = 60) -> dict[str, Any]:
        """The ``data`` of a GraphQL request to the webserver; ``GraphQLError`` on errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code}: {exc.read()[:2000]!r}") from None
        if answer.get("errors"):
            raise GraphQLError(json.dumps(answer["errors"])[:2000])
        return answer["data"]

    def instance(self):
        """A ``DagsterInstance`` on the same storage, for reading what the UI would show."""
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))

    def tail(self, lines: int = 40) -> str:
        parts = []
        for log in (self.webserver_log, self.daemon_log):
            if log.exists():
                text = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        for process in self._processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self._processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._processes = []


class GraphQLError(RuntimeError):
    """The webserver answered a GraphQL request with errors."""


def wait_until(what: str, condition: Callable[[], Any], live: LiveDagster,
               timeout: float, interval: float = 1.0) -> Any:
    """``condition()``'s first truthy value; fails the test with the servers' logs on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"no {what} within {timeout:.0f} s\n{live.tail()}")

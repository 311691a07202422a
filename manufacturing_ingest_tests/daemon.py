"""A live ``dagster-daemon run`` on loopback for tests: its own instance, workspace and
process group, so a test can restart it and always stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


class Daemon:
    """``dagster-daemon run`` over a workspace of ``definitions`` (a Python module's text), in
    its own process group; ``env`` must name its ``DAGSTER_HOME``."""

    def __init__(self, root: Path, env: dict[str, str], definitions: str):
        self.root = root
        self.env = env
        self.log = root / "daemon.log"
        self.process: subprocess.Popen | None = None
        (root / "defs.py").write_text(definitions)
        (root / "workspace.yaml").write_text(
            f"load_from:\n  - python_file:\n      relative_path: defs.py\n"
            f"      working_directory: {root}\n")

    def start(self) -> None:
        # Create the instance's storage first: the daemon and its code server would otherwise
        # both create the same SQLite schema at once, and one of them may fail on the race.
        import dagster as dg

        with dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"]):
            pass
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(self.root / "workspace.yaml")],
                cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None

    def kill(self) -> None:
        """SIGKILL the daemon and every process it started: a crash, nothing finishes."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])



def wait_for(what: str, condition: Callable[[], bool], daemon: Daemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    pytest.fail(f"no {what} within {timeout:.0f} s; daemon log:\n{daemon.tail()}")

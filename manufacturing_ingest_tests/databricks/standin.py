"""A Databricks workspace on loopback: the REST endpoints dagster-databricks' step launcher calls.

It serves DBFS (create, add-block, close, put, read, get-status, mkdirs, delete), jobs
(runs submit, get, get-output, cancel), clusters get and the OAuth endpoints a service principal
signs in with (``/oidc/...``), and records every request. A submitted
``spark_python_task`` runs as a real local process (``cluster_main.py``): a Delta-enabled Spark
session is started first, as a cluster's is, then the task's file runs as ``__main__``.

DBFS lives in a local folder: ``dbfs:/x``, the API path ``/x`` and the FUSE path ``/dbfs/x``
(as Databricks mounts it on the cluster) all name ``<dbfs_root>/x``. A run's life cycle is
PENDING → RUNNING → TERMINATED with result SUCCESS or FAILED, as Databricks reports it.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CLUSTER_MAIN = Path(__file__).with_name("cluster_main.py")
CLUSTER_ID = "0101-000000-standin"
RUNTIME_VERSION = "17.3"
# What a cluster process inherits from this machine: enough to run Python and Java, no secrets.
MACHINE_VARIABLES = ("PATH", "HOME", "LANG", "JAVA_HOME", "TMPDIR", "MANUFACTURING_SPARK_JARS")


@dataclass(frozen=True)
class Request:
    """One request as the workspace received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body) if self.body else {}


class ApiError(Exception):
    """An error answer in Databricks' shape: ``{"error_code": …, "message": …}``."""

    def __init__(self, status: HTTPStatus, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


@dataclass
class JobRun:
    """A submitted one-time run and the process that plays its cluster's driver."""

    run_id: int
    task: dict
    libraries: list
    process: subprocess.Popen | None = None
    polled: int = 0
    canceled: bool = False
    log_path: Path | None = None
    error: str = ""
    error_trace: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    reported: list[str] = field(default_factory=list)  # each life cycle state runs/get answered

    def state(self) -> dict:
        if self.process is None or self.polled <= 1:
            # A new run waits for its cluster first; the first look always sees PENDING.
            return {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}
        if not self.done.is_set():
            return {"life_cycle_state": "RUNNING", "state_message": "In run"}
        if self.canceled:
            return {"life_cycle_state": "TERMINATED", "result_state": "CANCELED",
                    "state_message": "Run cancelled."}
        if self.process.returncode == 0:
            return {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS",
                    "state_message": ""}
        return {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                "state_message": "Workload failed, see run output for details"}


class DatabricksWorkspace:
    """The stand-in workspace: start it, point ``DATABRICKS_HOST`` at ``host``, stop it."""

    def __init__(self, root: Path):
        self.dbfs_root = root / "dbfs"
        self.dbfs_root.mkdir(parents=True, exist_ok=True)
        self.driver_logs = root / "driver-logs"
        self.driver_logs.mkdir(exist_ok=True)
        self.requests: list[Request] = []
        self.runs: dict[int, JobRun] = {}
        self._handles: dict[int, Path] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        for run in self.runs.values():
            if run.process is not None and run.process.poll() is None:
                run.process.kill()
        self._server.shutdown()
        self._server.server_close()

    def local_path(self, dbfs_path: str) -> Path:
        """Where ``dbfs:/x``, ``/x`` (the API) or ``/dbfs/x`` (FUSE on the cluster) lives here."""
        path = dbfs_path
        if path.startswith("dbfs:"):
            path = path[len("dbfs:"):]
        elif path.startswith("/dbfs/"):
            path = path[len("/dbfs"):]
        parts = [p for p in path.split("/") if p]
        if not parts or ".." in parts:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Path must be absolute: {dbfs_path}")
        return self.dbfs_root.joinpath(*parts)

    def answer(self, request: Request) -> dict:
        with self._lock:
            self.requests.append(request)
        route = ROUTES.get((request.method, request.path))
        if route is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "ENDPOINT_NOT_FOUND",
                           f"No API found for '{request.method} {request.path}'")
        return route(self, request)

    # DBFS

    def dbfs_create(self, request: Request) -> dict:
        body = request.json()
        path = self.local_path(body["path"])
        if path.exists() and not body.get("overwrite"):
            raise ApiError(HTTPStatus.BAD_REQUEST, "RESOURCE_ALREADY_EXISTS",
                           f"A file or directory already exists at the input path {body['path']}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        with self._lock:
            handle = next(self._ids)
            self._handles[handle] = path
        return {"handle": handle}

    def dbfs_add_block(self, request: Request) -> dict:
        body = request.json()
        with self._path_of(body["handle"]).open("ab") as out:
            out.write(base64.b64decode(body["data"]))
        return {}

    def dbfs_close(self, request: Request) -> dict:
        handle = request.json()["handle"]
        self._path_of(handle)
        with self._lock:
            del self._handles[handle]
        return {}

    def dbfs_put(self, request: Request) -> dict:
        body = request.json()
        path = self.local_path(body["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(body.get("contents", "")))
        return {}

    def dbfs_read(self, request: Request) -> dict:
        path = self._existing(request.query["path"])
        offset = int(request.query.get("offset", 0))
        length = int(request.query.get("length", 512 * 1024))
        with path.open("rb") as source:
            source.seek(offset)
            data = source.read(length)
        return {"bytes_read": len(data), "data": base64.b64encode(data).decode()}

    def dbfs_get_status(self, request: Request) -> dict:
        path = self._existing(request.query["path"])
        return {"path": request.query["path"], "is_dir": path.is_dir(),
                "file_size": 0 if path.is_dir() else path.stat().st_size}

    def dbfs_mkdirs(self, request: Request) -> dict:
        self.local_path(request.json()["path"]).mkdir(parents=True, exist_ok=True)
        return {}

    def dbfs_delete(self, request: Request) -> dict:
        path = self.local_path(request.json()["path"])
        if path.is_file():
            path.unlink()
        return {}

    def _existing(self, dbfs_path: str) -> Path:
        path = self.local_path(dbfs_path)
        if not path.exists():
            raise ApiError(HTTPStatus.NOT_FOUND, "RESOURCE_DOES_NOT_EXIST",
                           f"No file or directory exists on path {dbfs_path}.")
        return path

    def _path_of(self, handle: int) -> Path:
        with self._lock:
            path = self._handles.get(handle)
        if path is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "RESOURCE_DOES_NOT_EXIST",
                           f"Handle {handle} does not exist.")
        return path

    # OAuth for service principals (machine-to-machine)

    def oauth_endpoints(self, request: Request) -> dict:
        return {"authorization_endpoint": f"{self.host}/oidc/v1/authorize",
                "token_endpoint": f"{self.host}/oidc/v1/token"}

    def oauth_token(self, request: Request) -> dict:
        if not request.headers.get("Authorization", "").startswith("Basic "):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "invalid_client",
                           "Client authentication failed")
        return {"access_token": f"standin-oauth-{next(self._ids)}", "token_type": "Bearer",
                "expires_in": 3600, "scope": "all-apis"}

    # Jobs and clusters

    def runs_submit(self, request: Request) -> dict:
        (task,) = request.json()["tasks"]
        python_task = task.get("spark_python_task")
        if python_task is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           "this workspace runs spark_python_task tasks only")
        if task.get("existing_cluster_id") not in (None, CLUSTER_ID):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Cluster {task['existing_cluster_id']} does not exist")
        with self._lock:
            run = JobRun(run_id=next(self._ids), task=task, libraries=task.get("libraries", []))
            self.runs[run.run_id] = run
        self._start(run, python_task)
        return {"run_id": run.run_id}

    def runs_get(self, request: Request) -> dict:
        run = self._run(request.query.get("run_id"))
        run.polled += 1
        state = run.state()
        run.reported.append(state["life_cycle_state"])
        return {
            "run_id": run.run_id,
            "run_name": "stand-in run",
            "state": state,
            "run_page_url": f"{self.host}/#job/runs/{run.run_id}",
            "tasks": [{"task_key": run.task.get("task_key", "task"), "run_id": run.run_id,
                       "cluster_instance": {"cluster_id": CLUSTER_ID}}],
        }

    def runs_get_output(self, request: Request) -> dict:
        run = self._run(request.query.get("run_id"))
        output = {"metadata": {"run_id": run.run_id, "state": run.state()}}
        if run.error:
            output.update(error=run.error, error_trace=run.error_trace)
        return output

    def runs_cancel(self, request: Request) -> dict:
        run = self._run(request.json().get("run_id"))
        if run.process is not None and run.process.poll() is None:
            run.canceled = True
            run.process.terminate()
        return {}

    def clusters_get(self, request: Request) -> dict:
        if request.query.get("cluster_id") != CLUSTER_ID:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Cluster {request.query.get('cluster_id')} does not exist")
        return {"cluster_id": CLUSTER_ID, "state": "RUNNING",
                "spark_version": f"{RUNTIME_VERSION}.x-scala2.12"}

    def _run(self, run_id: object) -> JobRun:
        run = self.runs.get(int(str(run_id))) if str(run_id).isdigit() else None
        if run is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Run {run_id} does not exist.")
        return run

    def _start(self, run: JobRun, python_task: dict) -> None:
        """Run the task as a cluster would: files and ``/dbfs/`` parameters through FUSE."""
        script = self.local_path(python_task["python_file"])
        parameters = [str(self.local_path(p)) if p.startswith(("/dbfs/", "dbfs:")) else p
                      for p in python_task.get("parameters", [])]
        env = {name: os.environ[name] for name in MACHINE_VARIABLES if name in os.environ}
        env["DATABRICKS_RUNTIME_VERSION"] = RUNTIME_VERSION
        workdir = self.driver_logs / str(run.run_id)
        workdir.mkdir()
        run.log_path = workdir / "driver.log"
        log = run.log_path.open("wb")
        run.process = subprocess.Popen(
            [sys.executable, str(CLUSTER_MAIN), str(script), *parameters],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._wait, args=(run, log), daemon=True).start()

    def _wait(self, run: JobRun, log) -> None:
        run.process.wait()
        log.close()
        if run.process.returncode != 0:
            trace = run.log_path.read_text(errors="replace")
            lines = [line for line in trace.splitlines() if line.strip()]
            run.error = lines[-1] if lines else f"exit code {run.process.returncode}"
            run.error_trace = trace
        run.done.set()


ROUTES = {
    ("POST", "/api/2.0/dbfs/create"): DatabricksWorkspace.dbfs_create,
    ("POST", "/api/2.0/dbfs/add-block"): DatabricksWorkspace.dbfs_add_block,
    ("POST", "/api/2.0/dbfs/close"): DatabricksWorkspace.dbfs_close,
    ("POST", "/api/2.0/dbfs/put"): DatabricksWorkspace.dbfs_put,
    ("GET", "/api/2.0/dbfs/read"): DatabricksWorkspace.dbfs_read,
    ("GET", "/api/2.0/dbfs/get-status"): DatabricksWorkspace.dbfs_get_status,
    ("POST", "/api/2.0/dbfs/mkdirs"): DatabricksWorkspace.dbfs_mkdirs,
    ("POST", "/api/2.0/dbfs/delete"): DatabricksWorkspace.dbfs_delete,
    **{(method, f"/api/{version}/jobs/runs/{name}"): route
       for version in ("2.1", "2.2")
       for method, name, route in (
           ("POST", "submit", DatabricksWorkspace.runs_submit),
           ("GET", "get", DatabricksWorkspace.runs_get),
           ("GET", "get-output", DatabricksWorkspace.runs_get_output),
           ("POST", "cancel", DatabricksWorkspace.runs_cancel),
       )},
    ("GET", "/oidc/.well-known/oauth-authorization-server"): DatabricksWorkspace.oauth_endpoints,
    ("POST", "/oidc/v1/token"): DatabricksWorkspace.oauth_token,
    ("GET", "/api/2.1/clusters/get"): DatabricksWorkspace.clusters_get,
    ("GET", "/api/2.0/clusters/get"): DatabricksWorkspace.clusters_get,
}


def _handler(workspace: DatabricksWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command, path=url.path,
                query={k: v[-1] for k, v in parse_qs(url.query).items()},
                headers=dict(self.headers.items()), body=self.rfile.read(length),
            )
            try:
                status, answer = HTTPStatus.OK, workspace.answer(request)
            except ApiError as error:
                status = error.status
                answer = {"error_code": error.error_code, "message": error.message}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # the recorded requests are the log

    return Handler

"""A Databricks workspace on loopback: the REST endpoints dagster-databricks calls.

It serves, and records every request to (``workspace.requests``, bodies included):

- DBFS (``/api/2.0/dbfs/``: create, add-block, close, put, read, get-status, mkdirs, delete),
  for the step launcher and the classic Pipes client;
- the Files API on Unity Catalog volumes, as databricks-sdk 0.60 calls it:
  ``/api/2.0/fs/files{path}`` (PUT upload with ``overwrite``, GET download with ``Range`` and
  ``If-Unmodified-Since``, HEAD metadata, DELETE) and ``/api/2.0/fs/directories{path}`` (PUT
  create with parents, GET list with ``page_size``/``page_token``, HEAD, DELETE of an empty
  directory); a multipart upload (``POST …?action=initiate-upload``, which the SDK's
  experimental client sends for 5 MiB and more) is opened, then its presigned part URLs are
  refused as in a workspace without them;
- jobs (``/api/2.1`` and ``/api/2.2``: runs submit, get, get-output, cancel), clusters get, and
  the OAuth endpoints a service principal signs in with (``/oidc/...``).

A submitted task runs as a real local process (``cluster_main.py``, Delta-enabled local Spark
started first): a ``spark_python_task`` on the stand-in cluster (``CLUSTER_ID``), or, on
serverless compute (a task with an ``environment_key`` naming one of the body's
``environments``), a ``spark_python_task`` or a ``python_wheel_task`` whose entry point is looked
up in the installed distribution, as Databricks does. A run's life cycle is PENDING → RUNNING →
TERMINATED with result SUCCESS, FAILED or CANCELED, as Databricks reports it.

Storage is local folders. DBFS: ``dbfs:/x``, the API path ``/x`` and the FUSE path ``/dbfs/x``
(as Databricks mounts it on a cluster) all name ``<root>/dbfs/x``. Volumes:
``/Volumes/<catalog>/<schema>/<volume>/x`` is ``<root>/volumes/<catalog>/<schema>/<volume>/x``
(Databricks mounts volumes at ``/Volumes`` in a task's process; here a task's file and its
``/Volumes/…``, ``/dbfs/…`` and Pipes parameters are rewritten to the local folders). A volume
exists once ``create_volume`` made it; requests for any other answer 404.
"""

from __future__ import annotations

import base64
import email.utils
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from stat import S_ISDIR
from urllib.parse import parse_qs, unquote, urlsplit

from dagster_pipes import decode_param, encode_param

CLUSTER_MAIN = Path(__file__).with_name("cluster_main.py")
CLUSTER_ID = "0101-000000-standin"
RUNTIME_VERSION = "17.3"
# What a task process inherits from this machine: enough to run Python and Java, no secrets.
MACHINE_VARIABLES = ("PATH", "HOME", "LANG", "JAVA_HOME", "TMPDIR", "MANUFACTURING_SPARK_JARS")
# The CLI parameters through which dagster-pipes hands a task its context and messages locations.
PIPES_PARAMETERS = ("--dagster-pipes-context", "--dagster-pipes-messages")
FILES_API = "/api/2.0/fs/files"
DIRECTORIES_API = "/api/2.0/fs/directories"
MAX_PAGE_SIZE = 1000  # the Files API's own cap on a directory listing's page
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


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

    def header(self, name: str) -> str | None:
        """A header by name, in any case (HTTP header names are case-insensitive)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: a JSON document, or the Files API's raw bytes and header-only answers."""

    status: HTTPStatus = HTTPStatus.OK
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, document: dict, status: HTTPStatus = HTTPStatus.OK) -> Answer:
        return cls(status, json.dumps(document).encode(), {"Content-Type": "application/json"})


class ApiError(Exception):
    """An error answer in Databricks' shape: ``{"error_code": …, "message": …}``, and for the
    Files API's own conditions an ``ErrorInfo`` detail naming the reason."""

    def __init__(self, status: HTTPStatus, error_code: str, message: str, reason: str = ""):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message
        self.reason = reason

    def document(self) -> dict:
        document = {"error_code": self.error_code, "message": self.message}
        if self.reason:
            document["details"] = [{"@type": ERROR_INFO, "reason": self.reason}]
        return document


@dataclass
class JobRun:
    """A submitted one-time run and the process that plays its compute's driver."""

    run_id: int
    task: dict
    libraries: list
    serverless: bool = False  # the task ran on serverless compute (an environment, no cluster)
    environment: dict | None = None  # the submitted {"environment_key", "spec"} it ran in
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
            # A new run waits for its compute first; the first look always sees PENDING.
            waiting = "Waiting for compute" if self.serverless else "Waiting for cluster"
            return {"life_cycle_state": "PENDING", "state_message": waiting}
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


def serverless_runtime_version(spec: dict) -> str:
    """``DATABRICKS_RUNTIME_VERSION`` in a serverless task: ``client.<version>.0``."""
    return f"client.{spec.get('environment_version') or spec.get('client')}.0"


class DatabricksWorkspace:
    """The stand-in workspace: start it, point ``DATABRICKS_HOST`` at ``host``, stop it."""

    def __init__(self, root: Path):
        self.dbfs_root = root / "dbfs"
        self.dbfs_root.mkdir(parents=True, exist_ok=True)
        self.volumes_root = root / "volumes"
        self.volumes_root.mkdir(exist_ok=True)
        self._uploads = root / "uploads-in-flight"  # a Files API upload lands here, then moves
        self._uploads.mkdir(exist_ok=True)
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

    def volume_local_path(self, path: str) -> Path:
        """Where ``/Volumes/<catalog>/<schema>/<volume>/rest`` lives here (whether or not it
        exists): ``<root>/volumes/<catalog>/<schema>/<volume>/rest``. A path with ``..`` or one
        that names no volume is refused as Databricks refuses it (400)."""
        parts = [p for p in path.split("/") if p]
        if not path.startswith("/Volumes/") or len(parts) < 4 or {".", ".."} & set(parts):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Invalid path: {path}. Expected an absolute path "
                           "/Volumes/<catalog>/<schema>/<volume>/<path> without '.' or '..'")
        return self.volumes_root.joinpath(*parts[1:])

    def create_volume(self, catalog: str, schema: str, volume: str) -> Path:
        """Create the volume ``catalog.schema.volume`` (again is a no-op): its local folder."""
        for name in (catalog, schema, volume):
            if not name or "/" in name or name in (".", ".."):
                raise ValueError(f"not a Unity Catalog name: {name!r}")
        folder = self.volumes_root / catalog / schema / volume
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def local_parameters(self, parameters: list[str]) -> list[str]:
        """A task's parameters as its process sees them: ``/dbfs/…``, ``dbfs:…`` and
        ``/Volumes/…`` paths, and the ``path`` inside Pipes' encoded context and messages
        parameters, rewritten to the local folders where they live here."""
        previous = [None, *parameters[:-1]]
        return [self._local_pipes_parameter(p) if before in PIPES_PARAMETERS
                else self._local_parameter(p)
                for before, p in zip(previous, parameters, strict=True)]

    def answer(self, request: Request) -> dict | Answer:
        with self._lock:
            self.requests.append(request)
        route = ROUTES.get((request.method, request.path))
        if route is not None:
            return route(self, request)
        for prefix in (FILES_API, DIRECTORIES_API):
            if request.path.startswith(prefix + "/"):
                path_route = PATH_ROUTES.get((request.method, prefix))
                if path_route is not None:
                    return path_route(self, request, unquote(request.path[len(prefix):]))
        raise ApiError(HTTPStatus.NOT_FOUND, "ENDPOINT_NOT_FOUND",
                       f"No API found for '{request.method} {request.path}'")

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

    # Files API: files on Unity Catalog volumes

    def files_upload(self, request: Request, path: str) -> Answer:
        """PUT: the body is the file. ``overwrite`` true or absent replaces a file; false keeps
        it and answers 409, as the Files API documents."""
        local = self._in_volume(path)
        if local.is_dir():
            raise ApiError(HTTPStatus.CONFLICT, "ALREADY_EXISTS",
                           f"A directory already exists at the path {path}.")
        if local.exists() and request.query.get("overwrite", "true").lower() == "false":
            raise ApiError(HTTPStatus.CONFLICT, "ALREADY_EXISTS",
                           f"The file being created already exists: {path}.")
        self._directory_at(local.parent, path)
        with tempfile.NamedTemporaryFile(dir=self._uploads, delete=False) as staged:
            staged.write(request.body)
        os.replace(staged.name, local)  # readers see the old file or the whole new one
        return Answer(HTTPStatus.NO_CONTENT)

    def files_download(self, request: Request, path: str) -> Answer:
        """GET: the bytes, whole or the ``Range`` asked for (206), unless the file changed after
        ``If-Unmodified-Since`` (412)."""
        local, headers = self._file_headers(request, path)
        data = local.read_bytes()
        wanted = _byte_range(request.header("Range"), len(data))
        if wanted is None:
            return Answer(HTTPStatus.OK, data, headers)
        start, end = wanted
        headers.update({"Content-Range": f"bytes {start}-{end}/{len(data)}"})
        headers.pop("Content-Length")
        return Answer(HTTPStatus.PARTIAL_CONTENT, data[start:end + 1], headers)

    def files_metadata(self, request: Request, path: str) -> Answer:
        """HEAD: a download's headers, no body."""
        _, headers = self._file_headers(request, path)
        return Answer(HTTPStatus.OK, b"", headers)

    def files_delete(self, request: Request, path: str) -> Answer:
        local = self._in_volume(path)
        if not local.is_file():
            raise _file_not_found(path)
        local.unlink()
        return Answer(HTTPStatus.NO_CONTENT)

    def files_action(self, request: Request, path: str) -> dict:
        """POST ``?action=initiate-upload``: the multipart upload databricks-sdk's experimental
        Files client starts for 5 MiB and more. The session opens; its part URLs are then
        refused (``create_upload_part_urls``), as in a workspace without presigned URLs."""
        if request.query.get("action") != "initiate-upload":
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Unsupported action {request.query.get('action')!r} for {path}")
        local = self._in_volume(path)
        if local.exists() and request.query.get("overwrite", "true").lower() == "false":
            raise ApiError(HTTPStatus.CONFLICT, "ALREADY_EXISTS",
                           f"The file being created already exists: {path}.")
        return {"multipart_upload": {"session_token": f"standin-upload-{next(self._ids)}"}}

    def create_upload_part_urls(self, request: Request) -> dict:
        raise ApiError(HTTPStatus.FORBIDDEN, "PERMISSION_DENIED",
                       "Presigned URLs API is not enabled for this workspace.")

    def create_abort_upload_url(self, request: Request) -> dict:
        raise ApiError(HTTPStatus.FORBIDDEN, "PERMISSION_DENIED",
                       "Presigned URLs API is not enabled for this workspace.")

    def _file_headers(self, request: Request, path: str) -> tuple[Path, dict[str, str]]:
        """The file and its download headers, or 404 / 412 as the Files API answers."""
        local = self._in_volume(path)
        if not local.is_file():
            raise _file_not_found(path)
        stat = local.stat()
        since = _http_date(request.header("If-Unmodified-Since"))
        if since is not None and int(stat.st_mtime) > since:
            raise ApiError(HTTPStatus.PRECONDITION_FAILED, "FAILED_PRECONDITION",
                           f"The file {path} was modified after the If-Unmodified-Since time.")
        return local, {"Content-Type": "application/octet-stream",
                       "Content-Length": str(stat.st_size), "Accept-Ranges": "bytes",
                       "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True)}

    # Files API: directories on Unity Catalog volumes

    def directories_create(self, request: Request, path: str) -> Answer:
        """PUT: ``mkdir -p``; an existing directory is fine, a file in the way is 409."""
        self._directory_at(self._in_volume(path), path)
        return Answer(HTTPStatus.NO_CONTENT)

    def directories_list(self, request: Request, path: str) -> dict:
        """GET: one page of entries, by name; ``next_page_token`` while more remain."""
        local = self._existing_directory(path)
        size = _page_size(request.query.get("page_size"))
        after = _token_name(request.query.get("page_token"))
        names = sorted(n for n in os.listdir(local) if after is None or n > after)
        page = names[:size]
        entries = (self._entry(path, local / name) for name in page)
        answer = {"contents": [entry for entry in entries if entry is not None]}
        if len(names) > size:
            answer["next_page_token"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return answer

    def directories_metadata(self, request: Request, path: str) -> Answer:
        self._existing_directory(path)
        return Answer(HTTPStatus.OK)

    def directories_delete(self, request: Request, path: str) -> Answer:
        """DELETE: an empty directory only (400 otherwise), never the volume itself."""
        local = self._existing_directory(path)
        if len([p for p in path.split("/") if p]) == 4:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"The root directory of a volume cannot be deleted: {path}")
        if any(local.iterdir()):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"The directory being deleted is not empty: {path}",
                           reason="FILES_API_DIRECTORY_IS_NOT_EMPTY")
        local.rmdir()
        return Answer(HTTPStatus.NO_CONTENT)

    def _entry(self, directory: str, local: Path) -> dict | None:
        """A listing's entry; None for one deleted since the directory was read."""
        try:
            info = local.stat()
        except FileNotFoundError:
            return None
        is_directory = S_ISDIR(info.st_mode)
        entry = {"path": f"{directory.rstrip('/')}/{local.name}", "name": local.name,
                 "is_directory": is_directory, "last_modified": int(info.st_mtime * 1000)}
        if is_directory:
            entry["path"] += "/"
        else:
            entry["file_size"] = info.st_size
        return entry

    def _existing_directory(self, path: str) -> Path:
        local = self._in_volume(path)
        if not local.is_dir():
            raise ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND",
                           f"The directory being accessed is not found: {path}",
                           reason="FILES_API_DIRECTORY_IS_NOT_FOUND")
        return local

    def _in_volume(self, path: str) -> Path:
        """The local path of ``path``, in a volume that exists (404 otherwise)."""
        local = self.volume_local_path(path)
        catalog, schema, volume = [p for p in path.split("/") if p][1:4]
        if not (self.volumes_root / catalog / schema / volume).is_dir():
            raise ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND",
                           f"Volume '{catalog}.{schema}.{volume}' does not exist.")
        return local

    def _directory_at(self, local: Path, path: str) -> None:
        """Make ``local`` a directory, with its parents, unless a file stands in the way."""
        try:
            local.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ApiError(HTTPStatus.CONFLICT, "ALREADY_EXISTS",
                           f"A file already exists at {path} or at one of its parents.") from None

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
        body = request.json()
        (task,) = body["tasks"]
        environment = self._environment_of(task, body.get("environments") or [])
        if environment is None:
            self._check_cluster_task(task)
        else:
            self._check_serverless_task(task, environment)
        command = self._command(task, serverless=environment is not None)
        with self._lock:
            run = JobRun(run_id=next(self._ids), task=task, libraries=task.get("libraries", []),
                         serverless=environment is not None, environment=environment)
            self.runs[run.run_id] = run
        self._start(run, command)
        return {"run_id": run.run_id}

    def runs_get(self, request: Request) -> dict:
        run = self._run(request.query.get("run_id"))
        run.polled += 1
        state = run.state()
        run.reported.append(state["life_cycle_state"])
        task = {"task_key": run.task.get("task_key", "task"), "run_id": run.run_id}
        if run.serverless:
            task["environment_key"] = run.task["environment_key"]
        else:
            task["cluster_instance"] = {"cluster_id": CLUSTER_ID}
        return {
            "run_id": run.run_id,
            "run_name": "stand-in run",
            "state": state,
            "run_page_url": f"{self.host}/#job/runs/{run.run_id}",
            "tasks": [task],
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

    @staticmethod
    def _environment_of(task: dict, environments: list[dict]) -> dict | None:
        """The environment a serverless task names (``environment_key``), or None."""
        key = task.get("environment_key")
        if key is None:
            return None
        environment = next((e for e in environments if e.get("environment_key") == key), None)
        if environment is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Environment key '{key}' of task '{task.get('task_key')}' is not "
                           "defined in the job's environments")
        return environment

    @staticmethod
    def _check_cluster_task(task: dict) -> None:
        if task.get("spark_python_task") is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           "this workspace runs spark_python_task tasks only on its cluster "
                           "(python_wheel_task on serverless compute)")
        if task.get("existing_cluster_id") not in (None, CLUSTER_ID):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Cluster {task['existing_cluster_id']} does not exist")

    def _check_serverless_task(self, task: dict, environment: dict) -> None:
        """A serverless task: a Python task, no cluster, no task libraries (dependencies belong
        in the environment), and every volume or DBFS dependency present in storage."""
        if not ({"spark_python_task", "python_wheel_task"} & task.keys()):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           "this workspace runs spark_python_task and python_wheel_task tasks "
                           "on serverless compute")
        for cluster in ("existing_cluster_id", "new_cluster", "job_cluster_key"):
            if cluster in task:
                raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                               f"Task '{task.get('task_key')}' names both environment_key and "
                               f"{cluster}; a serverless task runs on no cluster")
        if task.get("libraries"):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           "Libraries field is not supported for serverless task, please "
                           "specify libraries in environment.")
        spec = environment.get("spec") or {}
        if not (spec.get("client") or spec.get("environment_version")):
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Environment '{environment['environment_key']}' must set "
                           "environment_version (or client)")
        for dependency in [*spec.get("dependencies", []), *spec.get("jar_dependencies", [])]:
            self._check_dependency(dependency.strip(), environment["environment_key"])

    def _check_dependency(self, dependency: str, key: str) -> None:
        if not dependency.startswith(("/Volumes/", "dbfs:/")):
            return  # a requirement specifier or URL: pip's business, not the workspace's storage
        try:
            local = (self._in_volume(dependency) if dependency.startswith("/Volumes/")
                     else self.local_path(dependency))
        except ApiError:
            local = None
        if local is None or not local.is_file():
            raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                           f"Dependency {dependency} of environment '{key}' does not exist")

    def _command(self, task: dict, serverless: bool) -> list[str]:
        """``cluster_main.py``'s arguments for the task, its files and parameters made local."""
        mode = ["--serverless"] if serverless else []
        wheel = task.get("python_wheel_task")
        if wheel is not None:
            named = [f"--{k}={v}" for k, v in (wheel.get("named_parameters") or {}).items()]
            return [*mode, "--wheel", wheel["package_name"], wheel["entry_point"],
                    *self.local_parameters([*wheel.get("parameters", []), *named])]
        python_task = task["spark_python_task"]
        python_file = python_task["python_file"]
        script = (self.volume_local_path(python_file) if python_file.startswith("/Volumes/")
                  else self.local_path(python_file))
        return [*mode, str(script), *self.local_parameters(python_task.get("parameters", []))]

    def _local_parameter(self, parameter: str) -> str:
        if parameter.startswith(("/dbfs/", "dbfs:")):
            return str(self.local_path(parameter))
        if parameter.startswith("/Volumes/"):
            try:
                return str(self.volume_local_path(parameter))
            except ApiError:
                return parameter  # names no volume: the task sees it as Databricks would
        return parameter

    def _local_pipes_parameter(self, parameter: str) -> str:
        """Pipes' ``{"path": …}`` parameter (base64 of zlib of JSON), its path made local."""
        try:
            params = decode_param(parameter)
        except Exception:  # noqa: BLE001 (not Pipes' encoding: the task gets it unchanged)
            return parameter
        if not isinstance(params, dict) or not isinstance(params.get("path"), str):
            return parameter
        return encode_param({**params, "path": self._local_parameter(params["path"])})

    def _start(self, run: JobRun, command: list[str]) -> None:
        """Run the task as its compute would: the runtime's version, the machine's basics."""
        env = {name: os.environ[name] for name in MACHINE_VARIABLES if name in os.environ}
        env["DATABRICKS_RUNTIME_VERSION"] = (
            serverless_runtime_version(run.environment.get("spec") or {}) if run.serverless
            else RUNTIME_VERSION)
        workdir = self.driver_logs / str(run.run_id)
        workdir.mkdir()
        run.log_path = workdir / "driver.log"
        log = run.log_path.open("wb")
        run.process = subprocess.Popen(
            [sys.executable, str(CLUSTER_MAIN), *command],
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


def _file_not_found(path: str) -> ApiError:
    return ApiError(HTTPStatus.NOT_FOUND, "NOT_FOUND",
                    f"The file being accessed is not found: {path}")


def _http_date(value: str | None) -> int | None:
    """An HTTP date as epoch seconds; None when absent or not a date (HTTP then ignores it)."""
    if not value:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None


def _byte_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single ``Range: bytes=a-b`` (or ``a-``, or ``-n``) as inclusive offsets; None for no
    range or one the Files API ignores; 416 past the end of the file."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (value or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        raise ApiError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "INVALID_PARAMETER_VALUE",
                       f"Range {value} is not satisfiable for a file of {size} bytes")
    return start, end


def _page_size(value: str | None) -> int:
    if value is None:
        return MAX_PAGE_SIZE
    if not value.isdigit() or int(value) == 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                       f"page_size must be a positive integer: {value}")
    return min(int(value), MAX_PAGE_SIZE)


def _token_name(token: str | None) -> str | None:
    """The last name a page listed, from its opaque ``next_page_token``."""
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "INVALID_PARAMETER_VALUE",
                       f"Invalid page_token: {token}") from None


ROUTES = {
    ("POST", "/api/2.0/dbfs/create"): DatabricksWorkspace.dbfs_create,
    ("POST", "/api/2.0/dbfs/add-block"): DatabricksWorkspace.dbfs_add_block,
    ("POST", "/api/2.0/dbfs/close"): DatabricksWorkspace.dbfs_close,
    ("POST", "/api/2.0/dbfs/put"): DatabricksWorkspace.dbfs_put,
    ("GET", "/api/2.0/dbfs/read"): DatabricksWorkspace.dbfs_read,
    ("GET", "/api/2.0/dbfs/get-status"): DatabricksWorkspace.dbfs_get_status,
    ("POST", "/api/2.0/dbfs/mkdirs"): DatabricksWorkspace.dbfs_mkdirs,
    ("POST", "/api/2.0/dbfs/delete"): DatabricksWorkspace.dbfs_delete,
    ("POST", "/api/2.0/fs/create-upload-part-urls"): DatabricksWorkspace.create_upload_part_urls,
    ("POST", "/api/2.0/fs/create-abort-upload-url"): DatabricksWorkspace.create_abort_upload_url,
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

# Endpoints whose URL ends in a volume path (URL-quoted): the handler gets it unquoted.
PATH_ROUTES = {
    ("PUT", FILES_API): DatabricksWorkspace.files_upload,
    ("GET", FILES_API): DatabricksWorkspace.files_download,
    ("HEAD", FILES_API): DatabricksWorkspace.files_metadata,
    ("DELETE", FILES_API): DatabricksWorkspace.files_delete,
    ("POST", FILES_API): DatabricksWorkspace.files_action,
    ("PUT", DIRECTORIES_API): DatabricksWorkspace.directories_create,
    ("GET", DIRECTORIES_API): DatabricksWorkspace.directories_list,
    ("HEAD", DIRECTORIES_API): DatabricksWorkspace.directories_metadata,
    ("DELETE", DIRECTORIES_API): DatabricksWorkspace.directories_delete,
}


def _handler(workspace: DatabricksWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the names http.server calls)
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def do_PUT(self) -> None:  # noqa: N802
            self._serve()

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve()

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            request = Request(
                method=self.command, path=url.path,
                query={k: v[-1] for k, v in parse_qs(url.query).items()},
                headers=dict(self.headers.items()), body=self._body(),
            )
            try:
                answer = workspace.answer(request)
            except ApiError as error:
                answer = Answer.of_json(error.document(), error.status)
            except Exception as error:  # noqa: BLE001 (a bug here: answer it, don't hang up)
                answer = Answer.of_json({"error_code": "INTERNAL_ERROR",
                                         "message": f"stand-in failed: {error!r}"},
                                        HTTPStatus.INTERNAL_SERVER_ERROR)
            if isinstance(answer, dict):
                answer = Answer.of_json(answer)
            self._send(answer)

        def _body(self) -> bytes:
            """The request's body, sent with a length or in chunks (a stream of unknown size)."""
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF that ends a chunk
            while self.rfile.readline().strip():
                pass  # trailers, up to the empty line that ends the body
            return b"".join(chunks)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.status != HTTPStatus.NO_CONTENT and "Content-Length" not in answer.headers:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # the recorded requests are the log

    return Handler

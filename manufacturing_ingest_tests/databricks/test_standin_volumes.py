"""The stand-in's Unity Catalog volumes, Files API and serverless runs, as production will use them.

The Files API tests talk to the workspace through a real databricks-sdk ``WorkspaceClient`` (or
plain HTTP where a status code or header is the point) and start no process; neither do the
submits the workspace refuses. The run tests start one task process each (Spark first, as
serverless compute has it up): a dagster asset through dagster-databricks'
``PipesDatabricksServerlessClient``, whose context and messages travel through a volume only; the
same with a task that fails, to pin what production sees of its error; and a
``python_wheel_task`` running an entry point of the installed project.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from email.utils import formatdate
from urllib.parse import quote

import dagster as dg
import pytest
import requests
from dagster_databricks.pipes import PipesDatabricksServerlessClient
from dagster_pipes import decode_param, encode_param
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    AlreadyExists,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
)
from databricks.sdk.service import jobs

from manufacturing_ingest_tests.databricks.standin import ApiError, DatabricksWorkspace

TOKEN = f"dapi-sentinel-{uuid.uuid4().hex}"
SCRATCH = ("main", "files", "scratch")
PIPES_VOLUME = "/Volumes/main/ops/pipes"
TASK_FILE = "/Volumes/main/ops/code/task.py"
WHEEL = "/Volumes/main/ops/libs/manufacturing_ingest-0.1.0-py3-none-any.whl"
# The task a Pipes asset submits: Spark answers a real query, the result goes back through Pipes.
TASK = """\
import builtins
import os

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter,
    open_dagster_pipes,
)

with open_dagster_pipes(
    context_loader=PipesUnityCatalogVolumesContextLoader(),
    message_writer=PipesUnityCatalogVolumesMessageWriter(),
    params_loader=PipesCliArgsParamsLoader(),
) as pipes:
    pipes.log.info("counting on serverless")
    pipes.report_asset_materialization(metadata={
        "rows": spark.range(7).count(),
        "runtime": os.environ["DATABRICKS_RUNTIME_VERSION"],
        "notebook_globals": sorted(n for n in ("spark", "sc", "dbutils") if hasattr(builtins, n)),
    })
"""
FAILING_TASK = """\
from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter,
    open_dagster_pipes,
)

with open_dagster_pipes(
    context_loader=PipesUnityCatalogVolumesContextLoader(),
    message_writer=PipesUnityCatalogVolumesMessageWriter(),
    params_loader=PipesCliArgsParamsLoader(),
) as pipes:
    pipes.log.info("about to fail")
    raise ValueError("lakehouse is not a folder: point it at a folder")
"""


def starts_a_run(test):
    """A test that starts a task process with Spark: slow, and left out of ``make check``."""
    return pytest.mark.spark(pytest.mark.subprocess(test))


def client_of(workspace: DatabricksWorkspace, **options) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=workspace.host, token=TOKEN, auth_type="pat",
                                         **options))


@pytest.fixture(scope="module")
def w(databricks_workspace) -> WorkspaceClient:
    databricks_workspace.create_volume(*SCRATCH)
    return client_of(databricks_workspace)


@pytest.fixture
def folder(w) -> str:
    """A folder of its own for each test, in the scratch volume."""
    return f"/Volumes/{'/'.join(SCRATCH)}/{uuid.uuid4().hex[:8]}"


def since(workspace: DatabricksWorkspace, first: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in workspace.requests[first:]]


def http(method: str, workspace: DatabricksWorkspace, api_path: str,
         **kwargs) -> requests.Response:
    """A request as plain HTTP, to see the status code and headers the SDK hides."""
    return requests.request(method, workspace.host + api_path,
                            headers={"Authorization": f"Bearer {TOKEN}",
                                     **kwargs.pop("headers", {})}, timeout=30, **kwargs)


# Files API


def test_a_file_goes_up_and_comes_back_with_its_metadata(w, folder, databricks_workspace):
    path = f"{folder}/nested/line #1? 2026.csv"  # quoted in the URL, as the SDK does
    first = len(databricks_workspace.requests)
    w.files.upload(path, io.BytesIO(b"sensor,value\nS1,3.5\n"))

    assert w.files.download(path).contents.read() == b"sensor,value\nS1,3.5\n"
    local = databricks_workspace.volume_local_path(path)
    assert local.read_bytes() == b"sensor,value\nS1,3.5\n"  # parents made as the API makes them
    metadata = w.files.get_metadata(path)
    assert metadata.content_length == 20
    assert metadata.content_type == "application/octet-stream"
    assert metadata.last_modified == formatdate(local.stat().st_mtime, usegmt=True)

    upload = databricks_workspace.requests[first]
    assert (upload.method, upload.body) == ("PUT", b"sensor,value\nS1,3.5\n")
    assert upload.path == "/api/2.0/fs/files" + quote(path)
    assert since(databricks_workspace, first)[1:] == [
        f"GET {upload.path}", f"HEAD {upload.path}"]


def test_a_listing_pages_through_the_directory_with_next_page_token(w, folder,
                                                                    databricks_workspace):
    w.files.create_directory(f"{folder}/deep/er")  # parents too, like mkdir -p
    for n in range(5):
        w.files.upload(f"{folder}/{n}.json", io.BytesIO(b"x" * n))
    first = len(databricks_workspace.requests)

    entries = list(w.files.list_directory_contents(folder, page_size=2))

    assert [e.name for e in entries] == ["0.json", "1.json", "2.json", "3.json", "4.json",
                                         "deep"]
    three = entries[3]
    assert (three.path, three.is_directory, three.file_size) == (f"{folder}/3.json", False, 3)
    local = databricks_workspace.volume_local_path(three.path)
    assert three.last_modified == int(local.stat().st_mtime * 1000)  # epoch milliseconds
    assert (entries[-1].path, entries[-1].is_directory) == (f"{folder}/deep/", True)
    pages = databricks_workspace.requests[first:]
    assert [r.query.get("page_token") is not None for r in pages] == [False, True, True]
    assert all(r.query["page_size"] == "2" for r in pages)


def test_a_range_read_answers_206_with_its_content_range(w, folder, databricks_workspace):
    path = f"{folder}/digits.txt"
    w.files.upload(path, io.BytesIO(b"0123456789"))
    api_path = f"/api/2.0/fs/files{path}"

    middle = http("GET", databricks_workspace, api_path, headers={"Range": "bytes=2-5"})
    assert (middle.status_code, middle.content) == (206, b"2345")
    assert middle.headers["Content-Range"] == "bytes 2-5/10"
    assert middle.headers["Content-Length"] == "4"
    tail = http("GET", databricks_workspace, api_path, headers={"Range": "bytes=7-"})
    assert (tail.status_code, tail.content) == (206, b"789")
    assert http("GET", databricks_workspace, api_path,
                headers={"Range": "bytes=10-"}).status_code == 416

    through_sdk = w.api_client.do("GET", api_path, headers={"Range": "bytes=-3"}, raw=True,
                                  response_headers=["content-range"])
    assert through_sdk["content-range"] == "bytes 7-9/10"
    assert through_sdk["contents"].read() == b"789"


def test_if_unmodified_since_answers_412_when_the_file_changed_later(w, folder,
                                                                     databricks_workspace):
    path = f"{folder}/checkpoint.json"
    w.files.upload(path, io.BytesIO(b"{}"))
    local = databricks_workspace.volume_local_path(path)
    changed = time.time() - 60
    os.utime(local, (changed, changed))
    api_path = f"/api/2.0/fs/files{path}"

    earlier = http("GET", databricks_workspace, api_path,
                   headers={"If-Unmodified-Since": formatdate(changed - 30, usegmt=True)})
    assert earlier.status_code == 412
    assert earlier.json()["error_code"] == "FAILED_PRECONDITION"
    later = http("GET", databricks_workspace, api_path,
                 headers={"If-Unmodified-Since": formatdate(changed, usegmt=True)})
    assert (later.status_code, later.content) == (200, b"{}")
    assert later.headers["Last-Modified"] == formatdate(changed, usegmt=True)
    assert http("HEAD", databricks_workspace, api_path, headers={
        "If-Unmodified-Since": formatdate(changed - 30, usegmt=True)}).status_code == 412


def test_an_upload_with_overwrite_false_onto_a_file_is_409_already_exists(w, folder,
                                                                         databricks_workspace):
    path = f"{folder}/batch.csv"
    w.files.upload(path, io.BytesIO(b"first"), overwrite=False)

    with pytest.raises(AlreadyExists, match="already exists"):
        w.files.upload(path, io.BytesIO(b"second"), overwrite=False)
    refused = http("PUT", databricks_workspace, f"/api/2.0/fs/files{path}?overwrite=false",
                   data=b"third")
    assert (refused.status_code, refused.json()["error_code"]) == (409, "ALREADY_EXISTS")
    assert w.files.download(path).contents.read() == b"first"
    # As the Files API documents: overwrite true *or unspecified* replaces the file.
    w.files.upload(path, io.BytesIO(b"fourth"))
    assert w.files.download(path).contents.read() == b"fourth"
    assert databricks_workspace.requests[-2].query == {}


def test_a_volume_never_created_is_404_and_a_path_naming_no_volume_is_400(w,
                                                                         databricks_workspace):
    with pytest.raises(NotFound, match=r"Volume 'main.files.never' does not exist"):
        w.files.upload("/Volumes/main/files/never/x.csv", io.BytesIO(b"x"))
    with pytest.raises(NotFound):
        list(w.files.list_directory_contents("/Volumes/main/files/never"))
    with pytest.raises(NotFound):
        w.files.get_metadata("/Volumes/main/files/never/x.csv")  # HEAD: no body, still 404
    assert http("GET", databricks_workspace,
                "/api/2.0/fs/files/Volumes/main/files/never/x.csv").json() == {
        "error_code": "NOT_FOUND", "message": "Volume 'main.files.never' does not exist."}

    for bad in ("/Volumes/main/files", "/Workspace/Users/x"):
        with pytest.raises(InvalidParameterValue):
            w.files.upload(bad, io.BytesIO(b"x"))
    # Clients resolve a literal ".." before sending (urllib3 does); a quoted one reaches the API.
    escape = http("PUT", databricks_workspace,
                  f"/api/2.0/fs/files/Volumes/{'/'.join(SCRATCH)}/%2E%2E/%2E%2E/x", data=b"x")
    assert (escape.status_code, escape.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    for bad in ("/Volumes/main/files", "/Volumes/main/files/scratch/../../other/v/x", "/x/y/z/w"):
        with pytest.raises(ApiError) as refused:
            databricks_workspace.volume_local_path(bad)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert databricks_workspace.volume_local_path("/Volumes/c/s/v/a/b.txt") == (
        databricks_workspace.volumes_root / "c" / "s" / "v" / "a" / "b.txt")


def test_a_directory_is_deleted_only_once_empty_and_a_volume_root_never(w, folder,
                                                                       databricks_workspace):
    w.files.upload(f"{folder}/only.txt", io.BytesIO(b"x"))

    with pytest.raises(InvalidParameterValue, match="not empty") as not_empty:
        w.files.delete_directory(folder)
    assert [d.reason for d in not_empty.value.details] == ["FILES_API_DIRECTORY_IS_NOT_EMPTY"]
    w.files.delete(f"{folder}/only.txt")
    with pytest.raises(NotFound):
        w.files.delete(f"{folder}/only.txt")
    w.files.delete_directory(folder)
    with pytest.raises(NotFound):
        w.files.get_directory_metadata(folder)
    with pytest.raises(InvalidParameterValue, match="root directory of a volume"):
        w.files.delete_directory(f"/Volumes/{'/'.join(SCRATCH)}")


def test_the_experimental_files_client_puts_small_files_at_once_and_cannot_go_multipart(
        folder, databricks_workspace):
    """databricks-sdk 0.60's experimental client (``FilesExt``) sends a file under 5 MiB in one
    PUT, with no initiate-upload first. From 5 MiB it opens a multipart upload; the stand-in, a
    workspace without presigned URLs, refuses its part URLs, and 0.60 has no fallback to a
    one-shot PUT (later SDKs fall back on exactly this refusal), so the upload fails cleanly."""
    w = client_of(databricks_workspace, enable_experimental_files_api_client=True)
    first = len(databricks_workspace.requests)
    w.files.upload(f"{folder}/small.bin", io.BytesIO(b"x" * 1024))
    assert since(databricks_workspace, first) == [f"PUT /api/2.0/fs/files{folder}/small.bin"]
    assert w.files.download(f"{folder}/small.bin").contents.read() == b"x" * 1024

    first = len(databricks_workspace.requests)
    with pytest.raises(PermissionDenied, match="Presigned URLs API is not enabled"):
        w.files.upload(f"{folder}/large.bin", io.BytesIO(b"y" * (5 * 1024 * 1024)))
    assert since(databricks_workspace, first) == [
        f"POST /api/2.0/fs/files{folder}/large.bin",
        "POST /api/2.0/fs/create-upload-part-urls",
        "POST /api/2.0/fs/create-abort-upload-url",
    ]
    assert databricks_workspace.requests[first].query["action"] == "initiate-upload"
    assert not databricks_workspace.volume_local_path(f"{folder}/large.bin").exists()


# Serverless runs


def test_pipes_and_volume_parameters_are_rewritten_to_where_the_volumes_live(
        databricks_workspace):
    context = {"path": f"{PIPES_VOLUME}/tmp/abc/context.json"}
    messages = {"path": f"{PIPES_VOLUME}/tmp/def", "include_stdio_in_messages": True}
    local = databricks_workspace.local_parameters([
        "--dagster-pipes-context", encode_param(context),
        "--dagster-pipes-messages", encode_param(messages),
        "/Volumes/main/ops/code/input.csv", "/dbfs/tmp/x", "/Volumes/short", "plain",
    ])
    assert decode_param(local[1]) == {
        "path": str(databricks_workspace.volume_local_path(context["path"]))}
    assert decode_param(local[3]) == {
        **messages, "path": str(databricks_workspace.volume_local_path(messages["path"]))}
    assert local[4:] == [str(databricks_workspace.volume_local_path(
        "/Volumes/main/ops/code/input.csv")), str(databricks_workspace.local_path("/dbfs/tmp/x")),
        "/Volumes/short", "plain"]


@pytest.mark.parametrize(("task", "environments", "refusal"), [
    ({"python_wheel_task": {"package_name": "manufacturing_ingest",
                            "entry_point": "manufacturing-ingest"}},
     [{"environment_key": "e", "spec": {"client": "4", "dependencies": [
         "/Volumes/main/ops/libs/manufacturing_ingest-9.9.9-py3-none-any.whl"]}}],
     r"Dependency /Volumes/main/ops/libs/manufacturing_ingest-9.9.9-py3-none-any.whl"),
    ({"python_wheel_task": {"package_name": "manufacturing_ingest",
                            "entry_point": "manufacturing-ingest"}},
     [{"environment_key": "e", "spec": {"client": "4", "dependencies": [
         "dbfs:/libs/missing-0.1.0-py3-none-any.whl"]}}],
     r"Dependency dbfs:/libs/missing-0.1.0-py3-none-any.whl"),
    ({"spark_python_task": {"python_file": TASK_FILE}},
     [{"environment_key": "other", "spec": {"client": "4"}}],
     r"Environment key 'e' .* is not defined"),
    ({"spark_python_task": {"python_file": TASK_FILE}, "existing_cluster_id": "c"},
     [{"environment_key": "e", "spec": {"client": "4"}}],
     r"a serverless task runs on no cluster"),
    ({"spark_python_task": {"python_file": TASK_FILE},
      "libraries": [{"whl": WHEEL}]},
     [{"environment_key": "e", "spec": {"client": "4"}}],
     r"Libraries field is not supported for serverless task"),
])
def test_a_serverless_submit_databricks_would_refuse_is_refused(w, databricks_workspace, task,
                                                               environments, refusal):
    databricks_workspace.create_volume("main", "ops", "libs")
    runs = set(databricks_workspace.runs)
    with pytest.raises(InvalidParameterValue, match=refusal):
        w.jobs.submit(
            run_name="refused",
            tasks=[jobs.SubmitTask.from_dict({"task_key": "t", "environment_key": "e", **task})],
            environments=[jobs.JobEnvironment.from_dict(e) for e in environments])
    assert set(databricks_workspace.runs) == runs


def serverless_asset(w: WorkspaceClient, name: str, python_file: str) -> dg.AssetsDefinition:
    """An asset whose body runs ``python_file`` on serverless compute through Pipes, as the
    production path does: context and messages in a volume, no DBFS."""

    @dg.asset(name=name)
    def serverless(context):  # (an annotation would be a string here: dagster refuses it)
        client = PipesDatabricksServerlessClient(client=w, volume_path=PIPES_VOLUME,
                                                 poll_interval_seconds=0.5)
        return client.run(
            context=context,
            task=jobs.SubmitTask.from_dict({
                "task_key": "t", "environment_key": "e",
                "spark_python_task": {"python_file": python_file}}),
            submit_args={"environments": [jobs.JobEnvironment.from_dict(
                {"environment_key": "e", "spec": {"client": "4", "dependencies": []}})]},
        ).get_materialize_result()

    return serverless


def upload_task(databricks_workspace, w, python_file: str, source: str) -> None:
    databricks_workspace.create_volume("main", "ops", "pipes")
    databricks_workspace.create_volume("main", "ops", "code")
    w.files.upload(python_file, io.BytesIO(source.encode()), overwrite=True)


@pytest.fixture(scope="module")
def pipes_run(databricks_workspace, w):
    """One asset materialized through ``PipesDatabricksServerlessClient``: what came back, the
    requests it made and how long it took."""
    upload_task(databricks_workspace, w, TASK_FILE, TASK)
    first = len(databricks_workspace.requests)
    started = time.monotonic()
    result = dg.materialize([serverless_asset(w, "serverless_rows", TASK_FILE)],
                            instance=dg.DagsterInstance.ephemeral())
    return result, databricks_workspace.requests[first:], time.monotonic() - started


@starts_a_run
def test_a_pipes_asset_runs_on_serverless_and_its_materialization_comes_back(
        pipes_run, databricks_workspace):
    result, requests_made, _ = pipes_run
    assert result.success
    (materialization,) = result.asset_materializations_for_node("serverless_rows")
    metadata = materialization.metadata
    assert metadata["rows"].value == 7  # a real query on the task's Spark session
    assert metadata["runtime"].value == "client.4.0"
    assert metadata["notebook_globals"].value == ["spark"]  # serverless: no sc, no dbutils
    run = databricks_workspace.runs[int(metadata["Databricks Job Run ID"].value)]
    assert run.serverless
    assert run.environment == {"environment_key": "e", "spec": {"client": "4"}}
    assert run.reported[0] == "PENDING" and run.reported[-1] == "TERMINATED"
    assert "RUNNING" in run.reported
    (submit,) = [r for r in requests_made if r.path == "/api/2.2/jobs/runs/submit"]
    (task,) = submit.json()["tasks"]
    parameters = task["spark_python_task"]["parameters"]
    assert parameters[0] == "--dagster-pipes-context"
    assert decode_param(parameters[1])["path"].startswith(f"{PIPES_VOLUME}/tmp/")


@starts_a_run
def test_the_pipes_run_went_through_the_volume_only_and_cleaned_it_up(pipes_run,
                                                                      databricks_workspace):
    result, requests_made, seconds = pipes_run
    assert result.success
    paths = [f"{r.method} {r.path}" for r in requests_made]
    assert not [p for p in paths if "/api/2.0/dbfs" in p]
    uploads = [r.path for r in requests_made
               if r.method == "PUT" and r.path.startswith("/api/2.0/fs/files/")]
    assert len(uploads) == 1 and uploads[0].endswith("/context.json")
    assert any(p.startswith("GET /api/2.0/fs/files/Volumes/main/ops/pipes/tmp/")
               and p.endswith("/1.json") for p in paths)  # the first chunk of messages
    tmp = databricks_workspace.volume_local_path(f"{PIPES_VOLUME}/tmp")
    assert list(tmp.iterdir()) == []  # both temporary folders deleted through the Files API
    print(f"pipes asset materialized in {seconds:.1f}s")


@pytest.fixture(scope="module")
def wheel_run(databricks_workspace, w):
    """A ``python_wheel_task`` of the project's own console script, its wheel in a volume."""
    databricks_workspace.create_volume("main", "ops", "libs")
    w.files.upload(WHEEL, io.BytesIO(b"PK stand-in wheel: never installed"), overwrite=True)
    run_id = w.jobs.submit(
        run_name="wheel",
        tasks=[jobs.SubmitTask.from_dict({
            "task_key": "cli", "environment_key": "e",
            "python_wheel_task": {"package_name": "manufacturing_ingest",
                                  "entry_point": "manufacturing-ingest",
                                  "parameters": ["--help"]}})],
        environments=[jobs.JobEnvironment.from_dict(
            {"environment_key": "e", "spec": {"client": "4", "dependencies": [WHEEL]}})],
    ).run_id
    while (state := w.jobs.get_run(run_id).state).life_cycle_state not in (
            jobs.RunLifeCycleState.TERMINATED, jobs.RunLifeCycleState.INTERNAL_ERROR):
        time.sleep(0.5)
    return databricks_workspace.runs[run_id], state


@starts_a_run
def test_a_python_wheel_task_runs_the_installed_entry_point_on_serverless(wheel_run):
    run, state = wheel_run
    assert state.result_state == jobs.RunResultState.SUCCESS, run.log_path.read_text()
    assert run.serverless
    assert run.environment["spec"]["dependencies"] == [WHEEL]
    assert run.process.args[2:] == ["--serverless", "--wheel", "manufacturing_ingest",
                                    "manufacturing-ingest", "--help"]
    assert "usage: manufacturing-ingest" in run.log_path.read_text()


@starts_a_run
def test_a_failing_pipes_task_fails_the_step_with_the_state_message_not_the_tasks_error(
        databricks_workspace, w):
    """What production will see: ``PipesDatabricksServerlessClient`` raises the run's
    ``state_message`` only; the task's own exception comes back as a Pipes engine event and in
    the run's output, which the client never asks for."""
    failing = f"{TASK_FILE.rsplit('/', 1)[0]}/failing.py"
    upload_task(databricks_workspace, w, failing, FAILING_TASK)
    runs = set(databricks_workspace.runs)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([serverless_asset(w, "failing", failing)], instance=instance,
                            raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error.to_string()
    assert "Error running Databricks job: Workload failed, see run output for details" in error
    assert "not a folder" not in error
    logs = instance.all_logs(result.run_id)
    (closed,) = [entry.dagster_event for entry in logs if entry.dagster_event
                 and "pipes closed with exception" in (entry.dagster_event.message or "")]
    assert "ValueError: lakehouse is not a folder" in closed.engine_event_data.error.to_string()
    assert any(entry.user_message == "about to fail" for entry in logs)  # logs still arrive
    (run_id,) = set(databricks_workspace.runs) - runs
    output = w.jobs.get_run_output(run_id)
    assert output.error == "ValueError: lakehouse is not a folder: point it at a folder"

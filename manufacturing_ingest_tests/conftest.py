"""Shared fixtures: one real local Spark session with Delta, and throwaway landing/lakehouse."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePath, PurePosixPath

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.progress import ProgressEvent
from manufacturing_ingest.engine.report import IngestReport
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.settings import Settings

# Every Spark the tests start (their own session, the Connect server, CLI and run subprocesses)
# is small: two cores, a modest heap.
os.environ.setdefault("MANUFACTURING_SPARK_MASTER", "local[2]")
os.environ.setdefault("MANUFACTURING_SPARK_DRIVER_MEMORY", "2g")


def _spark_defaults_outside_the_tree() -> None:
    """Spark creates its catalog's warehouse folder (``spark-warehouse``) in the working
    directory; every Spark the tests start (spark-submit reads ``$SPARK_CONF_DIR``) puts it in a
    temporary folder instead, so no test writes into the working tree."""
    if "SPARK_CONF_DIR" in os.environ:
        return
    folder = Path(tempfile.mkdtemp(prefix="manufacturing_ingest_tests_spark_"))
    (folder / "spark-defaults.conf").write_text(
        f"spark.sql.warehouse.dir {(folder / 'warehouse').as_uri()}\n")
    os.environ["SPARK_CONF_DIR"] = str(folder)


_spark_defaults_outside_the_tree()

# Tests on a live deployment (webserver, daemon, browser), a PostgreSQL server or the
# Databricks workspace stand-in: the folders and modules that hold them. The live ones among
# them (all but the stand-in's, which is a thread of the test process) share one worker.
E2E_FOLDERS = ("ui", "deployment", "databricks")
LIVE_FOLDERS = ("ui", "deployment")
E2E_MODULE_SUFFIX = "_live.py"
# A test with none of these is a unit test: no JVM, no server process; `make check` runs those.
HEAVY_MARKERS = ("spark", "subprocess", "s3", "e2e")
# Under pytest-xdist (`make test` runs two workers) every live test goes to one worker, as one
# unit of work (see pytest_xdist_make_scheduler): its costly fixtures (the live deployment, the
# PostgreSQL server) start once, and live deployments, which mostly wait
# (daemon ticks, freshness windows), never compete with each other for the two cores. The other
# worker starts with the crash test's JVMs, then runs the CPU-bound Spark tests, a module at a
# time (a module's fixtures, such as a corpus ingested once, are never built twice); whichever
# worker is free takes the rest.
LIVE_GROUP = "live"
_ORDER = ("e2e", "subprocess", "spark", "s3")


def _is_e2e(path: PurePath) -> bool:
    return path.parent.name in E2E_FOLDERS or path.name.endswith(E2E_MODULE_SUFFIX)


def _is_live(path: PurePath) -> bool:
    return path.parent.name in LIVE_FOLDERS or path.name.endswith(E2E_MODULE_SUFFIX)


def _rank(item) -> int:
    return next((i for i, name in enumerate(_ORDER) if item.get_closest_marker(name)),
                len(_ORDER))


def pytest_collection_modifyitems(config, items):
    """Mark every test by what it starts, so `-m unit` (``make check``) selects the tests that
    need no JVM and no server: ``spark`` for a test that takes the Spark session (directly or
    through ``lake``) or the Spark Connect server, ``s3`` for one that takes the S3 server,
    ``e2e`` for the live tests. Then group and order them for ``pytest -n 2``."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        path = Path(str(item.path))
        if fixtures & {"spark", "spark_server"}:
            item.add_marker(pytest.mark.spark)
        if "moto_server" in fixtures:
            item.add_marker(pytest.mark.s3)
        if _is_e2e(path):
            item.add_marker(pytest.mark.e2e)
        if not any(item.get_closest_marker(name) for name in HEAVY_MARKERS):
            item.add_marker(pytest.mark.unit)
    items.sort(key=_rank)  # stable: a module's tests stay together and in order


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the units of work described above: all live tests as one, every
    other module as one, handed out in the order the tests were sorted into (live first).

    The units are told from each test's path, not from ``xdist_group`` marks: xdist groups by a
    suffix it writes into ``Item._nodeid``, which pytest 9.2's ``Item.nodeid`` no longer reads,
    so the marks alone group nothing and every live module starts on both workers."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LiveFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return LIVE_GROUP if _is_live(PurePosixPath(module)) else module

    config.option.loadscopereorder = False  # keep the sorted order, live first
    return LiveFirst(config, log)


def pytest_addoption(parser):
    parser.addoption(
        "--spark-connect", action="store_true",
        help="run on a Spark Connect session against a local Connect server the tests start "
             "(as on Databricks shared clusters: no JVM access); subprocesses use it too",
    )


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory):
    """One warm Spark Connect server (``manufacturing-ingest spark-server``) for the session.

    CLI and Dagster-run subprocesses connect to it (``MANUFACTURING_SPARK_REMOTE``), as runs
    under ``make dev`` do, instead of each starting and warming a JVM of its own; with
    ``--spark-connect`` the tests' own session is on it too. A test about a process's JVM dying
    with it (the SIGKILL test) keeps a local session.
    """
    from manufacturing_ingest_tests.spark_connect import ConnectServer

    server = ConnectServer(tmp_path_factory.mktemp("spark_connect") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark(request):
    from manufacturing_ingest.engine.spark import get_spark_session

    connect = request.config.getoption("--spark-connect")
    if connect:
        # Subprocesses (CLI runs, crash tests) connect to the same server.
        os.environ["MANUFACTURING_SPARK_REMOTE"] = request.getfixturevalue("spark_server").url
    session = get_spark_session(Settings.from_env().spark, app_name="manufacturing_ingest_tests")
    yield session
    session.stop()
    if connect:
        del os.environ["MANUFACTURING_SPARK_REMOTE"]


class Lake:
    """A landing folder and a lakehouse folder, with the ingest call tests make."""

    def __init__(self, root: Path, spark):
        self.root = root
        self.landing_root = root / "landing"
        self.landing_root.mkdir(parents=True, exist_ok=True)
        self.zone = LocalLandingZone(self.landing_root)
        self.lakehouse = Lakehouse(str(root / "lakehouse"))
        self.spark = spark
        self.progress: list[ProgressEvent] = []

    def ingest(self, source: str, *partitions: str, reprocess: bool = False,
               env: dict[str, str] | None = None) -> IngestReport:
        """Ingest with the source as the catalog has it, or as settings from ``env`` (environment
        variables such as ``MANUFACTURING_SCHEMA_<SOURCE>``) configure it."""
        spec = get_source(source)
        if env:
            spec = Settings.from_env(env).configured(spec)
        ingestor = BronzeIngestor(self.spark, spec, self.zone, self.lakehouse,
                                  progress=self.progress.append)
        return ingestor.ingest(list(partitions), reprocess=reprocess)

    def table_path(self, source: str) -> str:
        return self.lakehouse.table_path(get_source(source))

    def table(self, source: str):
        return self.spark.read.format("delta").load(self.table_path(source))

    def put(self, key: str, data: bytes | str, mtime: float | None = None) -> Path:
        path = self.landing_root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path


@pytest.fixture
def lake(tmp_path, spark) -> Lake:
    return Lake(tmp_path, spark)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real S3 API server process on loopback for the whole session."""
    from manufacturing_ingest_tests.s3_server import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


class Bucket:
    """A fresh bucket on the S3 server, with the helpers tests use to land objects."""

    def __init__(self, name: str, endpoint: str):
        import boto3

        self.name = name
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.client.create_bucket(Bucket=name)
        self.url = f"s3://{name}/landing"

    def put(self, key: str, body: bytes | str) -> dict:
        data = body.encode() if isinstance(body, str) else body
        return self.client.put_object(Bucket=self.name, Key=f"landing/{key}", Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=f"landing/{key}")

    def notify(self, prefix: str) -> str:
        """A new SQS queue that receives this bucket's ``s3:ObjectCreated:*`` events for keys
        under ``prefix`` (of the landing zone), as S3 sends them; its URL."""
        import boto3

        sqs = boto3.client("sqs", endpoint_url=self.client.meta.endpoint_url,
                           region_name="us-east-1")
        url = sqs.create_queue(QueueName=f"{self.name}-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        self.client.put_bucket_notification_configuration(
            Bucket=self.name,
            NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": arn["Attributes"]["QueueArn"],
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [
                    {"Name": "prefix", "Value": f"landing/{prefix}"}]}},
            }]},
        )
        return url


@pytest.fixture
def aws_env(monkeypatch, moto_server):
    """Standard AWS variables pointing every boto3 client at the loopback S3 server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Never ask an instance-metadata endpoint for credentials: only loopback is ours.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_server


@pytest.fixture
def bucket(aws_env, request) -> Bucket:
    import re
    import uuid

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    return Bucket(f"{name}-{uuid.uuid4().hex[:8]}", aws_env.endpoint)


@pytest.fixture
def webhook():
    """A chat webhook on loopback whose path holds the sentinel token."""
    from manufacturing_ingest_tests.alert_servers import WebhookServer
    from manufacturing_ingest_tests.alerting.observations import WEBHOOK_TOKEN

    with WebhookServer(path=f"/services/T000/B000/{WEBHOOK_TOKEN}") as server:
        yield server


@pytest.fixture
def smtp():
    """An SMTP server on loopback that requires the sentinel login."""
    from manufacturing_ingest_tests.alert_servers import SmtpServer
    from manufacturing_ingest_tests.alerting.observations import SMTP_PASSWORD, SMTP_USER

    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        yield server


@pytest.fixture
def smtp_options(smtp):
    from manufacturing_ingest.alerting import SmtpOptions
    from manufacturing_ingest_tests.alerting.observations import SMTP_PASSWORD, SMTP_USER

    return SmtpOptions(host=smtp.host, port=smtp.port, sender="dagster@plant.example",
                       recipients=["ops@plant.example", "quality@plant.example"],
                       username=SMTP_USER, password=SMTP_PASSWORD, starttls=False, timeout=5)

"""Shared fixtures: one real local Spark session with Delta, and throwaway landing/lakehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.progress import ProgressEvent
from manufacturing_ingest.engine.report import IngestReport
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.settings import Settings


def pytest_addoption(parser):
    parser.addoption(
        "--spark-connect", action="store_true",
        help="run on a Spark Connect session against a local Connect server the tests start "
             "(as on Databricks shared clusters: no JVM access); subprocesses use it too",
    )


@pytest.fixture(scope="session")
def spark(request, tmp_path_factory):
    from manufacturing_ingest.engine.spark import get_spark_session

    os.environ.setdefault("MANUFACTURING_SPARK_MASTER", "local[2]")
    os.environ.setdefault("MANUFACTURING_SPARK_DRIVER_MEMORY", "2g")
    server = None
    if request.config.getoption("--spark-connect"):
        from manufacturing_ingest_tests.spark_connect import ConnectServer

        server = ConnectServer(tmp_path_factory.mktemp("spark_connect") / "server.log")
        # Subprocesses (CLI runs, crash tests) connect to the same server.
        os.environ["MANUFACTURING_SPARK_REMOTE"] = server.url
    session = get_spark_session(Settings.from_env().spark, app_name="manufacturing_ingest_tests")
    yield session
    session.stop()
    if server is not None:
        server.stop()
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

    def ingest(self, source: str, *partitions: str, reprocess: bool = False) -> IngestReport:
        ingestor = BronzeIngestor(self.spark, get_source(source), self.zone, self.lakehouse,
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

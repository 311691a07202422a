"""One live deployment for the UI tests, started once for this folder's tests: a real S3 API
server as the landing zone, a warm Spark Connect server for the runs (as ``make dev`` uses), a
webhook for the alerts, and ``dagster-webserver`` + ``dagster-daemon`` over the project's own
definitions. And one ``manufacturing-ingest demo`` on a clean ``DAGSTER_HOME``, whose instance
the demo tests read and open in the UI."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

from manufacturing_ingest.cli import main
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.settings import WEBHOOK_URL_VAR
from manufacturing_ingest_tests.live_ui import LiveDagster

REPO = Path(__file__).resolve().parents[2]

# How often each landing sensor lists in the live deployment (the default is 60 s).
LANDING_INTERVAL_SECONDS = 15

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR")
                 or Path(__file__).resolve().parents[2] / "test-artifacts")


class Landing:
    """The landing bucket of the live deployment: tests put objects as an uploader would."""

    def __init__(self, endpoint: str):
        import boto3

        self.name = f"plant-landing-{uuid.uuid4().hex[:8]}"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self.client.create_bucket(Bucket=self.name)
        self.url = f"s3://{self.name}/landing"

    def put(self, key: str, body: bytes | str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.client.put_object(Bucket=self.name, Key=f"landing/{key}", Body=data)

    def land_generated(self, source: str, day: date, hour: int | None = None,
                       options: GenerateOptions | None = None, tag: str = "") -> dict[str, int]:
        """Generate sample files for ``source`` and upload them, ``tag`` added to each file's
        name (generated names repeat); data rows per key."""
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            landed = {}
            for path in generate(root, source, day, hour, options):
                key = path.relative_to(root).as_posix()
                if tag:
                    stem, dot, suffixes = key.rpartition("/")[2].partition(".")
                    key = f"{key.rpartition('/')[0]}/{stem}-{tag}{dot}{suffixes}"
                data = path.read_bytes()
                self.put(key, data)
                landed[key] = _data_rows(key, data)
            return landed


def _data_rows(key: str, data: bytes) -> int:
    """Data rows of a generated file, by its format (a CSV file has a header line)."""
    if key.endswith(".parquet"):
        import io

        import pyarrow.parquet as pq

        return pq.read_metadata(io.BytesIO(data)).num_rows
    lines = [line for line in data.decode().splitlines() if line.strip()]
    return len(lines) - 1 if key.endswith(".csv") else len(lines)


# Package scope: the deployment stops once the last UI test is done, so its daemon's sensors
# (the alert sensor evaluates every few seconds) stop taking CPU from the tests after them.
@pytest.fixture(scope="package")
def ui_webhook():
    from manufacturing_ingest_tests.alert_servers import WebhookServer

    with WebhookServer(path=f"/services/T000/B000/{uuid.uuid4().hex}") as server:
        yield server


@pytest.fixture(scope="package")
def live(tmp_path_factory, moto_server, ui_webhook, spark_server):
    """The deployment; yields ``(LiveDagster, Landing)``."""
    root = tmp_path_factory.mktemp("live_ui")
    aws = {
        "AWS_ENDPOINT_URL": moto_server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    landing = Landing(moto_server.endpoint)
    env = {
        **os.environ,
        **aws,
        "MANUFACTURING_LANDING_URL": landing.url,
        "MANUFACTURING_LAKEHOUSE_URL": str(root / "lakehouse"),
        "MANUFACTURING_SPARK_REMOTE": spark_server.url,
        "MANUFACTURING_LANDING_INTERVAL_SECONDS": str(LANDING_INTERVAL_SECONDS),
        "MANUFACTURING_ALERT_INTERVAL_SECONDS": "5",
        WEBHOOK_URL_VAR: ui_webhook.url,
    }
    for name in ("MANUFACTURING_ENV", "MANUFACTURING_CATALOG", "DAGSTER_HOME"):
        env.pop(name, None)
    deployment = LiveDagster(root, env)
    try:
        deployment.start()
        yield deployment, landing
    finally:
        deployment.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the UI tests write screenshots (kept after the run)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass(frozen=True)
class DemoRun:
    """What one ``manufacturing-ingest demo`` left: its instance (open), what it printed, the two
    days it landed, and its folder (``dagster_home``, ``landing``, ``lakehouse``) with the
    environment it ran with."""

    instance: object  # dg.DagsterInstance
    out: str
    err: str
    days: list[date]
    root: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def demo(tmp_path_factory, spark):
    """One demo run (half a minute) on a clean ``DAGSTER_HOME``, as ``make demo`` runs it: in a
    folder with the project's ``dagster.yaml``, the log line the only alert sink."""
    import dagster as dg

    root = tmp_path_factory.mktemp("demo")
    home = root / "dagster_home"
    home.mkdir()
    (root / "dagster.yaml").write_bytes((REPO / "dagster.yaml").read_bytes())
    settings = {"MANUFACTURING_LANDING_URL": str(root / "landing"),
                "MANUFACTURING_LAKEHOUSE_URL": str(root / "lakehouse")}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**settings, "DAGSTER_HOME": str(home)}.items():
            patch.setenv(name, value)
        patch.chdir(root)  # beside the project's dagster.yaml
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=2), today - timedelta(days=1)]
        for name in [n for n in os.environ if n.startswith("MANUFACTURING_ALERT")]:
            patch.delenv(name)  # the log line only: no webhook or mail from a test
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["demo"])
        assert code == 0, out.getvalue() + err.getvalue()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MANUFACTURING_ALERT") and k != "DAGSTER_HOME"}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield DemoRun(instance, out.getvalue(), err.getvalue(), days, root, {**env, **settings})

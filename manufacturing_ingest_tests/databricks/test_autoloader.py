"""The Auto Loader reader: its options per format, and its micro-batch commit on real Delta.

The ``cloudFiles`` stream itself cannot run off Databricks: Auto Loader is not part of
open-source Spark (the first test shows the local session refusing the format). What runs here
is everything around it: the options each format's stream is started with, and the
``foreachBatch`` commit, fed the same columns a ``cloudFiles`` micro-batch carries (the file's
columns, ``_rescued_data`` and Spark's ``_metadata``), read from files with local Spark; the
discovery options each ``MANUFACTURING_AUTOLOADER_DISCOVERY`` gives a stream, and what settings
refuse; and a whole bronze step in read mode ``autoloader``, with Spark's own file stream source
standing in for ``cloudFiles`` and recording the options it was started with.
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.databricks.autoloader import (
    AutoLoaderIngestor,
    AutoLoaderLayout,
    MicroBatchCommit,
    reader_options,
    schema_hints,
    with_lineage,
)
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.ledger import FileLedger, file_states
from manufacturing_ingest.landing import LandedObject
from manufacturing_ingest_tests.samples import numbered_sensor_csv


def _expand(glob: str) -> list[str]:
    """A Hadoop glob with one ``{a,b}`` group as the fnmatch patterns it stands for."""
    match = re.search(r"\{([^}]*)\}", glob)
    if not match:
        return [glob]
    return [glob[: match.start()] + part + glob[match.end():] for part in match[1].split(",")]


def _landed(name: str) -> LandedObject:
    return LandedObject(key=f"raw/x/2026/01/15/{name}", uri="", etag="e", size=1,
                        last_modified=datetime(2026, 1, 15, tzinfo=UTC))


@pytest.mark.parametrize("source, file_format", [
    (name, fmt) for name, spec in CATALOG.items() for fmt in spec.formats
])
def test_each_format_gets_the_options_of_a_bronze_stream(source, file_format):
    spec = get_source(source)
    layout = AutoLoaderLayout("s3://plant-lakehouse/lakehouse")
    options = reader_options(spec, file_format, layout.schema_location(spec, file_format))
    assert options["cloudFiles.format"] == file_format
    assert options["cloudFiles.schemaLocation"] == (
        f"s3://plant-lakehouse/lakehouse/_manufacturing_ingest/autoloader/{source}/"
        f"{file_format}/schema")
    assert layout.checkpoint(spec, file_format).endswith(f"/{source}/{file_format}/checkpoint")
    assert options["cloudFiles.schemaEvolutionMode"] == "addNewColumns"
    assert options["rescuedDataColumn"] == "_rescued_data"
    # Every declared column is typed by a hint; Spark's own guesses never decide a type.
    hints = dict(h.split(" ", 1) for h in schema_hints(spec).split(", "))
    assert {name.strip("`") for name in hints} == set(spec.columns)
    assert hints["`" + spec.event_time_column + "`"] == "TIMESTAMP"
    if file_format == "csv":
        assert options["header"] == "true" and options["multiLine"] == "true"
        assert options["cloudFiles.inferColumnTypes"] == "false"
    elif file_format == "json":
        assert options["multiLine"] == "false"
        assert options["cloudFiles.inferColumnTypes"] == "false"
    else:
        assert "header" not in options and "cloudFiles.inferColumnTypes" not in options
    # The glob takes exactly the names the portable engine reads as this format.
    names = ["a.csv", "a.CSV", "a.csv.gz", "a.json", "a.jsonl", "a.json.gz", "a.ndjson",
             "a.parquet", "a.txt", "a.csv.tmp"]
    patterns = _expand(options["pathGlobFilter"])
    taken = {n for n in names if any(fnmatchcase(n, p) for p in patterns)}
    assert taken == {n for n in names if _landed(n).file_format == file_format}


@pytest.mark.connect
@pytest.mark.spark
def test_cloud_files_is_a_databricks_format_the_local_session_does_not_have(spark, tmp_path):
    with pytest.raises(Exception, match="cloudFiles"):
        spark.readStream.format("cloudFiles").option("cloudFiles.format", "csv") \
            .schema("a STRING").load(str(tmp_path)).writeStream.format("noop").start()


@pytest.mark.connect
@pytest.mark.spark
def test_a_micro_batch_commits_once_and_the_ledger_records_its_files(lake, spark):
    spec = get_source("sensor_data")
    dated = lake.put("raw/sensor-data/2026/01/15/a.csv", numbered_sensor_csv("a", 7))
    undated = lake.put("raw/sensor-data/late/b.csv", numbered_sensor_csv("b", 3),
                       mtime=datetime(2026, 1, 16, 8, tzinfo=UTC).timestamp())
    raw = (spark.read.option("header", "true").schema(
        ", ".join(f"`{n}` STRING" for n in spec.columns) + ", _rescued_data STRING")
        .csv([str(dated), str(undated)]))
    stamp = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)
    batch = with_lineage(raw, spec, stamp)
    table = lake.table_path("sensor_data")
    ledger = FileLedger(spark, lake.lakehouse.ledger_path)
    seen = []
    commit = MicroBatchCommit(spark, spec, "csv", table, ledger,
                              lake.landing_root.as_uri(), "run-1", on_commit=seen.extend)

    commit(batch, 0)
    commit(batch, 0)  # a micro-batch replayed after a crash: Delta skips it (txnVersion)

    rows = DeltaTable(table).to_pandas()
    assert len(rows) == 10
    assert rows.groupby("_source_file").size().to_dict() == {dated.as_uri(): 7,
                                                             undated.as_uri(): 3}
    by_file = {uri: group["_partition_date"].iloc[0] for uri, group in
               rows.groupby("_source_file")}
    assert str(by_file[dated.as_uri()]) == "2026-01-15"  # from the path
    assert str(by_file[undated.as_uri()]) == "2026-01-16"  # from the modification time
    assert {c["userMetadata"].get("stream") for c in delta.commits_after(spark, table, -1)} \
        == {"manufacturing_ingest/sensor_data/autoloader/csv"}
    # The portable engine's table state ignores these commits (no batch_version of its own).
    assert delta.table_state(spark, table)[1] == -1

    states = file_states(ledger.events("sensor_data"))
    committed = {s.object_key: (s.status.value, s.rows, s.partition_key) for s in states.values()}
    assert committed == {"raw/sensor-data/2026/01/15/a.csv": ("committed", 7, "2026-01-15"),
                         "raw/sensor-data/late/b.csv": ("committed", 3, "2026-01-16")}
    assert {e.object_key for e in seen} == set(committed)
    assert all(e.size == os.path.getsize(lake.landing_root / e.object_key)
               for e in itertools.islice(seen, 2))

    # What the run reports (and the quality check reads back: the run's stamp and partitions).
    ingestor = AutoLoaderIngestor(spark, spec, lake.landing_root.as_uri(), lake.lakehouse)
    report = ingestor.report(seen, ["2026-01-15"], stamp, seconds=4.0)
    assert report.partition_keys == ["2026-01-15", "2026-01-16"]
    assert (report.records, report.files_processed, report.mode) == (10, 2, "autoloader")
    assert report.delta_version == delta.table_version(spark, table)
    assert set(rows["_ingested_at"].dt.tz_localize(None)) == {stamp.replace(tzinfo=None)}


# How Auto Loader finds new files (MANUFACTURING_AUTOLOADER_DISCOVERY), on a Databricks cluster
# (the step's own settings) reading an S3 landing zone.
ON_DATABRICKS = {"MANUFACTURING_ENV": "databricks", "DATABRICKS_RUNTIME_VERSION": "17.3",
                 "MANUFACTURING_READ_MODE": "autoloader",
                 "MANUFACTURING_LANDING_URL": "s3://plant-landing/manufacturing"}
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/autoloader-sensor-data-csv"
SENSOR_QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/landing-sensor-data"
# What each mode must never carry: directory listing's and classic notifications' options, and
# the ones Databricks lists as unsupported with file events.
DISCOVERY_OPTIONS = {"cloudFiles.useNotifications", "cloudFiles.useManagedFileEvents",
                     "cloudFiles.queueUrl", "cloudFiles.region", "cloudFiles.backfillInterval",
                     "cloudFiles.fetchParallelism", "cloudFiles.pathRewrites",
                     "cloudFiles.useIncrementalListing", "databricks.serviceCredential"}


def _discovery_options(environ: dict[str, str], source: str, file_format: str) -> dict[str, str]:
    """The options a stream gets beyond the format's own, with the settings of ``environ``."""
    from manufacturing_ingest.settings import Settings

    settings = Settings.from_env({**ON_DATABRICKS, **environ})
    spec = get_source(source)
    location = AutoLoaderLayout("s3://lake").schema_location(spec, file_format)
    plain = reader_options(spec, file_format, location)
    options = reader_options(spec, file_format, location, settings.autoloader)
    assert {k: v for k, v in options.items() if k in plain} == plain  # nothing else changes
    extra = {k: v for k, v in options.items() if k not in plain}
    assert not any(k.startswith("cloudFiles.resourceTag") for k in extra)
    return extra


@pytest.mark.parametrize("source, file_format", [
    (name, fmt) for name, spec in CATALOG.items() for fmt in spec.formats
])
def test_each_discovery_mode_sets_exactly_the_options_databricks_documents(source, file_format):
    # listing: the runtime's default, no discovery option at all (also when said explicitly).
    assert _discovery_options({}, source, file_format) == {}
    assert _discovery_options({"MANUFACTURING_AUTOLOADER_DISCOVERY": "listing"}, source,
                              file_format) == {}
    # file events of the external location: the one option, none that mode does not support.
    assert _discovery_options({"MANUFACTURING_AUTOLOADER_DISCOVERY": "File-Events"}, source,
                              file_format) == {"cloudFiles.useManagedFileEvents": "true"}
    # classic notifications: Auto Loader sets up SNS and SQS in the bucket's region, backfills
    # daily for notifications that never came, and reaches AWS with a service credential.
    notifications = {"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
                     "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1"}
    assert _discovery_options(notifications, source, file_format) == {
        "cloudFiles.useNotifications": "true", "cloudFiles.region": "eu-west-1",
        "cloudFiles.backfillInterval": "1 day"}
    credential = {**notifications,
                  "MANUFACTURING_AUTOLOADER_SERVICE_CREDENTIAL": "plant-landing-sqs"}
    assert _discovery_options(credential, source, file_format) == {
        "cloudFiles.useNotifications": "true", "cloudFiles.region": "eu-west-1",
        "cloudFiles.backfillInterval": "1 day",
        "databricks.serviceCredential": "plant-landing-sqs"}
    # A stream with a queue of its own consumes it instead (the region is for the set-up only).
    queued = {**notifications, "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE}
    expected = ({"cloudFiles.useNotifications": "true", "cloudFiles.queueUrl": QUEUE,
                 "cloudFiles.backfillInterval": "1 day"}
                if (source, file_format) == ("sensor_data", "csv") else
                {"cloudFiles.useNotifications": "true", "cloudFiles.region": "eu-west-1",
                 "cloudFiles.backfillInterval": "1 day"})
    assert _discovery_options(queued, source, file_format) == expected
    assert set(expected) | {"databricks.serviceCredential", "cloudFiles.useManagedFileEvents"} \
        <= DISCOVERY_OPTIONS


def test_every_stream_with_a_queue_of_its_own_needs_no_region():
    from manufacturing_ingest.settings import Settings

    queues = {f"MANUFACTURING_AUTOLOADER_QUEUE_URL_{name.upper()}_{fmt.upper()}":
              f"https://sqs.eu-west-1.amazonaws.com/123456789012/{name}-{fmt}"
              for name, spec in CATALOG.items() for fmt in spec.formats}
    settings = Settings.from_env({**ON_DATABRICKS, **queues,
                                  "MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications"})
    assert settings.autoloader.queue_urls["quality_metrics/parquet"].endswith("quality_metrics-"
                                                                              "parquet")
    assert "cloudFiles.region" not in settings.autoloader.options("equipment_logs", "json")


@pytest.mark.parametrize("environ, says", [
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "sqs"},
     "MANUFACTURING_AUTOLOADER_DISCOVERY='sqs' is not one of listing, file-events, notifications"),
    ({"MANUFACTURING_READ_MODE": "direct", "MANUFACTURING_AUTOLOADER_DISCOVERY": "file-events"},
     "MANUFACTURING_AUTOLOADER_DISCOVERY only applies to MANUFACTURING_READ_MODE=autoloader"),
    ({"MANUFACTURING_READ_MODE": "", "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1"},
     "MANUFACTURING_AUTOLOADER_REGION only applies to MANUFACTURING_READ_MODE=autoloader"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "file-events",
      "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1"},
     "MANUFACTURING_AUTOLOADER_REGION only applies to MANUFACTURING_AUTOLOADER_DISCOVERY="
     "notifications .*file events service"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "file-events",
      "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE},
     "QUEUE_URL_SENSOR_DATA_CSV only applies to MANUFACTURING_AUTOLOADER_DISCOVERY=notif"),
    ({"MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE},
     "QUEUE_URL_SENSOR_DATA_CSV only applies to .*unset it with "
     "MANUFACTURING_AUTOLOADER_DISCOVERY=listing"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "file-events",
      "MANUFACTURING_LANDING_URL": "/srv/landing"},
     "file-events reads the file events of the Unity Catalog external location"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
      "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
      "MANUFACTURING_LANDING_URL": "/Volumes/main/manufacturing/landing"},
     "notifications subscribes to an S3 bucket's events .* for a volume use file-events"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications"},
     "set MANUFACTURING_AUTOLOADER_REGION to the bucket's AWS region .* sensor_data/csv, "
     "sensor_data/json"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
      "MANUFACTURING_AUTOLOADER_REGION": "Ireland"}, "'Ireland' is not an AWS region"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
      "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
      "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA": QUEUE},
     "QUEUE_URL_SENSOR_DATA: no Auto Loader stream .* MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_"
     "DATA_CSV, MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_JSON"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
      "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
      "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": "autoloader-sensor-data-csv"},
     "is not an SQS queue URL"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
      "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
      "MANUFACTURING_QUEUE_URL_SENSOR_DATA": SENSOR_QUEUE,
      "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_JSON": SENSOR_QUEUE},
     "QUEUE_URL_SENSOR_DATA_JSON is the landing sensor's queue "
     r"\(MANUFACTURING_QUEUE_URL_SENSOR_DATA\): both delete the messages they read"),
    ({"MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
      "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
      "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE,
      "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_JSON": QUEUE},
     "QUEUE_URL_SENSOR_DATA_CSV and MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_JSON name one "
     "queue"),
])
def test_discovery_settings_that_cannot_work_are_refused_in_one_line(environ, says):
    from manufacturing_ingest.settings import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match=says) as raised:
        Settings.from_env({**ON_DATABRICKS, **environ})
    assert "\n" not in str(raised.value)


def test_a_step_on_databricks_gets_the_discovery_and_its_resource_builds_it_again():
    from manufacturing_ingest.databricks.job import step_settings
    from manufacturing_ingest.orchestration.resources import resources_for
    from manufacturing_ingest.settings import Settings

    dagster_side = {"MANUFACTURING_ENV": "databricks",
                    "DATABRICKS_HOST": "https://dbc-1234.cloud.databricks.com",
                    "DATABRICKS_TOKEN": "dapi-SENTINEL",
                    "MANUFACTURING_DATABRICKS_EXECUTION": "connect-serverless",
                    "MANUFACTURING_READ_MODE": "autoloader",
                    "MANUFACTURING_LANDING_URL": "s3://plant-landing/manufacturing",
                    "MANUFACTURING_QUEUE_URL_SENSOR_DATA": SENSOR_QUEUE,
                    "MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
                    "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
                    "MANUFACTURING_AUTOLOADER_SERVICE_CREDENTIAL": "plant-landing-sqs",
                    "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE}
    settings = Settings.from_env(dagster_side)
    env = step_settings(settings)
    assert {k: v for k, v in env.items() if k.startswith("MANUFACTURING_AUTOLOADER_")} == {
        "MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
        "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
        "MANUFACTURING_AUTOLOADER_SERVICE_CREDENTIAL": "plant-landing-sqs",
        "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE}
    assert "SENTINEL" not in repr(env)
    # The step on Databricks builds the same discovery from what it was sent.
    on_cluster = Settings.from_env({**env, "DATABRICKS_RUNTIME_VERSION": "17.3"})
    assert on_cluster.autoloader == settings.autoloader
    # And the landing resource carries it to run_bronze, in Dagster's process or the step's.
    for side in (settings, on_cluster):
        landing = resources_for(side)["landing"]
        assert landing.autoloader() == settings.autoloader
        assert landing.autoloader().options("sensor_data", "csv")["cloudFiles.queueUrl"] == QUEUE
    # The default sends nothing: the step reads with directory listing as before.
    listing = Settings.from_env({**ON_DATABRICKS})
    assert not any(k.startswith("MANUFACTURING_AUTOLOADER_") for k in step_settings(listing))
    assert resources_for(listing)["landing"].autoloader().options("sensor_data", "csv") == {}


class _CloudFilesStandIn:
    """A Spark session whose ``readStream.format("cloudFiles")`` is Spark's own file stream
    source, started from the ``cloudFiles`` options it was given, which it records: what the
    ingestor asks Auto Loader for, checked through a real ``availableNow`` run on local Spark and
    Delta. Everything else is the session itself."""

    def __init__(self, spark):
        self._spark = spark
        self.streams: list[tuple[str, dict[str, str]]] = []  # (path, options) per stream

    def __getattr__(self, name):
        return getattr(self._spark, name)

    @property
    def readStream(self):  # noqa: N802 (Spark's name)
        stand_in = self

        class Reader:
            def __init__(self):
                self.options_given: dict[str, str] = {}

            def format(self, name):
                assert name == "cloudFiles"
                return self

            def options(self, **options):
                self.options_given.update(options)
                return self

            def load(self, path):
                stand_in.streams.append((path, dict(self.options_given)))
                return stand_in._file_stream(path, self.options_given)

        return Reader()

    def _file_stream(self, path: str, options: dict[str, str]):
        """What Auto Loader reads there, as far as Spark's file source can: the hinted columns
        and the rescued data column, the format's options, the file name glob, every folder."""
        schema = options["cloudFiles.schemaHints"] + ", _rescued_data STRING"
        reader = (self._spark.readStream.format(options["cloudFiles.format"]).schema(schema)
                  .option("pathGlobFilter", options["pathGlobFilter"])
                  .option("recursiveFileLookup", "true"))
        for name in ("header", "multiLine", "escape", "encoding"):
            if name in options:
                reader = reader.option(name, options[name])
        return reader.load(path)


@pytest.mark.spark
def test_a_bronze_step_in_autoloader_mode_starts_each_stream_with_its_discovery(lake, spark):
    from manufacturing_ingest.orchestration.bronze import run_bronze
    from manufacturing_ingest.settings import ReadMode, Settings

    spec = get_source("sensor_data")
    lake.put("raw/sensor-data/2026/01/15/a.csv", numbered_sensor_csv("a", 7))
    lake.put("raw/sensor-data/2026/01/15/b.csv", numbered_sensor_csv("b", 3))
    discovery = Settings.from_env({**ON_DATABRICKS,
                                   "MANUFACTURING_AUTOLOADER_DISCOVERY": "notifications",
                                   "MANUFACTURING_AUTOLOADER_REGION": "eu-west-1",
                                   "MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV": QUEUE,
                                   }).autoloader
    session = _CloudFilesStandIn(spark)
    logged: list[str] = []

    step = run_bronze(session, spec, lake.zone, ReadMode.AUTOLOADER, lake.lakehouse,
                      ["2026-01-15"], "run-1", False, set(), lambda key: -1,
                      log=logged.append, warn=logged.append, autoloader=discovery)

    # One stream per format, each with the discovery options of its own stream.
    by_format = {options["cloudFiles.format"]: (path, options) for path, options in
                 session.streams}
    assert set(by_format) == {"csv", "json"}
    assert {path for path, _ in by_format.values()} == {
        f"{lake.landing_root.as_uri()}/raw/sensor-data"}
    csv, json_ = by_format["csv"][1], by_format["json"][1]
    assert (csv["cloudFiles.useNotifications"], csv["cloudFiles.queueUrl"]) == ("true", QUEUE)
    assert "cloudFiles.region" not in csv
    assert (json_["cloudFiles.region"], json_["cloudFiles.backfillInterval"]) == ("eu-west-1",
                                                                                "1 day")
    assert "cloudFiles.queueUrl" not in json_
    # The run committed the files the stand-in stream found, and says how they were found.
    assert step.metadata["mode"] == "autoloader" and step.metadata["records"] == 10
    assert step.metadata["autoloader_discovery"] == "notifications"
    assert DeltaTable(lake.table_path("sensor_data")).to_pandas().shape[0] == 10

    # Without a discovery (run_bronze's default), the streams list, as before.
    lake.put("raw/sensor-data/2026/01/15/c.csv", numbered_sensor_csv("c", 2))
    session.streams.clear()
    again = run_bronze(session, spec, lake.zone, ReadMode.AUTOLOADER, lake.lakehouse,
                       ["2026-01-15"], "run-2", False, set(), lambda key: -1,
                       log=logged.append, warn=logged.append)
    assert again.metadata["records"] == 2 and again.metadata["autoloader_discovery"] == "listing"
    assert all(not DISCOVERY_OPTIONS & set(options) for _, options in session.streams)

"""The Unity Catalog volume landing zone against the Databricks workspace stand-in on loopback,
through the real databricks-sdk over real HTTP: paged listings, ranged and staged reads of the
version listed, errors that need a person, a landing sensor's tick and sweep, and an ingest with
the local Spark engine (``staged`` reads) that lands every file exactly once through a re-upload,
a touch, a correction and a late file. Every request the workspace received is checked: none
goes to DBFS, and the token travels only in the ``Authorization`` header."""

from __future__ import annotations

import dataclasses
import io
import os
import socket
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.ledger import FileStatus, file_states, read_events
from manufacturing_ingest.engine.report import Outcome
from manufacturing_ingest.errors import ConfigurationError, LandingZoneError
from manufacturing_ingest.landing import landing_zone_for
from manufacturing_ingest.landing.scan import LandingCursor, scan_landing
from manufacturing_ingest.landing.sweep import SweepFindings
from manufacturing_ingest.landing.volumes import VolumesLandingZone
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.orchestration.sensors import landing_sensor
from manufacturing_ingest.settings import ReadMode
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.databricks.standin import DatabricksWorkspace
from manufacturing_ingest_tests.landing.test_sweep import KEYS
from manufacturing_ingest_tests.samples import numbered_sensor_csv, sensor_csv
from manufacturing_ingest_tests.sensor_results import skip_message, spans

TOKEN = f"dapi-sentinel-{uuid.uuid4().hex}"
CATALOG, SCHEMA, VOLUME = "main", "plant_a", "landing"
VOLUME_ROOT = f"/Volumes/{CATALOG}/{SCHEMA}/{VOLUME}"
SPEC = get_source("sensor_data")
DAY = "2026-01-15"
FOLDER = "raw/sensor-data/2026/01/15"
LATE_DAY = "2026-01-09"
LATE_FOLDER = "raw/sensor-data/2026/01/09"
# KEYS: names whose key order differs from a naive walk, as test_sweep.py lists them on S3.


@pytest.fixture(scope="module")
def databricks_workspace(tmp_path_factory):
    """The stand-in workspace of this module, with the landing volume created."""
    workspace = DatabricksWorkspace(tmp_path_factory.mktemp("volumes_workspace"))
    workspace.create_volume(CATALOG, SCHEMA, VOLUME)
    yield workspace
    workspace.stop()


@pytest.fixture(scope="module", autouse=True)
def databricks_env(databricks_workspace):
    """The SDK's own variables, pointing at the stand-in with a PAT; nothing else of the SDK's
    credential chain (no profile file, no service principal, not "on a cluster")."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABRICKS_HOST", databricks_workspace.host)
        patch.setenv("DATABRICKS_TOKEN", TOKEN)
        patch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent")
        for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_AUTH_TYPE",
                     "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_RUNTIME_VERSION",
                     "DATABRICKS_USERNAME", "DATABRICKS_PASSWORD"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(autouse=True)
def _requests_are_clean(databricks_workspace):
    """After each test: what it sent the workspace went to the Files API, never to DBFS, and
    carried the token in the Authorization header only."""
    first = len(databricks_workspace.requests)
    yield
    assert_clean(databricks_workspace.requests[first:])


def assert_clean(requests) -> None:
    for request in requests:
        assert not request.path.startswith("/api/2.0/dbfs"), request.path
        assert request.path.startswith(("/api/2.0/fs/files/", "/api/2.0/fs/directories/")), \
            request.path
        assert request.header("Authorization") == f"Bearer {TOKEN}"
        elsewhere = [request.path, *request.query.keys(), *request.query.values(),
                     *(f"{k}: {v}" for k, v in request.headers.items()
                       if k.lower() != "authorization")]
        assert not [text for text in elsewhere if TOKEN in text]
        assert TOKEN.encode() not in request.body


@pytest.fixture
def root(request) -> str:
    """A folder of its own in the volume for each test: the zone's root."""
    return f"{VOLUME_ROOT}/{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"


def put(zone: VolumesLandingZone, key: str, data: str | bytes, age: timedelta | None = None,
        workspace: DatabricksWorkspace | None = None) -> None:
    """Upload through the Files API, as a plant's uploader would; with ``age``, its
    modification time set that far back in the workspace's storage."""
    body = data.encode() if isinstance(data, str) else data
    zone.client.files.upload(zone.uri_for(key), io.BytesIO(body), overwrite=True)
    if age is not None:
        local = workspace.volume_local_path(zone.uri_for(key))
        stamp = time.time() - age.total_seconds()
        os.utime(local, (stamp, stamp))


def since(workspace: DatabricksWorkspace, first: int) -> list:
    return workspace.requests[first:]


# Listing


def test_a_folder_of_more_than_a_page_is_listed_whole_and_found_once(databricks_workspace,
                                                                      root):
    today = clear_of_midnight()
    day = f"raw/sensor-data/{today:%Y/%m/%d}"
    folder = databricks_workspace.volume_local_path(f"{root}/{day}")
    folder.mkdir(parents=True)
    keys = [f"{day}/part-{n:05d}.csv" for n in range(1050)]
    for key in keys:  # straight into the volume's storage: a thousand uploads prove nothing
        (folder / key.rsplit("/", 1)[1]).write_text(sensor_csv(key[-9:-4], day=today))
    zone = VolumesLandingZone(root)
    first = len(databricks_workspace.requests)

    scan = scan_landing(SPEC, zone, LandingCursor())

    assert sorted(o.key for o in scan.new_objects) == keys
    assert all(o.uri == f"{root}/{o.key}" for o in scan.new_objects)
    pages = [r for r in since(databricks_workspace, first)
             if r.method == "GET" and r.path.endswith("/" + today.strftime("%d"))]
    assert len(pages) == 2 and "page_token" not in pages[0].query
    assert pages[1].query["page_token"]  # the second page asked for by the first one's token
    assert scan.list_requests >= 3  # two pages of the day, plus the undated level
    assert scan_landing(SPEC, zone, scan.cursor).new_objects == []


def test_small_pages_and_list_after_give_every_key_in_order_and_resume_after_any(root):
    zone = VolumesLandingZone(root, page_size=2)
    for key in KEYS:
        put(zone, key, "x")
    ordered = sorted(KEYS)
    assert [o.key for o in zone.list_after("raw/sensor-data/")] == ordered
    for n, key in enumerate(ordered):
        assert [o.key for o in zone.list_after("raw/sensor-data/", key)] == ordered[n + 1:]
    objects, folders = zone.list_level("raw/sensor-data/")
    assert [o.key for o in objects] == ["raw/sensor-data/Z.csv", "raw/sensor-data/a.csv",
                                        "raw/sensor-data/a0.csv"]
    assert folders == ["raw/sensor-data/2026/", "raw/sensor-data/a/"]
    assert zone.list_level("raw/sensor-data/1999/") == ([], [])  # no such folder: nothing


# Reading


def test_ranged_reads_fetch_only_the_bytes_asked_for_of_the_version_listed(
        databricks_workspace, root):
    zone = VolumesLandingZone(root)
    body = sensor_csv("A", "B", "C")
    put(zone, f"{FOLDER}/a b#1.csv", body, age=timedelta(minutes=10),
        workspace=databricks_workspace)
    (obj,) = zone.list_flat(FOLDER)
    data = body.encode()
    first = len(databricks_workspace.requests)
    assert zone.read_range(obj, 0, 20) == data[:20]
    assert zone.read_range(obj, -8, 8) == data[-8:]
    assert zone.read_range(obj, 0, 10 * len(data)) == data
    ranges = [r.header("Range") for r in since(databricks_workspace, first)]
    assert ranges == ["bytes=0-19", f"bytes={len(data) - 8}-{len(data) - 1}",
                      f"bytes=0-{len(data) - 1}"]
    assert all(r.header("If-Unmodified-Since") for r in since(databricks_workspace, first))
    assert zone.spark_location(obj) == f"{root}/{FOLDER}/a b#1.csv"  # the /Volumes path

    put(zone, f"{FOLDER}/a b#1.csv", body + "P01,P01-L1,D\n")  # re-uploaded since the listing
    with pytest.raises(FileNotFoundError, match="changed or was deleted since it was listed"):
        zone.read_range(obj, 0, 20)


def test_staged_reads_copy_the_version_listed_and_refuse_one_replaced_or_deleted(
        databricks_workspace, root, tmp_path):
    zone = VolumesLandingZone(root)
    body = numbered_sensor_csv("s", 50)
    put(zone, f"{FOLDER}/s.csv", body, age=timedelta(minutes=10), workspace=databricks_workspace)
    put(zone, f"{FOLDER}/t.csv", body, age=timedelta(minutes=10), workspace=databricks_workspace)
    s, t = zone.list_flat(FOLDER)

    first = len(databricks_workspace.requests)
    staged = zone.local_path(s, tmp_path)
    assert staged.read_text() == body and staged.is_relative_to(tmp_path)
    assert zone.local_path(s, tmp_path) == staged  # the copy is kept for its identity
    assert zone.unchanged(s)  # Spark reads the verified copy
    assert [(r.method, r.header("Range")) for r in since(databricks_workspace, first)] == [
        ("GET", None)]  # one whole download, nothing more
    assert zone.content_hash(s, staged) == zone.content_hash(t)  # t: downloaded for its hash

    fresh = VolumesLandingZone(root)  # knows no copy: asks the Files API
    assert fresh.unchanged(t)
    put(zone, f"{FOLDER}/t.csv", numbered_sensor_csv("t2", 50))  # the same size, new bytes
    assert not fresh.unchanged(t)
    with pytest.raises(FileNotFoundError, match="changed or was deleted since it was listed"):
        fresh.local_path(t, tmp_path / "again")
    zone.client.files.delete(zone.uri_for(s.key))
    with pytest.raises(FileNotFoundError, match="changed or was deleted"):
        fresh.local_path(s, tmp_path / "again")
    assert not fresh.unchanged(s)


def test_a_touch_a_reupload_and_a_correction_each_give_a_new_identity(databricks_workspace,
                                                                      root):
    zone = VolumesLandingZone(root)
    put(zone, f"{FOLDER}/a.csv", "x,y\n1,2\n", age=timedelta(minutes=10),
        workspace=databricks_workspace)
    (before,) = zone.list_flat(FOLDER)
    assert zone.known_content_hash(before) is None  # the Files API tells no content hash
    hashes = [zone.content_hash(before)]  # read for it: what tells versions apart
    put(zone, f"{FOLDER}/a.csv", "x,y\n1,2\n")  # the same bytes again
    (again,) = zone.list_flat(FOLDER)
    hashes.append(zone.content_hash(again))
    touched = databricks_workspace.volume_local_path(zone.uri_for(f"{FOLDER}/a.csv"))
    os.utime(touched, (time.time() + 5, time.time() + 5))  # the same bytes, copied later on
    (touch,) = zone.list_flat(FOLDER)
    hashes.append(zone.content_hash(touch))
    put(zone, f"{FOLDER}/a.csv", "x,y\n1,3\n")  # corrected, the same size
    (corrected,) = zone.list_flat(FOLDER)
    hashes.append(zone.content_hash(corrected))
    identities = [before.etag, again.etag, touch.etag, corrected.etag]
    assert len(set(identities)) == 4 and len({o.fingerprint for o in (
        before, again, touch, corrected)}) == 4
    assert hashes[0] == hashes[1] == hashes[2] != hashes[3]


# Errors that need a person


def test_what_is_missing_or_refused_is_said_in_one_line_with_the_fix(databricks_workspace,
                                                                     monkeypatch):
    def refusal(zone: VolumesLandingZone) -> str:
        with pytest.raises(LandingZoneError) as caught:
            zone.check_available()
        message = str(caught.value)
        assert "\n" not in message and TOKEN not in message
        return message

    assert "volume main.plant_a.nope does not exist or this principal cannot see it" in refusal(
        VolumesLandingZone(f"/Volumes/{CATALOG}/{SCHEMA}/nope"))
    assert "READ VOLUME" in refusal(VolumesLandingZone(f"/Volumes/{CATALOG}/{SCHEMA}/nope"))
    assert f"the folder {VOLUME_ROOT}/no-such-folder does not exist in volume" in refusal(
        VolumesLandingZone(f"{VOLUME_ROOT}/no-such-folder"))
    VolumesLandingZone(VOLUME_ROOT).check_available()  # the volume itself answers

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    message = refusal(VolumesLandingZone(VOLUME_ROOT, retry_timeout_seconds=1))
    assert f"the workspace at http://127.0.0.1:{closed} does not answer" in message
    assert "check DATABRICKS_HOST" in message and time.monotonic() - started < 20

    monkeypatch.delenv("DATABRICKS_HOST")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    message = refusal(VolumesLandingZone(VOLUME_ROOT))
    assert "no usable Databricks credentials" in message
    assert "set DATABRICKS_HOST with DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID" in message


def test_volume_urls_are_routed_to_the_volume_zone_and_others_refused():
    for url in (f"{VOLUME_ROOT}/plant", f"dbfs:{VOLUME_ROOT}/plant/",
                f"dbfs://{VOLUME_ROOT}/plant"):
        zone = landing_zone_for(url)
        assert isinstance(zone, VolumesLandingZone)
        assert zone.root_uri == f"{VOLUME_ROOT}/plant" and zone.prefix == "plant"
        assert zone.uri_for("raw/a.csv") == f"{VOLUME_ROOT}/plant/raw/a.csv"
    assert landing_zone_for(VOLUME_ROOT).root_uri == VOLUME_ROOT
    for bad in ("/Volumes/main/plant_a", "/Volumes/main/../x/y", "dbfs:/Volumes"):
        with pytest.raises(LandingZoneError, match="not a Unity Catalog volume path"):
            landing_zone_for(bad)
    with pytest.raises(ConfigurationError, match="DBFS root is not a landing zone"):
        landing_zone_for("dbfs:/mnt/landing")


def test_requests_carry_the_token_only_in_the_authorization_header(databricks_workspace, root,
                                                                   tmp_path):
    """Every operation of the zone once (the autouse check then looks at each request)."""
    first = len(databricks_workspace.requests)
    zone = VolumesLandingZone(root)
    (tmp_path / "up" / FOLDER).mkdir(parents=True)
    (tmp_path / "up" / FOLDER / "a.csv").write_text(sensor_csv("A"))
    assert zone.upload_tree(tmp_path / "up") == 1  # as `manufacturing-ingest generate` does
    (obj,) = zone.list_after("raw/")
    assert obj.key == f"{FOLDER}/a.csv" and obj.size == len(sensor_csv("A"))
    zone.read_range(obj, 0, 4)
    zone.local_path(obj, tmp_path)
    VolumesLandingZone(root).unchanged(obj)
    zone.check_available()
    sent = {(r.method, r.path.split("/")[4]) for r in since(databricks_workspace, first)}
    assert sent == {("PUT", "files"), ("GET", "directories"), ("GET", "files"),
                    ("HEAD", "files"), ("HEAD", "directories")}
    assert_clean(since(databricks_workspace, first))


# The landing sensor


def test_a_sensor_tick_requests_a_run_for_new_files_in_the_volume(databricks_workspace, root,
                                                                  instance):
    today = clear_of_midnight()
    csv = partial(sensor_csv, day=today)
    day = f"raw/sensor-data/{today:%Y/%m/%d}"
    zone = VolumesLandingZone(root)
    for n in range(3):
        put(zone, f"{day}/a{n}.csv", csv(f"A{n}"))
    put(zone, f"{day}/_SUCCESS", b"")
    sensor = landing_sensor(SPEC)

    def tick(cursor: str | None):
        return sensor(dg.build_sensor_context(
            cursor=cursor, instance=instance,
            resources={"landing": LandingZoneResource(url=root),
                       "lakehouse": LakehouseResource(url="/nonexistent/lakehouse")}))

    first = tick(None)
    assert spans(first) == {(f"{today:%Y-%m-%d}", f"{today:%Y-%m-%d}"): 3}
    (landed,) = first.asset_events
    assert landed.metadata["files"].value == 3
    assert landed.metadata["bytes"].value == sum(len(csv(f"A{n}").encode()) for n in range(3))
    idle = tick(first.cursor)
    assert not idle.run_requests and "No new objects" in skip_message(idle)
    assert f"of {root}/raw/sensor-data/" in skip_message(idle)

    put(zone, f"{day}/b.csv", csv("B"))
    put(zone, f"{day}/a0.csv", csv("A0"))  # the same bytes again: a new identity, asked for
    second = tick(idle.cursor)  # (its run finds the same content and writes nothing)
    assert spans(second) == {(f"{today:%Y-%m-%d}", f"{today:%Y-%m-%d}"): 2}


def test_the_sweep_finds_a_late_file_under_an_older_date_folder(databricks_workspace, root,
                                                                instance):
    spec = dataclasses.replace(SPEC, sweep_interval=timedelta(hours=1))
    now = {"at": datetime.now(UTC)}
    sensor = landing_sensor(spec, clock=lambda: now["at"])
    zone = VolumesLandingZone(root)
    zone.client.files.create_directory(zone.uri_for("raw/sensor-data"))

    def tick(cursor: str | None):
        return sensor(dg.build_sensor_context(
            cursor=cursor, instance=instance,
            resources={"landing": LandingZoneResource(url=root),
                       "lakehouse": LakehouseResource(url="/nonexistent/lakehouse")}))

    first = tick(None)
    assert "Sweep complete: 0 objects" in skip_message(first)
    old = now["at"] - timedelta(days=30)
    late_key = f"raw/sensor-data/{old:%Y/%m/%d}/gateway-7.csv"
    put(zone, late_key, numbered_sensor_csv("g7", 25, old))
    now["at"] += timedelta(minutes=1)
    before = tick(first.cursor)
    assert not before.run_requests  # the recent listing cannot see a 30-day-old folder
    assert "Next sweep at" in skip_message(before)

    now["at"] += timedelta(hours=1)
    swept = tick(before.cursor)
    assert spans(swept) == {(f"{old:%Y-%m-%d}", f"{old:%Y-%m-%d}"): 1}
    findings = SweepFindings.load(instance.run_storage, spec.name)
    assert [o.uri for o in findings.objects()] == [f"{root}/{late_key}"]
    now["at"] += timedelta(minutes=1)
    assert not tick(swept.cursor).run_requests  # asked for once


# An ingest with the local Spark engine, staged reads


@dataclasses.dataclass
class Corpus:
    """The zone, the lakehouse and the reports of each round of ingests."""

    zone: VolumesLandingZone
    lakehouse: Lakehouse
    first: object
    second: object
    late: object
    third: object
    versions: tuple[int, int]  # the table's version after the first and the second round

    def uri(self, name: str, folder: str = FOLDER) -> str:
        return self.zone.uri_for(f"{folder}/{name}")


@pytest.fixture(scope="module")
def corpus(spark, databricks_workspace, tmp_path_factory) -> Corpus:
    """Three files ingested; then one uploaded again with the same bytes, one touched, one
    corrected, and a late one under an older date folder; each round ingested once."""
    zone = VolumesLandingZone(f"{VOLUME_ROOT}/ingest")
    lakehouse = Lakehouse(str(tmp_path_factory.mktemp("volumes_lakehouse") / "lakehouse"))
    ten_minutes = timedelta(minutes=10)
    for name, tag, rows in (("a.csv", "a", 3), ("b.csv", "b", 4), ("c.csv", "c", 5)):
        put(zone, f"{FOLDER}/{name}", numbered_sensor_csv(tag, rows, date_of(DAY)),
            age=ten_minutes, workspace=databricks_workspace)

    def ingest(*days: str):
        return BronzeIngestor(spark, SPEC, VolumesLandingZone(zone.root_uri), lakehouse,
                              read_mode=ReadMode.STAGED).ingest(list(days))

    first = ingest(DAY)
    after_first = table_version(lakehouse)
    put(zone, f"{FOLDER}/a.csv", numbered_sensor_csv("a", 3, date_of(DAY)))  # the same bytes
    touched = databricks_workspace.volume_local_path(zone.uri_for(f"{FOLDER}/c.csv"))
    os.utime(touched, None)  # the same bytes, a new modification time
    put(zone, f"{FOLDER}/b.csv", numbered_sensor_csv("b2", 2, date_of(DAY)))  # corrected
    put(zone, f"{LATE_FOLDER}/late.csv", numbered_sensor_csv("late", 6, date_of(LATE_DAY)))
    second = ingest(DAY)
    after_second = table_version(lakehouse)
    late = ingest(LATE_DAY)
    third = ingest(LATE_DAY, DAY)
    return Corpus(zone, lakehouse, first, second, late, third, (after_first, after_second))


def date_of(day: str):
    return datetime.fromisoformat(day).date()


def table_rows(lakehouse: Lakehouse) -> Counter:
    table = DeltaTable(lakehouse.table_path(SPEC))
    return Counter(table.to_pyarrow_table(columns=["_source_file"]).column(0).to_pylist())


def table_version(lakehouse: Lakehouse) -> int:
    return DeltaTable(lakehouse.table_path(SPEC)).version()


def ledger_rows(lakehouse: Lakehouse) -> Counter:
    """Rows per URI of the versions the ledger says bronze holds (committed, not superseded)."""
    states = file_states(read_events(lakehouse.ledger_path, SPEC.name, [DAY, LATE_DAY]))
    held = Counter()
    for state in states.values():
        if state.status is FileStatus.COMMITTED and state.rows:
            held[state.object_uri] += state.rows
    return held


def sensor_ids(lakehouse: Lakehouse, uri: str) -> list[str]:
    rows = DeltaTable(lakehouse.table_path(SPEC)).to_pyarrow_table(
        columns=["_source_file", "sensor_id"]).to_pylist()
    return sorted(r["sensor_id"] for r in rows if r["_source_file"] == uri)


def outcome(report, uri: str):
    (found,) = [o for o in report.outcomes if o.uri == uri]
    return found


def test_the_first_ingest_lands_each_file_once_under_its_volume_path(corpus):
    assert corpus.first.records == 12 and corpus.first.files_failed == 0
    assert {outcome(corpus.first, corpus.uri(n)).status for n in ("a.csv", "b.csv", "c.csv")} \
        == {Outcome.COMMITTED}
    assert corpus.uri("a.csv") == f"{VOLUME_ROOT}/ingest/{FOLDER}/a.csv"  # the lineage


def test_the_same_bytes_uploaded_again_or_touched_write_nothing(corpus):
    for name, rows in (("a.csv", 3), ("c.csv", 5)):
        found = outcome(corpus.second, corpus.uri(name))
        assert found.status is Outcome.SKIPPED and "same content" in found.note, name
        assert found.rows == rows
        assert sensor_ids(corpus.lakehouse, corpus.uri(name)) == sorted(
            f"{name[0]}-{k}" for k in range(rows))


def test_a_correction_replaces_the_rows_of_its_file_in_one_commit(corpus):
    assert outcome(corpus.second, corpus.uri("b.csv")).status is Outcome.COMMITTED
    assert sensor_ids(corpus.lakehouse, corpus.uri("b.csv")) == ["b2-0", "b2-1"]
    assert corpus.second.records == 2
    after_first, after_second = corpus.versions
    assert after_second == after_first + 1  # old rows out, new in: one commit


def test_a_late_file_under_an_older_date_folder_lands_in_its_partition(corpus):
    assert corpus.late.records == 6
    late = corpus.uri("late.csv", LATE_FOLDER)
    assert outcome(corpus.late, late).partition_key == LATE_DAY
    assert sensor_ids(corpus.lakehouse, late) == sorted(f"late-{k}" for k in range(6))


def test_every_file_is_in_bronze_exactly_once_and_the_ledger_agrees(corpus):
    assert corpus.third.records == 0 and corpus.third.files_skipped == 4
    expected = {corpus.uri("a.csv"): 3, corpus.uri("b.csv"): 2, corpus.uri("c.csv"): 5,
                corpus.uri("late.csv", LATE_FOLDER): 6}
    assert table_rows(corpus.lakehouse) == ledger_rows(corpus.lakehouse) == expected


def test_the_ingests_read_through_the_files_api_only_with_the_token_in_its_header(
        corpus, databricks_workspace):
    sent = databricks_workspace.requests  # the corpus's ingests included (set up before)
    reads = [r for r in sent if r.method == "GET" and r.path.startswith("/api/2.0/fs/files/")
             and r.path.endswith(("a.csv", "b.csv", "c.csv", "late.csv"))]
    assert len(reads) >= 4  # staged copies and content hashes, each a download
    assert_clean(sent)

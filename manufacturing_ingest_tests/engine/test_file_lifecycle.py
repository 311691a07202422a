"""A file's whole life, on a local landing folder and on S3 (the loopback S3 server): touched,
uploaded again with the same bytes under a new ETag, corrected in place (replace, append,
ignore), and reprocessed while one of its files cannot be read. After each step the table is
read with ``deltalake`` (an engine that did not write it): exact rows per ``_source_file``, and
the ledger agrees with bronze (the rows of each file's committed version are the rows the
table holds for it)."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import Corrections, get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.ledger import FileStatus, file_states, read_events
from manufacturing_ingest.engine.report import Outcome
from manufacturing_ingest.errors import ReprocessIncomplete
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = pytest.mark.spark

SPEC = get_source("sensor_data")
DAY = "2026-01-15"
FOLDER = "raw/sensor-data/2026/01/15"
MB = 1024 * 1024


class Landing:
    """One landing zone of either kind, with what uploaders and operators do to its files."""

    def __init__(self, kind: str, root: Path, request):
        self.kind = kind
        if kind == "local":
            self.zone = LocalLandingZone(root / "landing")
            self.zone.root.mkdir(parents=True, exist_ok=True)
        else:
            from manufacturing_ingest.landing.s3 import S3LandingZone

            self.bucket = request.getfixturevalue("bucket")
            self.zone = S3LandingZone(self.bucket.url)

    def uri(self, name: str) -> str:
        return self.zone.uri_for(f"{FOLDER}/{name}")

    def put(self, name: str, text: str) -> None:
        if self.kind == "local":
            path = self.zone.root / FOLDER / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            stamp = path.stat().st_mtime - 600  # landed ten minutes ago
            os.utime(path, (stamp, stamp))
        else:
            self.bucket.put(f"{FOLDER}/{name}", text)

    def same_bytes_new_identity(self, name: str) -> None:
        """``touch`` on a local file; on S3, the same bytes uploaded again as a multipart
        upload (another part size gives another ETag)."""
        if self.kind == "local":
            path = self.zone.root / FOLDER / name
            os.utime(path, None)
            return
        client, key = self.bucket.client, f"landing/{FOLDER}/{name}"
        data = client.get_object(Bucket=self.bucket.name, Key=key)["Body"].read()
        before = client.head_object(Bucket=self.bucket.name, Key=key)["ETag"]
        upload = client.create_multipart_upload(Bucket=self.bucket.name, Key=key)
        parts = []
        for number, start in enumerate(range(0, len(data), 5 * MB), 1):
            answer = client.upload_part(Bucket=self.bucket.name, Key=key, PartNumber=number,
                                        UploadId=upload["UploadId"],
                                        Body=data[start:start + 5 * MB])
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        client.complete_multipart_upload(Bucket=self.bucket.name, Key=key,
                                         UploadId=upload["UploadId"],
                                         MultipartUpload={"Parts": parts})
        after = client.head_object(Bucket=self.bucket.name, Key=key)["ETag"]
        assert after != before and "-" in after, (before, after)


@pytest.fixture(params=["local", "s3"])
def landing(request, tmp_path) -> Landing:
    return Landing(request.param, tmp_path, request)


@pytest.fixture
def lakehouse(tmp_path) -> Lakehouse:
    return Lakehouse(str(tmp_path / "lakehouse"))


def ingest(spark, landing: Landing, lakehouse: Lakehouse, reprocess: bool = False,
           corrections: Corrections = Corrections.REPLACE, zone=None):
    spec = dataclasses.replace(SPEC, corrections=corrections)
    return BronzeIngestor(spark, spec, zone or landing.zone, lakehouse).ingest(
        [DAY], reprocess=reprocess)


def table_rows(lakehouse: Lakehouse) -> Counter:
    """Rows per ``_source_file``, read with delta-rs."""
    table = DeltaTable(lakehouse.table_path(SPEC))
    return Counter(table.to_pyarrow_table(columns=["_source_file"]).column(0).to_pylist())


def table_version(lakehouse: Lakehouse) -> int:
    return DeltaTable(lakehouse.table_path(SPEC)).version()


def ledger_rows(lakehouse: Lakehouse) -> Counter:
    """Rows per URI of the versions the ledger says bronze holds (committed, not superseded)."""
    states = file_states(read_events(lakehouse.ledger_path, SPEC.name, [DAY]))
    held = Counter()
    for state in states.values():
        if state.status is FileStatus.COMMITTED and state.rows:
            held[state.object_uri] += state.rows
    return held


def sensor_ids(lakehouse: Lakehouse, uri: str) -> list[str]:
    rows = DeltaTable(lakehouse.table_path(SPEC)).to_pyarrow_table(
        columns=["_source_file", "sensor_id"]).to_pylist()
    return sorted(r["sensor_id"] for r in rows if r["_source_file"] == uri)


def test_the_same_bytes_under_a_new_identity_change_nothing(spark, landing, lakehouse):
    # Big enough for two 5 MB parts on S3.
    landing.put("big.csv", numbered_sensor_csv("big", 120_000))
    landing.put("other.csv", numbered_sensor_csv("o", 5))
    first = ingest(spark, landing, lakehouse)
    assert first.records == 120_005
    version = table_version(lakehouse)

    landing.same_bytes_new_identity("big.csv")
    second = ingest(spark, landing, lakehouse)

    assert second.records == 0 and table_version(lakehouse) == version  # nothing written
    (outcome,) = [o for o in second.outcomes if o.uri == landing.uri("big.csv")]
    assert outcome.status is Outcome.SKIPPED and "same content" in outcome.note
    assert outcome.rows == 120_000
    assert table_rows(lakehouse) == ledger_rows(lakehouse) == {
        landing.uri("big.csv"): 120_000, landing.uri("other.csv"): 5}
    third = ingest(spark, landing, lakehouse)
    assert third.records == 0 and third.files_skipped == 2


@pytest.mark.connect  # replace's one-commit overwrite sets a Delta conf: Connect must carry it
@pytest.mark.parametrize("corrections", list(Corrections))
def test_a_corrected_file_replaces_appends_or_is_ignored_as_the_source_says(
        spark, landing, lakehouse, corrections):
    landing.put("line-3.csv", numbered_sensor_csv("v1", 4))
    landing.put("line-4.csv", numbered_sensor_csv("keep", 3))
    ingest(spark, landing, lakehouse, corrections=corrections)
    version = table_version(lakehouse)

    landing.put("line-3.csv", numbered_sensor_csv("v2", 2))  # the operator's corrected export
    report = ingest(spark, landing, lakehouse, corrections=corrections)

    corrected, kept = landing.uri("line-3.csv"), landing.uri("line-4.csv")
    if corrections is Corrections.REPLACE:
        assert sensor_ids(lakehouse, corrected) == ["v2-0", "v2-1"]
        assert table_version(lakehouse) == version + 1  # one commit: old rows out, new in
        assert report.records == 2
    elif corrections is Corrections.APPEND:
        assert sensor_ids(lakehouse, corrected) == ["v1-0", "v1-1", "v1-2", "v1-3", "v2-0",
                                                    "v2-1"]
        assert table_version(lakehouse) == version + 1
    else:
        assert sensor_ids(lakehouse, corrected) == ["v1-0", "v1-1", "v1-2", "v1-3"]
        assert table_version(lakehouse) == version
        (outcome,) = [o for o in report.outcomes if o.uri == corrected]
        assert "corrections: ignore" in outcome.note
    assert sensor_ids(lakehouse, kept) == ["keep-0", "keep-1", "keep-2"]
    assert table_rows(lakehouse) == ledger_rows(lakehouse)
    again = ingest(spark, landing, lakehouse, corrections=corrections)
    assert again.records == 0 and table_rows(lakehouse) == ledger_rows(lakehouse)


class _FailingReads:
    """The landing zone, but reading one object fails as a dropped connection would."""

    def __init__(self, zone, name: str):
        self._zone, self._name = zone, name

    def __getattr__(self, attribute):
        return getattr(self._zone, attribute)

    def local_path(self, obj, staging_dir):
        if obj.name == self._name:
            raise OSError(f"{obj.uri}: reading kept failing: Connection reset by peer")
        return self._zone.local_path(obj, staging_dir)


def test_a_reprocess_that_cannot_read_a_committed_file_writes_nothing(spark, landing,
                                                                     lakehouse):
    for name, n in (("a.csv", 3), ("b.csv", 4), ("c.csv", 5)):
        landing.put(name, numbered_sensor_csv(name[0], n))
    ingest(spark, landing, lakehouse)
    before, version = table_rows(lakehouse), table_version(lakehouse)

    with pytest.raises(ReprocessIncomplete, match=r"b\.csv.*Connection reset") as stopped:
        ingest(spark, landing, lakehouse, reprocess=True,
               zone=_FailingReads(landing.zone, "b.csv"))
    assert "nothing written" in str(stopped.value)
    assert table_version(lakehouse) == version and table_rows(lakehouse) == before
    assert table_rows(lakehouse) == ledger_rows(lakehouse)
    events = read_events(lakehouse.ledger_path, SPEC.name, [DAY])
    assert any(e.event.value == "failed" and e.object_uri == landing.uri("b.csv")
               for e in events)  # `files` shows why

    redone = ingest(spark, landing, lakehouse, reprocess=True)  # it can be read again
    assert redone.records == 12 and table_rows(lakehouse) == before
    assert table_rows(lakehouse) == ledger_rows(lakehouse)


def test_a_file_that_cannot_be_read_as_it_is_fails_once_and_waits_for_new_bytes(
        spark, landing, lakehouse):
    import bz2

    landing.put("good.csv", numbered_sensor_csv("g", 2))
    if landing.kind == "s3":  # archived: a restore, not new bytes, makes it readable
        landing.bucket.client.put_object(
            Bucket=landing.bucket.name, Key=f"landing/{FOLDER}/cold.csv",
            Body=numbered_sensor_csv("c", 2).encode(), StorageClass="GLACIER")
    for name, data in (("export.csv.bz2", bz2.compress(numbered_sensor_csv("b", 2).encode())),
                       ("cp1252.csv", numbered_sensor_csv("w", 2).replace("P01", "Prüf")
                        .encode("cp1252"))):
        if landing.kind == "local":
            path = landing.zone.root / FOLDER / name
            path.write_bytes(data)
        else:
            landing.bucket.put(f"{FOLDER}/{name}", data)

    first = ingest(spark, landing, lakehouse)
    failed = {o.uri.rsplit("/", 1)[1]: o.error for o in first.outcomes
              if o.status is Outcome.FAILED}
    assert "unsupported file type" in failed["export.csv.bz2"]
    assert "not valid UTF-8" in failed["cp1252.csv"]
    if landing.kind == "s3":
        assert "archived" in failed["cold.csv"] and "restore" in failed["cold.csv"]
    assert first.records == 2

    second = ingest(spark, landing, lakehouse)  # nothing to read again: no new failure
    assert second.files_failed == 0 and second.files_held == len(failed)
    notes = {o.uri.rsplit("/", 1)[1]: o.note for o in second.outcomes
             if o.status is Outcome.HELD}
    assert "until its bytes change" in notes["export.csv.bz2"]
    if landing.kind == "s3":
        assert "until 20" in notes["cold.csv"]  # a day later

    landing.put("cp1252.csv", numbered_sensor_csv("fixed", 3))  # the sender fixes the export
    third = ingest(spark, landing, lakehouse)
    assert third.records == 3 and third.files_failed == 0
    assert table_rows(lakehouse) == ledger_rows(lakehouse)


def test_a_transient_failure_is_retried_at_once_then_less_often(spark, landing, lakehouse):
    landing.put("flaky.csv", numbered_sensor_csv("f", 2))
    flaky = _FailingReads(landing.zone, "flaky.csv")
    for _ in range(3):
        report = ingest(spark, landing, lakehouse, zone=flaky)
        assert report.files_failed == 1 and "Connection reset" in report.outcomes[0].error
    fourth = ingest(spark, landing, lakehouse, zone=flaky)
    assert fourth.files_failed == 0 and fourth.files_held == 1
    assert "failed 3 time(s), not read again until" in fourth.outcomes[0].note
    redone = ingest(spark, landing, lakehouse, reprocess=True)  # an operator's reprocess reads it
    assert redone.records == 2

"""Quality rules on real Spark + Delta: each rule counts exactly the rows that break it, only in
the rows a commit added, with failing examples that name their file."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.quality.evaluate import (
    CommittedBatch,
    PartitionQuality,
    Verdict,
    committed_batch,
    evaluate_batch,
)
from manufacturing_ingest.quality.models import bronze_model

DAY = "2026-01-15"
SENSOR = get_source("sensor_data")
SENSOR_HEADER = "plant_id,line_id,sensor_id,timestamp,temperature,humidity,pressure,vibration"


def sensor_row(i: int, *, timestamp: str | None = None, sensor_id: str | None = None,
               temperature: str = "21.5", humidity: str = "40", pressure: str = "101.3",
               vibration: str = "2.5") -> str:
    """A good reading of sensor ``S<i>`` at a distinct second of DAY unless told otherwise."""
    stamp = timestamp or f"{DAY}T10:{i // 60 % 60:02d}:{i % 60:02d}Z"
    sensor = f"S{i:04d}" if sensor_id is None else sensor_id
    return f"P01,P01-L1,{sensor},{stamp},{temperature},{humidity},{pressure},{vibration}"


def sensor_file(rows: list[str]) -> str:
    return SENSOR_HEADER + "\n" + "".join(r + "\n" for r in rows)


def only(results: dict[str, PartitionQuality]) -> PartitionQuality:
    (result,) = results.values()
    return result


def test_thresholds_follow_the_catalog():
    def verdict(failing: int) -> Verdict:
        return PartitionQuality(DAY, 100, failing, {}).verdict(SENSOR)

    assert [verdict(n) for n in (0, 1, 4, 5, 6)] == [
        Verdict.PASSED, Verdict.WARN, Verdict.WARN, Verdict.WARN, Verdict.ERROR]
    strict = dataclasses.replace(SENSOR, quality=dataclasses.replace(SENSOR.quality,
                                                                     error_above=0.03))
    assert PartitionQuality(DAY, 100, 4, {}).verdict(strict) is Verdict.ERROR


def test_models_are_generated_from_the_catalog():
    schema = bronze_model(SENSOR).to_schema()
    assert list(schema.columns)[:8] == list(SENSOR.columns)
    assert {"_source_file", "_ingested_at", "_rescued_data", "_partition_date"} <= set(
        schema.columns)
    temperature = {str(c) for c in schema.columns["temperature"].checks}
    assert temperature == {"<Check greater_than_or_equal_to: greater_than_or_equal_to(-40.0)>",
                           "<Check less_than_or_equal_to: less_than_or_equal_to(150.0)>"}
    severity = bronze_model(get_source("equipment_logs")).to_schema().columns["severity"]
    assert [c.statistics for c in severity.checks] == [
        {"allowed_values": ["INFO", "WARN", "ERROR", "CRITICAL"]}]


@pytest.mark.spark
@pytest.mark.parametrize("source,hour", [("sensor_data", None), ("equipment_logs", None),
                                         ("quality_metrics", 10)])
def test_good_generated_data_passes_every_rule(lake, source, hour):
    generate(lake.landing_root, source, date(2026, 1, 15), hour=hour,
             options=GenerateOptions(files=2, rows_per_file=150, anomaly_rate=0))
    spec = get_source(source)
    key = DAY if hour is None else f"{DAY}-10:00"
    result = only(evaluate_batch(lake.spark, spec, committed_batch(lake.ingest(source, key))))
    assert result.rows_checked == 300
    assert result.failing_rows == 0, result.failing_by_rule
    assert set(result.failing_by_rule.values()) == {0} and result.examples == {}
    assert result.schema_problems == () and result.verdict(spec) is Verdict.PASSED


@pytest.mark.spark
def test_each_sensor_rule_counts_exactly_the_rows_that_break_it(lake):
    rows = [sensor_row(i) for i in range(100)]
    rows[0] = sensor_row(0, temperature="151")
    rows[1] = sensor_row(1, temperature="-40.5")
    rows[2] = sensor_row(2, humidity="100.5")
    rows[3] = sensor_row(3, pressure="79.9")
    rows[4] = sensor_row(4, vibration="50.1")
    rows[5] = sensor_row(5, temperature="N/A")  # types (rescued), not a range failure
    rows[6] = sensor_row(6, sensor_id="")  # required
    rows[7] = sensor_row(7, timestamp="2099-01-01T00:00:00Z")  # future, and outside the window
    rows[8] = sensor_row(8, timestamp="2026-01-12T23:59:00Z")  # over 2 days before the window
    rows[9] = sensor_row(9, timestamp="2026-01-13T00:01:00Z")  # late, within tolerance
    rows[10] = sensor_row(10, timestamp="2026-01-16T00:04:00Z")  # clock skew, within tolerance
    rows[11] = sensor_row(11, timestamp="2026-01-16T00:06:00Z")  # after the window
    rows[12] = sensor_row(12, timestamp="not a time")  # types and required
    rows[13] = sensor_row(13, temperature="150", humidity="0", vibration="0")  # bounds included
    rows.append(rows[20])  # the same reading twice
    lake.put("raw/sensor-data/2026/01/15/broken.csv", sensor_file(rows))

    report = lake.ingest("sensor_data", DAY)
    result = only(evaluate_batch(lake.spark, SENSOR, committed_batch(report)))

    assert result.rows_checked == 101
    assert result.failing_by_rule == {
        "types": 2, "required": 2, "temperature_range": 2, "humidity_range": 1,
        "pressure_range": 1, "vibration_range": 1, "event_time_not_future": 1,
        "event_time_in_partition": 3, "duplicates": 1,
    }
    # Rows 0-8, 11, 12 and one copy of row 20: each counted once however many rules it breaks.
    assert result.failing_rows == 12
    assert result.verdict(SENSOR) is Verdict.ERROR
    assert result.delta_version == report.delta_version == 0
    uri = (lake.landing_root / "raw/sensor-data/2026/01/15/broken.csv").as_uri()
    assert [e["temperature"] for e in result.examples["temperature_range"]] == ["151.0", "-40.5"]
    assert all(e["_source_file"] == uri for found in result.examples.values() for e in found)
    assert result.examples["types"][0]["_rescued_data"] == '{"temperature":"N/A"}'
    assert result.examples["duplicates"] == [
        {"_source_file": uri, "sensor_id": "S0020", "timestamp": "2026-01-15 10:00:20"}]

    # Pandera's own value checks, run at full depth, find the same range rules broken.
    from pandera.config import ValidationDepth, config_context

    from manufacturing_ingest.quality.evaluate import batch_rows

    table = lake.table("sensor_data")
    with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        validated = bronze_model(SENSOR).validate(batch_rows(table, SENSOR, committed_batch(
            report)))
    flagged = {e["column"] for e in validated.pandera.errors["DATA"]["DATAFRAME_CHECK"]}
    assert flagged == {"temperature", "humidity", "pressure", "vibration"}


@pytest.mark.spark
def test_equipment_and_quality_rules_count_their_rows(lake):
    good = ('{"event_id": "E%d", "plant_id": "P01", "equipment_id": "EQ-001", '
            '"timestamp": "2026-01-15T08:00:%02dZ", "event_type": "STATUS", "severity": "%s", '
            '"status_code": %s, "message": "ok", "operator_id": "OP-1", "runtime_hours": %s}')
    lines = [good % (i, i, "INFO", 120, 1500.5) for i in range(50)]
    lines[0] = good % (0, 0, "DEBUG", 120, 1500.5)  # severity not allowed
    lines[1] = good % (1, 1, "INFO", 10000, 1500.5)  # status_code above 9999
    lines[2] = good % (2, 2, "INFO", 120, -1)  # runtime_hours below 0
    lines[3] = good % (3, 3, "CRITICAL", 9999, 200000)  # the bounds themselves pass
    lines.append(good % (4, 9, "WARN", 130, 1600))  # event E4 again, other content
    lake.put("raw/equipment-logs/2026/01/15/events.jsonl", "\n".join(lines) + "\n")
    result = only(evaluate_batch(lake.spark, get_source("equipment_logs"),
                                 committed_batch(lake.ingest("equipment_logs", DAY))))
    assert (result.rows_checked, result.failing_rows) == (51, 4)
    assert {k: v for k, v in result.failing_by_rule.items() if v} == {
        "severity_allowed": 1, "status_code_range": 1, "runtime_hours_range": 1, "duplicates": 1}

    header = ("batch_id,line_id,product_id,measured_at,metric_name,metric_value,lower_spec,"
              "upper_spec,unit,inspector_id,passed\n")
    row = "B1,L1,PRD-1,2026-01-15T10:{m:02d}:00Z,diameter,{v},24.95,25.05,mm,QI-1,{p}\n"
    metrics = [row.format(m=m, v=25.0, p="true") for m in range(40)]
    metrics[0] = row.format(m=0, v=25.2, p="false")  # out of spec and says so: real data
    metrics[1] = row.format(m=1, v=25.2, p="true")  # out of spec but "passed"
    metrics[2] = row.format(m=2, v=25.0, p="false")  # within spec but "failed"
    metrics[3] = "B1,L1,PRD-1,2026-01-15T10:03:00Z,diameter,25,25.05,24.95,mm,QI-1,false\n"
    lake.put("raw/quality-metrics/2026/01/15/10/metrics.csv", header + "".join(metrics))
    spec = get_source("quality_metrics")
    result = only(evaluate_batch(lake.spark, spec, committed_batch(
        lake.ingest("quality_metrics", f"{DAY}-10:00"))))
    assert (result.rows_checked, result.failing_rows) == (40, 3)
    assert {k: v for k, v in result.failing_by_rule.items() if v} == {
        "passed_matches_spec": 2, "spec_limits_ordered": 1}
    assert result.verdict(spec) is Verdict.ERROR  # 7.5 %


@pytest.mark.spark
def test_a_second_batch_is_checked_alone_with_duplicates_against_the_first(lake):
    first = [sensor_row(i) for i in range(60)]
    first[0] = sensor_row(0, temperature="200")
    lake.put("raw/sensor-data/2026/01/15/a.csv", sensor_file(first))
    one = only(evaluate_batch(lake.spark, SENSOR, committed_batch(
        lake.ingest("sensor_data", DAY))))
    assert (one.rows_checked, one.failing_rows) == (60, 1)

    second = [sensor_row(i) for i in range(100, 130)]
    second[0] = sensor_row(100, humidity="-1")
    second += [sensor_row(5), sensor_row(6), second[3]]  # two keys of batch 1, one repeated
    lake.put("raw/sensor-data/2026/01/15/b.csv", sensor_file(second))
    report = lake.ingest("sensor_data", DAY)
    two = only(evaluate_batch(lake.spark, SENSOR, committed_batch(report)))
    assert two.rows_checked == 33
    assert {k: v for k, v in two.failing_by_rule.items() if v} == {
        "humidity_range": 1, "duplicates": 3}
    assert two.failing_rows == 4 and two.delta_version == 1
    assert {e["sensor_id"] for e in two.examples["duplicates"]} == {"S0005", "S0006", "S0103"}
    assert all(e["_source_file"].endswith("/b.csv") for e in two.examples["duplicates"])


@pytest.mark.spark
def test_a_big_batch_grouped_over_more_tasks_is_judged_exactly_as_in_few(lake, monkeypatch):
    """A batch of millions of rows is grouped by key in more tasks than the session's shuffle
    partitions, so each task's map stays in memory; every count and example must be the same
    as the few-task grouping gives. Shown by making 33 rows count as a big batch."""
    from manufacturing_ingest.quality import evaluate

    first = [sensor_row(i) for i in range(60)]
    lake.put("raw/sensor-data/2026/01/15/a.csv", sensor_file(first))
    lake.ingest("sensor_data", DAY)
    second = [sensor_row(i) for i in range(100, 130)]
    second[0] = sensor_row(100, humidity="-1")
    second[1] = sensor_row(101, temperature="151")
    second += [sensor_row(5), sensor_row(6), second[3]]  # two keys of batch 1, one repeated
    lake.put("raw/sensor-data/2026/01/15/b.csv", sensor_file(second))
    batch = committed_batch(lake.ingest("sensor_data", DAY))

    few = only(evaluate_batch(lake.spark, SENSOR, batch))
    monkeypatch.setattr(evaluate, "_ROWS_PER_GROUPING_TASK", 4)  # 33 rows: 9 tasks, not 4
    many = only(evaluate_batch(lake.spark, SENSOR, batch))

    assert many == few
    assert (few.rows_checked, few.failing_rows) == (33, 5)
    assert {k: v for k, v in few.failing_by_rule.items() if v} == {
        "humidity_range": 1, "temperature_range": 1, "duplicates": 3}


@pytest.mark.spark
def test_a_table_not_matching_the_catalog_is_a_schema_error(lake):
    lake.put("raw/sensor-data/2026/01/15/a.csv", sensor_file([sensor_row(i) for i in range(10)]))
    batch = committed_batch(lake.ingest("sensor_data", DAY))
    drifted = dataclasses.replace(SENSOR, columns={
        **SENSOR.columns, "vibration": "long", "firmware": "string"})
    result = only(evaluate_batch(lake.spark, drifted, batch))
    assert {(p.column, p.problem) for p in result.schema_problems} == {
        ("vibration", "WRONG_DATATYPE"), ("firmware", "COLUMN_NOT_IN_DATAFRAME")}
    assert result.failing_rows == 0 and result.verdict(drifted) is Verdict.ERROR


@pytest.mark.spark
def test_partitions_of_a_range_without_new_rows_check_nothing(lake):
    lake.put("raw/sensor-data/2026/01/15/a.csv", sensor_file([sensor_row(i) for i in range(10)]))
    report = lake.ingest("sensor_data", DAY, "2026-01-16")
    results = evaluate_batch(lake.spark, SENSOR, committed_batch(report))
    assert {k: r.rows_checked for k, r in results.items()} == {DAY: 10, "2026-01-16": 0}
    assert committed_batch(lake.ingest("sensor_data", DAY)) is None  # nothing new committed
    assert isinstance(committed_batch(report), CommittedBatch)


@pytest.mark.spark
def test_a_window_of_commits_is_judged_as_the_sum_of_its_batches(lake):
    """The stream's check: one evaluation over several commits (``CommittedBatch.earlier``)
    counts what the commits' own evaluations count, a key repeated across two of them once, and
    leaves out the rows of commits before the window."""
    before = [sensor_row(i) for i in range(0, 30)]
    first = [sensor_row(i) for i in range(30, 60)]
    second = [sensor_row(i) for i in range(60, 90)]
    first[0] = sensor_row(30, temperature="151")
    second[0] = sensor_row(60, humidity="-3")
    second[1] = first[5]  # a reading of the first commit, again in the second
    second[2] = before[7]  # a reading committed before the window
    reports = []
    for name, rows in (("before", before), ("first", first), ("second", second)):
        lake.put(f"raw/sensor-data/2026/01/15/{name}.csv", sensor_file(rows))
        reports.append(lake.ingest("sensor_data", DAY))
    batches = [committed_batch(r) for r in reports]
    one_by_one = [only(evaluate_batch(lake.spark, SENSOR, b)) for b in batches[1:]]
    window = only(evaluate_batch(lake.spark, SENSOR, CommittedBatch(
        batches[2].table, batches[2].delta_version, batches[2].ingested_at, (DAY,),
        earlier=((batches[1].delta_version, batches[1].ingested_at),))))

    assert window.rows_checked == 60 == sum(r.rows_checked for r in one_by_one)
    assert window.failing_by_rule == {
        rule: sum(r.failing_by_rule[rule] for r in one_by_one) for rule in window.failing_by_rule}
    assert (window.failing_by_rule["temperature_range"],
            window.failing_by_rule["humidity_range"],
            window.failing_by_rule["duplicates"]) == (1, 1, 2)
    assert window.failing_rows == 4 and window.delta_version == batches[2].delta_version

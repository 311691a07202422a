"""The Delta state a bronze write needs is computed while the batch is planned, not during it."""

from __future__ import annotations

from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.engine.warm import warm_transactions


def _append(spark, path: str, version: int, group: str) -> int:
    """An idempotent append, as the engine's bronze writes are; the Spark jobs it ran."""
    spark.sparkContext.setJobGroup(group, group)
    try:
        (spark.range(10).write.format("delta").mode("append")
         .option("txnAppId", "manufacturing_ingest/test").option("txnVersion", str(version))
         .save(path))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def test_a_warmed_table_is_written_without_rebuilding_its_state(spark, tmp_path):
    """Delta answers an idempotent write's ``txnVersion`` check from the snapshot's whole
    state: Spark jobs over the log on every batch unless the ingest had them run while it
    planned. A write after ``warm_transactions`` runs only its own jobs, and the same write
    without it runs more (the state's); what is written is the same."""
    path = str(tmp_path / "table")
    _append(spark, path, 1, "warm-create")
    _append(spark, path, 2, "warm-second")  # a new snapshot, its state not yet computed

    cold = _append(spark, path, 3, "warm-cold")
    warming = warm_transactions(spark, TableRef.at(path))
    warming.join(timeout=120)
    warm = _append(spark, path, 4, "warm-warm")

    assert warm < cold, (warm, cold)
    assert spark.read.format("delta").load(path).count() == 40
    # A replayed version is still skipped: the check answers from the warmed state.
    warming = warm_transactions(spark, TableRef.at(path))
    warming.join(timeout=120)
    _append(spark, path, 4, "warm-replay")
    assert spark.read.format("delta").load(path).count() == 40


def test_warming_a_table_that_is_not_there_yet_raises_nothing(spark, tmp_path):
    """The first batch of a source warms a table that does not exist yet: the warming thread
    ends quietly and the ingest goes on."""
    warming = warm_transactions(spark, TableRef.at(str(tmp_path / "not-yet")))
    warming.join(timeout=120)
    assert not warming.is_alive()
    missing = warm_transactions(spark, TableRef.named("spark_catalog.nowhere.sensor_data"))
    missing.join(timeout=120)
    assert not missing.is_alive()

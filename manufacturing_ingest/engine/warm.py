"""Warm a bronze table's Delta state while the driver plans the batch that will write to it.

Every bronze write is idempotent (``txnAppId``/``txnVersion``, see ``protocol``). Before it
writes, Delta asks the table's snapshot for the source's last ``txnVersion``, and Delta 4.4
answers that from the snapshot's whole reconstructed state: three Spark jobs over the log, about
0.7 s on a warm session, although the same figure sits in the ``.crc`` file beside the commit.
A hand-written append does not ask, and a small batch paid it as half of its fixed overhead.

The state is computed once per snapshot and kept with it. So the ingest starts computing it in
a background thread as soon as it begins, and lists, reads the ledger, settles claims and
inspects files meanwhile; the write then finds it ready (or waits for the rest of it) instead
of starting over. Nothing changes in what is written or checked: the same snapshot answers,
and a commit that lands in between makes the write load its own, as before.

Only a classic local session has Delta's classes in reach (Spark Connect and Databricks' shared
access mode do not), and only a path table is looked up by path; anything else is left as it
was. A failure here costs only the head start, so it is logged and never raised.
"""

from __future__ import annotations

import logging
import threading

from pyspark.sql import SparkSession

from manufacturing_ingest.engine.delta import TableRef

log = logging.getLogger(__name__)


def warm_transactions(spark: SparkSession, table: TableRef) -> threading.Thread | None:
    """Start computing ``table``'s Delta state in the background; the thread, or None when
    this session or table cannot be warmed this way."""
    if table.path is None:
        return None
    try:
        jspark, jvm = spark._jsparkSession, spark._jvm
    except Exception:  # noqa: BLE001 - Connect has no such attributes; shared access mode refuses
        return None
    if jspark is None or jvm is None:
        return None

    def warm() -> None:
        try:
            none = jvm.scala.Option.empty()
            delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(jspark, table.path)
            delta_log.update(False, none, none).setTransactions()
        except Exception as exc:  # noqa: BLE001 - only the head start is lost
            log.debug("could not warm the Delta state of %s: %s", table, exc)

    thread = threading.Thread(target=warm, name=f"warm-delta-state:{table}", daemon=True)
    thread.start()
    return thread

"""Warm a bronze table's Delta state while the driver plans the batch that will write to it.

Every bronze write is idempotent (``txnAppId``/``txnVersion``, see ``protocol``). Before it
writes, Delta asks the table's snapshot for the source's last ``txnVersion``, and Delta 4.4
answers that from the snapshot's whole reconstructed state: three Spark jobs over the log, about
0.7 s on a warm session, although the same figure sits in the ``.crc`` file beside the commit.
A hand-written append does not ask, and a small batch paid it as half of its fixed overhead.

The state is computed once per snapshot and kept with it, and ``DESCRIBE DETAIL`` (its file
count and size) computes the same state. So the ingest asks for the table's detail in a
background thread as soon as it begins, and lists, reads the ledger, settles claims and
inspects files meanwhile; the write then finds the state ready (or waits for the rest of it)
instead of starting over. Nothing changes in what is written or checked: the same snapshot
answers, and a commit that lands in between makes the write load its own, as before.

It is public SQL, so it works alike on a local session, a Spark Connect server (whose JVM keeps
the snapshot for every client) and a Databricks cluster, for a path or a catalog table. A
failure here (no table yet, the first batch) costs only the head start: logged, never raised.
"""

from __future__ import annotations

import logging
import threading

from pyspark.sql import SparkSession

from manufacturing_ingest.engine.delta import TableRef

log = logging.getLogger(__name__)


def warm_transactions(spark: SparkSession, table: TableRef) -> threading.Thread:
    """Start computing ``table``'s Delta state in the background; the thread doing it."""

    def warm() -> None:
        try:
            spark.sql(f"DESCRIBE DETAIL {table.sql}").collect()
        except Exception as exc:  # noqa: BLE001 - only the head start is lost
            log.debug("could not warm the Delta state of %s: %s", table, exc)

    thread = threading.Thread(target=warm, name=f"warm-delta-state:{table}", daemon=True)
    thread.start()
    return thread

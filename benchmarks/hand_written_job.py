#!/usr/bin/env python
"""The job a user would hand-write for one day of sensor_data, run as its own process.

``per_run.py`` starts it the way ``spark-submit`` starts a PySpark script: a fresh Python
process that builds its own SparkSession (``local[*]``, with the session settings the project's
engine uses, handed in as JSON so this script imports nothing but PySpark), reads the day's CSV
with the catalog's typed schema and a header, adds the lineage columns ``_source_file``
(``_metadata.file_path``) and ``_ingested_at`` (``current_timestamp()``), and appends it to a
Delta table, then stops the session. It prints one JSON line of wall-clock stamps
(``time.time()``): after the PySpark import, when the session is up, and when the write
returned (committed).

    python benchmarks/hand_written_job.py FOLDER TABLE SCHEMA_DDL CONF_JSON
"""

import time

started = time.time()

import json  # noqa: E402
import sys  # noqa: E402

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402


def main(folder: str, table: str, schema: str, conf_json: str) -> int:
    imported = time.time()
    builder = SparkSession.builder.appName("hand_written_typed_lineage")
    for key, value in json.loads(conf_json).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    session_ready = time.time()
    (spark.read.schema(schema).option("header", True).csv(folder)
     .select("*", F.col("_metadata.file_path").alias("_source_file"),
             F.current_timestamp().alias("_ingested_at"))
     .write.format("delta").mode("append").save(table))
    committed = time.time()
    spark.stop()
    # Rows written are read back by the caller from the commit's operationMetrics, so no Spark
    # job beyond the user's own runs here.
    print(json.dumps({"started": started, "imported": imported, "session_ready": session_ready,
                      "committed": committed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))

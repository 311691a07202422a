"""How landed files become bronze rows: inspect, read and rescue, claim and commit, exactly once.

- ``ingest.py``: the loop (``BronzeIngestor``) and ``report.py``, what it did per file.
- ``protocol.py``: the claim/commit protocol; ``ledger.py``: the file ledger with typed events.
- ``inspect.py``, ``read.py``, ``types.py``, ``isolation.py``, ``staging.py``: files to one
  typed frame (limits, rescue, files Spark cannot read, names Spark must not expand).
- ``lakehouse.py``, ``delta.py``, ``accounting.py``, ``schema_log.py``: tables and their state.
- ``spark.py``, ``jars.py``: the local Spark session; ``progress.py``: typed progress events.
"""

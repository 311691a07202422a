"""How landed files become bronze rows: inspect, read and rescue, claim and commit, exactly once.

- ``ingest.py``: the loop (``BronzeIngestor``) and ``report.py``, what it did per file.
- ``protocol.py``: the claim/commit protocol; ``ledger.py``: the file ledger with typed events.
- ``inspect.py``, ``read.py``, ``types.py``, ``isolation.py``: files to one typed frame.
- ``lakehouse.py``, ``delta.py``, ``accounting.py``, ``schema_log.py``: tables and their state.
- ``spark.py``, ``jars.py``: the local Spark session; ``progress.py``: typed progress events.
"""

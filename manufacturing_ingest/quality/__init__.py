"""How landed data and its ingestion are judged; no Dagster here, so every rule is unit-testable.

- ``backlog.py``: landed objects not yet in bronze, and how long the oldest has waited.
- ``rules.py``: the catalog's row rules compiled to Spark expressions.
- ``models.py``: Pandera ``DataFrameModel``s of the bronze tables, generated from the catalog.
- ``evaluate.py``: the ``quality`` check over the rows one commit added.
- ``drift.py``: the columns a commit added to its table.

The Dagster layer (``orchestration/checks.py``) only turns their results into asset checks.
"""

"""How landed data and its ingestion are judged; no Dagster here, so every rule is unit-testable.

- ``backlog.py``: landed objects not yet in bronze, and how long the oldest has waited.

Quality rules over bronze rows (Pandera models built from the catalog) belong here too; the
Dagster layer (``orchestration/checks.py``) only turns their results into asset checks.
"""

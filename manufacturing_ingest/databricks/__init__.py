"""Everything that runs bronze on Databricks, in one place.

- ``settings.py``: the ``MANUFACTURING_DATABRICKS_*`` variables and the four ways a bronze step
  reaches Databricks compute (``Execution``).
- ``session.py``: the Spark sessions a step gets there (the cluster's own, Databricks Connect).
- ``launcher.py``: dagster-databricks' DBFS step launcher, for workspaces that still have DBFS.
- ``autoloader.py``: the Auto Loader reader (``MANUFACTURING_READ_MODE=autoloader``).

Nothing here is imported by the local engine unless ``MANUFACTURING_ENV=databricks``.
"""

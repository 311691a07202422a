"""Everything that runs bronze on Databricks, in one place.

- ``settings.py``: the ``MANUFACTURING_DATABRICKS_*`` variables and the four ways a bronze step
  reaches Databricks compute (``Execution``).
- ``session.py``: the Spark sessions a step gets there (the compute's own, Databricks Connect).
- ``pipes.py``: ``pipes-serverless``, each bronze step a serverless job run through Pipes;
  ``task.py``: what that job runs (the wheel's ``manufacturing-ingest-bronze-task``).
- ``job.py``: what a step needs on Databricks whichever way it goes: settings and packages.
- ``launcher.py``: dagster-databricks' DBFS step launcher, for workspaces that still have DBFS.
- ``autoloader.py``: the Auto Loader reader (``MANUFACTURING_READ_MODE=autoloader``), and
  ``discovery.py``: how it finds new files (listing, file events, notifications).

The settings and discovery modules are plain Python that the settings read everywhere; the rest
is imported only when ``MANUFACTURING_ENV=databricks`` asks for it.
"""

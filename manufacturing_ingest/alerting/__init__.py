"""Telling people: alerts, their de-duplication, and one sink per transport (log, webhook, email).

No Dagster here. The Dagster layer (``orchestration/``) watches runs, checks and freshness and
hands what it finds to this package as plain values; a new transport is one new module here.
"""

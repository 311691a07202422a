"""Ingest manufacturing data from a landing zone into Delta Lake bronze tables with Dagster."""

__version__ = "0.1.0"

"""Where the bronze tables and the platform's own bookkeeping tables live."""

from __future__ import annotations

from dataclasses import dataclass

from manufacturing_ingest.catalog import SourceSpec


@dataclass(frozen=True)
class Lakehouse:
    """A root folder (or URL) holding ``manufacturing_bronze/<table>`` and the bookkeeping."""

    root: str

    def table_path(self, spec: SourceSpec) -> str:
        """``manufacturing_bronze.X`` is the Delta directory ``<root>/manufacturing_bronze/X``."""
        return f"{self.root}/{spec.table_name.replace('.', '/')}"

    @property
    def ledger_path(self) -> str:
        """The file ledger (see ``ledger.py``)."""
        return f"{self.root}/_manufacturing_ingest/file_ledger"

    @property
    def schema_log_path(self) -> str:
        """Every column a batch added to a bronze table (see ``schema_log.py``)."""
        return f"{self.root}/_manufacturing_ingest/schema_changes"

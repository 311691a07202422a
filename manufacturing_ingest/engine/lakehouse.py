"""Where the bronze tables and the platform's own bookkeeping tables live."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.errors import ConfigurationError


@dataclass(frozen=True)
class Lakehouse:
    """A root folder (or URL) holding ``manufacturing_bronze/<table>`` and the bookkeeping.

    With a ``catalog`` (Unity Catalog), the bronze tables are catalog tables instead,
    ``<catalog>.manufacturing_bronze.<table>``; the bookkeeping stays under the root by path.
    """

    root: str
    catalog: str = ""

    def table(self, spec: SourceSpec) -> TableRef:
        """Bronze table ``manufacturing_bronze.X``: the Delta directory
        ``<root>/manufacturing_bronze/X``, or the catalog table
        ``<catalog>.manufacturing_bronze.X`` (every engine function takes either)."""
        if self.catalog:
            return TableRef.named(f"{self.catalog}.{spec.table_name}")
        return TableRef.at(self.table_path(spec))

    def table_path(self, spec: SourceSpec) -> str:
        """The Delta directory ``<root>/manufacturing_bronze/X`` of a lakehouse of path tables
        (what a Delta reader such as delta-rs opens); see ``table`` for the engine's handle."""
        if self.catalog:
            raise ValueError(f"{spec.table_name} is the catalog table "
                             f"{self.catalog}.{spec.table_name}, not a path")
        return f"{self.root}/{spec.table_name.replace('.', '/')}"

    @property
    def ledger_path(self) -> str:
        """The file ledger (see ``ledger.py``)."""
        return f"{self.root}/_manufacturing_ingest/file_ledger"

    @property
    def schema_log_path(self) -> str:
        """Every column a batch added to a bronze table (see ``schema_log.py``)."""
        return f"{self.root}/_manufacturing_ingest/schema_changes"

    def check_writable(self) -> None:
        """For a local root: raise ``ConfigurationError`` unless tables can be written there."""
        if "://" in self.root and not self.root.startswith("file://"):
            return  # object stores and catalogs answer for themselves on the first write
        root = Path(self.root.removeprefix("file://"))
        existing = root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigurationError(
                f"lakehouse {root}: {existing} is not a folder; point "
                "MANUFACTURING_LAKEHOUSE_URL at a folder"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
                pass
        except OSError as exc:
            raise ConfigurationError(
                f"lakehouse {root} is not writable ({exc.strerror or exc}); point "
                "MANUFACTURING_LAKEHOUSE_URL at a folder this user can write"
            ) from None

"""A landing zone on the local file system (the default, and what tests and demos use)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from manufacturing_ingest.landing.base import LandedObject, LandingZone


class LocalLandingZone(LandingZone):
    """Objects are files under ``root``; the ETag is size and mtime, so a rewrite is new data."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root_uri = self.root.as_uri()

    def list_level(self, prefix: str) -> tuple[list[LandedObject], list[str]]:
        folder = self.root / prefix
        objects: list[LandedObject] = []
        children: list[str] = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return [], []
        base = prefix if (prefix == "" or prefix.endswith("/")) else prefix + "/"
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                children.append(f"{base}{entry.name}/")
            elif entry.is_file():
                stat = entry.stat()
                key = f"{base}{entry.name}"
                objects.append(
                    LandedObject(
                        key=key,
                        uri=self.uri_for(key),
                        etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
                        size=stat.st_size,
                        last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                    )
                )
        return objects, children

    def local_path(self, obj: LandedObject, staging_dir: Path) -> Path:
        return self.root / obj.key

"""A landing zone on the local file system (the default, and what tests and demos use)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from manufacturing_ingest.errors import LandingZoneError
from manufacturing_ingest.landing.base import LandedObject, LandingZone
from manufacturing_ingest.printable import printable

OUTSIDE = "symbolic link to a target outside the landing root; never read"


class LocalLandingZone(LandingZone):
    """Objects are files under ``root``; the ETag is size and mtime, so a rewrite is new data."""

    def __init__(self, root: str | Path):
        self.root = Path(os.path.realpath(root))
        self.root_uri = self.root.as_uri()

    def check_available(self) -> None:
        if not self.root.is_dir():
            raise LandingZoneError(
                f"landing folder {self.root} does not exist (or is not a folder); check "
                "MANUFACTURING_LANDING_URL, or create it (manufacturing-ingest generate does)"
            )

    def list_level(self, prefix: str) -> tuple[list[LandedObject], list[str]]:
        folder = self.root / prefix
        objects: list[LandedObject] = []
        children: list[str] = []
        if not self._inside(os.path.realpath(folder)):
            # The prefix itself is (under) a link out of the zone: report it, never read it.
            return [self._skipped(prefix.rstrip("/"), OUTSIDE)], []
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        base = prefix if (prefix == "" or prefix.endswith("/")) else prefix + "/"
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_symlink():
                key = f"{base}{entry.name}"
                target = os.path.realpath(entry.path)
                if not os.path.exists(target):
                    objects.append(self._skipped(key, "broken symbolic link"))
                    continue
                if not self._inside(target):
                    objects.append(self._skipped(key, OUTSIDE))
                    continue
                if os.path.isdir(target):  # never followed: no cycles, no double listing
                    objects.append(self._skipped(key, "symbolic link to a folder; not followed"))
                    continue
            if entry.is_dir(follow_symlinks=False):
                children.append(f"{base}{entry.name}/")
            elif entry.is_file():
                stat = entry.stat()
                key = f"{base}{entry.name}"
                broken = None
                if not _is_utf8(key):
                    # Such a name cannot be a key anywhere downstream (the ledger, the table's
                    # _source_file, S3): it is listed by its escaped spelling, and fails once.
                    key = printable(key)
                    broken = ("file name is not valid UTF-8 (shown with its bytes escaped); "
                              "rename it in UTF-8 and it is read")
                objects.append(
                    LandedObject(
                        key=key,
                        uri=self.uri_for(key),
                        etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
                        size=stat.st_size,
                        last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                        broken=broken,
                    )
                )
        return objects, children

    def local_path(self, obj: LandedObject, staging_dir: Path) -> Path:
        return self._checked_path(obj)

    def read_range(self, obj: LandedObject, start: int, length: int) -> bytes:
        with open(self._checked_path(obj), "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            stream.seek(start if start >= 0 else max(0, size + start))
            return stream.read(length)

    def spark_location(self, obj: LandedObject) -> str:
        return str(self._checked_path(obj))

    def _checked_path(self, obj: LandedObject) -> Path:
        """The object's file, while it is inside the zone and as it was listed."""
        path = self.root / obj.key
        if not self._inside(os.path.realpath(path)):  # replaced by a link since the listing
            raise OSError(f"{obj.uri}: {OUTSIDE}")
        if not self.unchanged(obj):
            raise OSError(f"{obj.uri} changed since it was listed (still being written?); "
                          "not yet stable, it is read on a later run")
        return path

    def unchanged(self, obj: LandedObject) -> bool:
        try:
            stat = os.stat(self.root / obj.key)
        except OSError:
            return False
        return f"{stat.st_size:x}-{stat.st_mtime_ns:x}" == obj.etag

    def _inside(self, real: str) -> bool:
        return real == str(self.root) or real.startswith(str(self.root) + os.sep)

    def _skipped(self, key: str, reason: str) -> LandedObject:
        return LandedObject(key=key, uri=self.uri_for(key), etag="-", size=0,
                            last_modified=datetime.now(UTC), skip_reason=reason)


def _is_utf8(name: str) -> bool:
    """Whether a name from the file system was valid UTF-8 (Python keeps undecodable bytes as
    lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

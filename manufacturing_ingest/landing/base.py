"""What a landing zone is: a tree of objects under a root, listed by prefix and read locally."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from manufacturing_ingest.catalog import FileFormat, SourceSpec

_YEAR_DIR = re.compile(r"^\d{4}$")
_FORMAT_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class LandedObject:
    """One object in the landing zone, identified by its key and ETag."""

    key: str
    uri: str
    etag: str
    size: int
    last_modified: datetime

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def fingerprint(self) -> str:
        """Short, stable id of this (key, ETag): a re-upload with new bytes gets a new one."""
        return hashlib.sha1(f"{self.key}\0{self.etag}".encode()).hexdigest()[:16]

    @property
    def compression(self) -> str | None:
        return "gzip" if self.name.lower().endswith(".gz") else None

    @property
    def file_format(self) -> FileFormat | None:
        name = self.name.lower()
        if name.endswith(".gz"):
            name = name[: -len(".gz")]
        return _FORMAT_SUFFIXES.get(PurePosixPath(name).suffix)


def is_ignored(key: str) -> bool:
    """Markers, hidden files and in-flight uploads are never data."""
    if key.endswith("/"):
        return True  # zero-byte "folder" keys written by consoles and some tools
    name = PurePosixPath(key).name
    return (
        name.startswith(("_", "."))  # _SUCCESS, _started_*, .part files of some writers
        or name.endswith((".tmp", ".crc", ".inprogress", ".partial", "_$folder$"))
        or name.lower().endswith((".tmp.gz",))
    )


def partition_key_of(spec: SourceSpec, obj: LandedObject) -> str:
    """The partition an object belongs to: from its path, else from its LastModified (UTC)."""
    relative = obj.key[len(spec.landing_prefix) :]
    return spec.partitions.key_from_path(relative) or spec.partitions.key_at(obj.last_modified)


def partition_prefix(spec: SourceSpec, partition_key: str) -> str:
    """The landing prefix that holds a partition's dated objects."""
    return f"{spec.landing_prefix}/{spec.partitions.prefix(partition_key)}"


class LandingZone(ABC):
    """A landing zone lists objects under a prefix and hands them to the engine as local files."""

    root_uri: str

    @abstractmethod
    def list_level(self, prefix: str) -> tuple[list[LandedObject], list[str]]:
        """Objects directly under ``prefix`` and the sub-prefixes (ending in ``/``) below it."""

    @abstractmethod
    def local_path(self, obj: LandedObject, staging_dir: Path) -> Path:
        """A local file with the object's bytes (the file itself when the zone is local)."""

    def uri_for(self, key: str) -> str:
        return f"{self.root_uri}/{key}"

    def walk(self, prefix: str, *, skip_year_dirs: bool = False) -> Iterator[LandedObject]:
        """Every object under ``prefix``, recursively; optionally not descending into YYYY/."""
        pending = [prefix]
        while pending:
            current = pending.pop()
            objects, children = self.list_level(current)
            yield from objects
            for child in sorted(children, reverse=True):
                leaf = child.rstrip("/").rsplit("/", 1)[-1]
                if skip_year_dirs and current == prefix and _YEAR_DIR.match(leaf):
                    continue
                pending.append(child)

    def list_flat(self, prefix: str) -> Iterator[LandedObject]:
        """Every object under ``prefix`` in as few listing calls as the store allows."""
        return self.walk(prefix)

    def partition_objects(self, spec: SourceSpec, partition_keys: list[str]) -> list[LandedObject]:
        """The objects of these partitions: their dated prefixes plus undated keys by mtime."""
        wanted = set(partition_keys)
        found: dict[str, LandedObject] = {}
        for key in sorted(wanted):
            for obj in self.walk(partition_prefix(spec, key)):
                if partition_key_of(spec, obj) in wanted:
                    found[obj.key] = obj
        for obj in self.walk(f"{spec.landing_prefix}/", skip_year_dirs=True):
            if partition_key_of(spec, obj) in wanted:
                found[obj.key] = obj
        return [found[key] for key in sorted(found)]

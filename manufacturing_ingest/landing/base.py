"""What a landing zone is: a tree of objects under a root, listed by prefix and read locally."""

from __future__ import annotations

import hashlib
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from manufacturing_ingest.catalog import FileFormat, SourceSpec
from manufacturing_ingest.partitioning import DAILY, HOURLY, Grain

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
    # Set by a zone for an entry that must never be read (e.g. a link leading out of the zone).
    skip_reason: str | None = None
    # Set by a zone for a file that cannot be read whatever its bytes (a name that is not
    # UTF-8): it fails, with this reason, once; renaming it makes it a new object.
    broken: str | None = None

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


IGNORED_NOTE = "marker, hidden or in-flight file (a path part starts with _ or .)"


def is_ignored(key: str) -> bool:
    """Markers, hidden files and in-flight uploads are never data.

    Any path part starting with ``_`` or ``.`` marks hidden or in-flight data: writers stage
    under ``_temporary/``, ``.staging/``, ``_tmp…/`` and rename when done.
    """
    if key.endswith("/"):
        return True  # zero-byte "folder" keys written by consoles and some tools
    parts = PurePosixPath(key).parts
    name = parts[-1] if parts else key
    return (
        any(part.startswith(("_", ".")) for part in parts)
        or name.endswith((".tmp", ".crc", ".inprogress", ".partial", "_$folder$"))
        or name.lower().endswith((".tmp.gz",))
    )


def ignore_reason(obj: LandedObject) -> str | None:
    """Why ``obj`` is never read, or None when it is data."""
    if obj.skip_reason:
        return obj.skip_reason
    return IGNORED_NOTE if is_ignored(obj.key) else None


def has_date_path(spec: SourceSpec, obj: LandedObject) -> bool:
    """Whether the key names a valid partition (else the partition comes from LastModified)."""
    return spec.partitions.key_from_path(obj.key[len(spec.landing_prefix) :]) is not None


def partition_key_of(spec: SourceSpec, obj: LandedObject) -> str:
    """The partition an object belongs to: from its path, else from its LastModified (UTC)."""
    relative = obj.key[len(spec.landing_prefix) :]
    return spec.partitions.key_from_path(relative) or spec.partitions.key_at(obj.last_modified)


def partition_prefix(spec: SourceSpec, partition_key: str) -> str:
    """The landing prefix that holds a partition's dated objects."""
    return f"{spec.landing_prefix}/{spec.partitions.prefix(partition_key)}"


def byte_span(obj: LandedObject, start: int, length: int) -> tuple[int, int] | None:
    """The first and last byte of ``read_range(obj, start, length)`` (a negative ``start``
    counts from the end), or None when the range holds no byte."""
    if length <= 0 or obj.size == 0:
        return None
    first = max(0, obj.size + start) if start < 0 else start
    last = min(obj.size, first + length) - 1
    return (first, last) if last >= first else None


def staged_name(name: str) -> str:
    """A local file name for an object's copy: its own, or, when a file system would refuse it
    (a key's last segment may be up to 1,024 bytes; a file name, 255), a short one with the
    same suffixes, so the copy is read the same way."""
    if len(name.encode("utf-8")) <= 200:
        return name
    suffixes = "".join(s for s in PurePosixPath(name.lower()).suffixes[-2:]
                       if re.fullmatch(r"\.[a-z0-9]{1,8}", s))
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:24] + suffixes


class ArchivedObject(OSError):
    """The object's storage class needs a restore before it can be read (S3 Glacier)."""


def file_md5(path: Path) -> str:
    """``md5:<hex>`` of a file's bytes (content identity, not security: S3's own ETags are MD5)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(4 * 1024 * 1024):
            digest.update(chunk)
    return f"md5:{digest.hexdigest()}"


class LandingZone(ABC):
    """A landing zone lists objects under a prefix and hands them to the engine as local files."""

    root_uri: str

    @abstractmethod
    def list_level(self, prefix: str) -> tuple[list[LandedObject], list[str]]:
        """Objects directly under ``prefix`` and the sub-prefixes (ending in ``/``) below it."""

    @abstractmethod
    def local_path(self, obj: LandedObject, staging_dir: Path) -> Path:
        """A local file with the object's bytes (the file itself when the zone is local)."""

    @abstractmethod
    def read_range(self, obj: LandedObject, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of the object from ``start`` (negative: from the end), read
        only while the object keeps the identity it was listed with (else ``OSError``)."""

    def spark_location(self, obj: LandedObject) -> str:
        """Where Spark on a cluster reads the object itself (``uri``; a local zone: its path)."""
        return obj.uri

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

    def list_after(self, prefix: str, after: str | None = None) -> Iterator[LandedObject]:
        """Every object under ``prefix`` whose key sorts after ``after``, in key order.

        What a resumable full listing needs: stop anywhere, and go on later from the last key
        seen. This walks the levels in order and skips every sub-prefix that lies wholly at or
        before ``after``; S3 overrides it with ``StartAfter`` (1 000 keys per request).
        """
        objects, children = self.list_level(prefix)
        entries = sorted([(o.key, o) for o in objects] + [(c, None) for c in children],
                         key=lambda entry: entry[0])
        for name, obj in entries:
            if obj is not None:
                if after is None or name > after:
                    yield obj
            elif after is None or name > after or after.startswith(name):
                # A sub-prefix that sorts before ``after`` without leading to it holds only
                # keys before it (they differ from ``after`` within the sub-prefix's length).
                yield from self.list_after(name, after)

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
        for obj in self.misfiled(spec, partition_keys):
            if partition_key_of(spec, obj) in wanted:
                found[obj.key] = obj
        return [found[key] for key in sorted(found)]

    def misfiled(self, spec: SourceSpec, partition_keys: list[str]) -> Iterator[LandedObject]:
        """Objects under date-shaped folders that are not a valid partition path.

        ``2026/02/30/``, ``2026/13/``, a file directly in ``2026/11/``, and for an hourly source
        a file at day level or under hour ``24``: their partition falls back to LastModified,
        so the listing of that partition must find them. Costs one LIST per year and one per
        month of the source (plus one per wanted day for hourly sources), not one per day.
        """
        root = f"{spec.landing_prefix}/"
        _, years = self.list_level(root)
        for year in years:
            y = year.rstrip("/").rsplit("/", 1)[-1]
            if not _YEAR_DIR.match(y):
                continue  # undated folders: the skip_year_dirs walk covers them
            objects, months = self.list_level(year)
            yield from objects
            for month in months:
                m = month.rstrip("/").rsplit("/", 1)[-1]
                if DAILY.key_from_path(f"{y}/{m}/01/") is None:  # no such month
                    yield from self.walk(month)
                    continue
                objects, days = self.list_level(month)
                yield from objects  # e.g. raw/sensor-data/2026/11/20.csv
                for day in days:
                    d = day.rstrip("/").rsplit("/", 1)[-1]
                    if DAILY.key_from_path(f"{y}/{m}/{d}/") is None:  # e.g. 2026/02/30
                        yield from self.walk(day)
        if spec.partitioning is Grain.HOURLY:
            days = sorted({DAILY.key_at(spec.partitions.parse(key)) for key in partition_keys})
            for day in days:
                prefix = f"{spec.landing_prefix}/{DAILY.prefix(day)}"
                objects, hours = self.list_level(prefix)
                yield from objects  # day-level files of an hourly source
                for hour in hours:
                    if HOURLY.key_from_path(hour[len(spec.landing_prefix) + 1 :]) is None:
                        yield from self.walk(hour)  # e.g. hour 24

    def check_available(self) -> None:
        """Raise ``LandingZoneError`` saying what to fix when the zone cannot be listed at all."""
        return None  # a store's own listing errors already say what to fix (see s3.py)

    def unchanged(self, obj: LandedObject) -> bool:
        """Whether the object still has the identity it was listed with (zones that can
        change in place, like a local folder, check it; object stores cannot change an ETag)."""
        return True

    def known_content_hash(self, obj: LandedObject) -> str | None:
        """The object's content hash when the listing tells it without reading (None here)."""
        return None

    def content_hash(self, obj: LandedObject, path: Path | None = None) -> str:
        """``md5:<hex>`` of the object's bytes: what the listing tells, else from ``path``
        (a local copy already made), else read for it. The identity of a file's content:
        the same bytes under a new ETag (touched, uploaded again) are the same file."""
        known = self.known_content_hash(obj)
        if known:
            return known
        if path is not None:
            return file_md5(path)
        with tempfile.TemporaryDirectory(prefix="manufacturing-hash-") as scratch:
            return file_md5(self.local_path(obj, Path(scratch)))

"""Copies of landed files that Spark can read as they are meant: plain names, one spelling per key.

Only the rare files that need it pay: a name Hadoop would read as a glob pattern or a URI
(``*?[]{}\\`` or ``:``) gets a hard link (else a copy) with a plain name; a JSON-lines file with
duplicate or case-colliding keys in one object gets a rewritten copy. Copies live in the run's
staging folder and are removed with it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from pathlib import Path

from manufacturing_ingest.engine.read import RESCUE_PREFIX
from manufacturing_ingest.engine.types import sanitize_column_name

# Hadoop reads these as glob patterns (*?[]{}\) or as a URI scheme separator (:).
_SPARK_UNSAFE = re.compile(r"[*?\[\]{}\\:]")


def spark_can_address(key: str) -> bool:
    """Whether Spark reads an object of this key by its own name (no pattern, no ``:``)."""
    return not _SPARK_UNSAFE.search(key)


def spark_safe_path(path: Path, staging: Path, index: int) -> Path:
    """``path`` itself, or for a name Hadoop would misread, a plain-named link in ``staging``."""
    if not _SPARK_UNSAFE.search(str(path)):
        return path
    suffixes = "".join(s for s in Path(path.name.lower()).suffixes[-2:]
                       if re.fullmatch(r"\.[a-z0-9]+", s))
    folder = staging / "safe"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"f{index:06d}{suffixes}"
    if target.exists():
        target.unlink()
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return target


class _Pairs(list):
    """An object's (key, value) pairs in order, duplicates included."""


def _plain(value):
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}  # nested objects: as any JSON reader does
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _has_empty_key(value) -> bool:
    if isinstance(value, _Pairs):
        return any(k == "" or _has_empty_key(v) for k, v in value)
    return isinstance(value, list) and any(_has_empty_key(v) for v in value)


def _column_value(value):
    """A top-level value as Spark can read it: an object or array holding the empty key ""
    (which Spark's reader drops) becomes its JSON text, as bronze stores nested values."""
    if _has_empty_key(value):
        return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
    return _plain(value)


def dedupe_json_keys(path: Path, staging: Path, index: int) -> Path:
    """A JSON-lines copy with one spelling per top-level key, and no empty key.

    The first value of a key is kept under its clean name (``Temperature`` -> ``temperature``);
    repeats, and keys spelled differently in the same object, go to ``_duplicate_keys`` in
    ``_rescued_data``. The empty key's value goes to ``_rescued_data`` under ``""``; a nested
    value holding an empty key is kept as its JSON text (Spark's reader would drop such keys,
    and an object left with no other key altogether). Broken lines stay as they are (Spark
    rescues them as corrupt records).
    """
    folder = staging / "dedup"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"d{index:06d}.json"

    def canonical(pairs: _Pairs) -> dict:
        kept: dict = {}
        repeats: dict = {}
        exact = {k for k, _ in pairs if sanitize_column_name(k) == k}
        for key, value in pairs:
            if key == "":
                kept.setdefault(RESCUE_PREFIX, _column_value(value))  # rescued under ""
                continue
            clean = sanitize_column_name(key)
            # The spelling that is already clean wins over others in the same object.
            if key.startswith(RESCUE_PREFIX) or clean in kept or (clean in exact and key != clean):
                repeats.setdefault(key, _column_value(value))
            else:
                kept[clean] = _column_value(value)
        if repeats:
            kept[RESCUE_PREFIX + "_duplicate_keys"] = repeats
        return kept

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as src, open(target, "w", encoding="utf-8") as out:
        for line in src:
            try:
                parsed = json.loads(line, object_pairs_hook=_Pairs)
            except ValueError:
                parsed = None
            if isinstance(parsed, _Pairs):
                out.write(json.dumps(canonical(parsed)) + "\n")
            else:
                out.write(line if line.endswith("\n") else line + "\n")
    return target

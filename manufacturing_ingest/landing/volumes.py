"""A landing zone in a Unity Catalog volume: ``/Volumes/<catalog>/<schema>/<volume>[/prefix]``.

Databricks' recommended landing zone. Listed and read through the Files API
(``/api/2.0/fs/directories`` and ``/api/2.0/fs/files``) of ``databricks-sdk``'s
``WorkspaceClient``, so it works from any machine that reaches the workspace, not only on
Databricks compute. Credentials come only from the SDK's own chain (``DATABRICKS_HOST`` with
``DATABRICKS_TOKEN``, or ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET`` for a service
principal, or a ``DATABRICKS_CONFIG_PROFILE``; on Databricks compute, the runtime's own); this
module never reads, passes or logs a secret. The principal needs ``USE CATALOG`` on the catalog,
``USE SCHEMA`` on the schema and ``READ VOLUME`` on the volume (``WRITE VOLUME`` too only for
``manufacturing-ingest generate`` and the demo, which upload).

Version identity. The Files API tells a file's size and modification time, and no content hash
or ETag. A file's identity (``LandedObject.etag``) is ``<size>-<last_modified_ms>`` (hex), as a
local folder's is ``<size>-<mtime_ns>``: a correction, a re-upload of the same bytes and a
"touch" (a copy keeping the bytes) each give a new identity, so each is seen as a new version. The
engine then tells them apart by content, as it does for a local folder: a new version of a
committed file is read for its MD5 (``content_hash``; ``known_content_hash`` is None here), and
the same bytes write nothing, other bytes follow the source's ``Corrections``. The landing sensor
requests a run for such a re-upload (S3 does not, for a single-part upload of the same bytes:
its ETag is the MD5); that run records it as the same content and writes nothing. What no
listing can tell: a file replaced by one of the same size within the same modification time
(the Files API lists milliseconds; a volume on S3 keeps whole seconds) keeps its identity.

Reads are of the version listed. A whole file (``local_path``) is downloaded with
``files.download`` and its answer's ``Content-Length`` and ``Last-Modified`` must be the listed
size and modification time (to the second, the resolution of an HTTP date); a ranged read
(``read_range``) sends ``Range`` and ``If-Unmodified-Since`` and checks the same. A file that
changed or went since it was listed raises ``FileNotFoundError``, as the S3 zone does, and is
read again by a later run. ``unchanged`` asks the Files API (``HEAD``) unless the bytes Spark
reads are a staged copy this zone verified.

Transient trouble is retried: the SDK retries throttling (429, 503) and connections that fail,
for ``RETRY_TIMEOUT_SECONDS``; a body stream that breaks mid-way and 500/504 answers are retried
here with ``DOWNLOAD_BACKOFF``. Anything else (no credentials, credentials refused, no
permission, no such volume, a host that does not answer) raises ``LandingZoneError`` saying what
to fix.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import requests
from databricks.sdk.errors import (
    DatabricksError,
    DeadlineExceeded,
    InternalError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from databricks.sdk.service.files import ListDirectoryResponse

from manufacturing_ingest.errors import LandingZoneError
from manufacturing_ingest.landing.base import LandedObject, LandingZone, byte_span, staged_name
from manufacturing_ingest.retry import Backoff

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

log = logging.getLogger(__name__)

# How long the SDK retries a request that cannot connect, times out or is throttled (its own
# default is five minutes, longer than a sensor tick may take), and one attempt's timeout.
RETRY_TIMEOUT_SECONDS = 30
HTTP_TIMEOUT_SECONDS = 20
# On top of the SDK's retries: a body stream that breaks mid-way, a 500 or 504 answer.
DOWNLOAD_BACKOFF = Backoff(attempts=6, base=0.2, cap=5.0)
CHUNK_BYTES = 8 * 1024 * 1024
FILES_API = "/api/2.0/fs/files"
DIRECTORIES_API = "/api/2.0/fs/directories"
VOLUME_URL_FORMS = "/Volumes/<catalog>/<schema>/<volume>[/prefix] (or dbfs:/Volumes/...)"
GRANTS = ("the principal needs USE CATALOG on the catalog, USE SCHEMA on the schema and "
          "READ VOLUME on the volume")
CREDENTIALS = ("set DATABRICKS_HOST with DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and "
               "DATABRICKS_CLIENT_SECRET for a service principal, or DATABRICKS_CONFIG_PROFILE")


def volume_path(url: str) -> str:
    """``/Volumes/<catalog>/<schema>/<volume>[/prefix]`` of ``url``: ``dbfs:/Volumes/…`` and
    ``dbfs:///Volumes/…`` normalised, empty and trailing ``/`` dropped."""
    path = url.strip()
    if path.startswith("dbfs:"):
        path = "/" + path[len("dbfs:"):].lstrip("/")
    parts = [p for p in path.split("/") if p]
    if (not path.startswith("/Volumes/") or len(parts) < 4 or parts[0] != "Volumes"
            or {".", ".."} & set(parts)):
        raise LandingZoneError(
            f"{url!r} is not a Unity Catalog volume path; expected {VOLUME_URL_FORMS}")
    return "/" + "/".join(parts)


class VolumesLandingZone(LandingZone):
    """Files under ``/Volumes/<catalog>/<schema>/<volume>[/prefix]``; keys are relative to it.

    ``spark_location`` is the ``/Volumes/…`` path itself, which Spark reads directly only on
    Databricks compute (where volumes are mounted at ``/Volumes``): ``direct`` read mode works
    there only. ``staged`` read mode (a verified local copy of each file, the default outside
    Databricks) works anywhere the workspace answers.
    """

    def __init__(self, url: str, client: WorkspaceClient | None = None,
                 page_size: int | None = None,
                 retry_timeout_seconds: int = RETRY_TIMEOUT_SECONDS):
        path = volume_path(url)
        parts = path.split("/")[2:]
        self.catalog, self.schema, self.volume = parts[:3]
        self.volume_root = "/" + "/".join(["Volumes", *parts[:3]])
        self.prefix = "/".join(parts[3:])
        self.root_uri = path
        self.page_size = page_size  # entries per listing page; None: the API's (at most 1 000)
        self.retry_timeout_seconds = retry_timeout_seconds
        self._client = client
        self._lock = threading.Lock()
        self._staged: dict[str, Path] = {}  # fingerprint -> a copy whose bytes were verified
        self.list_requests = 0  # listing pages asked for, for SkipReasons and benchmarks

    @property
    def volume_name(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.volume}"

    @property
    def client(self) -> WorkspaceClient:
        """The workspace client, made on first use from the SDK's own credential chain."""
        with self._lock:
            if self._client is None:
                from databricks.sdk import WorkspaceClient
                from databricks.sdk.config import Config

                try:
                    config = Config(retry_timeout_seconds=self.retry_timeout_seconds,
                                    http_timeout_seconds=HTTP_TIMEOUT_SECONDS)
                except ValueError as exc:  # the SDK's chain found no usable credentials
                    raise LandingZoneError(
                        f"{self.root_uri}: no usable Databricks credentials "
                        f"({_sdk_reason(exc)}); {CREDENTIALS}") from exc
                self._client = WorkspaceClient(config=config)
            return self._client

    def _path(self, key: str) -> str:
        return f"{self.root_uri}/{key}" if key else self.root_uri

    # Listing

    def check_available(self) -> None:
        """One ``HEAD`` of the zone's folder; a ``LandingZoneError`` naming the fix if it fails."""
        what = f"landing zone {self.root_uri}"
        try:
            self.client.files.get_directory_metadata(self.root_uri)
        except NotFound as exc:
            if self.prefix and self._exists(self.volume_root):
                raise LandingZoneError(
                    f"{what}: the folder {self.root_uri} does not exist in volume "
                    f"{self.volume_name}; create it or check MANUFACTURING_LANDING_URL") from exc
            raise LandingZoneError(
                f"{what}: volume {self.volume_name} does not exist or this principal cannot "
                f"see it; check MANUFACTURING_LANDING_URL ({GRANTS})") from exc
        except (DatabricksError, requests.RequestException, OSError) as exc:
            raise self.explain(exc, what) from exc

    def _exists(self, directory: str) -> bool:
        try:
            self.client.files.get_directory_metadata(directory)
        except NotFound:
            return False
        except (DatabricksError, requests.RequestException, OSError) as exc:
            raise self.explain(exc, f"landing zone {self.root_uri}") from exc
        return True

    def list_level(self, prefix: str) -> tuple[list[LandedObject], list[str]]:
        """Files directly under ``prefix`` and its sub-folders (``…/``), both in key order. A
        folder that does not exist holds nothing (most date folders do not)."""
        base = prefix if (prefix == "" or prefix.endswith("/")) else prefix + "/"
        objects: list[LandedObject] = []
        children: list[str] = []
        for entry in self._entries(self._path(base.rstrip("/"))):
            if not entry.name:
                continue
            key = f"{base}{entry.name}"
            if entry.is_directory:
                children.append(key + "/")
            else:
                objects.append(self._landed(key, entry.file_size or 0, entry.last_modified or 0))
        objects.sort(key=lambda o: o.key)
        children.sort()
        return objects, children

    def _entries(self, directory: str) -> Iterator:
        """Every entry of ``directory``, page by page (``next_page_token``) until the API gives
        no token: the SDK's ``list_directory_contents`` request, made here page by page so the
        pages are counted (``list_requests``)."""
        query: dict[str, object] = {}
        if self.page_size:
            query["page_size"] = self.page_size
        while True:
            self.list_requests += 1  # a folder that is not there costs a request too
            try:
                answer = self.client.api_client.do(
                    "GET", f"{DIRECTORIES_API}{quote(directory)}", query=dict(query),
                    headers={"Accept": "application/json"})
            except NotFound:
                return
            except (DatabricksError, requests.RequestException, OSError) as exc:
                raise self.explain(exc, f"listing {directory}") from exc
            page = ListDirectoryResponse.from_dict(answer)
            yield from page.contents or []
            if not page.next_page_token:
                return
            query["page_token"] = page.next_page_token

    def _landed(self, key: str, size: int, modified_ms: int) -> LandedObject:
        return LandedObject(
            key=key,
            uri=self.uri_for(key),
            etag=f"{size:x}-{modified_ms:x}",
            size=size,
            last_modified=datetime.fromtimestamp(modified_ms / 1000, UTC),
        )

    # Reading

    def local_path(self, obj: LandedObject, staging_dir: Path) -> Path:
        """Download the file into ``staging_dir`` (kept while its identity is unchanged); the
        answer must be of the version listed (its size and modification time), else
        ``FileNotFoundError``."""
        target = staging_dir / "volumes" / obj.fingerprint / staged_name(obj.name)
        if target.exists() and target.stat().st_size == obj.size:
            self._staged[obj.fingerprint] = target
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".download")
        with self._reading(obj):
            DOWNLOAD_BACKOFF.call(
                lambda: self._download(obj, partial),
                retry_on=_is_transient,
                on_retry=lambda attempt, pause, exc: log.info(
                    "retrying download of %s in %.1fs (attempt %d): %s", obj.uri, pause, attempt,
                    exc),
            )
        os.replace(partial, target)
        self._staged[obj.fingerprint] = target
        return target

    def _download(self, obj: LandedObject, partial: Path) -> None:
        answer = self.client.files.download(self._path(obj.key))
        stream = answer.contents
        try:
            self._check_version(obj, answer.content_length, answer.last_modified)
            written = 0
            with open(partial, "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
                    written += len(chunk)
        finally:
            stream.close()
        if written != obj.size:
            raise requests.exceptions.ChunkedEncodingError(
                f"downloaded {written} bytes of {obj.size}")  # a body cut short: read again

    def read_range(self, obj: LandedObject, start: int, length: int) -> bytes:
        """A ranged ``GET`` of the listed version (``If-Unmodified-Since``, and the answer's
        ``Last-Modified`` checked), retried like a download."""
        span = byte_span(obj, start, length)
        if span is None:
            return b""
        first, last = span

        def get() -> bytes:
            answer = self.client.api_client.do(
                "GET", f"{FILES_API}{quote(self._path(obj.key))}",
                headers={"Accept": "application/octet-stream",
                         "Range": f"bytes={first}-{last}",
                         "If-Unmodified-Since": _http_date(obj)},
                response_headers=["content-length", "content-range", "last-modified"],
                raw=True)
            stream = answer["contents"]
            try:
                total = _range_total(answer.get("content-range"))
                self._check_version(obj, total if total is not None
                                    else answer.get("content-length"),
                                    answer.get("last-modified"))
                data = stream.read()
            finally:
                stream.close()
            if answer.get("content-range") is None:  # a server that ignored the range: all
                data = data[first:last + 1]
            if len(data) != last - first + 1:
                raise requests.exceptions.ChunkedEncodingError(
                    f"read {len(data)} bytes of the {last - first + 1} asked for")
            return data

        with self._reading(obj):
            return DOWNLOAD_BACKOFF.call(get, retry_on=_is_transient)

    def spark_location(self, obj: LandedObject) -> str:
        """The ``/Volumes/…`` path: what Spark on Databricks compute reads directly (volumes are
        mounted there); nowhere else, so off Databricks use ``staged`` read mode."""
        return obj.uri

    def unchanged(self, obj: LandedObject) -> bool:
        """True for a file whose staged copy this zone verified (the bytes Spark reads are
        that copy); else whether a ``HEAD`` still finds the listed size and modification time.
        A file that cannot be looked at now counts as changed: it is read on a later run."""
        staged = self._staged.get(obj.fingerprint)
        if staged is not None:
            if staged.exists():
                return True
            self._staged.pop(obj.fingerprint, None)  # its staging folder is gone
        try:
            metadata = self.client.files.get_metadata(self._path(obj.key))
        except NotFound:
            return False
        except (DatabricksError, requests.RequestException, OSError, LandingZoneError) as exc:
            log.warning("could not check whether %s changed: %s", obj.uri, _one_line(exc))
            return False
        return _same_version(obj, metadata.content_length, metadata.last_modified)

    def _changed(self, obj: LandedObject) -> bool:
        """Whether a ``HEAD`` finds the file gone or another version (False: the same, or it
        cannot be told now)."""
        try:
            metadata = self.client.files.get_metadata(self._path(obj.key))
        except NotFound:
            return True
        except (DatabricksError, requests.RequestException, OSError, LandingZoneError):
            return False
        return not _same_version(obj, metadata.content_length, metadata.last_modified)

    def _check_version(self, obj: LandedObject, size: int | None, modified: str | None) -> None:
        if not _same_version(obj, size, modified):
            raise FileNotFoundError(
                f"{obj.uri} changed or was deleted since it was listed (now {size} bytes, "
                f"modified {modified}; listed {obj.size} bytes, modified "
                f"{obj.last_modified:%Y-%m-%d %H:%M:%S} UTC)")

    @contextmanager
    def _reading(self, obj: LandedObject) -> Iterator[None]:
        """Errors of reading ``obj`` as the engine reports them: ``FileNotFoundError`` for a
        file that changed or went, ``OSError`` for one that kept failing, ``LandingZoneError``
        for what a person must fix."""
        try:
            yield
        except FileNotFoundError:
            raise
        except NotFound as exc:
            raise FileNotFoundError(
                f"{obj.uri} changed or was deleted since it was listed (not found)") from exc
        except (Unauthenticated, PermissionDenied) as exc:
            raise self.explain(exc, f"reading {obj.uri}") from exc
        except DatabricksError as exc:
            # A refused precondition (412, If-Unmodified-Since) or range (416) has no error
            # class of its own: the file's metadata tells whether it changed.
            if self._changed(obj):
                raise FileNotFoundError(
                    f"{obj.uri} changed or was deleted since it was listed "
                    f"({_one_line(exc)})") from exc
            raise self.explain(exc, f"reading {obj.uri}") from exc
        except (requests.RequestException, OSError) as exc:
            raise OSError(f"{obj.uri}: reading kept failing: {_one_line(exc)}") from exc

    # Writing (sample data, the demo)

    def upload_tree(self, folder: Path) -> int:
        """Upload every file under ``folder`` to the same relative key (needs WRITE VOLUME)."""
        count = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = path.relative_to(folder).as_posix()
            try:
                with open(path, "rb") as stream:
                    self.client.files.upload(self._path(key), stream, overwrite=True)
            except (DatabricksError, requests.RequestException) as exc:
                raise self.explain(exc, f"uploading {self.uri_for(key)}") from exc
            count += 1
        return count

    # Errors

    def explain(self, exc: BaseException, what: str) -> LandingZoneError:
        """A one-line ``LandingZoneError`` for an error that retries cannot fix."""
        if isinstance(exc, LandingZoneError):
            return exc
        host = self._client.config.host if self._client is not None else "DATABRICKS_HOST"
        if isinstance(exc, Unauthenticated):
            return LandingZoneError(
                f"{what}: the workspace refused the credentials (HTTP 401); check "
                f"DATABRICKS_TOKEN, or the service principal's OAuth secret ({CREDENTIALS})")
        if isinstance(exc, PermissionDenied):
            return LandingZoneError(
                f"{what}: permission denied on volume {self.volume_name} (HTTP 403); {GRANTS}")
        if isinstance(exc, NotFound):
            return LandingZoneError(
                f"{what}: not found (HTTP 404); check volume {self.volume_name} and "
                f"MANUFACTURING_LANDING_URL ({GRANTS})")
        if isinstance(exc, TimeoutError | requests.ConnectionError | requests.Timeout):
            return LandingZoneError(
                f"{what}: the workspace at {host} does not answer (still failing after "
                f"{self.retry_timeout_seconds}s of retries: {_one_line(_cause(exc))}); check "
                "DATABRICKS_HOST and the network")
        if isinstance(exc, DatabricksError):
            return LandingZoneError(
                f"{what}: Databricks answered {type(exc).__name__}: {_one_line(exc)}")
        return LandingZoneError(f"{what}: {_one_line(exc)}")


def _same_version(obj: LandedObject, size: int | None, modified: str | None) -> bool:
    """Whether a Files API answer (``Content-Length``, ``Last-Modified``) is of the listed
    version: the same size, and a modification time within a second of the listed one (an HTTP
    date has whole seconds; the listing, milliseconds)."""
    if size is None or int(size) != obj.size or not modified:
        return False
    try:
        seconds = email.utils.parsedate_to_datetime(modified).timestamp()
    except (TypeError, ValueError):
        return False
    return abs(obj.last_modified.timestamp() - seconds) < 1.0


def _http_date(obj: LandedObject) -> str:
    """The listed modification time as an HTTP date, rounded up to the second (an HTTP date has
    no fraction: rounding down would make the version listed look modified after it)."""
    return email.utils.formatdate(math.ceil(obj.last_modified.timestamp()), usegmt=True)


def _range_total(content_range: str | None) -> int | None:
    """The file's size from ``Content-Range: bytes a-b/size``; None without one."""
    match = re.fullmatch(r"bytes \d+-\d+/(\d+)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _is_transient(exc: Exception) -> bool:
    """A body stream that broke mid-way, a 500 or 504 answer. Not what the SDK already retried
    for its whole budget (``TimeoutError``), nor a file that changed (``FileNotFoundError``)."""
    if isinstance(exc, TimeoutError | FileNotFoundError):
        return False
    if isinstance(exc, InternalError | DeadlineExceeded):
        return True
    return isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.ConnectionError
                      | requests.Timeout | requests.exceptions.ContentDecodingError)



def _cause(exc: BaseException) -> BaseException:
    """The SDK's ``TimeoutError("Timed out after …")`` says less than the error it gave up on."""
    return exc.__cause__ if isinstance(exc, TimeoutError) and exc.__cause__ else exc


def _sdk_reason(exc: BaseException) -> str:
    """The SDK's own words, without its links and its (masked) dump of the configuration."""
    text = _one_line(exc)
    for cut in (". Config:", ", please check"):
        text = text.split(cut, 1)[0]
    return text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.split(". Config:", 1)[0][:300]

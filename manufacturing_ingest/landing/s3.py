"""A landing zone in S3 (or any S3-compatible store through ``AWS_ENDPOINT_URL``).

Credentials come only from the standard AWS chain (environment, shared profile, SSO, instance
or task role), optionally exchanged for a role given by ``role_arn``. Transient trouble
(throttling such as 503 SlowDown, 5xx, timeouts, dropped connections) is retried with
exponential backoff by botocore's ``standard`` retry mode; anything else — a missing bucket,
bad credentials, access denied — raises ``LandingZoneError`` saying what to fix.

The engine reads objects from a local staging copy rather than letting Spark read ``s3a://``:
the same file inspection runs on every object before Spark sees it (so one broken object cannot
fail a batch), no hadoop-aws / AWS SDK bundle (several hundred MB of jars) is needed locally,
and the ETag of the staged bytes is checked against the listing.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from urllib.parse import urlparse

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.session import get_session

from manufacturing_ingest.errors import LandingZoneError
from manufacturing_ingest.landing.base import (
    ArchivedObject,
    LandedObject,
    LandingZone,
    byte_span,
    staged_name,
)
from manufacturing_ingest.retry import Backoff

log = logging.getLogger(__name__)

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=16,
)
# On top of botocore's retries: a body stream that breaks mid-way is not retried by botocore.
DOWNLOAD_BACKOFF = Backoff(attempts=6, base=0.2, cap=5.0)
# Error codes that no retry will fix, with what the operator should do about them.
_FATAL = {
    "NoSuchBucket": "the bucket does not exist; check MANUFACTURING_LANDING_URL",
    "AccessDenied": "access denied; the role needs s3:ListBucket on the bucket and s3:GetObject "
                    "on the landing prefix (see the IAM policy in the README)",
    "AllAccessDisabled": "all access to this bucket is disabled",
    "InvalidAccessKeyId": "the AWS access key id is not valid; check the credential chain "
                          "(AWS_ACCESS_KEY_ID / AWS_PROFILE)",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key id",
    "ExpiredToken": "the AWS session token has expired; refresh the credentials",
    "InvalidToken": "the AWS session token is not valid",
    "403": "access denied (HTTP 403); check the credentials and the IAM policy in the README",
    "404": "not found (HTTP 404); check the bucket and prefix in MANUFACTURING_LANDING_URL",
}
# A single-part upload's ETag: the MD5 of its bytes.
_MD5 = re.compile(r"[0-9a-f]{32}")


def explain(exc: Exception, what: str) -> LandingZoneError:
    """A ``LandingZoneError`` for a boto error that retries cannot fix."""
    if isinstance(exc, NoCredentialsError):
        return LandingZoneError(
            f"{what}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or run where an instance/task role is available"
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        hint = _FATAL.get(code, f"S3 answered {code or 'an error'}")
        return LandingZoneError(f"{what}: {hint} ({exc})")
    return LandingZoneError(f"{what}: {exc}")


def _assumed_role_session(role_arn: str, base: boto3.Session) -> boto3.Session:
    """A session whose credentials are the role's, refreshed before they expire."""
    sts = base.client("sts", config=RETRY_CONFIG)

    def refresh() -> dict:
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="manufacturing-ingest")
        creds = answer["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].astimezone(UTC).isoformat(),
        }

    botocore_session = get_session()
    botocore_session._credentials = RefreshableCredentials.create_from_metadata(  # noqa: SLF001
        metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
    )
    return boto3.Session(botocore_session=botocore_session, region_name=base.region_name)


class S3LandingZone(LandingZone):
    """Objects under ``s3://bucket/prefix``; their keys are relative to the prefix."""

    def __init__(self, url: str, role_arn: str | None = None, region_name: str | None = None):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise LandingZoneError(f"{url!r} is not an s3://bucket[/prefix] URL")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root_uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.role_arn = role_arn
        self.region_name = region_name
        self._client = None
        self._session: boto3.Session | None = None
        self._lock = threading.Lock()
        self.list_requests = 0  # LIST calls made, for SkipReasons and benchmarks

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                # endpoint_url is left to boto3, which honours AWS_ENDPOINT_URL(_S3) itself.
                self._client = self._session_locked().client("s3", config=RETRY_CONFIG)
            return self._client

    def session(self) -> boto3.Session:
        """The boto3 session of this zone (the AWS chain, and the role if one is set)."""
        with self._lock:
            return self._session_locked()

    def _session_locked(self) -> boto3.Session:
        if self._session is None:
            session = boto3.Session(region_name=self.region_name)
            if self.role_arn:
                session = _assumed_role_session(self.role_arn, session)
            self._session = session
        return self._session

    def relative_key(self, full_key: str) -> str | None:
        """The zone key of a bucket key; None when the key is outside the zone's prefix."""
        if not self.prefix:
            return full_key
        return full_key[len(self.prefix) + 1:] if full_key.startswith(self.prefix + "/") else None

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    def list_level(self, prefix: str) -> tuple[list[LandedObject], list[str]]:
        objects: list[LandedObject] = []
        children: list[str] = []
        base = prefix if (prefix == "" or prefix.endswith("/")) else prefix + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(base),
                                           Delimiter="/"):
                self.list_requests += 1
                for common in page.get("CommonPrefixes", []):
                    children.append(self._relative(common["Prefix"]))
                objects.extend(self._landed(item) for item in page.get("Contents", []))
        except (ClientError, NoCredentialsError, BotoCoreError) as exc:
            raise explain(exc, f"listing s3://{self.bucket}/{self._full(base)}") from exc
        return objects, children

    def list_flat(self, prefix: str) -> Iterator[LandedObject]:
        """All keys under ``prefix``, 1 000 per LIST request, without walking sub-prefixes."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix)):
                self.list_requests += 1
                for item in page.get("Contents", []):
                    yield self._landed(item)
        except (ClientError, NoCredentialsError, BotoCoreError) as exc:
            raise explain(exc, f"listing s3://{self.bucket}/{self._full(prefix)}") from exc

    def list_after(self, prefix: str, after: str | None = None) -> Iterator[LandedObject]:
        """Keys under ``prefix`` after ``after`` in S3's (UTF-8 binary) order, 1 000 per LIST."""
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"StartAfter": self._full(after)} if after else {}
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix),
                                           **extra):
                self.list_requests += 1
                for item in page.get("Contents", []):
                    yield self._landed(item)
        except (ClientError, NoCredentialsError, BotoCoreError) as exc:
            raise explain(exc, f"listing s3://{self.bucket}/{self._full(prefix)}") from exc

    def _landed(self, item: dict) -> LandedObject:
        key = self._relative(item["Key"])
        return LandedObject(
            key=key,
            uri=self.uri_for(key),
            etag=item["ETag"].strip('"'),
            size=int(item["Size"]),
            last_modified=item["LastModified"].astimezone(UTC),
        )

    def upload_tree(self, folder: Path) -> int:
        """Upload every file under ``folder`` to the same relative key (sample data, tests)."""
        count = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = path.relative_to(folder).as_posix()
            try:
                self.client.upload_file(str(path), self.bucket, self._full(key))
            except S3UploadFailedError as exc:
                # boto3's transfer manager wraps the S3 error; explain the S3 error itself.
                cause = exc.__cause__ or exc.__context__
                raise explain(cause if isinstance(cause, Exception) else exc,
                              f"uploading {self.uri_for(key)}") from exc
            except (ClientError, NoCredentialsError, BotoCoreError) as exc:
                raise explain(exc, f"uploading {self.uri_for(key)}") from exc
            count += 1
        return count

    def known_content_hash(self, obj: LandedObject) -> str | None:
        """A single-part upload's ETag is the MD5 of its bytes (with SSE-S3 or no encryption;
        with SSE-KMS it is not, and two uploads of the same bytes differ: such a file is a
        correction, never a duplicate under ``replace``). A multipart ETag depends on the part
        size, so it tells nothing: that object is read for its hash."""
        etag = obj.etag.strip('"').lower()
        return f"md5:{etag}" if _MD5.fullmatch(etag) else None

    def local_path(self, obj: LandedObject, staging_dir: Path) -> Path:
        """Download the object into ``staging_dir`` (kept while its ETag is unchanged). An
        object stored with ``Content-Encoding: gzip`` under a plain name (``x.csv``) is staged
        as ``x.csv.gz``: its bytes are gzip, and are read as such."""
        target = staging_dir / self.bucket / obj.fingerprint / staged_name(obj.name)
        for ready in (target, target.with_name(target.name + ".gz")):
            if ready.exists() and ready.stat().st_size == obj.size:
                return ready
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".download")
        encoding: list[str] = []
        with _reading(obj):
            DOWNLOAD_BACKOFF.call(
                lambda: encoding.append(self._download(obj, partial)),
                retry_on=_download_is_transient,
                on_retry=lambda attempt, pause, exc: log.info(
                    "retrying download of %s in %.1fs (attempt %d): %s", obj.uri, pause, attempt,
                    exc),
            )
        if partial.stat().st_size != obj.size:
            partial.unlink()
            raise OSError(f"{obj.uri}: downloaded {partial.stat().st_size} bytes, "
                          f"listed {obj.size}")
        if obj.compression is None and "gzip" in (encoding[-1] if encoding else ""):
            target = target.with_name(target.name + ".gz")
        os.replace(partial, target)
        return target

    def read_range(self, obj: LandedObject, start: int, length: int) -> bytes:
        """A ranged GET of the listed version (``IfMatch``), retried like a download."""
        span = byte_span(obj, start, length)
        if span is None:
            return b""
        first, last = span

        def get() -> bytes:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._full(obj.key),
                                            IfMatch=f'"{obj.etag}"', Range=f"bytes={first}-{last}")
            return answer["Body"].read()

        with _reading(obj):
            return DOWNLOAD_BACKOFF.call(get, retry_on=_download_is_transient)

    def spark_location(self, obj: LandedObject) -> str:
        """``s3://bucket/key``: a Databricks cluster reads it through its instance profile."""
        return f"s3://{self.bucket}/{self._full(obj.key)}"

    def _download(self, obj: LandedObject, partial: Path) -> str:
        """The object's bytes into ``partial``, as stored; its ``Content-Encoding`` ("" if
        none)."""
        answer = self.client.get_object(Bucket=self.bucket, Key=self._full(obj.key),
                                        IfMatch=f'"{obj.etag}"')
        with open(partial, "wb") as out:
            for chunk in answer["Body"].iter_chunks(8 * 1024 * 1024):
                out.write(chunk)
        return str(answer.get("ContentEncoding") or "").lower()



@contextmanager
def _reading(obj: LandedObject) -> Iterator[None]:
    """Errors of reading ``obj`` (the version listed, by ``IfMatch``) as the engine reports them."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("PreconditionFailed", "412", "NoSuchKey"):
            raise FileNotFoundError(
                f"{obj.uri} changed or was deleted since it was listed ({code})"
            ) from exc
        if code == "InvalidObjectState":
            raise ArchivedObject(
                f"{obj.uri} is archived (S3 Glacier Flexible Retrieval or Deep Archive) and "
                "cannot be read until it is restored: restore it (aws s3api restore-object, "
                "or Restore in the S3 console); it is tried again once a day") from exc
        raise explain(exc, f"reading {obj.uri}") from exc
    except NoCredentialsError as exc:
        raise explain(exc, f"reading {obj.uri}") from exc
    except (BotoCoreError, OSError) as exc:
        raise OSError(f"{obj.uri}: reading kept failing: {exc}") from exc


def _download_is_transient(exc: Exception) -> bool:
    """Throttling and 5xx answers, and body streams that broke mid-way (reset, timeout)."""
    if isinstance(exc, ClientError):
        return _transient(exc)
    if isinstance(exc, NoCredentialsError):
        return False
    return isinstance(exc, (BotoCoreError, OSError))


def _transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return status >= 500 or status == 429 or code in ("SlowDown", "Throttling",
                                                      "RequestTimeout", "InternalError")

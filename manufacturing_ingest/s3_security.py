"""Security of what the platform keeps in and sends to S3: SSE-KMS at rest, TLS in transit.

**At rest.** ``MANUFACTURING_S3_KMS_KEY_ID`` (a KMS key id, alias or ARN) makes every object
the platform writes to S3 encrypted with SSE-KMS under that key:

- Spark's writes (an ``s3://`` lakehouse, through hadoop-aws' S3A connector):
  ``spark_encryption_conf`` sets ``fs.s3a.encryption.algorithm=SSE-KMS`` and
  ``fs.s3a.encryption.key`` to a Hadoop reference to the variable, ``${env.…}``, which the
  JVM resolves from its own environment when S3A starts. The key's value is therefore never in
  a Spark setting, a ``spark-submit`` command line (PySpark starts its JVM with every setting
  as a ``--conf`` argument, which any local user can read in ``ps``), the Spark Connect
  server's command, a log or the Dagster run config.
- boto3's writes (``generate``'s upload to an S3 landing zone): ``encrypt_writes`` adds
  ``ServerSideEncryption='aws:kms'`` and ``SSEKMSKeyId`` (``put_object_encryption``, read from
  the environment at each request) to every PUT, multipart upload and copy of a client.
- delta-rs only *reads* here (the file ledger and table history for sensors and checks):
  S3 decrypts SSE-KMS objects for any reader allowed ``kms:Decrypt`` on the key, so reads need
  no setting.

The key is treated as sensitive: ``Settings`` records only whether it is set
(``Settings.s3_kms_key``), as for the alert secrets. A Databricks step never receives it:
there, encryption at rest is the bucket's default encryption or the Unity Catalog external
location's (docs/deployment.md, "Security").

**In transit.** ``check_endpoints`` refuses a plain ``http://`` endpoint in the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_<SERVICE>``)
unless its host is loopback (the tests' S3 server, a local gateway); S3A is told to use TLS
exactly when the endpoint is ``https://`` (and always with no endpoint: AWS itself).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from manufacturing_ingest.errors import ConfigurationError

KMS_KEY_VAR = "MANUFACTURING_S3_KMS_KEY_ID"
# The standard AWS variables naming an endpoint: every service's, then one service's.
ENDPOINT_VAR = "AWS_ENDPOINT_URL"
S3_ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", ENDPOINT_VAR)  # boto3's order for S3


def kms_key_set(environ: Mapping[str, str]) -> bool:
    """Whether ``MANUFACTURING_S3_KMS_KEY_ID`` is set; refuses a value no KMS key id can be,
    without repeating it."""
    value = environ.get(KMS_KEY_VAR, "")
    if not value.strip():
        return False
    if value != value.strip() or any(c.isspace() for c in value) or "$" in value:
        raise ConfigurationError(
            f"{KMS_KEY_VAR} is not a KMS key id, alias or ARN (it holds spaces or '$'); set "
            "it to e.g. arn:aws:kms:<region>:<account>:key/<key-id> or alias/<name>")
    return True


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoints(environ: Mapping[str, str]) -> None:
    """Refuse an AWS endpoint that would carry data or credentials unencrypted."""
    for name in sorted(environ):
        if name != ENDPOINT_VAR and not name.startswith(ENDPOINT_VAR + "_"):
            continue
        value = environ[name].strip()
        if not value:
            continue
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme == "https" or (scheme == "http" and is_loopback(parts.hostname or "")):
            continue
        if scheme == "http":
            raise ConfigurationError(
                f"{name}={value!r} is plain http: S3 data and AWS credentials would cross the "
                "network unencrypted; use its https:// address (only a loopback endpoint, "
                "127.0.0.1 or localhost, may be http)")
        raise ConfigurationError(f"{name}={value!r} is not an https:// URL")


def s3_endpoint(environ: Mapping[str, str]) -> str:
    """The S3 endpoint the standard AWS variables name (as boto3 picks it), or ""."""
    return next((environ[n].strip() for n in S3_ENDPOINT_VARS if environ.get(n, "").strip()),
                "")


def put_object_encryption(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Extra arguments of a boto3 ``put_object`` / ``upload_file`` (``ExtraArgs``) /
    ``create_multipart_upload`` for SSE-KMS under the configured key; {} when none is set
    (the bucket's default encryption applies)."""
    environ = os.environ if environ is None else environ
    if not kms_key_set(environ):
        return {}
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": environ[KMS_KEY_VAR]}


# The S3 requests that create an object's bytes: boto3's put_object, upload_file (one PUT or a
# multipart upload), copies.
_WRITES = ("PutObject", "CreateMultipartUpload", "CopyObject")


def encrypt_writes(client) -> None:
    """Make every object ``client`` (a boto3 S3 client) creates SSE-KMS under the configured
    key, read from the environment at each request, whatever call made it (``upload_file``'s
    transfer manager included). Arguments a caller gave itself are kept."""
    def add_encryption(params, **_):
        for name, value in put_object_encryption().items():
            params.setdefault(name, value)

    for operation in _WRITES:
        client.meta.events.register(f"before-parameter-build.s3.{operation}", add_encryption,
                                    unique_id=f"manufacturing-ingest-sse-kms-{operation}")


def spark_encryption_conf(environ: Mapping[str, str]) -> dict[str, str]:
    """S3A's SSE-KMS settings (hadoop-aws 3.4+ names) as Spark ``spark.hadoop.*`` settings; the
    key is a ``${env.…}`` reference the JVM resolves, never the value. {} without a key."""
    if not kms_key_set(environ):
        return {}
    return {"spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS",
            "spark.hadoop.fs.s3a.encryption.key": f"${{env.{KMS_KEY_VAR}}}"}


def spark_transport_conf(environ: Mapping[str, str]) -> dict[str, str]:
    """S3A's endpoint, TLS and region from the standard AWS variables; S3A reads none of them
    itself. No endpoint: AWS's regional endpoints, always over TLS."""
    conf = {"spark.hadoop.fs.s3a.connection.ssl.enabled": "true"}
    endpoint = s3_endpoint(environ)
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            urlsplit(endpoint).scheme.lower() == "https").lower()
        # S3-compatible stores (and the tests' server) name buckets in the path.
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
    region = (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "").strip()
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    return conf

"""How Auto Loader finds new files: ``MANUFACTURING_AUTOLOADER_DISCOVERY``.

Only with ``MANUFACTURING_READ_MODE=autoloader``. Each choice is the ``cloudFiles`` options
Databricks documents for it (Auto Loader options, "File notification options" and "AWS-specific
options"; "Configure Auto Loader streams in file notification mode"):

- ``listing`` (default): no discovery option; the runtime's own default. Up to Databricks Runtime
  18.0 that is directory listing; from 18.1 the default of ``cloudFiles.useManagedFileEvents``
  is ``if_available``, so a stream whose path is in an external location with file events
  enabled uses them anyway.
- ``file-events``: ``cloudFiles.useManagedFileEvents=true``: Databricks' file events service of
  the Unity Catalog external location (or volume) the landing zone is in, which must have file
  events enabled (Runtime 14.3 LTS and above). Databricks sets up and owns the notifications; no
  queue, region or credential here, and the options that mode does not support
  (``cloudFiles.useNotifications``, ``cloudFiles.backfillInterval``,
  ``cloudFiles.fetchParallelism``, ``cloudFiles.pathRewrites``, resource tags) are never set.
- ``notifications``: classic file notification mode on S3, ``cloudFiles.useNotifications=true``
  with a daily ``cloudFiles.backfillInterval`` (notifications can be lost; Databricks recommends
  regular backfills, which cause no duplicates). Per stream (a source and one of its formats)
  either ``cloudFiles.queueUrl`` = ``MANUFACTURING_AUTOLOADER_QUEUE_URL_<SOURCE>_<FORMAT>``, an
  SQS queue that receives the bucket's S3 events for the source's prefix, or, without one,
  ``cloudFiles.region`` = ``MANUFACTURING_AUTOLOADER_REGION`` (the bucket's region), where Auto
  Loader creates its own SNS topic and SQS queue. ``MANUFACTURING_AUTOLOADER_SERVICE_CREDENTIAL``
  (optional, Runtime 16.1 and above) is ``databricks.serviceCredential``: how Auto Loader reaches
  SNS/SQS where there is no instance profile (serverless).

Auto Loader deletes each message it has read from its queue. So a stream's queue is its own: not
the landing sensor's ``MANUFACTURING_QUEUE_URL_<SOURCE>`` (the sensor deletes what it reads, and
each would miss the other's files) and not another stream's (a source with two formats has two
streams). Give the bucket's events to several queues through an SNS topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from manufacturing_ingest.catalog import CATALOG
from manufacturing_ingest.errors import ConfigurationError

DISCOVERY_VAR = "MANUFACTURING_AUTOLOADER_DISCOVERY"
REGION_VAR = "MANUFACTURING_AUTOLOADER_REGION"
SERVICE_CREDENTIAL_VAR = "MANUFACTURING_AUTOLOADER_SERVICE_CREDENTIAL"
QUEUE_URL_VAR = "MANUFACTURING_AUTOLOADER_QUEUE_URL_"  # + <SOURCE>_<FORMAT>
# How often a stream in classic notification mode also lists its path, for lost notifications.
BACKFILL_INTERVAL = "1 day"
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


class Discovery(StrEnum):
    LISTING = "listing"
    FILE_EVENTS = "file-events"
    NOTIFICATIONS = "notifications"


def stream_key(source: str, file_format: str) -> str:
    """One Auto Loader stream: a source and one of its formats (``sensor_data/csv``)."""
    return f"{source}/{file_format}"


def _queue_variable(key: str) -> str:
    source, file_format = key.split("/")
    return f"{QUEUE_URL_VAR}{source.upper()}_{file_format.upper()}"


# Every stream there is, by its variable: MANUFACTURING_AUTOLOADER_QUEUE_URL_SENSOR_DATA_CSV, …
STREAMS = {_queue_variable(stream_key(s.name, f)): stream_key(s.name, f)
           for s in CATALOG.values() for f in s.formats}


@dataclass(frozen=True)
class AutoLoaderDiscovery:
    """How the Auto Loader streams find new files (see the module)."""

    mode: Discovery = Discovery.LISTING
    region: str = ""
    # stream_key -> the SQS queue of that stream (notifications only)
    queue_urls: Mapping[str, str] = field(default_factory=dict)
    service_credential: str = ""

    def options(self, source: str, file_format: str) -> dict[str, str]:
        """The ``cloudFiles`` discovery options of one stream."""
        if self.mode is Discovery.FILE_EVENTS:
            return {"cloudFiles.useManagedFileEvents": "true"}
        if self.mode is Discovery.LISTING:
            return {}
        options = {"cloudFiles.useNotifications": "true",
                   "cloudFiles.backfillInterval": BACKFILL_INTERVAL}
        queue = self.queue_urls.get(stream_key(source, file_format))
        if queue:
            options["cloudFiles.queueUrl"] = queue
        else:
            options["cloudFiles.region"] = self.region
        if self.service_credential:
            options["databricks.serviceCredential"] = self.service_credential
        return options

    def env(self) -> dict[str, str]:
        """The variables that give these settings back (what a step on Databricks is sent)."""
        if self.mode is Discovery.LISTING:
            return {}
        env = {DISCOVERY_VAR: self.mode.value}
        if self.region:
            env[REGION_VAR] = self.region
        if self.service_credential:
            env[SERVICE_CREDENTIAL_VAR] = self.service_credential
        env.update({_queue_variable(key): url for key, url in self.queue_urls.items()})
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str], autoloader: bool, landing_url: str,
                 sensor_queues: Mapping[str, str]) -> AutoLoaderDiscovery:
        """``autoloader``: whether ``MANUFACTURING_READ_MODE`` is ``autoloader``.
        ``sensor_queues``: the landing sensors' queues (``MANUFACTURING_QUEUE_URL_<SOURCE>``)."""
        def get(name: str) -> str:
            return environ.get(name, "").strip()

        queues = _queue_urls(environ)
        given = [name for name in (DISCOVERY_VAR, REGION_VAR, SERVICE_CREDENTIAL_VAR)
                 if get(name)] + [_queue_variable(key) for key in queues]
        if not autoloader:
            if given:
                raise ConfigurationError(f"{given[0]} only applies to MANUFACTURING_READ_MODE="
                                         "autoloader (Databricks Auto Loader); set that, or "
                                         f"unset {', '.join(given)}")
            return cls()
        mode = _mode(get(DISCOVERY_VAR))
        settings = cls(mode=mode, region=get(REGION_VAR), queue_urls=queues,
                       service_credential=get(SERVICE_CREDENTIAL_VAR))
        extra = [name for name in given if name != DISCOVERY_VAR]
        if mode is Discovery.NOTIFICATIONS:
            settings._check_notifications(landing_url, sensor_queues)
        elif extra:
            raise ConfigurationError(
                f"{extra[0]} only applies to {DISCOVERY_VAR}=notifications (classic file "
                f"notification mode); unset it with {DISCOVERY_VAR}={mode.value}"
                + (", where Databricks' file events service of the external location finds "
                   "the files" if mode is Discovery.FILE_EVENTS else ""))
        if mode is Discovery.FILE_EVENTS and not re.match(r"(s3://|/Volumes/|dbfs:/+Volumes/)",
                                                          landing_url):
            raise ConfigurationError(
                f"{DISCOVERY_VAR}=file-events reads the file events of the Unity Catalog "
                f"external location the landing zone is in; MANUFACTURING_LANDING_URL="
                f"{landing_url} is neither an s3:// URL nor a /Volumes/ path")
        return settings

    def _check_notifications(self, landing_url: str, sensor_queues: Mapping[str, str]) -> None:
        if not landing_url.startswith("s3://"):
            raise ConfigurationError(
                f"{DISCOVERY_VAR}=notifications subscribes to an S3 bucket's events and needs an "
                f"s3:// MANUFACTURING_LANDING_URL, not {landing_url}; for a volume use "
                "file-events")
        without_queue = [key for key in STREAMS.values() if key not in self.queue_urls]
        if without_queue and not self.region:
            raise ConfigurationError(
                f"{DISCOVERY_VAR}=notifications: set {REGION_VAR} to the bucket's AWS region "
                f"(e.g. eu-west-1), where Auto Loader creates the SNS topic and SQS queue of "
                f"{', '.join(without_queue)}, or give each stream its own queue in "
                f"{QUEUE_URL_VAR}<SOURCE>_<FORMAT>")
        if self.region and not _AWS_REGION.fullmatch(self.region):
            raise ConfigurationError(f"{REGION_VAR}={self.region!r} is not an AWS region "
                                     "(e.g. eu-west-1, us-east-1)")
        sensors = {url: name for name, url in sensor_queues.items()}
        seen: dict[str, str] = {}
        for key, url in self.queue_urls.items():
            name = _queue_variable(key)
            if url in sensors:
                raise ConfigurationError(
                    f"{name} is the landing sensor's queue (MANUFACTURING_QUEUE_URL_"
                    f"{sensors[url].upper()}): both delete the messages they read, so each would "
                    "miss files; subscribe a queue of Auto Loader's own to the bucket's events "
                    "(S3 -> SNS topic -> one SQS queue each)")
            if url in seen:
                raise ConfigurationError(
                    f"{seen[url]} and {name} name one queue: Auto Loader deletes the messages it "
                    "reads, so two streams on one queue each miss the other's files; give each "
                    "stream its own queue")
            seen[url] = name


def _mode(value: str) -> Discovery:
    if not value:
        return Discovery.LISTING
    try:
        return Discovery(value.lower())
    except ValueError:
        raise ConfigurationError(f"{DISCOVERY_VAR}={value!r} is not one of "
                                 f"{', '.join(d.value for d in Discovery)}") from None


def _queue_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """``MANUFACTURING_AUTOLOADER_QUEUE_URL_<SOURCE>_<FORMAT>`` that are set: stream -> URL."""
    urls = {}
    for name, value in environ.items():
        if not name.startswith(QUEUE_URL_VAR) or not value.strip():
            continue
        if name not in STREAMS:
            raise ConfigurationError(f"{name}: no Auto Loader stream of that name (a source and "
                                     f"one of its formats); set one of {', '.join(STREAMS)}")
        url = value.strip()
        if not url.startswith(("https://", "http://")):
            raise ConfigurationError(f"{name}={url!r} is not an SQS queue URL "
                                     "(https://sqs.<region>.amazonaws.com/<account>/<queue>)")
        urls[STREAMS[name]] = url
    return dict(sorted(urls.items()))


__all__ = ["BACKFILL_INTERVAL", "DISCOVERY_VAR", "QUEUE_URL_VAR", "REGION_VAR",
           "SERVICE_CREDENTIAL_VAR", "AutoLoaderDiscovery", "Discovery", "stream_key"]

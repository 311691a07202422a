"""Landing zones: where files come from, and how new ones are found."""

import re

from manufacturing_ingest.errors import ConfigurationError, LandingZoneError
from manufacturing_ingest.landing.base import (
    ArchivedObject,
    LandedObject,
    LandingZone,
    has_date_path,
    ignore_reason,
    is_ignored,
    partition_key_of,
    partition_prefix,
)
from manufacturing_ingest.landing.local import LocalLandingZone


def landing_zone_for(url: str, role_arn: str | None = None) -> LandingZone:
    """The landing zone behind a ``MANUFACTURING_LANDING_URL`` value: ``s3://bucket[/prefix]``,
    a Unity Catalog volume (``/Volumes/<catalog>/<schema>/<volume>[/prefix]``, also spelt
    ``dbfs:/Volumes/…``; read through the Files API), else a local folder or ``file://`` URL."""
    if url.startswith("s3://"):
        from manufacturing_ingest.landing.s3 import S3LandingZone

        return S3LandingZone(url, role_arn=role_arn or None)
    if re.match(r"(/|dbfs:/+)Volumes(/|$)", url):
        from manufacturing_ingest.landing.volumes import VolumesLandingZone

        return VolumesLandingZone(url)
    if url.startswith("dbfs:"):
        raise ConfigurationError(
            f"MANUFACTURING_LANDING_URL={url}: the DBFS root is not a landing zone; land files "
            "in a Unity Catalog volume (/Volumes/<catalog>/<schema>/<volume>[/prefix])"
        )
    if "://" in url and not url.startswith("file://"):
        raise ConfigurationError(
            f"MANUFACTURING_LANDING_URL={url}: the landing zone must be a folder, a file:// "
            "or an s3:// URL, or a Unity Catalog volume (/Volumes/<catalog>/<schema>/<volume>)"
        )
    return LocalLandingZone(url.removeprefix("file://"))


__all__ = [
    "ArchivedObject",
    "LandedObject",
    "LandingZone",
    "LandingZoneError",
    "LocalLandingZone",
    "has_date_path",
    "ignore_reason",
    "is_ignored",
    "landing_zone_for",
    "partition_key_of",
    "partition_prefix",
]

"""Landing zones: where files come from."""

from manufacturing_ingest.landing.base import (
    LandedObject,
    LandingZone,
    is_ignored,
    partition_key_of,
    partition_prefix,
)
from manufacturing_ingest.landing.local import LocalLandingZone


def landing_zone_for(url: str) -> LandingZone:
    """The landing zone behind a ``MANUFACTURING_LANDING_URL`` value."""
    if url.startswith("s3://"):
        raise ValueError(
            f"{url}: S3 landing zones are not supported by this build; use a local path"
        )
    return LocalLandingZone(url)


__all__ = [
    "LandedObject",
    "LandingZone",
    "LocalLandingZone",
    "is_ignored",
    "landing_zone_for",
    "partition_key_of",
    "partition_prefix",
]

"""Errors a user can fix, each with a message that says how.

The CLI prints a ``UserError`` as one line and exits 2; the Dagster layer lets it fail the run
or the sensor tick with the same message. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Configuration or input the platform cannot use as given; the message names the fix."""


class ConfigurationError(UserError, ValueError):
    """A setting has a value the platform cannot use."""


class UnknownSourceError(ConfigurationError, KeyError):
    """A source name that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidPartitionError(UserError, ValueError):
    """A partition key that does not name a partition of the source."""


class ReprocessIncomplete(UserError, RuntimeError):
    """A reprocess could not read every file whose rows bronze holds; it wrote nothing."""


class StorageFull(UserError, OSError):
    """The lakehouse's storage had no room for a write; nothing was committed."""


class LandingZoneError(UserError, RuntimeError):
    """The landing zone cannot be used as configured (bucket, credentials, access, folder)."""


class DatabricksJobError(UserError, RuntimeError):
    """A job run on Databricks failed or ended without its result; the message says why, with
    the task's own error."""

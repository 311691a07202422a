"""Settings: defaults, URLs, and refusing what cannot work."""

from __future__ import annotations

import pytest

from manufacturing_ingest.settings import ConfigurationError, Settings


def test_defaults_are_local_and_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.env == "local"
    assert settings.landing_url == str(tmp_path / ".data" / "landing")
    assert settings.lakehouse_url == str(tmp_path / ".data" / "lakehouse")


def test_urls_keep_their_scheme_and_unknown_env_is_refused():
    settings = Settings.from_env({"MANUFACTURING_LANDING_URL": "s3://plant-bucket/landing/",
                                  "MANUFACTURING_ENV": "databricks"})
    assert settings.landing_url == "s3://plant-bucket/landing"
    assert settings.env == "databricks"
    with pytest.raises(ConfigurationError, match="MANUFACTURING_ENV='prod'"):
        Settings.from_env({"MANUFACTURING_ENV": "prod"})


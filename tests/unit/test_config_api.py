"""The `api` settings: the reader role by default, keys from a secret file, clear refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bigbrotr.config import load_settings, masked
from bigbrotr.errors import ConfigError

KEY = "0123456789abcdef0123"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BIGBROTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_the_api_reads_as_the_reader_role_of_the_archive_unless_told_otherwise() -> None:
    settings = load_settings(database={"url": "postgresql://owner@db.internal:6543/archive"})
    assert settings.api.database(settings.database).url == (
        "postgresql://bigbrotr_reader@db.internal:6543/archive"
    )
    other = load_settings(api={"database_url": "postgresql://ro@replica/archive"})
    assert other.api.database(other.database).url == "postgresql://ro@replica/archive"


def test_keys_come_from_a_secret_file_and_are_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"{KEY}\n{KEY}-second\n")
    monkeypatch.setenv("BIGBROTR_API__KEYS_FILE", str(secret))
    monkeypatch.setenv("BIGBROTR_API__PRIVATE_ROUTES", '["stats"]')
    settings = load_settings()
    assert [key.get_secret_value() for key in settings.api.keys] == [KEY, f"{KEY}-second"]
    assert settings.api.private_routes == ["stats"]
    shown = str(masked(settings))
    assert KEY not in shown
    assert masked(settings)["api"]["keys"] == ["********", "********"]


@pytest.mark.parametrize(
    ("api", "says"),
    [
        ({"keys": "short"}, "16 characters or more"),
        ({"private_routes": ["stats"]}, "private_routes needs api.keys"),
        ({"private_routes": ["admin"], "keys": KEY}, "api.private_routes.0"),
        ({"rate_limit": "fast"}, "expected e.g. 20/second"),
        ({"default_limit": 600}, "default_limit must not exceed max_limit"),
        ({"database_url": "mysql://x/y"}, "must start with postgresql://"),
    ],
)
def test_bad_api_settings_name_the_key(api: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(api=api)

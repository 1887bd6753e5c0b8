"""The monitor section of the settings: key validation, masking, relay normalisation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bigbrotr.config import load_settings, masked
from bigbrotr.errors import ConfigError

KEY = "ab" * 32


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BIGBROTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_key_from_secret_file_is_used_and_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "monitor.key"
    secret.write_text(KEY.upper() + "\n")
    monkeypatch.setenv("BIGBROTR_MONITOR__SECRET_KEY_FILE", str(secret))
    settings = load_settings()
    assert settings.monitor.secret_key is not None
    assert settings.monitor.secret_key.get_secret_value() == KEY
    assert masked(settings)["monitor"]["secret_key"] == "********"
    assert KEY not in str(masked(settings))


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("abc", "64 hex characters"),
        ("00" * 32, "not a valid secp256k1"),
        ("ff" * 32, "not a valid"),
    ],
)
def test_bad_keys_are_refused(key: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"monitor.secret_key.*{problem}"):
        load_settings(monitor={"secret_key": key})


def test_publish_relays_are_normalised_and_checked() -> None:
    settings = load_settings(monitor={"publish_relays": ["WSS://Relay.Example.com/"]})
    assert settings.monitor.publish_relays == ["wss://relay.example.com"]
    with pytest.raises(ConfigError, match=r"monitor\.publish_relays"):
        load_settings(monitor={"publish_relays": ["https://not-a-relay.example"]})


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="BIGBROTR_MONITOR__READ_TIMEOUT_S"):
        load_settings(monitor={"read_timeout_s": 0})

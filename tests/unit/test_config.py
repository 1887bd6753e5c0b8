"""Settings: sources and their order, validation messages that name the key, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigbrotr.config import load_settings, masked
from bigbrotr.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BIGBROTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bigbrotr.yaml"
    path.write_text(text)
    return path


def test_defaults_match_the_local_stack() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == f"127.0.0.1:{settings.dev.kafka_port}"
    assert f":{settings.dev.postgres_port}/" in settings.database.url
    assert settings.kafka.topic("events.raw") == "bigbrotr.events.raw"


def test_yaml_file_then_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "kafka:\n  topic_prefix: from-file.\n  bootstrap_servers: a:1\n")
    monkeypatch.setenv("BIGBROTR_KAFKA__BOOTSTRAP_SERVERS", "b:2")
    settings = load_settings(path)
    assert settings.kafka.topic_prefix == "from-file."
    assert settings.kafka.bootstrap_servers == "b:2"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("log_level: DEBUG\n")
    monkeypatch.setenv("BIGBROTR_CONFIG", str(path))
    assert load_settings().log_level == "DEBUG"


def test_default_file_in_working_directory_is_read(tmp_path: Path) -> None:
    _write(tmp_path, "log_level: WARNING\n")
    assert load_settings().log_level == "WARNING"


def test_secret_from_file_is_used_but_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("BIGBROTR_DATABASE__PASSWORD_FILE", str(secret))
    settings = load_settings()
    assert "s3cr3t" in settings.database.dsn()
    shown = masked(settings)
    assert "s3cr3t" not in repr(shown)
    assert "s3cr3t" not in repr(settings)
    assert shown["database"]["password"] == "********"


def test_password_inside_url_is_masked(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\n  url: postgresql://u:hunter2@db:5432/x\n")
    shown = masked(load_settings(path))
    assert shown["database"]["url"] == "postgresql://u:********@db:5432/x"


def test_unreadable_secret_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGBROTR_DATABASE__PASSWORD_FILE", "/nonexistent/pw")
    with pytest.raises(ConfigError, match="BIGBROTR_DATABASE__PASSWORD_FILE=/nonexistent/pw"):
        load_settings()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("kafka:\n  topics:\n    events:\n      partitions: 0\n", "kafka.topics.events.partitions"),
        ("kafka:\n  bootstrap_servers: nohostport\n", "kafka.bootstrap_servers"),
        ("database:\n  url: mysql://x/y\n", "database.url"),
        ("dev:\n  kafka_port: 80\n", "dev.kafka_port"),
        ("kafak:\n  x: 1\n", "kafak"),
        ("log_level: LOUD\n", "log_level"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = _write(tmp_path, yaml_text)
    with pytest.raises(ConfigError, match=rf"config key {expected}\b"):
        load_settings(path)


def test_invalid_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGBROTR_DEV__POSTGRES_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="BIGBROTR_DEV__POSTGRES_PORT"):
        load_settings()


def test_contract_topics_cannot_be_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path, "kafka:\n  topics:\n    relays: {}\n")
    with pytest.raises(ConfigError, match="missing topics of the contract"):
        load_settings(path)


def test_malformed_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "kafka: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_unknown_topic_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown topic"):
        load_settings().kafka.topic("nope")

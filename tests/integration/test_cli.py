"""The `bigbrotr` command as a user runs it: real processes, real services, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bigbrotr.config import AGGREGATE_TABLES, Settings
from tests.support.cli import run_bigbrotr
from tests.support.events import history

pytestmark = pytest.mark.integration


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_DATABASE__URL": settings.database.url,
    }


def test_topics_create_is_idempotent(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    topics = len(settings.kafka.topics) + len(AGGREGATE_TABLES)  # and the changelogs
    first = run_bigbrotr(["topics", "create"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == topics
    second = run_bigbrotr(["topics", "create"], env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout
    assert second.stdout.count("exists") == topics


def test_migrate_then_status(env: dict[str, str], tmp_path: Path) -> None:
    applied = run_bigbrotr(["migrate"], env, tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "applied 0001" in applied.stdout
    again = run_bigbrotr(["migrate"], env, tmp_path)
    assert "0 migration(s) applied" in again.stdout
    status = run_bigbrotr(["migrate", "--status"], env, tmp_path)
    assert status.returncode == 0, status.stderr
    assert "pending" not in status.stdout
    assert "applied" in status.stdout


def test_config_show_masks_the_password(env: dict[str, str], tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("correct-horse")
    shown = run_bigbrotr(
        ["config", "show"], {**env, "BIGBROTR_DATABASE__PASSWORD_FILE": str(secret)}, tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert "correct-horse" not in shown.stdout
    assert "********" in shown.stdout


@pytest.mark.parametrize(
    ("args", "env_extra", "expected"),
    [
        (["config", "show"], {"BIGBROTR_KAFKA__TOPIC_PREFIX": "bad prefix!"}, "kafka.topic_prefix"),
        (
            ["topics", "create"],
            {"BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9"},
            "cannot reach Kafka",
        ),
        (
            ["migrate"],
            {"BIGBROTR_DATABASE__URL": "postgresql://x@127.0.0.1:9/db"},
            "bigbrotr dev up",
        ),
    ],
)
def test_failures_are_one_line_with_a_next_step(
    env: dict[str, str], tmp_path: Path, args: list[str], env_extra: dict[str, str], expected: str
) -> None:
    result = run_bigbrotr(args, {**env, **env_extra}, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_cli_arguments_are_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    result = run_bigbrotr(["topics", "obliterate"], env, tmp_path)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_sync_pulls_a_relay_into_events_raw(
    env: dict[str, str], tmp_path: Path, local_relay_history: Any
) -> None:
    relay = local_relay_history
    env = {**env, "BIGBROTR_CONNECTORS__ALLOW": json.dumps([relay.host_port])}
    assert run_bigbrotr(["topics", "create"], env, tmp_path).returncode == 0
    result = run_bigbrotr(["sync", relay.url, "--since", "0"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    published = int(result.stdout.split(": ", 1)[1].split(" event(s)", 1)[0])
    assert published >= len(history()), "every event of the relay is published (repeats allowed)"
    assert "gap" not in result.stdout
    assert "complete: 0.." in result.stdout


def test_sync_refuses_a_private_relay_not_on_the_allow_list(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run_bigbrotr(["topics", "create"], env, tmp_path).returncode == 0
    result = run_bigbrotr(["sync", "ws://127.0.0.1:9", "--since", "0"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "url_refused" in result.stdout


def test_sync_rejects_a_malformed_url(env: dict[str, str], tmp_path: Path) -> None:
    result = run_bigbrotr(["sync", "http://not-a-relay"], env, tmp_path)
    assert result.returncode == 2
    assert "RELAY" in result.stderr

"""The `bigbrotr` command as a user runs it: real processes, real services, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bigbrotr.config import Settings
from tests.support.events import history

pytestmark = pytest.mark.integration

BIGBROTR = [sys.executable, "-c", "from bigbrotr.cli import main; main()"]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    return subprocess.run(
        [*BIGBROTR, *args],
        env={**clean, "COLUMNS": "200", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
    topics = len(settings.kafka.topics)
    first = _run(["topics", "create"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == topics
    second = _run(["topics", "create"], env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout
    assert second.stdout.count("exists") == topics


def test_migrate_then_status(env: dict[str, str], tmp_path: Path) -> None:
    applied = _run(["migrate"], env, tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "applied 0001" in applied.stdout
    again = _run(["migrate"], env, tmp_path)
    assert "0 migration(s) applied" in again.stdout
    status = _run(["migrate", "--status"], env, tmp_path)
    assert status.returncode == 0, status.stderr
    assert "pending" not in status.stdout
    assert "applied" in status.stdout


def test_config_show_masks_the_password(env: dict[str, str], tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("correct-horse")
    shown = _run(
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
    result = _run(args, {**env, **env_extra}, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_cli_arguments_are_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    result = _run(["topics", "obliterate"], env, tmp_path)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_sync_pulls_a_relay_into_events_raw(
    env: dict[str, str], tmp_path: Path, local_relay_history: Any
) -> None:
    relay = local_relay_history
    env = {**env, "BIGBROTR_CONNECTORS__ALLOW": json.dumps([relay.host_port])}
    assert _run(["topics", "create"], env, tmp_path).returncode == 0
    result = _run(["sync", relay.url, "--since", "0"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    published = int(result.stdout.split(": ", 1)[1].split(" event(s)", 1)[0])
    assert published >= len(history()), "every event of the relay is published (repeats allowed)"
    assert "gap" not in result.stdout
    assert "complete: 0.." in result.stdout


def test_sync_refuses_a_private_relay_not_on_the_allow_list(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert _run(["topics", "create"], env, tmp_path).returncode == 0
    result = _run(["sync", "ws://127.0.0.1:9", "--since", "0"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "url_refused" in result.stdout


def test_sync_rejects_a_malformed_url(env: dict[str, str], tmp_path: Path) -> None:
    result = _run(["sync", "http://not-a-relay"], env, tmp_path)
    assert result.returncode == 2
    assert "RELAY" in result.stderr

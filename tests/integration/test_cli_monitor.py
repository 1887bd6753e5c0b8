"""`bigbrotr monitor` as a user runs it: a real process, a real relay, a real broker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cli import run_bigbrotr
from tests.support.relays import RunningRelay

pytestmark = pytest.mark.integration


@pytest.fixture
def env(kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    return {
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": topic_prefix,
    }


def test_monitor_once_probes_and_reports(
    env: dict[str, str], tmp_path: Path, nostr_relay_history: RunningRelay
) -> None:
    relay = nostr_relay_history
    env = {**env, "BIGBROTR_CONNECTORS__ALLOW": json.dumps([relay.host_port, "127.0.0.1:9"])}
    assert run_bigbrotr(["topics", "create"], env, tmp_path).returncode == 0
    result = run_bigbrotr(["monitor", "--once", relay.url, "ws://127.0.0.1:9"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"{re.escape(relay.url)}: open \d+ms, read \d+ms, nip11 ok", result.stdout)
    assert "ws://127.0.0.1:9: open FAILED, nip11 missing" in result.stdout


def test_monitor_once_needs_valid_relays(env: dict[str, str], tmp_path: Path) -> None:
    missing = run_bigbrotr(["monitor", "--once"], env, tmp_path)
    assert missing.returncode == 2
    assert "--once needs the relays to probe" in missing.stderr
    malformed = run_bigbrotr(["monitor", "--once", "http://not-a-relay"], env, tmp_path)
    assert malformed.returncode == 2
    assert "ws:// or wss://" in malformed.stderr


def test_monitor_bad_key_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "BIGBROTR_MONITOR__SECRET_KEY": "nope"}
    result = run_bigbrotr(["monitor", "--once", "wss://relay.example.com"], env, tmp_path)
    assert result.returncode == 1
    assert "BIGBROTR_MONITOR__SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr

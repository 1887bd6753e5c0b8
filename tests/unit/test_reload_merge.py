"""Which keys SIGHUP takes for the sync service and the worker, and which it leaves for a
restart (`bigbrotr.reload.merge_reloadable`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigbrotr.config import load_settings
from bigbrotr.reload import merge_reloadable


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the defaults and what a test passes: no `BIGBROTR_*` variable, no settings file."""
    import os

    for name in list(os.environ):
        if name.startswith("BIGBROTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_sync_rates_limits_and_timeouts_reload_but_its_group_and_method_do_not() -> None:
    running = load_settings()
    loaded = load_settings(
        sync={
            "max_concurrent": 3,
            "priority_relays": ["wss://relay.example.com"],
            "chunk_timeout_s": 30,
            "live_backlog_s": 2,
            "negentropy_max_rounds": 5,
            "group_id": "elsewhere",
            "negentropy": False,
        },
        connectors={"page_size": 100},
    )
    merged, changed, restart = merge_reloadable(running, loaded)
    assert merged.sync.max_concurrent == 3
    assert merged.sync.priority_relays == ["wss://relay.example.com"]
    assert merged.sync.chunk_timeout_s == 30
    assert merged.sync.live_backlog_s == 2
    assert merged.sync.negentropy_max_rounds == 5
    assert merged.connectors.page_size == 100
    assert set(changed) == {
        "sync.max_concurrent",
        "sync.priority_relays",
        "sync.chunk_timeout_s",
        "sync.live_backlog_s",
        "sync.negentropy_max_rounds",
        "connectors.page_size",
    }
    assert (merged.sync.group_id, merged.sync.negentropy) == (running.sync.group_id, True)
    assert restart == ["sync.group_id", "sync.negentropy"]


def test_validator_limits_reload_but_the_worker_identity_does_not() -> None:
    running = load_settings()
    loaded = load_settings(
        streams={"max_content_bytes": 10, "max_future_skew_s": 5, "app_id": "other"}
    )
    merged, changed, restart = merge_reloadable(running, loaded)
    assert (merged.streams.max_content_bytes, merged.streams.max_future_skew_s) == (10, 5)
    assert changed == {
        "streams.max_content_bytes": (running.streams.max_content_bytes, 10),
        "streams.max_future_skew_s": (running.streams.max_future_skew_s, 5),
    }
    assert merged.streams.app_id == running.streams.app_id
    assert restart == ["streams.app_id"]

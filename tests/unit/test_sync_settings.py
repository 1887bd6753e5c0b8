"""The `sync` settings section: validated at start, with messages naming the key."""

from __future__ import annotations

import pytest

from bigbrotr.config import SyncSettings, load_settings
from bigbrotr.errors import ConfigError


def test_priority_relays_are_normalised_like_the_relays_topic_keys() -> None:
    settings = load_settings(sync={"priority_relays": ["WSS://Relay.Example.com:443/"]})
    assert settings.sync.priority_relays == ["wss://relay.example.com"]


def test_a_catch_up_may_end_at_most_five_seconds_behind_before_going_live() -> None:
    assert SyncSettings().live_backlog_s == 5.0
    assert load_settings(sync={"live_backlog_s": 0.5}).sync.live_backlog_s == 0.5


@pytest.mark.parametrize(
    ("sync", "expected"),
    [
        ({"priority_relays": ["https://relay.example.com"]}, "sync.priority_relays"),
        ({"backoff_base_s": 10, "backoff_max_s": 1}, "backoff_base_s must not exceed"),
        ({"max_concurrent_per_network": {"bitnet": 1}}, "sync.max_concurrent_per_network"),
        ({"max_concurrent": 0}, "sync.max_concurrent"),
        ({"max_concurrent_per_network": {"tor": 0}}, "sync.max_concurrent_per_network.tor"),
        ({"group_id": "has space"}, "sync.group_id"),
        ({"negentropy_frame_bytes": 4095}, "sync.negentropy_frame_bytes"),
        ({"negentropy_max_rounds": 0}, "sync.negentropy_max_rounds"),
        ({"negentropy_answer_timeout_s": 0}, "sync.negentropy_answer_timeout_s"),
        ({"live_backlog_s": 0}, "sync.live_backlog_s"),
        ({"live_backlog_s": -1}, "sync.live_backlog_s"),
    ],
)
def test_bad_sync_settings_are_refused_with_the_key(sync: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(sync=sync)

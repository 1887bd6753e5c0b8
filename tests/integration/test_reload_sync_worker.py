"""SIGHUP to a running `bigbrotr sync` and `bigbrotr worker`: the relay list and validator limits
from the edited file take effect at once, a key that needs a restart is named and kept, and a
broken file changes nothing."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import Event, event_to_json, parse_event, sign_event
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from tests.support.announce import announce_relays
from tests.support.events import TEST_KEYS, make_events
from tests.support.loader import load_events
from tests.support.raw_topic import RawTail
from tests.support.relays import local_relay
from tests.support.sink import sink_processes
from tests.support.topic_read import read_to_end
from tests.support.waiting import until, until_answered
from tests.support.worker import WorkerProcesses

pytestmark = pytest.mark.integration


async def test_sync_takes_a_new_relay_list_and_limits_on_sighup(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings.kafka)
    events = make_events(10, label="sync reload")
    config = tmp_path / "bigbrotr.yaml"
    file: dict[str, Any] = {
        "connectors": {"allow": []},
        "sync": {
            "negentropy": False,
            "max_concurrent": 16,
            "backoff_base_s": 0.2,
            "backoff_max_s": 0.5,
            "breaker_failures": 1000,
        },
        "metrics": {"enabled": False},
    }
    config.write_text(yaml.safe_dump(file))
    with (
        local_relay(tmp_path / "relay") as relay,
        sink_processes(settings, tmp_path) as processes,
    ):
        assert await load_events(relay.url, events) == {e.id for e in events}
        await announce_relays(settings, [relay.url])
        async with RawTail(settings) as tail:
            sync = processes.start("--config", str(config), "sync")
            await until(
                lambda: f"{relay.url}: retrying in" in processes.log(),
                "the loopback relay is refused while it is not on connectors.allow",
            )
            assert tail.records == []

            file["connectors"] = {"allow": [relay.host_port]}
            file["sync"] |= {"max_concurrent": 4, "group_id": "other"}
            config.write_text(yaml.safe_dump(file))
            sync.send_signal(signal.SIGHUP)
            await until(lambda: "SIGHUP: reloaded" in processes.log(), "the reload is logged")
            log = processes.log()
            assert f"connectors.allow: [] -> ['{relay.host_port}']" in log
            assert "sync.max_concurrent: 16 -> 4" in log
            assert "these need a restart: sync.group_id" in log
            await until(
                lambda: tail.ids(relay.url) == {e.id for e in events},
                "the relay's events are pulled once it is allowed",
            )

            config.write_text("sync: {max_concurrent: 0}\n")
            sync.send_signal(signal.SIGHUP)
            await until(lambda: "settings not reloaded" in processes.log(), "a bad file is refused")
            assert "sync.max_concurrent" in processes.log().rsplit("settings not reloaded", 1)[1]
            assert sync.poll() is None, "the service keeps running on its settings"


def _large(content_bytes: int, label: str) -> Event:
    return sign_event(TEST_KEYS[0], int(time.time()), 1, [], label + "x" * content_bytes)


async def _publish_raw(settings: Settings, event: Event) -> None:
    value = Codec().encode(
        "RawEvent",
        {
            "relay_url": "ws://127.0.0.1:1",
            "seen_at": datetime.now(UTC),
            "raw": event_to_json(event).encode(),
            "source": "sync",
        },
    )
    producer = new_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.kafka.topic("events.raw"), value, key=event.id.encode()
        )
    finally:
        await producer.stop()


async def _reasons(settings: Settings) -> dict[str, str]:
    """Each reject's event id (from its original bytes) and reason."""
    codec = Codec()
    records, _ = await read_to_end(settings, "rejects")
    found = [codec.decode("Reject", r.value) for r in records]
    return {parse_event(r["original"]).id: r["reason"] for r in found}


async def test_worker_takes_new_validator_limits_on_sighup(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"streams": settings.streams.model_copy(update={"data_dir": tmp_path / "streams"})}
    )
    create_topics(settings.kafka)
    config = tmp_path / "bigbrotr.yaml"
    config.write_text(yaml.safe_dump({"streams": {"max_content_bytes": 1024}}))
    workers = WorkerProcesses(settings, tmp_path)
    workers.env |= {"BIGBROTR_CONFIG": str(config), "BIGBROTR_LOG_LEVEL": "INFO"}
    try:
        worker = workers.start()
        before = _large(2000, "before reload ")
        await _publish_raw(settings, before)
        await until_answered(
            lambda: _rejected(settings, before.id, "too_large"),
            "2000 bytes of content are over the first limit",
            within=120,
        )

        config.write_text(
            yaml.safe_dump({"streams": {"max_content_bytes": 4096, "app_id": "other"}})
        )
        worker.send_signal(signal.SIGHUP)
        await until(lambda: "SIGHUP: reloaded" in workers.log(), "the reload is logged")
        text = workers.log()
        assert "streams.max_content_bytes: 1024 -> 4096" in text
        assert "these need a restart: streams.app_id" in text

        after = _large(2000, "after reload ")
        await _publish_raw(settings, after)
        await until_answered(
            lambda: _stored(settings, after.id), "the same size passes the new limit", within=60
        )
        assert after.id not in await _reasons(settings)

        config.write_text("streams: {max_tags: -1}\n")
        worker.send_signal(signal.SIGHUP)
        await until(lambda: "settings not reloaded" in workers.log(), "a bad file is refused")
        assert "streams.max_tags" in workers.log().rsplit("settings not reloaded", 1)[1]
        assert worker.poll() is None, "the worker keeps running on its settings"
    finally:
        workers.kill_all()


async def _rejected(settings: Settings, event_id: str, reason: str) -> bool:
    return (await _reasons(settings)).get(event_id) == reason


async def _stored(settings: Settings, event_id: str) -> bool:
    records, _ = await read_to_end(settings, "events")
    return any(r.key == event_id.encode() for r in records)

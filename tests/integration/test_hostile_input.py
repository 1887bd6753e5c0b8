"""The hostile relay against the real synchronizer, the real worker and the real broker: forged
events, garbage, deep nesting and invalid UTF-8 end as rejects with their reasons or as a named end
of the subscription; floods and huge frames leave the synchronizer's memory bounded by its frame
limit, not by what the relay sends. (The client's own bounds, relay by relay, are in
test_relay_client.py; the synchronizer's gaps in test_synchronizer.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.producer import Producer
from connectors.client import ClientLimits, EndReason
from connectors.monitor.checks import CheckTimeouts
from connectors.monitor.probe import ProbeConfig, probe_relay
from connectors.synchronizer import sync_relay
from tests.support.cli import BIGBROTR
from tests.support.events import BASE_TIME, make_events
from tests.support.forgeries import MAX_CONTENT_BYTES, forgeries
from tests.support.hostile_relay import Behaviour, HostileRelay
from tests.support.topic_read import read_to_end
from tests.support.worker import WorkerProcesses

pytestmark = [pytest.mark.integration, pytest.mark.hostile]

SINCE, UNTIL = BASE_TIME, BASE_TIME + 86_400
PROMPTLY = 40.0
WORKER_WAIT_S = 120.0
CODEC = Codec()
# The synchronizer's frame limit (`ClientLimits.max_frame_bytes`, the default `bigbrotr sync` runs
# with) and what its peak memory may grow by while a relay floods it: websockets keeps at most
# 16 frames received but not yet read, and one frame is in hand as text, decoded object and Avro
# record; the rest is slack for the allocator. A synchronizer that kept what it read would grow
# by the whole answer (HUGE_COUNT frames), far past this.
FRAME_LIMIT = ClientLimits().max_frame_bytes
MEMORY_BOUND = 24 * FRAME_LIMIT
HUGE_COUNT = 60


async def sync(url: str, relay: HostileRelay, settings: Settings, producer: Producer) -> Any:
    async with asyncio.timeout(PROMPTLY):
        return await sync_relay(
            url,
            since=SINCE,
            until=UNTIL,
            producer=producer,
            codec=CODEC,
            settings=settings,
            allow=[relay.host_port],
            limits=ClientLimits(idle_timeout=2.0, total_timeout=20.0),
        )


async def rejects_until(settings: Settings, count: int) -> list[dict[str, Any]]:
    """The records of `rejects`, once there are `count` of them (or the wait is over)."""
    deadline = time.monotonic() + WORKER_WAIT_S
    while True:
        messages, _ = await read_to_end(settings, "rejects", timeout_s=PROMPTLY)
        records = [CODEC.decode("Reject", message.value) for message in messages]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(1.0)


async def test_every_bad_record_a_relay_sends_ends_as_a_reject_with_its_reason(
    settings: Settings, producer: Producer, tmp_path: Path
) -> None:
    catalogue = forgeries("hostile pipeline", now=int(time.time()))
    honest = make_events(10, label="hostile pipeline honest")
    async with HostileRelay(honest, forged=[forgery.text for forgery in catalogue]) as relay:
        forged = await sync(relay.url_for(Behaviour.FORGED), relay, settings, producer)
        not_utf8 = await sync(relay.url_for(Behaviour.INVALID_UTF8), relay, settings, producer)

    # Frames nested past any parser's depth never become records: the client counts them as
    # garbage, and the answer still ends at EOSE.
    assert forged.end_reasons == {EndReason.EOSE: forged.requests}
    assert forged.published == len(catalogue) * forged.requests
    # A text frame that is not UTF-8 breaks the websocket protocol: the client drops the
    # connection; the events before it are published and the window is a gap naming the end.
    assert not_utf8.end_reasons == {EndReason.DISCONNECTED: 1}
    assert not_utf8.published == len(honest)
    assert EndReason.DISCONNECTED in not_utf8.gaps[0].reason

    stream_settings = settings.model_copy(
        update={"streams": settings.streams.model_copy(update={"data_dir": tmp_path / "streams"})}
    )
    workers = WorkerProcesses(stream_settings, tmp_path)
    workers.env["BIGBROTR_STREAMS__MAX_CONTENT_BYTES"] = str(MAX_CONTENT_BYTES)
    workers.start()
    try:
        rejects = await rejects_until(settings, forged.published)
    finally:
        workers.kill_all()

    expected = {forgery.text.encode(): str(forgery.reason) for forgery in catalogue}
    filed = {record["original"]: record["reason"] for record in rejects}
    assert filed == expected, workers.log()
    assert len(rejects) == forged.published
    assert {record["relay_url"] for record in rejects} == {relay.url_for(Behaviour.FORGED)}


async def peak_rss_of_sync(url: str, relay: HostileRelay, settings: Settings) -> int:
    """Run `bigbrotr sync URL` as a process; its peak resident memory in bytes."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    env = {
        **clean,
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_CONNECTORS__ALLOW": json.dumps([relay.host_port]),
        "BIGBROTR_SYNC__NEGENTROPY": "false",
    }
    command = [*BIGBROTR, "sync", url, "--since", str(SINCE), "--until", str(UNTIL)]
    async with asyncio.timeout(120):
        status, peak = await asyncio.to_thread(_run_measured, command, env)
    assert status == 0
    return peak


def _run_measured(command: list[str], env: dict[str, str]) -> tuple[int, int]:
    """Run a process to its end; its exit status and peak resident memory in bytes."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, int(usage.ru_maxrss) * 1024


async def test_floods_and_huge_frames_leave_the_synchronizer_in_bounded_memory(
    settings: Settings, producer: Producer
) -> None:
    events = make_events(20, label="hostile memory")
    async with HostileRelay(events, huge_bytes=FRAME_LIMIT - 4096, huge_count=HUGE_COUNT) as relay:
        baseline = await peak_rss_of_sync(relay.url_for(Behaviour.HONEST), relay, settings)
        huge = await peak_rss_of_sync(relay.url_for(Behaviour.HUGE), relay, settings)
        flood = await peak_rss_of_sync(relay.url_for(Behaviour.FLOOD), relay, settings)

    sent = HUGE_COUNT * FRAME_LIMIT
    print(f"peak RSS: honest {baseline >> 20} MiB, huge {huge >> 20} MiB, flood {flood >> 20} MiB")
    assert huge - baseline < MEMORY_BOUND < sent
    assert flood - baseline < MEMORY_BOUND


@pytest.mark.parametrize(
    ("behaviour", "read_error"),
    [
        (Behaviour.HUGE, "connection closed"),
        (Behaviour.INVALID_UTF8, None),
        (Behaviour.FORGED, None),
        (Behaviour.GARBAGE_FLOOD, "no answer to REQ in 1s"),
        (Behaviour.FLOOD, None),
        (Behaviour.SLOW_DRIP, None),
    ],
)
async def test_the_monitor_probe_of_a_hostile_relay_ends_within_its_timeouts(
    behaviour: Behaviour, read_error: str | None
) -> None:
    """A probe's read check waits for the first answer to its REQ: forged or flooding answers
    still answer; a frame over the limit or nothing but garbage fail it, within the timeouts.
    """
    events = make_events(5, label="hostile probe")
    catalogue = [forgery.text for forgery in forgeries("hostile probe")]
    config = ProbeConfig(
        timeouts=CheckTimeouts(open=1.0, read=1.0, write=1.0), nip11_timeout=1.0, probe_timeout=10.0
    )
    async with HostileRelay(
        events, forged=catalogue, huge_bytes=2 * FRAME_LIMIT, huge_count=3, drip_interval=0.2
    ) as relay:
        started = time.monotonic()
        probe = await probe_relay(
            relay.url_for(behaviour),
            dataclasses.replace(config, allow=[relay.host_port]),
        )
        took = time.monotonic() - started

    assert took < config.probe_timeout
    assert probe["errors"] == {}
    assert probe["checks"]["open"]["ok"] is True
    read = probe["checks"]["read"]
    assert read["ok"] is (read_error is None)
    assert read_error is None or read_error in read["error"]

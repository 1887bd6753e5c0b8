"""The sink's consumer group membership under trouble. On a private broker stopped for longer
than the sink's session timeout and started again, twice, the sink gets its partitions back and
stores what comes after within a bounded time (the chaos run once saw a sink that never rejoined
its group). An assignment whose stored offsets never come is given up and the group joined again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import pytest

from bench.chaos.stack import private_stack
from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_topics
from connectors.sink.source import GroupSource
from tests.support.sink import assert_holds, end_offsets, sink_processes, wait_progress
from tests.support.sink_load import Loader

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_S = 6
DOWN_S = 10  # past the session timeout, so the group session is lost while the broker is away
REJOIN_AFTER_S = 20


@pytest.mark.timeout(240)
async def test_sink_rejoins_and_stores_after_the_broker_was_down_past_its_session(
    settings: Settings, tmp_path: Path
) -> None:
    async with private_stack(tmp_path / "stack", settings.dev) as stack:
        private = settings.model_copy(
            update={
                "kafka": settings.kafka.model_copy(update={"bootstrap_servers": stack.bootstrap})
            }
        )
        dsn = private.database.dsn()
        create_topics(private.kafka)
        await migrate(dsn)
        first = Loader(private)
        first.relays()
        first.events(200, "before")
        first.probes(4)
        load = first.flush()
        with sink_processes(
            private,
            tmp_path,
            batch_size=50,
            session_timeout_s=SESSION_TIMEOUT_S,
            retry_base_s=0.2,
            retry_max_s=1.0,
            rejoin_after_s=REJOIN_AFTER_S,
        ) as sinks:
            process = sinks.start()
            await wait_progress(dsn, end_offsets(private), 1.0, within=60)
            for restart in range(2):
                await asyncio.to_thread(stack.kafka.down)
                await asyncio.sleep(DOWN_S)
                await asyncio.to_thread(stack.kafka.up)
                after = Loader(private)
                after.load = load
                after.events(200, f"after restart {restart}")
                load = after.flush()
                try:
                    await wait_progress(dsn, end_offsets(private), 1.0, within=60)
                except AssertionError as exc:
                    raise AssertionError(
                        f"{exc} after broker restart {restart}:\n{sinks.log()}"
                    ) from None
            assert process.poll() is None, sinks.log()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0, sinks.log()
            log = sinks.log()
        assert "session timed out" in log, log
        assert log.count("assigned ") >= 3, log
        await assert_holds(dsn, load)


async def test_an_assignment_whose_offsets_never_come_is_given_up_and_the_group_joined_again(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    create_topics(settings.kafka)
    topic = settings.sink_topic("events")
    quick = settings.model_copy(
        update={"sink": settings.sink.model_copy(update={"rejoin_after_s": 5})}
    )
    asked = 0
    never = asyncio.Event()

    async def stored() -> dict[tuple[str, int], int]:
        nonlocal asked
        asked += 1
        if asked == 1:
            await never.wait()  # the first answer hangs, as a stuck database call would
        return {}

    loop = asyncio.get_running_loop()
    caplog.set_level(logging.INFO, logger="bigbrotr.sink")
    source = GroupSource(quick, [topic], stored, loop)
    try:
        deadline = loop.time() + 90
        while not source.expected and loop.time() < deadline:
            await source.poll(10, 0.2)
        held = dict(source.expected)
    finally:
        await source.close()
    assert asked == 2
    assert held, "no partitions were assigned after joining again"
    assert {t for t, _ in held} == {topic}
    assert all(offset is None for offset in held.values())
    assert "did not come within 5 s" in caplog.text
    assert "joining it again with a new consumer" in caplog.text

"""The PostgreSQL sink on real Kafka and PostgreSQL: kill -9 at random moments, SIGTERM,
a stopped PostgreSQL, a dropped database rebuilt by replay; the tables always end equal to the
topics, every poison record a dead letter."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from bigbrotr.config import DevStackSettings, Settings
from bigbrotr.devstack.postgres import PostgresServer
from bigbrotr.devstack.process import free_port
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_topics
from connectors.sink.databases import database_name, with_database
from connectors.sink.service import sink_group, sink_topics
from connectors.sink.verify import database_content
from tests.support.cli import run_bigbrotr
from tests.support.sink import (
    assert_holds,
    end_offsets,
    progress,
    rejects,
    sink_env,
    sink_processes,
    wait_progress,
)
from tests.support.sink_load import Loader, SinkLoad

pytestmark = pytest.mark.integration


async def _prepared(settings: Settings) -> None:
    create_topics(settings.kafka)
    await migrate(settings.database.dsn())


def _full_load(settings: Settings, events: int) -> SinkLoad:
    loader = Loader(settings)
    loader.relays()
    loader.events(events, "load")
    loader.probes(4)
    loader.poison()
    return loader.flush()


def _assert_dead_letters(settings: Settings, load: SinkLoad) -> None:
    """Every poison record is a dead letter (a kill between publish and commit may repeat one)."""
    found = rejects(settings)
    assert {r["original"] for r in found} == load.poison
    assert {r["stage"] for r in found} == {"sink"}
    assert set(Counter(r["reason"] for r in found)) == {"bad_record", "unwritable"}


def _verify_topics(settings: Settings, cwd: Path) -> str:
    result = run_bigbrotr(["verify", "--topics"], sink_env(settings), cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical" in result.stdout
    return result.stdout


async def test_kill_9_at_random_moments_then_sigterm_leaves_the_topics_exactly(
    settings: Settings, tmp_path: Path
) -> None:
    await _prepared(settings)
    load = _full_load(settings, events=2000)
    ends = end_offsets(settings)
    dsn = settings.database.dsn()
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    with sink_processes(settings, tmp_path, batch_size=40, batch_max_wait_s=0.05) as sinks:
        for threshold in (0.1, 0.3, 0.5):
            process = sinks.start()
            await wait_progress(dsn, ends, threshold, within=40)
            await asyncio.sleep(rng.uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
            process.wait()
            assert await progress(dsn, ends) < 1.0, "the kill came after the load, not during it"
        process = sinks.start()
        await wait_progress(dsn, ends, 0.7, within=40)
        process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert process.wait(timeout=15) == 0, sinks.log()
        assert time.monotonic() - stopping < 10, f"seed {seed}"
        process = sinks.start()
        await wait_progress(dsn, ends, 1.0, within=40)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    await assert_holds(dsn, load)
    _assert_dead_letters(settings, load)
    _verify_topics(settings, tmp_path)


async def test_replay_rebuilds_a_dropped_database_and_verify_finds_it_identical(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    await _prepared(settings)
    early = Loader(settings)
    early.relays()
    early.events(300, "early")
    early.probes(4)
    early.poison()
    early.flush()
    await asyncio.sleep(1.0)  # --from takes whole seconds: a clear line between the halves
    since = int(time.time())
    await asyncio.sleep(1.0)
    late = Loader(settings)
    late.events(100, "late", sightings_per_event=1)
    late_load = late.flush()
    dsn = settings.database.dsn()
    ends = end_offsets(settings)
    with sink_processes(settings, tmp_path) as sinks:
        process = sinks.start()
        await wait_progress(dsn, ends, 1.0, within=40)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    before = await database_content(dsn, sink_group(settings), sink_topics(settings))
    name = database_name(dsn)
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()

    env = sink_env(settings)
    replayed = run_bigbrotr(["replay", "--fresh", name], env, tmp_path)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"created database {name}" in replayed.stdout
    assert "ETA" in replayed.stdout
    after = await database_content(dsn, sink_group(settings), sink_topics(settings))
    assert {t: (c.rows, c.total) for t, c in after.tables.items()} == {
        t: (c.rows, c.total) for t, c in before.tables.items()
    }
    nonzero = [{k: v for k, v in o.items() if v} for o in (after.offsets, before.offsets, ends)]
    assert nonzero[0] == nonzero[1] == nonzero[2]
    _verify_topics(settings, tmp_path)

    partial = f"{name}_late"
    from_time = run_bigbrotr(["replay", "--fresh", partial, "--from", str(since)], env, tmp_path)
    assert from_time.returncode == 0, from_time.stdout + from_time.stderr
    try:
        conn = await asyncpg.connect(with_database(dsn, partial))
        try:
            ids = {r[0] for r in await conn.fetch("SELECT encode(id, 'hex') FROM events")}
        finally:
            await conn.close()
        assert ids == late_load.event_ids
        differs = run_bigbrotr(["verify", "--against", with_database(dsn, partial)], env, tmp_path)
        assert differs.returncode == 1
        assert "DIFFERS" in differs.stdout
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_postgres_stopped_mid_load_then_started_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    server = PostgresServer(
        DevStackSettings(state_dir=tmp_path / "state", postgres_port=free_port())
    )
    await asyncio.to_thread(server.up)
    try:
        private = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": server.url})}
        )
        await _prepared(private)
        first = Loader(private)
        first.relays()
        first.events(400, "before")
        first.probes(4)
        first.poison()
        first.flush()
        dsn = server.url
        with sink_processes(
            private, tmp_path, batch_size=50, retry_base_s=0.2, retry_max_s=1.0
        ) as sinks:
            process = sinks.start()
            await wait_progress(dsn, end_offsets(private), 1.0, within=40)
            await asyncio.to_thread(server.down)
            # Records arrive while PostgreSQL is down: the sink holds them and waits.
            second = Loader(private)
            second.load = first.load
            second.events(400, "during")
            load = second.flush()
            await asyncio.sleep(3)
            assert process.poll() is None, sinks.log()
            await asyncio.to_thread(server.up)
            await wait_progress(dsn, end_offsets(private), 1.0, within=40)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            assert "waiting for PostgreSQL" in sinks.log()
            assert "is back after" in sinks.log()
        await assert_holds(dsn, load)
        _assert_dead_letters(private, load)
        _verify_topics(private, tmp_path)
    finally:
        await asyncio.to_thread(server.down)
        shutil.rmtree(server.root, ignore_errors=True)


def test_bad_arguments_and_an_unprepared_stack_get_one_line_errors(
    settings: Settings, tmp_path: Path
) -> None:
    env = sink_env(settings)
    bad_time = run_bigbrotr(["replay", "--from", "yesterday"], env, tmp_path)
    assert bad_time.returncode == 2
    assert "neither unix seconds nor an ISO 8601 time" in bad_time.stderr
    both = run_bigbrotr(
        ["replay", "--database", settings.database.url, "--fresh", "x"], env, tmp_path
    )
    assert both.returncode == 2
    assert "not both" in both.stderr
    bad_url = run_bigbrotr(["verify", "--against", "mysql://x/y"], env, tmp_path)
    assert bad_url.returncode == 2
    assert "postgresql://" in bad_url.stderr
    no_topics = run_bigbrotr(["sink"], env, tmp_path)
    assert no_topics.returncode == 1
    assert "run `bigbrotr topics create`" in no_topics.stderr
    assert "Traceback" not in no_topics.stderr
    create_topics(settings.kafka)
    not_migrated = run_bigbrotr(["sink"], env, tmp_path)
    assert not_migrated.returncode == 1
    assert "run `bigbrotr migrate` first" in not_migrated.stderr

"""`bigbrotr run` and `bigbrotr demo` as a user runs them: real processes, real relays, real Kafka
and PostgreSQL, stopped by signals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import yaml

from bigbrotr.config import Settings
from bigbrotr.nostr import event_from_object, verify
from tests.support.cli import BIGBROTR, run_bigbrotr
from tests.support.events import make_events
from tests.support.loader import load_events
from tests.support.relays import local_relay
from tests.support.waiting import until, until_answered

pytestmark = pytest.mark.integration

COMPONENTS = ("finder", "monitor", "sync", "worker", "sink")
STARTED = re.compile(r"started (\w+) \(pid (\d+)\)")


def _pids(log: Path) -> list[tuple[str, int]]:
    return [(name, int(pid)) for name, pid in STARTED.findall(log.read_text())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start_run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`bigbrotr --config FILE run`, configured by the file alone, its output in `log`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [*BIGBROTR, "--config", str(config), "run"], env=clean, stdout=out, stderr=out
        )


async def _count(database_url: str, table: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_run_archives_a_relay_restarts_a_killed_child_and_stops_on_sigterm(
    settings: Settings, tmp_path: Path
) -> None:
    events = make_events(20, label="run")
    with local_relay(tmp_path / "relay") as relay:
        await load_events(relay.url, events)
        seed = tmp_path / "seed.txt"
        seed.write_text(relay.url + "\n")
        config = tmp_path / "bigbrotr.yaml"
        topics = {name: {"partitions": 1} for name in settings.kafka.topics}
        config.write_text(
            yaml.safe_dump(
                {
                    "kafka": {
                        "bootstrap_servers": settings.kafka.bootstrap_servers,
                        "topic_prefix": settings.kafka.topic_prefix,
                        "topics": topics,
                    },
                    "database": {"url": settings.database.url},
                    "connectors": {"allow": [relay.host_port]},
                    "finder": {"seed_path": str(seed)},
                    "streams": {"data_dir": str(tmp_path / "streams")},
                    "run": {"restart_base_s": 0.5, "shutdown_timeout_s": 15},
                }
            )
        )
        log = tmp_path / "run.log"
        supervisor = _start_run(config, log)
        try:
            await until(lambda: len(_pids(log)) == len(COMPONENTS), "every child started")
            assert {name for name, _ in _pids(log)} == set(COMPONENTS)

            async def archived() -> bool:
                return await _count(settings.database.url, "events") == len(events)

            await until_answered(archived, "the relay's events archived", within=120)

            sink_pid = dict(_pids(log))["sink"]
            os.kill(sink_pid, signal.SIGKILL)
            await until(
                lambda: [n for n, _ in _pids(log)].count("sink") == 2, "the killed sink restarted"
            )
            assert re.search(
                rf"sink \(pid {sink_pid}\) exited with signal SIGKILL", log.read_text()
            )
            await until(
                lambda: log.read_text().count("bigbrotr.sink: sink: group") == 2,
                "the restarted sink is running",
            )

            pids = _pids(log)
            stopping = time.monotonic()
            supervisor.send_signal(signal.SIGTERM)
            returncode = await asyncio.to_thread(supervisor.wait, 30)
            took = time.monotonic() - stopping
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait()
    text = log.read_text()
    assert returncode == 0, text[-3000:]
    assert took < 20, f"stopping took {took:.1f} s"
    assert [pid for _, pid in pids if _alive(pid)] == [], "a child outlived the supervisor"
    for name, pid in [(name, pid) for name, pid in pids if pid != sink_pid]:
        assert re.search(rf"{name} \(pid {pid}\) stopped: exit code 0", text), (name, text[-3000:])
    assert "every component exited by itself" in text


@pytest.fixture
async def demo_database(postgres_url: str) -> AsyncIterator[str]:
    """A database name for the demo to create; dropped afterwards."""
    name = f"test_demo_{uuid.uuid4().hex[:12]}"
    yield name
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_demo_archives_exactly_what_its_relays_were_given(
    settings: Settings, demo_database: str, tmp_path: Path
) -> None:
    count = 40
    env = {
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_DATABASE__URL": settings.database.url,
        "BIGBROTR_DEV__STATE_DIR": str(tmp_path / "state"),
    }
    args = ["demo", "--events", str(count), "--database", demo_database, "--json"]
    result = await asyncio.to_thread(run_bigbrotr, [*args, "--timeout", "100"], env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    # The documented load: a tenth of the events on each relay only, the rest on both; on
    # nostr-relay also 3 with a bad signature, 3 with a bad id and 2 over the content limit.
    unique = count // 10
    archived = summary["archived"]
    assert archived["events"] == count
    assert archived["sightings"] == 2 * (count - 2 * unique) + 2 * unique
    assert archived["rejects"] == {"bad_sig": 3, "bad_id": 3, "too_large": 2}
    assert archived["relays"] == 2
    assert summary["loaded"] == {k: archived[k] for k in ("events", "sightings", "rejects")}
    assert sorted(relay["events"] for relay in summary["relays"]) == [
        count - unique,
        count - unique,
    ]
    assert all(behind == 0 for topics in summary["lag"].values() for behind in topics.values())
    assert summary["topic_prefix"].startswith(settings.kafka.topic_prefix)
    assert [
        q["rows"] for q in summary["queries"] if q["title"] == "events seen on both relays"
    ] == [[{"events": count - 2 * unique}]]

    # The database itself, read here: every stored event is the signed event, and each relay
    # served its share.
    conn = await asyncpg.connect(summary["database_url"])
    try:
        rows = await conn.fetch(
            "SELECT id, pubkey, created_at, kind, tags, content, sig FROM events"
        )
        per_relay = await conn.fetch("SELECT relay_url, count(*) AS n FROM sightings GROUP BY 1")
    finally:
        await conn.close()
    assert len(rows) == count
    for row in rows:
        verify(
            event_from_object(
                {
                    "id": row["id"].hex(),
                    "pubkey": row["pubkey"].hex(),
                    "created_at": row["created_at"],
                    "kind": row["kind"],
                    "tags": json.loads(row["tags"]),
                    "content": row["content"],
                    "sig": row["sig"].hex(),
                }
            )
        )
    assert sorted(row["n"] for row in per_relay) == [count - unique, count - unique]

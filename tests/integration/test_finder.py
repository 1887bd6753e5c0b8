"""The finder on a real broker with real relays on loopback: what speaks NIP-01 reaches `relays`
once, what does not is retried with growing delays and retired, and every source is read.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaConsumer

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.devstack.process import free_port
from bigbrotr.nostr import Event, sign_event
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from connectors.finder import Finder, PassReport, SkipReason
from streams.records import event_record
from tests.support.cli import run_bigbrotr
from tests.support.events import BASE_TIME, TEST_KEYS, make_events
from tests.support.hostile_relay import Behaviour, HostileRelay
from tests.support.relays import RunningRelay, local_relay, nostr_relay

pytestmark = pytest.mark.integration

CODEC = Codec()
PROMPTLY = 60.0
ONION = "ws://abcdefghij234567.onion"


@pytest.fixture(scope="module")
def python_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    with nostr_relay(tmp_path_factory.mktemp("finder-nostr-relay")) as relay:
        yield relay


@pytest.fixture(scope="module")
def rust_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    with local_relay(tmp_path_factory.mktemp("finder-local-relay")) as relay:
        yield relay


@pytest.fixture(scope="module")
def auth_only_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    with local_relay(tmp_path_factory.mktemp("finder-auth-relay"), nip42=True) as relay:
        yield relay


@pytest.fixture
async def mute_relay() -> AsyncIterator[HostileRelay]:
    """Sends events but never EOSE: not proof of NIP-01."""
    async with HostileRelay(make_events(3, label="finder mute"), default=Behaviour.NO_EOSE) as r:
        yield r


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on."""
    return f"ws://127.0.0.1:{free_port()}"


@pytest.fixture
def live(
    python_relay: RunningRelay, rust_relay: RunningRelay, auth_only_relay: RunningRelay
) -> list[str]:
    return [python_relay.url, rust_relay.url, auth_only_relay.url]


def finder_settings(
    kafka_bootstrap: str, topic_prefix: str, allow: list[str], **finder: Any
) -> Settings:
    finder = {"seed_path": None, "probe_timeout_s": 3.0, **finder}
    return load_settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix},
        connectors={"allow": allow},
        finder=finder,
    )


async def one_pass(settings: Settings) -> PassReport:
    """A fresh finder (as after a restart) runs one pass."""
    async with asyncio.timeout(PROMPTLY), Finder(settings) as finder:
        return await finder.run_pass()


async def read_topic(
    settings: Settings, name: str, record: str
) -> list[tuple[str, dict[str, Any]]]:
    """Every (key, decoded value) of a topic, in offset order per partition."""
    topic = settings.kafka.topic(name)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        found: list[tuple[str, dict[str, Any]]] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                found += [(m.key.decode(), CODEC.decode(record, m.value)) for m in messages]
        return found
    finally:
        await consumer.stop()


def write_seed(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "seed.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def host_ports(urls: list[str]) -> list[str]:
    return [url.removeprefix("ws://").split("/")[0] for url in urls]


async def test_relays_that_speak_nip01_are_published_once(
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    live: list[str],
    mute_relay: HostileRelay,
    dead_url: str,
) -> None:
    mute = mute_relay.url_for(Behaviour.NO_EOSE)
    published_elsewhere = "ws://127.0.0.1:9/elsewhere"
    seed = write_seed(
        tmp_path,
        [
            *live,
            live[0].upper() + "/",  # the same relay spelled differently
            mute,
            dead_url,
            published_elsewhere,
            ONION,  # no proxy is configured: it waits, neither probed nor failed
            "https://not-a-relay.example",
            "ws://127.0.0.2:7777",  # loopback, not on the allow-list
        ],
    )
    allow = host_ports([*live, mute, dead_url, published_elsewhere])
    settings = finder_settings(kafka_bootstrap, topic_prefix, allow, seed_path=str(seed))
    create_topics(settings.kafka)
    await publish_discovered(settings, published_elsewhere)

    first = await one_pass(settings)

    assert (first.new_candidates, first.due, first.probed) == (6, 5, 5)
    assert (first.accepted, first.retired, first.pending) == (3, 0, 3)
    assert first.skipped == {SkipReason.INVALID_URL: 1, SkipReason.NON_PUBLIC: 1}
    relays = await read_topic(settings, "relays", "RelayDiscovered")
    assert sorted(key for key, _ in relays) == sorted([*live, published_elsewhere])
    ours = {key: value for key, value in relays if key != published_elsewhere}
    assert {(v["url"], v["network"], v["source"]) for v in ours.values()} == {
        (url, "clearnet", "seed") for url in live
    }

    second = await one_pass(settings)

    assert (second.new_candidates, second.probed, second.accepted, second.pending) == (0, 0, 0, 3)
    assert len(await read_topic(settings, "relays", "RelayDiscovered")) == len(relays)
    states = dict(await read_topic(settings, "relay-candidates", "RelayCandidate"))
    assert {url: s["status"] for url, s in states.items()} == {
        **{url: "accepted" for url in live},
        mute: "pending",
        dead_url: "pending",
        ONION: "pending",
    }
    assert (states[ONION]["attempts"], states[mute]["attempts"]) == (0, 1)
    assert states[mute]["last_error"].partition(":")[0] in {"idle_timeout", "total_timeout"}
    assert states[dead_url]["last_error"].startswith("connect_failed")


async def publish_discovered(settings: Settings, url: str) -> None:
    producer = new_producer(settings)
    await producer.start()
    try:
        value = {"url": url, "network": "clearnet", "source": "test", "discovered_at": 0}
        await producer.send_and_wait(
            settings.kafka.topic("relays"),
            CODEC.encode("RelayDiscovered", value),
            key=url.encode(),
        )
    finally:
        await producer.stop()


async def test_a_dead_candidate_is_retried_with_growing_delays_then_retired(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, dead_url: str
) -> None:
    settings = finder_settings(
        kafka_bootstrap,
        topic_prefix,
        host_ports([dead_url]),
        seed_path=str(write_seed(tmp_path, [dead_url])),
        retry_delay_s=0.3,
        retry_backoff=2.0,
        max_attempts=4,
        interval_s=30.0,
    )
    create_topics(settings.kafka)
    stop = asyncio.Event()
    async with asyncio.timeout(PROMPTLY), Finder(settings) as finder:
        running = asyncio.create_task(finder.run_forever(stop))
        while dead_url not in finder.retired:  # noqa: ASYNC110  (the finder offers no event)
            await asyncio.sleep(0.05)
        stop.set()
        await running

    history = [
        state
        for key, state in await read_topic(settings, "relay-candidates", "RelayCandidate")
        if key == dead_url
    ]
    assert [(s["status"], s["attempts"]) for s in history] == [
        ("pending", 0),
        ("pending", 1),
        ("pending", 2),
        ("pending", 3),
        ("retired", 4),
    ]
    waits = [s["next_attempt_at"] - s["updated_at"] for s in history[1:-1]]
    assert [round(wait.total_seconds() * 1000) for wait in waits] == [300, 600, 1200]
    for before, after in itertools.pairwise(history[1:]):
        assert after["updated_at"] >= before["next_attempt_at"], "probed before it was due"
    assert await read_topic(settings, "relays", "RelayDiscovered") == []

    after_restart = await one_pass(settings)
    assert (after_restart.new_candidates, after_restart.probed, after_restart.pending) == (0, 0, 0)


def mention(kind: int, tags: list[list[str]], label: str) -> Event:
    return sign_event(TEST_KEYS[0], BASE_TIME, kind, tags, label)


async def test_relays_named_in_archived_events_are_found(
    kafka_bootstrap: str,
    topic_prefix: str,
    python_relay: RunningRelay,
    rust_relay: RunningRelay,
    auth_only_relay: RunningRelay,
) -> None:
    relay_list = mention(10002, [["r", rust_relay.url], ["r", "wss://"]], "relay list")
    hint = mention(1, [["p", "ab" * 32, python_relay.url + "/"]], "reply")
    discovery = mention(30166, [["d", auth_only_relay.url]], "nip-66")
    allow = host_ports([python_relay.url, rust_relay.url, auth_only_relay.url])
    settings = finder_settings(kafka_bootstrap, topic_prefix, allow)
    create_topics(settings.kafka)
    producer = new_producer(settings)
    await producer.start()
    try:
        topic = settings.kafka.topic("events")
        seen = datetime.now(UTC)
        for event in (relay_list, hint, discovery):
            value = CODEC.encode("Event", event_record(event, None, seen))
            await producer.send_and_wait(topic, value, key=event.id.encode())
        await producer.send_and_wait(topic, b"not an Event record", key=b"junk")
    finally:
        await producer.stop()

    first = await one_pass(settings)

    assert (first.found, first.accepted) == (4, 3)
    assert first.skipped == {SkipReason.INVALID_URL: 1, "bad_event_record": 1}
    sources = {
        v["url"]: v["source"] for _, v in await read_topic(settings, "relays", "RelayDiscovered")
    }
    assert sources == {
        rust_relay.url: f"event:{relay_list.id}",
        python_relay.url: f"event:{hint.id}",
        auth_only_relay.url: f"event:{discovery.id}",
    }
    second = await one_pass(settings)
    assert (second.found, second.skipped) == (0, {}), "events read again after a restart"


class _ListHandler(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on what the finder did, not on the server's log."""


@pytest.fixture
def http_lists(rust_relay: RunningRelay) -> Iterator[str]:
    """A real HTTP server on loopback: a good list, a list too big, and a missing one."""
    _ListHandler.bodies = {
        "/relays.json": json.dumps([rust_relay.url, 42, "garbage"]).encode(),
        "/huge.json": json.dumps([f"wss://r{n}.example" for n in range(500)]).encode(),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ListHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_relays_from_a_local_http_list_are_found(
    kafka_bootstrap: str, topic_prefix: str, rust_relay: RunningRelay, http_lists: str
) -> None:
    good, huge, missing = (f"{http_lists}/{name}" for name in ("relays.json", "huge.json", "x"))
    settings = finder_settings(
        kafka_bootstrap,
        topic_prefix,
        host_ports([rust_relay.url]),
        http_sources=[good, huge, missing],
        http_max_bytes=4096,
    )
    create_topics(settings.kafka)

    report = await one_pass(settings)

    assert (report.found, report.accepted, report.skipped) == (2, 1, {SkipReason.INVALID_URL: 1})
    assert len(report.source_errors) == 2
    assert "more than 4096 bytes" in report.source_errors[0]
    assert "status 404" in report.source_errors[1]
    relays = await read_topic(settings, "relays", "RelayDiscovered")
    assert [(key, value["source"]) for key, value in relays] == [(rust_relay.url, f"http:{good}")]


def test_finder_once_on_the_command_line(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, rust_relay: RunningRelay
) -> None:
    seed = write_seed(tmp_path, [rust_relay.url])
    env = {
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": topic_prefix,
        "BIGBROTR_CONNECTORS__ALLOW": json.dumps(host_ports([rust_relay.url])),
        "BIGBROTR_FINDER__SEED_PATH": str(seed),
    }
    created = run_bigbrotr(["topics", "create"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    result = run_bigbrotr(["finder", "--once"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 new candidate(s), 1 probed, 1 accepted, 0 retired, 0 pending" in result.stdout

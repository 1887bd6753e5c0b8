"""The monitor against real relays, a TLS front, our hostile relay and a real broker: every probe
ends in `probes`, failures included, and with a key the NIP-66 events land on a target relay.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import coincurve
import pytest

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.nostr import Filter, parse_event, verify
from bigbrotr.producer import Producer, new_producer
from bigbrotr.topics import create_topics
from connectors.client import RelayClient
from connectors.monitor import (
    ANNOUNCEMENT_KIND,
    DISCOVERY_KIND,
    AssignedRelays,
    Monitor,
    static_relays,
)
from tests.support.announce import announce_relays
from tests.support.hostile_relay import Behaviour, HostileRelay
from tests.support.relays import RunningRelay, local_relay
from tests.support.tls_front import tls_front
from tests.support.topic_read import read_to_end
from tests.support.waiting import until

pytestmark = pytest.mark.integration

KEY = hashlib.sha256(b"bigbrotr test monitor key").hexdigest()
PUBKEY = coincurve.PublicKeyXOnly.from_secret(bytes.fromhex(KEY)).format().hex()
PROMPTLY = 60.0
CODEC = Codec()


def monitor_settings(
    kafka_bootstrap: str, topic_prefix: str, allow: list[str], **monitor: Any
) -> Settings:
    settings = load_settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix},
        connectors={"allow": allow},
        monitor={"open_timeout_s": 5, "read_timeout_s": 5, "nip11_timeout_s": 5, **monitor},
    )
    create_topics(settings.kafka)
    return settings


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[Producer]:
    producer = new_producer(load_settings(kafka={"bootstrap_servers": kafka_bootstrap}))
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def run_once(
    settings: Settings, producer: Producer, urls: list[str]
) -> dict[str, dict[str, Any]]:
    """Run the monitor over `urls` once; the probes it published, read back from Kafka."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(PROMPTLY):
        count = await Monitor(settings, producer, static_relays(urls), on_probe=seen.append).run(
            once=True
        )
    assert count == len(urls) == len(seen)
    records = await probe_records(settings)
    assert sorted(records) == sorted(record["relay_url"] for record in seen)
    return records


async def probe_records(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every record of `probes`, decoded, by key; each key must match its record's relay."""
    messages, _ = await read_to_end(settings, "probes", timeout_s=PROMPTLY)
    records: dict[str, dict[str, Any]] = {}
    for message in messages:
        value = CODEC.decode("RelayProbe", message.value)
        assert message.key == value["relay_url"].encode()
        records[value["relay_url"]] = value
    return records


async def test_healthy_relay_passes_every_check(
    nostr_relay_history: RunningRelay,
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: Producer,
) -> None:
    relay = nostr_relay_history
    settings = monitor_settings(kafka_bootstrap, topic_prefix, [relay.host_port])
    probe = (await run_once(settings, producer, [relay.url]))[relay.url]
    checks = probe["checks"]
    for name in ("open", "read"):
        assert checks[name]["ok"], checks[name]
        assert checks[name]["error"] is None
        assert isinstance(checks[name]["rtt_ms"], int)
        assert checks[name]["rtt_ms"] >= 0
    assert checks["write"] is None, "no key, so no write check"
    assert probe["nip11"] is not None
    assert '"name":"bigbrotr test relay"' in probe["nip11"]
    assert probe["nip11_error"] is None
    assert probe["network"] == "clearnet"
    assert probe["tls"] is None
    assert probe["errors"] == {}


async def test_dead_port_is_published_with_its_failures(
    kafka_bootstrap: str, topic_prefix: str, producer: Producer
) -> None:
    url = "ws://127.0.0.1:9"
    settings = monitor_settings(kafka_bootstrap, topic_prefix, ["127.0.0.1:9"])
    probe = (await run_once(settings, producer, [url]))[url]
    assert probe["checks"]["open"]["ok"] is False
    assert probe["checks"]["open"]["rtt_ms"] is None
    assert "no address answered" in probe["checks"]["open"]["error"]
    assert probe["checks"]["read"] is None
    assert probe["nip11"] is None
    assert "no address answered" in probe["nip11_error"]


async def test_refusals_and_a_stalled_relay_are_facts(
    kafka_bootstrap: str, topic_prefix: str, producer: Producer, hostile: HostileRelay
) -> None:
    closed, stall = hostile.url_for(Behaviour.CLOSED), hostile.url_for(Behaviour.STALL)
    settings = monitor_settings(
        kafka_bootstrap, topic_prefix, [hostile.host_port], probe_timeout_s=2, nip11_timeout_s=1
    )
    records = await run_once(settings, producer, [closed, stall])
    read = records[closed]["checks"]["read"]
    assert read["ok"] is False
    assert read["error"] == f"CLOSED: {hostile.closed_reason}"
    stalled = records[stall]
    assert "no complete answer in 1s" in stalled["nip11_error"]
    assert stalled["checks"]["open"] is None, "the probe was cancelled while opening"
    assert "cancelled after 2s" in stalled["errors"]["probe"]


async def test_key_adds_write_check_and_nip66_events_on_the_target(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, producer: Producer
) -> None:
    with (
        local_relay(tmp_path / "probed") as probed,
        local_relay(tmp_path / "target") as target,
    ):
        settings = monitor_settings(
            kafka_bootstrap,
            topic_prefix,
            [probed.host_port, target.host_port, "127.0.0.1:9"],
            secret_key=KEY,
            publish_relays=[target.url],
            interval_s=900,
        )
        records = await run_once(settings, producer, [probed.url, "ws://127.0.0.1:9"])
        write = records[probed.url]["checks"]["write"]
        assert write["ok"], write
        assert isinstance(write["rtt_ms"], int)
        async with RelayClient(target.url, allow=[target.host_port]) as client:
            fetched = await client.fetch(
                [Filter(authors=[PUBKEY], kinds=[DISCOVERY_KIND, ANNOUNCEMENT_KIND])]
            )
    events = [parse_event(received.text) for received in fetched.events]
    for event in events:
        verify(event)
    by_kind = {event.kind: event for event in events}
    assert sorted(event.kind for event in events) == [ANNOUNCEMENT_KIND, DISCOVERY_KIND], (
        "one 30166 for the live relay (none for the dead one) and one 10166"
    )
    discovery = {tag[0]: tag[1:] for tag in by_kind[DISCOVERY_KIND].tags}
    assert discovery["d"] == (probed.url,)
    assert discovery["n"] == ("clearnet",)
    assert int(discovery["rtt-open"][0]) >= 0
    assert int(discovery["rtt-write"][0]) == write["rtt_ms"]
    announcement = by_kind[ANNOUNCEMENT_KIND].tags
    assert ("frequency", "900") in announcement
    assert ("c", "write") in announcement
    assert ("timeout", "5000", "open") in announcement


async def test_tls_facts_of_a_trusted_relay(
    nostr_relay_history: RunningRelay,
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: Producer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with tls_front(nostr_relay_history.host_port) as front:
        ca_file = tmp_path / "ca.pem"
        front.ca.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        settings = monitor_settings(kafka_bootstrap, topic_prefix, [front.host_port])
        probe = (await run_once(settings, producer, [front.url]))[front.url]
    tls = probe["tls"]
    assert tls["error"] is None
    assert "localhost" in tls["subject_alt_names"]
    assert "127.0.0.1" in tls["subject_alt_names"]
    assert "trustme" in tls["issuer"]
    assert tls["not_before"] < tls["not_after"]
    assert len(tls["fingerprint_sha256"]) == 64
    assert "127.0.0.1" in probe["dns"]["addresses"]
    assert probe["checks"]["open"]["ok"], probe["checks"]["open"]
    assert probe["checks"]["read"]["ok"], probe["checks"]["read"]
    assert probe["nip11"] is not None, probe["nip11_error"]


async def test_tls_facts_of_an_untrusted_relay(
    nostr_relay_history: RunningRelay,
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: Producer,
) -> None:
    async with tls_front(nostr_relay_history.host_port) as front:
        settings = monitor_settings(kafka_bootstrap, topic_prefix, [front.host_port])
        probe = (await run_once(settings, producer, [front.url]))[front.url]
    tls = probe["tls"]
    assert "certificate does not verify" in tls["error"]
    assert "localhost" in tls["subject_alt_names"], "facts are read even when they do not verify"
    assert probe["checks"]["open"]["ok"] is False
    assert "CERTIFICATE_VERIFY_FAILED" in probe["checks"]["open"]["error"]


async def test_without_a_list_it_probes_its_share_of_the_relays_topic(
    nostr_relay_history: RunningRelay,
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: Producer,
) -> None:
    relay = nostr_relay_history
    dead = "ws://127.0.0.1:9"
    settings = monitor_settings(kafka_bootstrap, topic_prefix, [relay.host_port, "127.0.0.1:9"])
    await announce_relays(settings, [relay.url, dead])
    assigned = AssignedRelays(settings)
    probed: set[str] = set()
    both_probed = asyncio.Event()

    def on_probe(record: dict[str, Any]) -> None:
        probed.add(record["relay_url"])
        if probed == {relay.url, dead}:
            both_probed.set()

    monitor = Monitor(settings, producer, assigned, on_probe=on_probe)
    running = [asyncio.create_task(assigned.assignment.run()), asyncio.create_task(monitor.run())]
    try:
        async with asyncio.timeout(PROMPTLY):
            await both_probed.wait()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert probed == {relay.url, dead}
    records = await probe_records(settings)
    assert set(records) == {relay.url, dead}
    assert records[relay.url]["checks"]["open"]["ok"]
    assert not records[dead]["checks"]["open"]["ok"]


async def test_two_monitors_share_the_relays_and_one_takes_over_when_the_other_stops(
    kafka_bootstrap: str, topic_prefix: str, producer: Producer
) -> None:
    """Dead ports make quick probes; what is shared is the relay set, whatever the answers."""
    urls = [f"ws://127.0.0.1:{port}" for port in range(9, 100, 10)]
    settings = monitor_settings(
        kafka_bootstrap, topic_prefix, [url.removeprefix("ws://") for url in urls]
    )
    await announce_relays(settings, urls)
    everything = set(urls)
    members = [AssignedRelays(settings), AssignedRelays(settings)]
    probed: list[list[str]] = [[], []]
    tasks = [asyncio.create_task(member.assignment.run()) for member in members]
    try:
        await until(
            lambda: (
                all(len(member.assignment.partitions) == 3 for member in members)
                and members[0].assignment.relays | members[1].assignment.relays == everything
            ),
            "two monitors split the relays' six partitions",
        )
        shares = [set(member.assignment.relays) for member in members]
        assert not shares[0] & shares[1]
        for member, seen in zip(members, probed, strict=True):
            monitor = Monitor(
                settings, producer, member, on_probe=lambda r, s=seen: s.append(r["relay_url"])
            )
            tasks.append(asyncio.create_task(monitor.run()))
        await until(lambda: len(probed[0]) + len(probed[1]) == len(urls), "every relay probed")
        assert [set(seen) for seen in probed] == shares, "each monitor probes only its share"
        assert sorted(probed[0] + probed[1]) == sorted(urls), "each relay once per interval"

        leaving = 0 if shares[0] else 1
        staying = 1 - leaving
        for task in (tasks[leaving], tasks[2 + leaving]):
            task.cancel()
        await asyncio.gather(tasks[leaving], tasks[2 + leaving], return_exceptions=True)
        before = len(probed[staying])
        await until(
            lambda: set(probed[staying][before:]) == shares[leaving],
            "the remaining monitor probes the relays of the one that stopped",
        )
        assert members[staying].assignment.relays == everything
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    records = await probe_records(settings)
    assert set(records) == everything

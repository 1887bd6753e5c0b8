"""Every long-running process serves Prometheus metrics, /health and /ready: the whole pipeline
runs as real processes against a real relay, Kafka and PostgreSQL, and each one's counters are
scraped over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bigbrotr.config import Settings
from bigbrotr.devstack.process import free_port
from bigbrotr.migrate import migrate
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from tests.support.events import BASE_TIME, history
from tests.support.metrics import Scrape, endpoint, scrape
from tests.support.relays import RunningRelay
from tests.support.sink import sink_processes
from tests.support.waiting import until

pytestmark = pytest.mark.integration

PROCESSES = ("finder", "sync", "monitor", "worker", "sink")


async def test_every_process_serves_metrics_health_and_readiness(
    settings: Settings, local_relay_history: RunningRelay, tmp_path: Path
) -> None:
    relay = local_relay_history
    events = len(history())
    create_topics(settings.kafka)
    await migrate(settings.database.dsn())
    garbage = new_producer(settings)
    await garbage.start()
    await garbage.send_and_wait(settings.kafka.topic("events.raw"), b"not avro", key=b"x")
    await garbage.stop()
    seed = tmp_path / "seed.txt"
    seed.write_text(f"{relay.url}\n")
    ports = {process: free_port() for process in PROCESSES}
    with sink_processes(settings, tmp_path) as processes:
        processes.env.update(
            {
                "BIGBROTR_CONNECTORS__ALLOW": f'["{relay.host_port}"]',
                "BIGBROTR_FINDER__SEED_PATH": str(seed),
                "BIGBROTR_SYNC__HISTORY_SINCE": str(BASE_TIME),
                "BIGBROTR_STREAMS__DATA_DIR": str(tmp_path / "streams"),
                **{f"BIGBROTR_METRICS__PORTS__{p.upper()}": str(ports[p]) for p in PROCESSES},
            }
        )
        for process in PROCESSES:
            processes.start(process)
        scraped: dict[str, Scrape] = {}
        topic = settings.kafka.topic

        def moved(process: str, name: str, least: float, **labels: str) -> bool:
            found = scrape(ports[process])
            if found is None:
                return False
            scraped[process] = found
            return found.value(name, **labels) >= least

        try:
            await until(
                lambda: (
                    moved("sink", "bigbrotr_records_in_total", events, topic=topic("events"))
                    and moved("sink", "bigbrotr_records_in_total", events, topic=topic("sightings"))
                ),
                "the sink stores every event and sighting (the whole relay, end to end)",
                within=150,
            )
        except AssertionError:
            for index, process in enumerate(PROCESSES):
                print(f"--- {process}\n{processes.log(index)[-3000:]}")
            raise
        assert moved("finder", "bigbrotr_relay_probes_total", 1, prober="finder", outcome="up")
        assert moved("finder", "bigbrotr_records_out_total", 1, topic=topic("relays"))
        assert moved("sync", "bigbrotr_records_out_total", events, topic=topic("events.raw"))
        assert moved("sync", "bigbrotr_relay_connects_total", 1, outcome="ok")
        assert moved("sync", "bigbrotr_records_in_total", 1, topic=topic("relays"))
        await until(
            lambda: moved("sync", "bigbrotr_relay_open_connections", 1),
            "the live subscription holds a connection",
        )
        await until(
            lambda: moved("monitor", "bigbrotr_relay_probes_total", 1, prober="monitor"),
            "the monitor probes the relay",
        )
        assert scraped["monitor"].value("bigbrotr_relay_probes_total", outcome="up") == 1
        assert moved("monitor", "bigbrotr_records_out_total", 1, topic=topic("probes"))
        worker = scraped["worker"] = scrape(ports["worker"])  # type: ignore[assignment]
        assert worker.value("bigbrotr_records_in_total", topic=topic("events.raw")) >= events + 1
        assert worker.value("bigbrotr_records_out_total", topic=topic("events")) == events
        assert worker.value("bigbrotr_rejects_total", reason="bad_record") == 1
        sink = scraped["sink"]
        assert sink.value("bigbrotr_sink_batch_seconds_count") >= 1

        raw_group = settings.kafka.topic_prefix + settings.streams.app_id
        await until(
            lambda: _lag_settled(ports["worker"], raw_group, topic("events.raw")),
            "the worker's consumer lag on events.raw goes to zero",
        )
        sink_lag = scrape(ports["sink"])
        assert sink_lag is not None
        lagged = {row["topic"] for row in sink_lag.labels("bigbrotr_consumer_lag")}
        assert topic("events") in lagged
        finder_lag = scrape(ports["finder"])
        assert finder_lag is not None
        assert {row["group"] for row in finder_lag.labels("bigbrotr_consumer_lag")} == {
            settings.kafka.topic_prefix + "finder"
        }

        for process in PROCESSES:
            health = await asyncio.to_thread(endpoint, ports[process], "/health")
            assert (health.status_code, health.json()["process"]) == (200, process)
            ready = await asyncio.to_thread(endpoint, ports[process], "/ready")
            assert ready.status_code == 200, ready.text
            expected = {"kafka", "postgres"} if process in ("sink", "sync") else {"kafka"}
            assert set(ready.json()["checked"]) == expected, process


def _lag_settled(port: int, group: str, topic: str) -> bool:
    found = scrape(port)
    if found is None:
        return False
    rows = [row for row in found.labels("bigbrotr_consumer_lag") if row["topic"] == topic]
    lag = found.value("bigbrotr_consumer_lag", group=group, topic=topic)
    return len(rows) == 6 and lag == 0

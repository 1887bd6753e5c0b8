"""A real Prometheus (Debian's package) scrapes a running BigBrotr process, and its HTTP API
answers with BigBrotr's metrics."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bigbrotr.config import Settings
from bigbrotr.devstack.process import free_port
from bigbrotr.topics import create_topics
from tests.support.sink import sink_processes
from tests.support.waiting import until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus is missing: `apt-get install prometheus` (.ci/run installs it in CI)",
    ),
]


@pytest.fixture
def prometheus_scraping(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus on a free port scraping `127.0.0.1:<target>` every second."""
    target, port = free_port(), free_port()
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "bigbrotr", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", target
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _query(base: str, query: str) -> list[dict[str, object]]:
    try:
        answer = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=5)
    except httpx.TransportError:
        return []
    if answer.status_code != 200:
        return []
    result: list[dict[str, object]] = answer.json()["data"]["result"]
    return result


async def test_prometheus_scrapes_a_running_process(
    settings: Settings, prometheus_scraping: tuple[str, int], tmp_path: Path
) -> None:
    base, target = prometheus_scraping
    create_topics(settings.kafka)
    seed = tmp_path / "no-seeds.txt"
    seed.write_text("")
    with sink_processes(settings, tmp_path) as processes:
        processes.env.update(
            {
                "BIGBROTR_METRICS__PORTS__FINDER": str(target),
                "BIGBROTR_FINDER__SEED_PATH": str(seed),
                "BIGBROTR_FINDER__READ_EVENTS": "false",
            }
        )
        processes.start("finder")
        found: list[dict[str, object]] = []

        def scraped() -> bool:
            found[:] = _query(base, 'bigbrotr_relay_open_connections{job="bigbrotr"}')
            return bool(found)

        await until(scraped, "Prometheus has scraped a BigBrotr metric", within=60)
        (series,) = found
        assert series["metric"] == {
            "__name__": "bigbrotr_relay_open_connections",
            "instance": f"127.0.0.1:{target}",
            "job": "bigbrotr",
        }
        assert series["value"][1] == "0"  # type: ignore[index]
        (up,) = _query(base, 'up{job="bigbrotr"}')
        assert up["value"][1] == "1"  # type: ignore[index]

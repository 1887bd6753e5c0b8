"""The metrics endpoint over real loopback HTTP, with dependencies that do not answer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bigbrotr.devstack.process import free_port
from bigbrotr.observability.lag import lag_by_partition
from bigbrotr.observability.ready import kafka_check, postgres_check
from bigbrotr.observability.server import MetricsServer


@pytest.fixture
def unready() -> Iterator[MetricsServer]:
    dead = free_port()
    checks = {
        "kafka": kafka_check(f"127.0.0.1:{dead}", 1.0),
        "postgres": postgres_check(f"postgresql://x@127.0.0.1:{dead}/x", 1.0),
    }
    server = MetricsServer("127.0.0.1", 0, "sink", checks)
    yield server
    server.close()


def test_ready_answers_503_naming_each_dependency_that_does_not_answer(
    unready: MetricsServer,
) -> None:
    base = f"http://127.0.0.1:{unready.port}"
    assert httpx.get(f"{base}/health").json() == {"status": "alive", "process": "sink"}
    ready = httpx.get(f"{base}/ready", timeout=10)
    assert ready.status_code == 503
    failed = ready.json()["failed"]
    assert set(failed) == {"kafka", "postgres"}
    assert "no Kafka broker answers" in failed["kafka"]
    assert failed["postgres"].startswith("PostgreSQL does not answer")
    metrics = httpx.get(f"{base}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "\nprocess_open_fds " in metrics.text
    assert httpx.get(f"{base}/other").status_code == 404


def test_a_taken_port_falls_back_to_a_free_one(unready: MetricsServer) -> None:
    second = MetricsServer("127.0.0.1", unready.port, "sink", {})
    try:
        assert second.port not in (0, unready.port)
        assert httpx.get(f"http://127.0.0.1:{second.port}/ready").json()["status"] == "ready"
    finally:
        second.close()


def test_lag_counts_from_the_start_for_partitions_never_read() -> None:
    ends = {("t", 0): 10, ("t", 1): 7, ("t", 2): 5}
    positions: dict[tuple[str, int], int | None] = {("t", 0): 4, ("t", 1): None, ("t", 2): 9}
    assert lag_by_partition(ends, positions, {("t", 1): 2}) == {
        ("t", 0): 6,
        ("t", 1): 5,
        ("t", 2): 0,
    }

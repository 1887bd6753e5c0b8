"""Observability shared by every process: Prometheus metrics, `/health`, `/ready`, consumer lag.

A process calls `observe(...)` once at start; the metrics themselves live in
`bigbrotr.observability.metrics` and are updated where the work happens.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, disable_created_metrics

from bigbrotr.config import ProcessName, Settings
from bigbrotr.observability.lag import ConsumerLag, Positions, committed_positions
from bigbrotr.observability.offsets import BrokerOffsets
from bigbrotr.observability.ready import Check, kafka_check, postgres_check
from bigbrotr.observability.server import MetricsServer

__all__ = ["BrokerOffsets", "MetricsServer", "Observed", "committed_positions", "observe"]

disable_created_metrics()  # type: ignore[no-untyped-call]


class Observed:
    """What `observe` started; `close()` stops serving and forgets the lag gauge."""

    def __init__(self, server: MetricsServer | None, lag: ConsumerLag | None) -> None:
        self.server = server
        self._lag = lag

    def close(self) -> None:
        if self._lag is not None:
            REGISTRY.unregister(self._lag)
        if self.server is not None:
            self.server.close()


def observe(
    settings: Settings,
    process: ProcessName,
    *,
    database: bool = False,
    lag: tuple[str, Positions] | None = None,
) -> Observed:
    """Serve this process's endpoints per `settings.metrics`; with `lag=(group, positions)` also
    its consumer lag. `database` adds PostgreSQL to what `/ready` checks."""
    metrics = settings.metrics
    collector = None
    if lag is not None:
        group, positions = lag
        collector = ConsumerLag(lag_offsets(settings), group, positions)
        REGISTRY.register(collector)
    if not metrics.enabled:
        return Observed(None, collector)
    timeout = metrics.ready_timeout_s
    checks: dict[str, Check] = {"kafka": kafka_check(settings.kafka.bootstrap_servers, timeout)}
    if database:
        checks["postgres"] = postgres_check(settings.database.dsn(), timeout)
    server = MetricsServer(metrics.host, metrics.ports[process], process, checks)
    return Observed(server, collector)


def lag_offsets(settings: Settings) -> BrokerOffsets:
    return BrokerOffsets(settings.kafka.bootstrap_servers, settings.metrics.ready_timeout_s)

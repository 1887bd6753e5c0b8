"""The Prometheus metrics every BigBrotr process may export, defined once.

Labels stay low-cardinality (topic, reason, outcome): per-relay figures belong to `probes` and
`bigbrotr status`, not to time series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter("bigbrotr_records_in", "Kafka records read and processed, by topic", ["topic"])
RECORDS_OUT = Counter("bigbrotr_records_out", "Kafka records published, by topic", ["topic"])
REJECTS = Counter(
    "bigbrotr_rejects",
    "Records dead-lettered to the rejects topic, by stage and reason",
    ["stage", "reason"],
)
SINK_BATCH_SECONDS = Histogram(
    "bigbrotr_sink_batch_seconds",
    "Time to write one sink batch to PostgreSQL, offsets included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_BATCH_RECORDS = Histogram(
    "bigbrotr_sink_batch_records",
    "Records in one sink batch",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
RELAY_CONNECTS = Counter(
    "bigbrotr_relay_connects",
    "Websocket connections to relays, by outcome (ok or failed)",
    ["outcome"],
)
RELAY_OPEN_CONNECTIONS = Gauge(
    "bigbrotr_relay_open_connections", "Websocket connections to relays open now"
)
RELAY_PROBES = Counter(
    "bigbrotr_relay_probes",
    "Relay probes by the monitor and the finder, by outcome (up or down)",
    ["prober", "outcome"],
)
SYNC_WINDOWS = Counter(
    "bigbrotr_sync_windows",
    "History windows the synchronizer pulled, by how: reconciled (NIP-77 proved them against the "
    "archive) or paged (every event fetched again)",
    ["method"],
)
RELOADS = Counter(
    "bigbrotr_settings_reloads", "SIGHUP reloads, by outcome (applied or failed)", ["outcome"]
)
TABLE_MEMORY = Gauge(
    "bigbrotr_worker_table_memory_bytes",
    "Memory of the worker's table databases (RocksDB) by part, block_cache or memtables; each part "
    "is bounded by half of streams.table_memory_mib",
    ["part"],
)

"""The worker's table databases share one RocksDB budget, and the metric reads its real usage."""

from __future__ import annotations

from pathlib import Path

import rocksdict
from faust.stores.rocksdb import RocksDBOptions
from prometheus_client import REGISTRY

from streams.table_memory import MIB, TableMemory


def _usage(part: str) -> float:
    value = REGISTRY.get_sample_value("bigbrotr_worker_table_memory_bytes", {"part": part})
    assert value is not None, f"no {part} sample"
    return value


def test_databases_write_into_one_budget_and_the_metric_reports_it(tmp_path: Path) -> None:
    memory = TableMemory(16 * MIB)
    options = memory.options(RocksDBOptions()).as_options()
    databases = [rocksdict.Rdict(str(tmp_path / f"table-{n}"), options) for n in range(3)]
    try:
        empty = memory.write_buffers.get_usage()
        for n, database in enumerate(databases):
            for key in range(2_000):
                database[f"{n}-{key}".encode()] = b"v" * 200
        used = memory.write_buffers.get_usage()
        assert used - empty > 3 * 2_000 * 200, "every database writes into the one manager"
        assert _usage("memtables") == used
        assert memory.write_buffers.get_buffer_size() == 8 * MIB
        databases[0].flush()
        assert databases[0][b"0-7"] == b"v" * 200
        assert _usage("block_cache") == memory.cache.get_usage() > 0
    finally:
        for database in databases:
            database.close()

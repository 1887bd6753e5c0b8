"""One memory budget for every table database of the worker.

Faust opens a RocksDB database per table partition, each with its own block cache (2 GiB by
default) and write buffers: memory then grows with the number of partitions and, for hours, with
the history written, before any bound is reached (the soak measured the worker growing all through
a 30-minute run). Here all of them share one block cache and one write buffer manager, so the
tables' memory is capped by `streams.table_memory_mib` however many partitions a worker holds.
"""

from __future__ import annotations

from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

from bigbrotr.observability.metrics import TABLE_MEMORY

MIB = 1024 * 1024


class TableMemory:
    """The shared cache and memtable budget: half of `total_bytes` each, exported as
    `bigbrotr_worker_table_memory_bytes` to tell a worker's memory growing from its budget filling.
    """

    def __init__(self, total_bytes: int) -> None:
        self.cache = rocksdict.Cache(total_bytes // 2)
        self.write_buffers = rocksdict.WriteBufferManager(total_bytes // 2, False)
        TABLE_MEMORY.labels("block_cache").set_function(self.cache.get_usage)
        TABLE_MEMORY.labels("memtables").set_function(self.write_buffers.get_usage)

    def options(self, faust_options: RocksDBOptions) -> RocksDBOptions:
        """Faust's options for one table, opening its databases inside this budget."""
        return SharedMemoryOptions(self, faust_options)


class SharedMemoryOptions(RocksDBOptions):
    def __init__(self, memory: TableMemory, faust_options: RocksDBOptions) -> None:
        super().__init__(
            max_open_files=faust_options.max_open_files,
            write_buffer_size=2 * MIB,
            max_write_buffer_number=2,
            target_file_size_base=faust_options.target_file_size_base,
            bloom_filter_size=faust_options.bloom_filter_size,
            use_rocksdict=True,
            ttl=faust_options.ttl,
        )
        self._memory = memory

    def as_options(self) -> Any:
        options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self._memory.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self._memory.write_buffers)
        return options

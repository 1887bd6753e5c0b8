"""The ceilings measured in the same run, after the pipeline has stopped so nothing competes:

- signatures: `streams.validate.validate` (strict parse, id recomputation, BIP-340 check) over the
  corpus's event texts in one loop in this process: the worker's per-record CPU work with no
  Kafka, Avro or transactions. At most `SIGNATURE_SAMPLE` texts: the rate does not depend on N.
- COPY: the rows the archive ended with (one `events` row per event, one `sightings` row per
  (event, relay)), built outside the clock, COPYed in chunks of `sink.batch_size` straight into
  the tables of another freshly migrated database (same indexes, same generated column); only the
  COPY calls are timed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.e2e.corpus import Corpus
from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from connectors.sink.events import STAGING as EVENT_COLUMNS
from connectors.sink.events import event_row
from connectors.sink.sightings import STAGING as SIGHTING_COLUMNS
from streams.validate import Limits, validate

SIGNATURE_SAMPLE = 100_000
_SEEN = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Ceiling:
    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds


def signature_ceiling(corpus: Corpus, settings: Settings) -> Ceiling:
    texts = [text.encode() for text in corpus.texts[:SIGNATURE_SAMPLE]]
    limits = Limits.from_settings(settings.streams)
    now = int(time.time())
    started = time.perf_counter()
    for text in texts:
        validate(text, limits, now)
    return Ceiling(len(texts), time.perf_counter() - started)


def _relay(number: int) -> str:
    return f"ws://127.0.0.1:{10_000 + number}"


def _event_rows(corpus: Corpus) -> Iterator[tuple[Any, ...]]:
    for index, text in enumerate(corpus.texts):
        seen = _SEEN + timedelta(microseconds=index)
        first = {"first_seen_relay": _relay(0), "first_seen_at": seen}
        yield event_row({**json.loads(text), **first}).row


def _sighting_rows(corpus: Corpus) -> Iterator[tuple[Any, ...]]:
    for number, texts in enumerate(corpus.relay_texts):
        for index, text in enumerate(texts):
            seen = _SEEN + timedelta(microseconds=index)
            yield (bytes.fromhex(json.loads(text)["id"]), _relay(number), seen, seen)


async def copy_ceiling(corpus: Corpus, dsn: str, chunk: int) -> Ceiling:
    """Rows/s of bare COPYs of the archive's rows into an empty, identical database `dsn`."""
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    spent, rows_total = 0.0, 0
    try:
        for table, columns, rows in (
            ("events", EVENT_COLUMNS.columns, _event_rows(corpus)),
            ("sightings", SIGHTING_COLUMNS.columns, _sighting_rows(corpus)),
        ):
            names = [name for name, _ in columns]
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == chunk:
                    spent += await _copy(conn, table, names, batch)
                    rows_total += len(batch)
                    batch = []
            if batch:
                spent += await _copy(conn, table, names, batch)
                rows_total += len(batch)
    finally:
        await conn.close()
    return Ceiling(rows_total, spent)


async def _copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> float:
    started = time.perf_counter()
    await conn.copy_records_to_table(table, records=rows, columns=columns)
    return time.perf_counter() - started

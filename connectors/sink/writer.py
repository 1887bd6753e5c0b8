"""What a per-topic writer is, and the bulk load every writer uses: COPY into staging, one merge.

A writer turns one Kafka record into something it can store (`prepare`, pure, may refuse the
record) and stores a batch of those (`write`, inside the caller's transaction). Adding a topic
(say an aggregate changelog) is one more module implementing `TopicWriter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

Item = TypeVar("Item")


class Unwritable(Exception):  # noqa: N818  (a verdict on a record, like InvalidEvent)
    """A record that can never be stored; it becomes a dead letter with `reason` and `detail`."""

    def __init__(self, reason: str, detail: str, relay_url: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.relay_url = relay_url


class Prepared(Protocol):
    """Every prepared record says where it came from, for its dead letter if PostgreSQL refuses."""

    @property
    def relay_url(self) -> str | None: ...

    @property
    def seen_at(self) -> datetime: ...


class TopicWriter(Protocol[Item]):
    topic: str
    """The contract name of the topic, e.g. `events`."""

    def prepare(self, key: bytes | None, value: bytes | None) -> Item:
        """Decode and map one record; raise `Unwritable` for one that can never be stored."""

    async def setup(self, conn: Any) -> None:
        """Create this writer's staging tables on a new connection."""

    async def write(self, conn: Any, items: Sequence[Item]) -> None:
        """Store `items` (in the caller's transaction); the same item twice changes nothing."""


@dataclass(frozen=True)
class Staging:
    """A temporary table shaped like the rows of one target table, and the merge out of it.

    `merge` is one `INSERT INTO target SELECT ... FROM <name> ... ON CONFLICT ...`; the staging
    table is emptied after it, so a batch retried row by row never merges a row twice.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    merge: str

    @property
    def create(self) -> str:
        columns = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.name} ({columns})"

    async def load(self, conn: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        await conn.copy_records_to_table(
            self.name, records=rows, columns=[name for name, _ in self.columns]
        )
        await conn.execute(self.merge)
        await conn.execute(f"TRUNCATE {self.name}")

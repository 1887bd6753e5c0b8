"""NIP-01 filters as SQL over the `events` table: the one translation the HTTP API and the relay
share. Pure: a filter in, SQL text and its arguments out.

Each condition maps to an index of migration 0002: ids to the primary key, authors to
(pubkey, created_at), kinds to (kind, created_at), `#x` to the GIN index on `tagvalues`, and the
order to (created_at DESC). `tagvalues` leaves out tag values over 1024 bytes, so a `#x` filter on
such a value finds nothing here, where `matches` would accept the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bigbrotr.archive.keyset import Keyset
from bigbrotr.nostr import Filter

EVENT_COLUMNS = "id, pubkey, created_at, kind, tags::text AS tags, content, sig"
# NIP-01: newest first, and within one second the lowest id first.
ORDER = "ORDER BY created_at DESC, id ASC"


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    args: tuple[Any, ...]


def filter_values(flt: Filter) -> int:
    """How many values the filter lists (ids, authors, kinds, tag values): what a limit bounds."""
    lists = [flt.ids, flt.authors, flt.kinds, *flt.tags.values()]
    return sum(len(values) for values in lists if values is not None)


def events_query(flt: Filter, *, limit: int, after: Keyset | None = None) -> Query | None:
    """The events matching `flt`, in archive order, after `after`, at most `limit` of them.

    `None` when nothing can match (an empty list, `since` after `until`, a zero limit), so the
    caller skips the database; `flt.limit` is the caller's to apply to `limit`.
    """
    if limit <= 0 or any(
        values is not None and not values
        for values in (flt.ids, flt.authors, flt.kinds, *flt.tags.values())
    ):
        return None
    if flt.since is not None and flt.until is not None and flt.since > flt.until:
        return None
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.ids is not None:
        where.append(f"id = ANY({arg([bytes.fromhex(v) for v in sorted(flt.ids)])}::bytea[])")
    if flt.authors is not None:
        keys = [bytes.fromhex(v) for v in sorted(flt.authors)]
        where.append(f"pubkey = ANY({arg(keys)}::bytea[])")
    if flt.kinds is not None:
        where.append(f"kind = ANY({arg(sorted(flt.kinds))}::integer[])")
    for letter in sorted(flt.tags):
        values = [f"{letter}:{value}" for value in sorted(flt.tags[letter])]
        where.append(f"tagvalues && {arg(values)}::text[]")
    if flt.since is not None:
        where.append(f"created_at >= {arg(flt.since)}")
    if flt.until is not None:
        where.append(f"created_at <= {arg(flt.until)}")
    if after is not None:
        second, event_id = arg(after.created_at), arg(bytes.fromhex(after.id))
        # The first conjunct alone is what the created_at index can range-scan.
        where.append(
            f"created_at <= {second} AND (created_at < {second} OR id > {event_id}::bytea)"
        )
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"SELECT {EVENT_COLUMNS} FROM events{condition} {ORDER} LIMIT {arg(limit)}"
    return Query(sql, tuple(args))

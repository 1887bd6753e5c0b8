"""The archive in PostgreSQL as read by the query API and the relay: NIP-01 filters as SQL, keyset
pages, and a read-only connection pool. Database access is shared code, hence `bigbrotr/`."""

from bigbrotr.archive.keyset import InvalidCursor, Keyset
from bigbrotr.archive.query import Query, events_query, filter_values
from bigbrotr.archive.reader import Archive

__all__ = ["Archive", "InvalidCursor", "Keyset", "Query", "events_query", "filter_values"]

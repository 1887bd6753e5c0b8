"""`bigbrotr api`: the read-only HTTP query API and NIP-01 relay over the archive.

It lives in the shared package because it is neither a connector (it moves nothing between
relays, Kafka and PostgreSQL) nor a stream processor, and DESIGN fixes the top-level layout; it
depends only on `bigbrotr.archive`, `bigbrotr.nostr` and the settings.
"""

from bigbrotr.api.app import create_app
from bigbrotr.api.serve import serve

__all__ = ["create_app", "serve"]

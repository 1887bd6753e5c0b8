"""Negentropy (NIP-77) set reconciliation, protocol version 1: pure logic, no I/O.

`Negentropy(ItemSet(items)).initiate()` starts; each relay answer goes to `reconcile`, which gives
the next message and the ids each side lacks.
"""

from connectors.negentropy.encoding import (
    FINGERPRINT_SIZE,
    ID_SIZE,
    MAX_TIMESTAMP,
    Bound,
    ProtocolError,
    encode_varint,
)
from connectors.negentropy.items import Item, ItemSet
from connectors.negentropy.reconcile import (
    MIN_FRAME_SIZE_LIMIT,
    PROTOCOL_VERSION,
    Mode,
    Negentropy,
    Reconciled,
    UnsupportedVersionError,
)

__all__ = [
    "FINGERPRINT_SIZE",
    "ID_SIZE",
    "MAX_TIMESTAMP",
    "MIN_FRAME_SIZE_LIMIT",
    "PROTOCOL_VERSION",
    "Bound",
    "Item",
    "ItemSet",
    "Mode",
    "Negentropy",
    "ProtocolError",
    "Reconciled",
    "UnsupportedVersionError",
    "encode_varint",
]

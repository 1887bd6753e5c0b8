"""Message framing: which schema a message was written with, ahead of the Avro body.

Two formats are understood, told apart by their first byte. Avro single-object encoding (the
default) needs only the `.avsc` files to decode; the Confluent wire format needs the registry
that assigned the schema id.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bigbrotr.errors import CodecError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER_SIZE = 10
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_SIZE = 5

_SCHEMA_ID = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class SingleObjectHeader:
    """Avro single-object encoding: the CRC-64-AVRO fingerprint, little-endian, as written."""

    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class ConfluentHeader:
    """Confluent wire format: the id a schema registry gave the writer schema."""

    schema_id: int


Header = SingleObjectHeader | ConfluentHeader


def single_object_header(fingerprint: bytes) -> bytes:
    """Header for a message written with the schema of this 8-byte fingerprint."""
    return SINGLE_OBJECT_MAGIC + fingerprint


def confluent_header(schema_id: int) -> bytes:
    """Header for a message written with the registry schema of this id."""
    return CONFLUENT_MAGIC + _SCHEMA_ID.pack(schema_id)


def read_header(data: bytes) -> tuple[Header, int]:
    """The header of a message and the offset where its Avro body starts."""
    if data[:2] == SINGLE_OBJECT_MAGIC:
        if len(data) < SINGLE_OBJECT_HEADER_SIZE:
            raise CodecError(
                f"message of {len(data)} bytes is cut inside its single-object header; "
                "it was truncated on the way"
            )
        header: Header = SingleObjectHeader(data[2:SINGLE_OBJECT_HEADER_SIZE])
        return header, SINGLE_OBJECT_HEADER_SIZE
    if data[:1] == CONFLUENT_MAGIC:
        if len(data) < CONFLUENT_HEADER_SIZE:
            raise CodecError(
                f"message of {len(data)} bytes is cut inside its Confluent header; "
                "it was truncated on the way"
            )
        (schema_id,) = _SCHEMA_ID.unpack_from(data, 1)
        return ConfluentHeader(schema_id), CONFLUENT_HEADER_SIZE
    if not data:
        raise CodecError("message is empty; expected an Avro single-object or Confluent message")
    raise CodecError(
        f"message starts with {data[:2].hex()}, not an Avro single-object (c301) or Confluent "
        "(00) header; the topic holds data written by something other than a BigBrotr codec"
    )

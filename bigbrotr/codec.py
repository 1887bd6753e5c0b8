"""The one Avro codec every producer and consumer uses, so every topic speaks its `.avsc` contract.

Values are plain dicts. Timestamps (`timestamp-millis`) are written from `datetime` or integer
milliseconds and read back as timezone-aware UTC `datetime`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.types import Schema
from fastavro.validation import ValidationError, validate

from bigbrotr.avro.registry import (
    HttpRegistry,
    SchemaRegistry,
    SubjectStrategy,
    record_name_strategy,
)
from bigbrotr.avro.schemas import (
    RecordSchema,
    default_schemas_dir,
    load_schemas,
    parse_record_schema,
)
from bigbrotr.avro.wire import (
    SingleObjectHeader,
    confluent_header,
    read_header,
    single_object_header,
)
from bigbrotr.errors import CodecError, SchemaError

_MAX_SHOWN = 120


@dataclass(frozen=True, slots=True)
class _Reader:
    """How to read a body: the writer's schema, and the current one when they differ."""

    writer: RecordSchema
    resolve_to: Schema | None


class Codec:
    """Encodes and decodes topic values, framed so any reader can tell which schema wrote them.

    Without a registry, messages use Avro single-object encoding, decodable from the `.avsc`
    files alone. With one (a URL or a `SchemaRegistry`), they use the Confluent wire format and
    schemas are registered on first use under the subject `subject_for` names. Either way both
    formats are decoded, so a topic can switch without being rewritten.
    """

    def __init__(
        self,
        schemas_dir: Path | None = None,
        registry: str | SchemaRegistry | None = None,
        *,
        subject_for: SubjectStrategy = record_name_strategy,
    ) -> None:
        self.schemas = load_schemas(default_schemas_dir() if schemas_dir is None else schemas_dir)
        self._registry = HttpRegistry(registry) if isinstance(registry, str) else registry
        self._subject_for = subject_for
        self._current = {schema.full_name: schema for schema in self.schemas.current.values()}
        self._single_object_headers = {
            name: single_object_header(schema.fingerprint)
            for name, schema in self.schemas.current.items()
        }
        self._by_fingerprint = {
            fingerprint: self._reader(writer)
            for fingerprint, writer in self.schemas.by_fingerprint.items()
        }
        self._confluent_headers: dict[str, bytes] = {}
        self._by_id: dict[int, _Reader] = {}

    @property
    def records(self) -> tuple[str, ...]:
        """Names of the records this codec can encode, e.g. `RawEvent`."""
        return tuple(self.schemas.current)

    def encode(
        self, record_name: str, value: Mapping[str, Any], *, validated: bool = True
    ) -> bytes:
        """Frame and encode `value` as the current schema of `record_name`.

        `validated=False` skips the schema check, a third of the cost: only for values whose
        field types the calling code fixes itself (the synchronizer's `RawEvent`s, one per event
        pulled), since fastavro does not check what it writes.
        """
        schema = self._schema(record_name)
        if validated and not validate(value, schema.parsed, raise_errors=False):
            # Only now ask for reasons: fastavro builds an exception for every union branch it
            # tries, too slow for every message.
            try:
                validate(value, schema.parsed, raise_errors=True)
            except ValidationError as exc:
                problems = _describe(exc.errors, schema.full_name.rpartition(".")[0])
                raise CodecError(f"cannot encode {record_name}: {problems}") from exc
        buffer = BytesIO()
        buffer.write(self._header(schema))
        try:
            schemaless_writer(
                buffer,
                schema.parsed,
                value,
                strict_allow_default=True,
                disable_tuple_notation=True,
            )
        except Exception as exc:
            raise CodecError(f"cannot encode {record_name}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, record_name: str, data: bytes) -> dict[str, Any]:
        """Decode a message that must hold a `record_name`, resolving older known versions."""
        schema = self._schema(record_name)
        header, offset = read_header(data)
        if isinstance(header, SingleObjectHeader):
            reader = self._by_fingerprint.get(header.fingerprint)
            if reader is None:
                raise CodecError(
                    f"message was written with an unknown schema (fingerprint "
                    f"{header.fingerprint.hex()}), expected {record_name}; it is none of the "
                    f"schemas in {self.schemas.directory} or its history/"
                )
        else:
            reader = self._reader_for_id(header.schema_id)
        if reader.writer.full_name != schema.full_name:
            raise CodecError(
                f"message holds a {reader.writer.name}, expected {record_name}; "
                "check which topic it was read from"
            )
        body = BytesIO(data)
        body.seek(offset)
        try:
            value = schemaless_reader(body, reader.writer.parsed, reader.resolve_to)
        except Exception as exc:
            raise CodecError(
                f"cannot decode {record_name}: the body is corrupt or truncated "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if body.tell() != len(data):
            raise CodecError(
                f"cannot decode {record_name}: {len(data) - body.tell()} bytes left after the "
                "record; the message is corrupt"
            )
        return cast("dict[str, Any]", value)

    def _schema(self, record_name: str) -> RecordSchema:
        schema = self.schemas.current.get(record_name)
        if schema is None:
            raise CodecError(
                f"unknown record {record_name!r}; known: {', '.join(sorted(self.schemas.current))}"
            )
        return schema

    def _header(self, schema: RecordSchema) -> bytes:
        if self._registry is None:
            return self._single_object_headers[schema.name]
        header = self._confluent_headers.get(schema.name)
        if header is None:
            schema_id = self._registry.register(self._subject_for(schema), schema.text)
            self._by_id[schema_id] = self._reader(schema)
            header = self._confluent_headers[schema.name] = confluent_header(schema_id)
        return header

    def _reader_for_id(self, schema_id: int) -> _Reader:
        reader = self._by_id.get(schema_id)
        if reader is not None:
            return reader
        if self._registry is None:
            raise CodecError(
                f"message is in the Confluent wire format (schema id {schema_id}) but no schema "
                "registry is configured; set kafka.schema_registry_url"
            )
        try:
            writer = parse_record_schema(
                self._registry.schema(schema_id), f"registry schema id {schema_id}"
            )
        except SchemaError as exc:
            raise CodecError(f"message names an unusable writer schema: {exc}") from exc
        reader = self._by_id[schema_id] = self._reader(writer)
        return reader

    def _reader(self, writer: RecordSchema) -> _Reader:
        current = self._current.get(writer.full_name, writer)
        same = writer.canonical == current.canonical
        return _Reader(writer=writer, resolve_to=None if same else current.parsed)


def _describe(errors: Sequence[Any], namespace: str) -> str:
    """fastavro's validation errors as `Record.field got <value>, expected <type>`, per field."""
    expected: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    for error in errors:
        field = str(error.field).removeprefix(f"{namespace}.") or "value"
        expected.setdefault(field, []).append(_type_name(error.schema))
        shown = repr(error.datum)
        if len(shown) > _MAX_SHOWN:
            shown = shown[:_MAX_SHOWN] + "..."
        got[field] = "nothing" if error.datum is None else f"{type(error.datum).__name__} {shown}"
    return "; ".join(
        f"{field} got {got[field]}, expected {' or '.join(types)}"
        for field, types in expected.items()
    )


def _type_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return str(schema)
    if schema.get("type") == "enum":
        return f"one of {', '.join(schema['symbols'])}"
    return str(schema.get("logicalType") or schema.get("type"))

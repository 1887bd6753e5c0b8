"""Load the `.avsc` topic contracts once, with what the wire needs precomputed.

Each file must stand alone (no references to types defined in other files) so another system can
decode a topic from that one file. Older versions of a record, kept in `history/`, let messages
written before a schema change still be read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.types import Schema

from bigbrotr.errors import SchemaError

HISTORY_DIR = "history"


def default_schemas_dir() -> Path:
    """The repository's top-level `schemas/` directory."""
    return Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True, slots=True)
class RecordSchema:
    """One Avro record schema, parsed, with its canonical form and fingerprint."""

    name: str
    full_name: str
    text: str
    parsed: Schema
    canonical: str
    fingerprint: bytes
    origin: str


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """The current schema of each record, and every known version by fingerprint."""

    directory: Path
    current: Mapping[str, RecordSchema]
    by_fingerprint: Mapping[bytes, RecordSchema]


def parse_record_schema(text: str, origin: str) -> RecordSchema:
    """Parse one self-contained record schema; `origin` names it in error messages."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{origin} is not valid JSON: {exc}; fix the schema text") from exc
    if not isinstance(document, dict) or document.get("type") != "record":
        raise SchemaError(f'{origin} must hold one Avro schema of "type": "record"')
    try:
        parsed = parse_schema(document, {})
        canonical = to_parsing_canonical_form(document)
    except Exception as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise SchemaError(
            f"{origin} is not a valid self-contained Avro schema: {detail}; every named type it "
            "uses must be defined inside it"
        ) from exc
    full_name = _full_name(document)
    return RecordSchema(
        name=full_name.rpartition(".")[2],
        full_name=full_name,
        text=json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        origin=origin,
    )


def load_schemas(directory: Path) -> SchemaSet:
    """Read `<Name>.avsc` files as current schemas and `history/*.avsc` as older versions."""
    if not directory.is_dir():
        raise SchemaError(
            f"schema directory {directory} does not exist; pass the path of the repository's "
            "schemas/ directory"
        )
    files = sorted(directory.glob("*.avsc"))
    if not files:
        raise SchemaError(
            f"no .avsc files in {directory}; pass the repository's schemas/ directory"
        )
    current: dict[str, RecordSchema] = {}
    for path in files:
        schema = parse_record_schema(_read(path), str(path))
        if schema.name != path.stem:
            raise SchemaError(
                f"{path} defines record {schema.name!r}; rename the file to {schema.name}.avsc"
            )
        current[schema.name] = schema
    by_fingerprint = {schema.fingerprint: schema for schema in current.values()}
    full_names = {schema.full_name for schema in current.values()}
    for path in sorted((directory / HISTORY_DIR).glob("*.avsc")):
        schema = parse_record_schema(_read(path), str(path))
        if schema.full_name not in full_names:
            raise SchemaError(
                f"{path} is an old version of {schema.full_name}, which has no current schema "
                f"in {directory}; delete the file or restore the record"
            )
        by_fingerprint.setdefault(schema.fingerprint, schema)
    return SchemaSet(directory=directory, current=current, by_fingerprint=by_fingerprint)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc}") from exc


def _full_name(document: dict[str, Any]) -> str:
    name = str(document["name"])
    namespace = document.get("namespace")
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"

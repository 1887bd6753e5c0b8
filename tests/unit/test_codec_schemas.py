"""The `.avsc` contracts: documented, self-contained, evolvable; bad schema files are reported."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bigbrotr.avro.schemas import default_schemas_dir, load_schemas
from bigbrotr.codec import Codec
from bigbrotr.errors import CodecError, SchemaError

SCHEMAS = default_schemas_dir()
FILES = sorted(SCHEMAS.glob("*.avsc"))
CONTRACT = {
    "RelayDiscovered",
    "RawEvent",
    "Event",
    "Sighting",
    "Reject",
    "RelayProbe",
    "SyncCursor",
    "RelayCandidate",
}
SEEN = datetime(2024, 3, 26, 16, 5, 25, 123000, tzinfo=UTC)


def _named_types(schema: Any) -> Iterator[dict[str, Any]]:
    """Every record and enum defined anywhere inside `schema`."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum"):
            yield schema
        for field in schema.get("fields", []):
            yield from _named_types(field["type"])
        yield from _named_types(schema.get("items"))
        yield from _named_types(schema.get("values"))


def _fields(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for named in _named_types(schema):
        for field in named.get("fields", []):
            yield f"{named['name']}.{field['name']}", field


def _load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def test_the_contract_has_one_file_per_record() -> None:
    assert {path.stem for path in FILES} == CONTRACT


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_records_live_in_the_bigbrotr_namespace(path: Path) -> None:
    document = _load(path)
    assert (document["namespace"], document["name"]) == ("org.bigbrotr", path.stem)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_every_type_and_field_has_a_doc(path: Path) -> None:
    document = _load(path)
    undocumented = [t["name"] for t in _named_types(document) if not t.get("doc", "").strip()]
    undocumented += [name for name, field in _fields(document) if not field.get("doc", "").strip()]
    assert undocumented == []


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_nullable_fields_default_to_null(path: Path) -> None:
    wrong = [
        name
        for name, field in _fields(_load(path))
        if isinstance(field["type"], list)
        and "null" in field["type"]
        and (field["type"][0] != "null" or field.get("default", "missing") is not None)
    ]
    assert wrong == []


def test_enums_that_may_grow_have_a_default() -> None:
    defaults = {
        t["name"]: t.get("default")
        for path in FILES
        for t in _named_types(_load(path))
        if t["type"] == "enum"
    }
    assert defaults == {
        "Network": None,
        "RejectReason": "other",
        "SyncMethod": "bisection",
        "CandidateStatus": "pending",
    }


def test_shared_types_are_defined_identically_in_each_file() -> None:
    seen: dict[str, dict[str, Any]] = {}
    for path in FILES:
        for named in _named_types(_load(path)):
            assert seen.setdefault(named["name"], named) == named, named["name"]
    assert "Network" in seen


def test_each_file_loads_alone(tmp_path: Path) -> None:
    for path in FILES:
        alone = tmp_path / path.stem
        alone.mkdir()
        shutil.copy(path, alone)
        assert list(load_schemas(alone).current) == [path.stem]


def test_default_directory_is_the_repository_schemas() -> None:
    assert Path(__file__).resolve().parents[2] / "schemas" == SCHEMAS


def _schemas_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _record(name: str, fields: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": "org.bigbrotr", "fields": fields}
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no .avsc files in"),
        ({"A.avsc": "{"}, r"A\.avsc is not valid JSON"),
        ({"A.avsc": '"string"'}, r'must hold one Avro schema of "type": "record"'),
        ({"A.avsc": _record("B", [])}, r"defines record 'B'; rename the file to B\.avsc"),
        (
            {"A.avsc": _record("A", [{"name": "n", "type": "Network"}])},
            "not a valid self-contained Avro schema.*every named type it uses",
        ),
        (
            {"A.avsc": _record("A", [{"name": "n", "type": "long", "default": "x"}])},
            "not a valid self-contained Avro schema: Default value <x> must match",
        ),
        (
            {"A.avsc": _record("A", [{"name": "n", "type": {"type": "array"}}])},
            "not a valid self-contained Avro schema: missing key 'items'",
        ),
        (
            {"A.avsc": _record("A", []), "history/B.avsc": _record("B", [])},
            r"old version of org\.bigbrotr\.B, which has no current schema",
        ),
    ],
)
def test_bad_schema_files_are_reported(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        load_schemas(_schemas_dir(tmp_path, files))


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="does not exist"):
        Codec(tmp_path / "nowhere")


RAW_V0 = _record(
    "RawEvent",
    [
        {"name": "seen_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "raw", "type": "bytes"},
        {"name": "source", "type": "string"},
    ],
)


def test_an_older_version_in_history_is_resolved(tmp_path: Path) -> None:
    old = Codec(_schemas_dir(tmp_path / "old", {"RawEvent.avsc": RAW_V0}))
    message = old.encode("RawEvent", {"seen_at": SEEN, "raw": b"{}", "source": "sync"})
    current = tmp_path / "current"
    shutil.copytree(SCHEMAS, current)
    _schemas_dir(current, {"history/RawEvent.0.avsc": RAW_V0})

    assert Codec(current).decode("RawEvent", message) == {
        "relay_url": None,
        "seen_at": SEEN,
        "raw": b"{}",
        "source": "sync",
    }
    with pytest.raises(CodecError, match="unknown schema"):
        Codec().decode("RawEvent", message)

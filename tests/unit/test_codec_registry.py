"""Confluent wire format: schema ids from a registry, subjects, and the registry's REST contract."""

from __future__ import annotations

import json
import shutil
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bigbrotr.avro.registry import (
    HttpRegistry,
    MemoryRegistry,
    record_name_strategy,
    topic_name_strategy,
)
from bigbrotr.avro.schemas import default_schemas_dir
from bigbrotr.codec import Codec
from bigbrotr.errors import CodecError, RegistryUnavailableError

SEEN = datetime(2024, 3, 26, 16, 5, 25, 123000, tzinfo=UTC)
SIGHTING = {"event_id": "ab" * 32, "relay_url": "wss://nos.lol", "seen_at": SEEN, "source": "live"}
DISCOVERED = {
    "url": "wss://nos.lol",
    "network": "clearnet",
    "source": "seed",
    "discovered_at": SEEN,
}


def test_round_trip_in_the_confluent_wire_format() -> None:
    registry = MemoryRegistry()
    producer = Codec(registry=registry)
    message = producer.encode("Sighting", SIGHTING)

    assert message[0] == 0
    (schema_id,) = struct.unpack(">I", message[1:5])
    assert registry.subjects == {"org.bigbrotr.Sighting": [schema_id]}
    assert json.loads(registry.schema(schema_id)) == json.loads(
        (default_schemas_dir() / "Sighting.avsc").read_text()
    )
    assert producer.decode("Sighting", message) == SIGHTING
    assert Codec(registry=registry).decode("Sighting", message) == SIGHTING


def test_each_record_gets_its_own_id_once() -> None:
    registry = MemoryRegistry()
    codec = Codec(registry=registry)
    first = codec.encode("Sighting", SIGHTING)
    codec.encode("Sighting", SIGHTING)
    other = codec.encode("RelayDiscovered", DISCOVERED)

    assert first[1:5] != other[1:5]
    assert sorted(registry.subjects) == ["org.bigbrotr.RelayDiscovered", "org.bigbrotr.Sighting"]


def test_topic_name_strategy_registers_under_topic_value() -> None:
    registry = MemoryRegistry()
    subjects = topic_name_strategy({"Sighting": "bigbrotr.sightings"})
    codec = Codec(registry=registry, subject_for=subjects)
    codec.encode("Sighting", SIGHTING)

    assert list(registry.subjects) == ["bigbrotr.sightings-value"]
    with pytest.raises(CodecError, match="no topic is mapped to record RelayDiscovered"):
        codec.encode("RelayDiscovered", DISCOVERED)


def test_record_name_strategy_uses_the_full_name() -> None:
    schema = Codec().schemas.current["RawEvent"]
    assert record_name_strategy(schema) == "org.bigbrotr.RawEvent"


def test_single_object_messages_still_decode_with_a_registry() -> None:
    message = Codec().encode("Sighting", SIGHTING)
    assert Codec(registry=MemoryRegistry()).decode("Sighting", message) == SIGHTING


def test_unknown_schema_id_is_refused() -> None:
    with pytest.raises(CodecError, match="schema id 42 is not registered"):
        Codec(registry=MemoryRegistry()).decode("Sighting", b"\x00\x00\x00\x00\x2a\x00")


def test_schema_id_of_a_non_record_schema_is_refused() -> None:
    registry = MemoryRegistry()
    schema_id = registry.register("strings", '"string"')
    message = b"\x00" + struct.pack(">I", schema_id) + b"\x02a"
    with pytest.raises(CodecError, match="unusable writer schema: registry schema id 1 must hold"):
        Codec(registry=registry).decode("Sighting", message)


def test_schema_id_of_another_record_is_refused() -> None:
    registry = MemoryRegistry()
    message = Codec(registry=registry).encode("RelayDiscovered", DISCOVERED)
    with pytest.raises(CodecError, match="holds a RelayDiscovered, expected Sighting"):
        Codec(registry=registry).decode("Sighting", message)


def test_a_newer_writer_resolves_through_enum_defaults(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    shutil.copytree(default_schemas_dir(), newer)
    reject: dict[str, Any] = json.loads((newer / "Reject.avsc").read_text())
    reject["fields"][0]["type"]["symbols"].append("spam")
    (newer / "Reject.avsc").write_text(json.dumps(reject))
    registry = MemoryRegistry()
    value = {
        "reason": "spam",
        "detail": "flood",
        "stage": "validator",
        "relay_url": None,
        "seen_at": SEEN,
        "source": "live",
        "original": b"{}",
    }
    message = Codec(newer, registry=registry).encode("Reject", value)

    assert Codec(registry=registry).decode("Reject", message) == {**value, "reason": "other"}


class _Registry:
    """The REST endpoints of a Confluent schema registry, as documented, for HttpRegistry."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if (
            request.method == "POST"
            and request.url.path == "/subjects/bigbrotr.events-value/versions"
        ):
            return httpx.Response(200, json={"id": 7})
        if request.method == "POST":
            return httpx.Response(
                409,
                json={"error_code": 409, "message": "Schema being registered is incompatible"},
            )
        if request.url.path == "/schemas/ids/7":
            return httpx.Response(200, json={"schema": '"string"'})
        if request.url.path == "/schemas/ids/8":
            return httpx.Response(200, json={"subject": "x"})
        return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})


def test_http_registry_registers_and_fetches() -> None:
    server = _Registry()
    registry = HttpRegistry("http://registry:8081/", transport=httpx.MockTransport(server))

    assert registry.register("bigbrotr.events-value", '{"type":"string"}') == 7
    assert registry.schema(7) == '"string"'
    post = server.requests[0]
    assert str(post.url) == "http://registry:8081/subjects/bigbrotr.events-value/versions"
    assert post.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
    assert json.loads(post.content) == {"schema": '{"type":"string"}'}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda r: r.register("other-value", "{}"),
            "refused to register a schema under subject 'other-value': HTTP 409 Schema being "
            "registered is incompatible",
        ),
        (lambda r: r.schema(9), "refused to fetch schema id 9: HTTP 404 Schema not found"),
        (lambda r: r.schema(8), "answered without a schema"),
    ],
)
def test_http_registry_errors_are_codec_errors(call: Any, message: str) -> None:
    registry = HttpRegistry("http://registry:8081", transport=httpx.MockTransport(_Registry()))
    with pytest.raises(CodecError, match=message):
        call(registry)


def test_unreachable_registry_says_what_to_check() -> None:
    registry = HttpRegistry("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(
        RegistryUnavailableError, match=r"cannot reach the schema registry at http://127\.0\.0\.1:9"
    ):
        registry.schema(1)


def test_a_registry_url_makes_the_codec_use_that_registry() -> None:
    codec = Codec(registry="http://127.0.0.1:9")
    with pytest.raises(
        RegistryUnavailableError,
        match=r"to register a schema under subject 'org\.bigbrotr\.Sighting'",
    ):
        codec.encode("Sighting", SIGHTING)

"""Schema registries for the Confluent wire format, behind one small protocol.

`HttpRegistry` speaks the Confluent Schema Registry REST API (also served by Karapace, Redpanda and
Apicurio); `MemoryRegistry` keeps ids in a dict for pure unit tests and single-process tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from bigbrotr.avro.schemas import RecordSchema
from bigbrotr.errors import CodecError, RegistryUnavailableError

SubjectStrategy = Callable[[RecordSchema], str]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistry(Protocol):
    """Gives schemas ids and gives ids back their schemas."""

    def register(self, subject: str, schema: str) -> int:
        """Register `schema` (Avro JSON text) under `subject`; return its id."""
        ...

    def schema(self, schema_id: int) -> str:
        """The Avro JSON text registered under `schema_id`."""
        ...


def record_name_strategy(schema: RecordSchema) -> str:
    """Subject named after the record (`org.bigbrotr.RawEvent`): one subject whatever the topic."""
    return schema.full_name


def topic_name_strategy(topics: Mapping[str, str]) -> SubjectStrategy:
    """Subject `<topic>-value`, Confluent's default, given the full topic name of each record."""

    def subject(schema: RecordSchema) -> str:
        topic = topics.get(schema.name)
        if topic is None:
            raise CodecError(
                f"no topic is mapped to record {schema.name}; add it to the topics given to "
                "topic_name_strategy"
            )
        return f"{topic}-value"

    return subject


class MemoryRegistry:
    """An in-process registry: the same schema text always gets the same id, as in Confluent's."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}

    def register(self, subject: str, schema: str) -> int:
        schema_id = self._ids.setdefault(schema, len(self._ids) + 1)
        self._schemas[schema_id] = schema
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def schema(self, schema_id: int) -> str:
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise CodecError(f"schema id {schema_id} is not registered") from None


class HttpRegistry:
    """A schema registry reached over its REST API; each call is rare, so none is kept open."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._transport = transport

    def register(self, subject: str, schema: str) -> int:
        body = self._call(
            "POST",
            f"/subjects/{quote(subject, safe='')}/versions",
            f"register a schema under subject {subject!r}",
            {"schema": schema},
        )
        return _schema_id(body, self.url)

    def schema(self, schema_id: int) -> str:
        body = self._call("GET", f"/schemas/ids/{schema_id}", f"fetch schema id {schema_id}")
        text = body.get("schema")
        if not isinstance(text, str):
            raise CodecError(f"schema registry at {self.url} answered without a schema: {body}")
        return text

    def _call(
        self, method: str, path: str, what: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE}
        content = None if payload is None else json.dumps(payload)
        try:
            with httpx.Client(
                base_url=self.url, timeout=self._timeout_s, transport=self._transport
            ) as client:
                response = client.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryUnavailableError(
                f"cannot reach the schema registry at {self.url} to {what}: {exc}; check that it "
                "is running and that kafka.schema_registry_url points to it"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.is_error or not isinstance(body, dict):
            message = body.get("message", body) if isinstance(body, dict) else body
            raise CodecError(
                f"schema registry at {self.url} refused to {what}: HTTP {response.status_code} "
                f"{message}"
            )
        return body


def _schema_id(body: dict[str, Any], url: str) -> int:
    schema_id = body.get("id")
    if not isinstance(schema_id, int) or isinstance(schema_id, bool):
        raise CodecError(f"schema registry at {url} answered without a schema id: {body}")
    return schema_id

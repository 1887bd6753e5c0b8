"""An OTLP/HTTP trace collector for tests: takes what a process's real OTLP exporter sends.

Processes the test cannot hold in its own interpreter (the Faust worker) export their spans here
through `tracing.otlp_endpoint`; the protobuf requests are decoded with the OTLP message types.
A `LoopbackServer`, like `tests.support.http_server`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.loopback_server import LoopbackServer


@dataclass(frozen=True)
class CollectedSpan:
    """One exported span; ids as the integers the SDK uses."""

    service: str
    name: str
    trace_id: int
    span_id: int
    parent_span_id: int | None
    attributes: dict[str, Any]
    links: tuple[tuple[int, int], ...]


class OtlpCollector(LoopbackServer):
    """`async with OtlpCollector() as collector:`; give `collector.endpoint` to the process."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[CollectedSpan] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # the exporter keeps its connection alive between requests
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if request_line.startswith("POST /v1/traces "):
                self._collect(body)
                status = "200 OK"
            else:
                status = "404 Not Found"
            answer = ExportTraceServiceResponse().SerializeToString()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\n"
                f"Content-Length: {len(answer)}\r\n\r\n".encode()
                + answer
            )
            await writer.drain()

    def _collect(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    parent = int.from_bytes(span.parent_span_id) if span.parent_span_id else None
                    self.spans.append(
                        CollectedSpan(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            trace_id=int.from_bytes(span.trace_id),
                            span_id=int.from_bytes(span.span_id),
                            parent_span_id=parent,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=tuple(
                                (int.from_bytes(link.trace_id), int.from_bytes(link.span_id))
                                for link in span.links
                            ),
                        )
                    )


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)

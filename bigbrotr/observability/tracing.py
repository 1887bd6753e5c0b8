"""OpenTelemetry traces from a relay fetch through validation to the database row.

The synchronizer's `fetch` span (one per REQ page, NIP-77 window or live session, not one per
event) puts its W3C `traceparent` in the headers of every `events.raw` record it produced. The
worker's `validate` span per record continues that context and passes its own on in the headers
of the `events`, `sightings` and `rejects` records it emits. The sink's `write` span per batch
links to the contexts its records carry and ends when their rows commit.

Every component traces through this module. Tracing is off unless `configure` found
`tracing.otlp_endpoint` (or a test `install`ed a provider): then each function returns at its
first test, so no span is built and no record carries a header.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    Span,
    SpanContext,
    SpanKind,
    Tracer,
    get_current_span,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from bigbrotr.config import Settings
from bigbrotr.producer import Headers

__all__ = [
    "EVENT_ID",
    "RELAY_URL",
    "batch_span",
    "configure",
    "context_from_headers",
    "enabled",
    "fetch_span",
    "headers_for_current_span",
    "install",
    "new_provider",
    "record_span",
]

log = logging.getLogger("bigbrotr.tracing")

EVENT_ID = "nostr.event.id"
RELAY_URL = "nostr.relay.url"
FETCH_METHOD = "bigbrotr.fetch.method"
SINCE = "nostr.filter.since"
UNTIL = "nostr.filter.until"
END_REASON = "bigbrotr.fetch.end_reason"
MAX_LINKS = 100_000
"""Links one span may keep: a sink batch links every record it writes (`sink.batch_size`)."""

HeadersIn = Mapping[str, Any] | Sequence[tuple[str, Any]] | None
"""Record headers as the Kafka clients give them: Faust a dict, confluent-kafka pairs, or None."""

_PROPAGATOR = TraceContextTextMapPropagator()
_FIELDS = frozenset(_PROPAGATOR.fields)
_NO_SPAN: AbstractContextManager[Span] = nullcontext(INVALID_SPAN)
_tracer: Tracer | None = None


class _LinkedOrRatio(Sampler):
    """A span without a parent is kept when a span it links to was kept (the sink's `write`
    follows the records it stores), else by ratio."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if any(link.context.trace_flags.sampled for link in links or ()):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"LinkedOrRatio({self._ratio.rate})"


def new_provider(process: str, sample_ratio: float = 1.0) -> TracerProvider:
    """A provider naming the service `bigbrotr-<process>`; spans follow their parent's sampling
    decision, so a trace sampled at the fetch is kept whole."""
    return TracerProvider(
        resource=Resource.create({SERVICE_NAME: f"bigbrotr-{process}"}),
        sampler=ParentBased(_LinkedOrRatio(sample_ratio)),
        span_limits=SpanLimits(max_links=MAX_LINKS),
    )


def configure(settings: Settings, process: str) -> None:
    """Export this process's spans to `tracing.otlp_endpoint`; nothing when it is unset.

    Spans are sent in batches from a background thread, and the rest at exit.
    """
    tracing = settings.tracing
    if tracing.otlp_endpoint is None:
        return
    endpoint = f"{tracing.otlp_endpoint}/v1/traces"
    provider = new_provider(process, tracing.sample_ratio)
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=tracing.export_timeout_s)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    log.info("tracing: %s exports spans to %s", process, endpoint)


def install(provider: TracerProvider | None) -> None:
    """Trace with `provider` from now on; None turns tracing off."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("bigbrotr")


def enabled() -> bool:
    return _tracer is not None


def fetch_span(
    relay_url: str, method: str, since: int | None = None, until: int | None = None
) -> AbstractContextManager[Span]:
    """The synchronizer's span over one page, NIP-77 window or live session of a relay; the
    records published inside it carry its context. A no-op span when not tracing."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    attributes: dict[str, str | int] = {RELAY_URL: relay_url, FETCH_METHOD: method}
    if since is not None:
        attributes[SINCE] = since
    if until is not None:
        attributes[UNTIL] = until
    return tracer.start_as_current_span("fetch", kind=SpanKind.PRODUCER, attributes=attributes)


def headers_for_current_span() -> Headers | None:
    """The current span's context as Kafka record headers (`traceparent`); None when not
    tracing, so a record costs nothing more."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    headers: Headers = [(name, value.encode()) for name, value in carrier.items()]
    return headers or None


def context_from_headers(headers: HeadersIn) -> Context | None:
    """The trace context a record's headers carry; None when they carry none.

    Headers come from anyone who can write to a topic: a malformed `traceparent` is ignored.
    """
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {
        name: value.decode("ascii", "replace")
        for name, value in pairs
        if name in _FIELDS and isinstance(value, bytes)
    }
    if not carrier:
        return None
    context = _PROPAGATOR.extract(carrier)
    return context if get_current_span(context).get_span_context().is_valid else None


def record_span(headers: HeadersIn, key: bytes | None = None) -> AbstractContextManager[Span]:
    """The worker's `validate` span for one record: a child of the span that produced it (the
    fetch), the parent of what the record's processing publishes."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    attributes = None if key is None else {EVENT_ID: key.decode("utf-8", "replace")}
    return tracer.start_as_current_span(
        "validate",
        context=context_from_headers(headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


def batch_span(
    name: str, headers: Iterable[HeadersIn], attributes: Attributes = None
) -> AbstractContextManager[Span]:
    """A span over a batch of records, linked to each distinct context their `headers` carry.

    `headers` is only iterated when tracing, so a generator over the batch costs nothing
    otherwise.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    linked: dict[tuple[int, int], SpanContext] = {}
    for record_headers in headers:
        context = context_from_headers(record_headers)
        if context is not None:
            found = get_current_span(context).get_span_context()
            linked.setdefault((found.trace_id, found.span_id), found)
    return tracer.start_as_current_span(
        name,
        kind=SpanKind.CONSUMER,
        links=[Link(found) for found in linked.values()],
        attributes=attributes,
    )

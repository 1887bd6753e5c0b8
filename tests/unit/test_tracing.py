"""Trace context across Kafka headers: inject, extract, the worker's record span, the sink's
batch links, sampling that keeps a trace whole, and nothing at all when tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, get_current_span

from bigbrotr.config import load_settings
from bigbrotr.errors import ConfigError
from bigbrotr.observability import tracing

EVENT_ID = "ab" * 32


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the defaults and what a test passes: no `BIGBROTR_*` variable, no settings file."""
    import os

    for name in list(os.environ):
        if name.startswith("BIGBROTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _exporter(sample_ratio: float = 1.0) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = tracing.new_provider("test", sample_ratio)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    return exporter


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = _exporter()
    yield exporter
    tracing.install(None)


def _named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (found,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return found


def test_off_by_default_adds_no_header_and_builds_no_span() -> None:
    assert not tracing.enabled()
    assert tracing.headers_for_current_span() is None
    with tracing.record_span({"traceparent": b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"}) as s:
        assert s is INVALID_SPAN
    with tracing.fetch_span("ws://127.0.0.1:1", "page") as s:
        assert s is INVALID_SPAN

    def unread() -> Iterator[None]:
        raise AssertionError("the batch's headers were read while tracing is off")
        yield

    with tracing.batch_span("write", unread()) as s:
        assert s is INVALID_SPAN


def test_configure_without_endpoint_leaves_tracing_off() -> None:
    tracing.configure(load_settings(), "sync")
    assert not tracing.enabled()


def test_a_record_span_continues_the_context_its_headers_carry(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.fetch_span("ws://127.0.0.1:1", "page", 10, 20):
        headers = tracing.headers_for_current_span()
    assert headers is not None
    assert [name for name, _ in headers] == ["traceparent"]
    as_faust_gives_them = dict(headers)
    with tracing.record_span(as_faust_gives_them, EVENT_ID.encode()):
        passed_on = tracing.headers_for_current_span()
    fetch, validate = _named(spans, "fetch"), _named(spans, "validate")
    assert fetch.attributes == {
        tracing.RELAY_URL: "ws://127.0.0.1:1",
        tracing.FETCH_METHOD: "page",
        tracing.SINCE: 10,
        tracing.UNTIL: 20,
    }
    assert validate.parent is not None
    assert validate.parent.span_id == fetch.context.span_id
    assert validate.context.trace_id == fetch.context.trace_id
    assert validate.attributes is not None
    assert validate.attributes[tracing.EVENT_ID] == EVENT_ID
    extracted = tracing.context_from_headers(passed_on)
    assert extracted is not None
    carried = get_current_span(extracted).get_span_context()
    assert (carried.trace_id, carried.span_id) == (
        validate.context.trace_id,
        validate.context.span_id,
    )


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("traceparent", b"garbage")],
        [("traceparent", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")],
        [("traceparent", None)],
        [("other", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")],
        [("traceparent", b"\xff\xfe not ascii")],
    ],
)
def test_headers_without_a_valid_context_start_a_new_trace(
    spans: InMemorySpanExporter, headers: list[tuple[str, bytes | None]] | None
) -> None:
    assert tracing.context_from_headers(headers) is None
    with tracing.record_span(headers, EVENT_ID.encode()):
        pass
    assert _named(spans, "validate").parent is None


def test_a_batch_span_links_each_distinct_context_once(spans: InMemorySpanExporter) -> None:
    carried = []
    for _ in range(3):
        with tracing.record_span(None):
            carried.append(tracing.headers_for_current_span())
    records = [carried[0], carried[1], carried[0], None, carried[2], [("traceparent", b"x")]]
    with tracing.batch_span("write", iter(records), {"records": len(records)}):
        pass
    validates = [s for s in spans.get_finished_spans() if s.name == "validate"]
    write = _named(spans, "write")
    assert write.parent is None
    assert sorted(link.context.span_id for link in write.links) == sorted(
        s.context.span_id for s in validates
    )


def test_a_trace_not_sampled_at_the_fetch_is_not_recorded_downstream() -> None:
    exporter = _exporter(sample_ratio=1e-30)
    try:
        with tracing.fetch_span("ws://127.0.0.1:1", "live", 10):
            headers = tracing.headers_for_current_span()
        assert headers is not None, "the decision travels with the record"
        with tracing.record_span(headers, EVENT_ID.encode()):
            pass
        assert exporter.get_finished_spans() == ()
    finally:
        tracing.install(None)


def test_a_batch_span_is_kept_when_a_record_it_links_was_sampled() -> None:
    kept = _exporter()
    with tracing.record_span(None):
        headers = tracing.headers_for_current_span()
    rare = _exporter(sample_ratio=1e-30)
    try:
        with tracing.batch_span("write", [headers]):
            pass
        with tracing.batch_span("write", [None]):
            pass
        assert [s.name for s in rare.get_finished_spans()] == ["write"]
        assert [s.name for s in kept.get_finished_spans()] == ["validate"]
    finally:
        tracing.install(None)


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:4318", "grpc://collector:4317", "http://", "ftp://x/"]
)
def test_an_endpoint_that_is_not_an_http_url_is_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError, match=r"config key tracing\.otlp_endpoint"):
        load_settings(tracing={"otlp_endpoint": endpoint})


def test_the_endpoint_is_kept_without_a_trailing_slash() -> None:
    settings = load_settings(tracing={"otlp_endpoint": " http://collector:4318/ "})
    assert settings.tracing.otlp_endpoint == "http://collector:4318"

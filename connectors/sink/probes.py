"""The `probes` topic into `relay_probes`, `metadata_documents` and `relay_metadata`.

A probe's measurements (the NIP-66 open/read/write checks and their RTTs, and what failed) are one
`relay_probes` row. The documents it fetched, the NIP-11 document, DNS answer, TLS certificate
and geolocation, are stored once each by the sha256 of their canonical JSON (sorted keys, no
spaces, non-ASCII literal) under their kind, and `relay_metadata` points the relay at them at the
probe's time. Relays serve the same documents for months, so the series costs a few bytes each.
The first probe of a (relay, time) wins, and a document keeps the earliest time it was seen, so
the tables do not depend on replay order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bigbrotr.codec import Codec
from connectors.sink.writer import Staging, Unwritable

DOCUMENTS = Staging(
    name="sink_documents",
    columns=(
        ("sha256", "bytea"),
        ("kind", "text"),
        ("document", "jsonb"),
        ("first_seen_at", "timestamptz"),
    ),
    merge="""
        INSERT INTO metadata_documents AS d (sha256, kind, document, first_seen_at)
        SELECT sha256, kind, document, first_seen_at FROM sink_documents
        ON CONFLICT (sha256, kind) DO UPDATE SET first_seen_at = excluded.first_seen_at
        WHERE excluded.first_seen_at < d.first_seen_at
    """,
)
SERIES = Staging(
    name="sink_relay_metadata",
    columns=(
        ("relay_url", "text"),
        ("kind", "text"),
        ("observed_at", "timestamptz"),
        ("document_sha256", "bytea"),
    ),
    merge="""
        INSERT INTO relay_metadata (relay_url, kind, observed_at, document_sha256)
        SELECT relay_url, kind, observed_at, document_sha256 FROM sink_relay_metadata
        ON CONFLICT (relay_url, kind, observed_at) DO NOTHING
    """,
)
PROBES = Staging(
    name="sink_relay_probes",
    columns=(
        ("relay_url", "text"),
        ("probed_at", "timestamptz"),
        ("open_ok", "boolean"),
        ("open_rtt_ms", "integer"),
        ("read_ok", "boolean"),
        ("read_rtt_ms", "integer"),
        ("write_ok", "boolean"),
        ("write_rtt_ms", "integer"),
        ("error", "jsonb"),
    ),
    merge="""
        INSERT INTO relay_probes (relay_url, probed_at, open_ok, open_rtt_ms, read_ok, read_rtt_ms,
                                  write_ok, write_rtt_ms, error)
        SELECT relay_url, probed_at, open_ok, open_rtt_ms, read_ok, read_rtt_ms, write_ok,
               write_rtt_ms, error
        FROM sink_relay_probes
        ON CONFLICT (relay_url, probed_at) DO NOTHING
    """,
)
DOCUMENT_KINDS = ("nip11", "dns", "tls", "geo")


def canonical_json(value: Any) -> str:
    """The text a document is hashed as: equal documents, equal text, whatever their key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Document:
    sha256: bytes
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class ProbeRows:
    probe: tuple[Any, ...]
    documents: tuple[Document, ...]

    @property
    def relay_url(self) -> str:
        url: str = self.probe[0]
        return url

    @property
    def seen_at(self) -> datetime:
        probed_at: datetime = self.probe[1]
        return probed_at


def _json_ready(value: Any) -> Any:
    """Avro timestamps decode as datetimes; documents keep them as the milliseconds on the wire."""
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def astuple_doc(doc: Document) -> tuple[bytes, str, str]:
    return (doc.sha256, doc.kind, doc.text)


def document(kind: str, value: Any) -> Document:
    text = canonical_json(value)
    return Document(hashlib.sha256(text.encode()).digest(), kind, text)


def probe_rows(record: dict[str, Any]) -> ProbeRows:
    """The rows of one decoded `RelayProbe`; `Unwritable` if its NIP-11 text is not JSON."""
    url = record["relay_url"]
    documents = []
    if record["nip11"] is not None:
        try:
            nip11 = json.loads(record["nip11"])
        except ValueError as exc:
            raise Unwritable(
                "bad_shape", f"probe of {url}: nip11 is not JSON ({exc})", url
            ) from exc
        documents.append(document("nip11", nip11))
    for kind in DOCUMENT_KINDS[1:]:
        if record[kind] is not None:
            documents.append(document(kind, _json_ready(record[kind])))
    checks = record["checks"]
    errors = {name: check["error"] for name, check in checks.items() if check and check["error"]}
    if record["nip11_error"] is not None:
        errors["nip11"] = record["nip11_error"]
    errors.update(record["errors"])
    row: list[Any] = [url, record["probed_at"]]
    for name in ("open", "read", "write"):
        check = checks[name]
        if check is None:
            # The migration requires open_ok: a probe that never got to open did not open.
            row += [False if name == "open" else None, None]
        else:
            row += [check["ok"], check["rtt_ms"]]
    row.append(canonical_json(errors) if errors else None)
    return ProbeRows(tuple(row), tuple(documents))


class ProbesWriter:
    topic = "probes"

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def prepare(self, key: bytes | None, value: bytes | None) -> ProbeRows:
        if value is None:
            raise Unwritable("bad_record", "a tombstone on probes, which has no deletes")
        return probe_rows(self._codec.decode("RelayProbe", value))

    async def setup(self, conn: Any) -> None:
        for staging in (DOCUMENTS, SERIES, PROBES):
            await conn.execute(staging.create)

    async def write(self, conn: Any, items: Sequence[ProbeRows]) -> None:
        documents: dict[tuple[bytes, str], tuple[Any, ...]] = {}
        series: dict[tuple[str, str, datetime], tuple[Any, ...]] = {}
        probes: dict[tuple[str, datetime], tuple[Any, ...]] = {}
        for item in items:
            probes.setdefault((item.relay_url, item.seen_at), item.probe)
            for doc in item.documents:
                seen = documents.get((doc.sha256, doc.kind))
                if seen is None or item.seen_at < seen[3]:
                    documents[(doc.sha256, doc.kind)] = (
                        doc.sha256,
                        doc.kind,
                        doc.text,
                        item.seen_at,
                    )
                key = (item.relay_url, doc.kind, item.seen_at)
                series.setdefault(key, (*key, doc.sha256))
        await DOCUMENTS.load(conn, list(documents.values()))
        await SERIES.load(conn, list(series.values()))
        await PROBES.load(conn, list(probes.values()))

"""RelayProbe records written before `subject_alt_names` existed still decode, with it empty."""

from __future__ import annotations

import json
from io import BytesIO

from fastavro import parse_schema, schemaless_writer

from bigbrotr.avro.schemas import default_schemas_dir, parse_record_schema
from bigbrotr.avro.wire import single_object_header
from bigbrotr.codec import Codec
from connectors.monitor.probe import empty_probe


def test_v1_probe_decodes_with_empty_alt_names() -> None:
    path = default_schemas_dir() / "history" / "RelayProbe.v1.avsc"
    old = parse_record_schema(path.read_text(), str(path))
    record = empty_probe("wss://relay.example.com", 1_700_000_000_000)
    record["tls"] = {
        "subject": "CN=relay.example.com",
        "issuer": "CN=Test CA",
        "not_before": None,
        "not_after": None,
        "fingerprint_sha256": "ab" * 32,
        "error": None,
    }
    body = BytesIO()
    body.write(single_object_header(old.fingerprint))
    schemaless_writer(body, parse_schema(json.loads(old.text)), record)
    decoded = Codec().decode("RelayProbe", body.getvalue())
    assert decoded["tls"]["subject_alt_names"] == []
    assert decoded["tls"]["subject"] == "CN=relay.example.com"
    assert Codec().schemas.current["RelayProbe"].fingerprint != old.fingerprint

"""Geo facts: the record mapping, and a real (generated) MaxMind DB file read through it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from bigbrotr.errors import ConfigError
from connectors.monitor.geo import GeoDatabases, geo_facts

CITY = {
    "country": {"iso_code": "FR", "names": {"en": "France"}},
    "continent": {"code": "EU"},
    "city": {"names": {"en": "Paris"}},
    "location": {"latitude": 48.8566, "longitude": 2.3522},
}
ASN = {"autonomous_system_number": 64500, "autonomous_system_organization": "Example Net"}


def test_city_and_asn_records_flatten_to_strings() -> None:
    assert geo_facts(CITY, ASN) == {
        "country": "FR",
        "continent": "EU",
        "city": "Paris",
        "geohash": "u09tv",
        "asn": "64500",
        "asn_org": "Example Net",
    }


def test_missing_or_mistyped_fields_are_left_out() -> None:
    odd = {"country": "FR", "city": {"names": {"en": ""}}, "location": {"latitude": "48"}}
    assert geo_facts(odd, {"autonomous_system_number": "64500"}) == {}
    assert geo_facts(None, None) == {}


def _write(path: Path, network: str, record: dict[str, object], kind: str) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=kind)
    writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def test_generated_databases_are_read(tmp_path: Path) -> None:
    city = _write(tmp_path / "city.mmdb", "192.0.2.0/24", CITY, "GeoLite2-City")
    asn = _write(tmp_path / "asn.mmdb", "192.0.2.0/24", ASN, "GeoLite2-ASN")
    with GeoDatabases(city, asn) as geo:
        assert geo.lookup("192.0.2.10") == geo_facts(CITY, ASN)
        assert geo.lookup("198.51.100.1") == {}


def test_unreadable_database_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"not a database")
    with pytest.raises(ConfigError, match=r"monitor\.geoip_city_database"):
        GeoDatabases(city=bogus)

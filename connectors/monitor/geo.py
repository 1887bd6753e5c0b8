"""Geolocation and autonomous system of a relay's address, from local GeoLite2-style files.

Optional: without configured `.mmdb` files there is no geo step. The mapping from database
records to the probe's flat `geo` map is pure, so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import maxminddb
import pygeohash

from bigbrotr.errors import ConfigError

GEOHASH_PRECISION = 5  # about 5 km: GeoLite2 places an address within a city, not a street


class GeoDatabases:
    """Open City and/or ASN databases; use as a context manager so the files are closed."""

    def __init__(self, city: Path | None = None, asn: Path | None = None) -> None:
        self._city = _open(city, "monitor.geoip_city_database")
        self._asn = _open(asn, "monitor.geoip_asn_database")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for reader in (self._city, self._asn):
            if reader is not None:
                reader.close()

    def lookup(self, address: str) -> dict[str, str]:
        """The facts both databases hold about one IP address; empty when they know nothing."""
        city = self._city.get(address) if self._city is not None else None
        asn = self._asn.get(address) if self._asn is not None else None
        return geo_facts(
            city if isinstance(city, Mapping) else None, asn if isinstance(asn, Mapping) else None
        )


def _open(path: Path | None, key: str) -> maxminddb.Reader | None:
    if path is None:
        return None
    try:
        return maxminddb.open_database(str(path))
    except (OSError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigError(
            f"{key}: cannot open {path} as a MaxMind DB file ({exc}); fix the path or unset it"
        ) from exc


def geo_facts(city: Mapping[str, Any] | None, asn: Mapping[str, Any] | None) -> dict[str, str]:
    """Flatten GeoLite2-City and GeoLite2-ASN records into the probe's string map."""
    facts: dict[str, str] = {}
    if city:
        _put(facts, "country", _path(city, "country", "iso_code"))
        _put(facts, "continent", _path(city, "continent", "code"))
        _put(facts, "city", _path(city, "city", "names", "en"))
        latitude = _path(city, "location", "latitude")
        longitude = _path(city, "location", "longitude")
        if _is_number(latitude) and _is_number(longitude):
            facts["geohash"] = pygeohash.encode(
                float(latitude), float(longitude), precision=GEOHASH_PRECISION
            )
    if asn:
        number = asn.get("autonomous_system_number")
        if type(number) is int:
            facts["asn"] = str(number)
        _put(facts, "asn_org", asn.get("autonomous_system_organization"))
    return facts


def _path(record: Mapping[str, Any], *keys: str) -> Any:
    value: Any = record
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _put(facts: dict[str, str], key: str, value: Any) -> None:
    if isinstance(value, str) and value:
        facts[key] = value


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)

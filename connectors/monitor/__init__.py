"""The monitor: probes relays (NIP-11, NIP-66 checks, DNS, TLS, geo) and publishes RelayProbe
records to `probes`; with a key, also signed NIP-66 events to configured relays.

`Monitor(settings, producer, relays).run(once=...)` is the process; `probe_relay(url, config)`
probes one relay without Kafka. The relay set is any `RelaySource`, e.g. `static_relays(urls)`.
"""

from connectors.monitor.assigned import AssignedRelays
from connectors.monitor.checks import CheckResult, CheckTimeouts, SocketChecks, run_socket_checks
from connectors.monitor.geo import GeoDatabases, geo_facts
from connectors.monitor.nip66 import (
    ANNOUNCEMENT_KIND,
    DISCOVERY_KIND,
    announcement_event,
    discovery_event,
    discovery_tags,
)
from connectors.monitor.probe import ProbeConfig, probe_relay
from connectors.monitor.publish import Delivery, EventPublisher
from connectors.monitor.schedule import DueTracker
from connectors.monitor.service import Monitor, RelaySource, probe_config, static_relays

__all__ = [
    "ANNOUNCEMENT_KIND",
    "DISCOVERY_KIND",
    "AssignedRelays",
    "CheckResult",
    "CheckTimeouts",
    "Delivery",
    "DueTracker",
    "EventPublisher",
    "GeoDatabases",
    "Monitor",
    "ProbeConfig",
    "RelaySource",
    "SocketChecks",
    "announcement_event",
    "discovery_event",
    "discovery_tags",
    "geo_facts",
    "probe_config",
    "probe_relay",
    "run_socket_checks",
    "static_relays",
]

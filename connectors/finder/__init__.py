"""The finder: relay URLs from the seed file, archived events and HTTP lists become active relays
on `relays` once a probe shows they speak NIP-01.

`async with Finder(settings) as finder: await finder.run_pass()` runs one pass;
`run_forever(stop)` keeps passing until `stop` is set.
"""

from connectors.finder.candidate import Candidate, RetryPolicy, Status, candidate_from_record
from connectors.finder.extract import relay_urls_in_event
from connectors.finder.probe import ProbeResult, probe_relay
from connectors.finder.run import Finder, PassReport
from connectors.finder.screen import Screened, Skipped, SkipReason, screen_url

__all__ = [
    "Candidate",
    "Finder",
    "PassReport",
    "ProbeResult",
    "RetryPolicy",
    "Screened",
    "SkipReason",
    "Skipped",
    "Status",
    "candidate_from_record",
    "probe_relay",
    "relay_urls_in_event",
    "screen_url",
]

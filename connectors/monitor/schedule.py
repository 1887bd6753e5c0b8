"""Which relays are due for a probe: pure bookkeeping over the relay set it is given.

Only relays of the current set are remembered, so memory follows the set, not history. A relay
never probed comes first; then the longest-waiting ones.
"""

from __future__ import annotations

from collections.abc import Collection


class DueTracker:
    """Remembers when each relay was last probed and says which ones are due again."""

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"the probe interval must be positive, not {interval_s!r}")
        self.interval_s = interval_s
        self._last: dict[str, float] = {}

    def due(self, relays: Collection[str], now: float) -> list[str]:
        """Relays of the set whose last probe is at least one interval old, oldest first."""
        self._last = {url: at for url, at in self._last.items() if url in relays}
        waiting = [
            url for url in relays if now - self._last.get(url, -float("inf")) >= self.interval_s
        ]
        return sorted(waiting, key=lambda url: (self._last.get(url, -float("inf")), url))

    def probed(self, relay: str, at: float) -> None:
        self._last[relay] = at

    def seconds_until_next(self, relays: Collection[str], now: float) -> float:
        """How long until a relay of the set is due again (0 when one is due now)."""
        if not relays:
            return self.interval_s
        soonest = min(self._last.get(url, -float("inf")) for url in relays) + self.interval_s
        return max(0.0, soonest - now)

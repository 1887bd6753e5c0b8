"""When to try a failing relay again: exponential backoff with jitter, and a circuit breaker.

Pure logic on a clock the caller passes in, so the rules are tested without waiting. Jitter keeps
many processes that lost the same relay at the same instant from dialling it again in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """The n-th failure in a row waits between half and all of `min(max_s, base_s * 2**(n-1))`."""

    base_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.max_s:
            raise ValueError(f"backoff needs 0 < base_s <= max_s, got {self.base_s}, {self.max_s}")

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` consecutive failures (0 after none)."""
        if failures < 1:
            return 0.0
        exponent = min(failures - 1, 62)
        return float(min(self.max_s, self.base_s * 2**exponent))

    def delay(self, failures: int) -> float:
        ceiling = self.ceiling(failures)
        return ceiling * self.rng.uniform(0.5, 1.0)


class CircuitBreaker:
    """Stops dialling a relay after `threshold` consecutive failures, for `cooldown_s`.

    After the cool-down one attempt is let through (half-open): a success closes the circuit, a
    failure opens it again for another cool-down.
    """

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        if threshold < 1 or cooldown_s <= 0:
            raise ValueError("a circuit breaker needs threshold >= 1 and cooldown_s > 0")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None

    def is_open(self, now: float) -> bool:
        """Whether the relay must not be dialled at `now`."""
        return self.opened_at is not None and now < self.opened_at + self.cooldown_s

    def retry_at(self) -> float | None:
        """When the open circuit lets one attempt through; None while closed."""
        return None if self.opened_at is None else self.opened_at + self.cooldown_s

    def record_failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = now

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

"""NIP-42 state of one connection: the relay's challenge, our answer, and the relay's verdict.

Kept apart from the socket so the rules (answer only with a key, one answer per challenge,
a new connection forgets everything) are plain logic.
"""

from __future__ import annotations

from connectors.client.commands import auth_event, auth_message
from connectors.client.frames import OkFrame


class AuthState:
    """What we know about authenticating to the relay on the current connection."""

    def __init__(self, secret_key: str | None) -> None:
        self._secret_key = secret_key
        self.reset()

    def reset(self) -> None:
        """A new connection: challenges and verdicts of the old one no longer count."""
        self.challenge: str | None = None
        self.pending: str | None = None
        self.authenticated = False
        self.refusal: str | None = None

    @property
    def has_key(self) -> bool:
        return self._secret_key is not None

    def answer(self, relay_url: str, now: int) -> str | None:
        """The AUTH message for the current challenge, or None without a key or a challenge."""
        if self._secret_key is None or self.challenge is None:
            return None
        event = auth_event(self._secret_key, relay_url, self.challenge, now)
        self.pending = event.id
        return auth_message(event)

    def verdict(self, frame: OkFrame) -> bool | None:
        """Whether the relay accepted our AUTH; None when the OK answers something else."""
        if self.pending is None or frame.event_id != self.pending:
            return None
        self.pending = None
        self.authenticated = frame.accepted
        self.refusal = None if frame.accepted else frame.message or "AUTH refused"
        return frame.accepted

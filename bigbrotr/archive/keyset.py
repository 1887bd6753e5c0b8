"""Where a page of events ends: the keyset the next page starts after, and its opaque token.

Events are ordered newest first and, within one second, by id ascending (NIP-01's tie rule), so
the last event of a page, `(created_at, id)`, says exactly where the next page begins, however
many events share its second and whatever the sink writes meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"(\d{1,19}):([0-9a-f]{64})")
_MAX_SECOND = 2**63 - 1  # events.created_at is a bigint


class InvalidCursor(ValueError):  # noqa: N818  (a verdict on the token, like InvalidFilter)
    """A cursor this API did not issue."""


@dataclass(frozen=True, slots=True)
class Keyset:
    """The last event of a page: the next page holds the events after it in archive order."""

    created_at: int
    id: str

    def token(self) -> str:
        """URL-safe and opaque, so clients pass it back rather than build it."""
        raw = f"{self.created_at}:{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> Keyset:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidCursor("cursor is not one this API issued; start without it") from exc
        match = _TOKEN.fullmatch(raw)
        if match is None or int(match.group(1)) > _MAX_SECOND:
            raise InvalidCursor("cursor is not one this API issued; start without it")
        return cls(int(match.group(1)), match.group(2))

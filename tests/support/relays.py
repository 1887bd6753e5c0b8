"""The tests' relays are the demo's (`bigbrotr.demo.relays`), plus the cap of the low-cap relay."""

from bigbrotr.demo.relays import RunningRelay, local_relay, nostr_relay

LOW_CAP = 50  # the per-REQ cap of the low-cap test relay, far below any page a client asks for

__all__ = ["LOW_CAP", "RunningRelay", "local_relay", "nostr_relay"]

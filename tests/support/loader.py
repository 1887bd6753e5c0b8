"""The tests load their relays as the demo does (`bigbrotr.demo.loader`)."""

from bigbrotr.demo.loader import load_events

__all__ = ["load_events"]

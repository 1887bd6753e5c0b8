"""Shared runtime for BigBrotr: config, Kafka/Avro codecs, database access and the Nostr model.

`connectors` and `streams` import this package; it imports neither of them.
"""

__version__ = "0.1.0"

"""Every error BigBrotr raises on purpose, in one place.

Each message is written for the person at the terminal: what went wrong and what to do next.
The CLI catches `BigBrotrError` and prints its message as one line instead of a traceback.
"""


class BigBrotrError(Exception):
    """Base of all expected failures; anything else is a bug."""


class ConfigError(BigBrotrError):
    """The settings file, environment or a secret file is invalid."""


class StackError(BigBrotrError):
    """The local development stack (Kafka, PostgreSQL) could not be started, stopped or reached."""


class CodecError(BigBrotrError):
    """A message could not be encoded to or decoded from Avro."""


class SchemaError(BigBrotrError):
    """An Avro schema file is missing or invalid."""


class MigrationError(BigBrotrError):
    """A database migration failed or the applied history does not match the files."""


class TopicError(BigBrotrError):
    """Kafka topics could not be created or described."""


class PublishError(BigBrotrError):
    """Kafka did not take a record: the broker refused it or could not be reached in time."""


class RegistryUnavailableError(BigBrotrError):
    """The schema registry could not be reached: transient, so retry rather than dead-letter."""


class RelayInfoError(BigBrotrError):
    """A relay's NIP-11 information document could not be fetched or is not a usable document."""


class SourceError(BigBrotrError):
    """A source of relay URLs (seed file, HTTP list) could not be read: skipped, retried later."""


class SinkError(BigBrotrError):
    """The PostgreSQL sink, replay or verification cannot go on (bad database, missing topics)."""


class ArchiveError(BigBrotrError):
    """The archive database could not be read (unreachable, or its tables are missing)."""


class RelayStartError(BigBrotrError):
    """A local relay (demo, tests) did not come up; the message carries the end of its log."""


class RelayLoadError(BigBrotrError):
    """A local relay refused or did not acknowledge an event it was loaded with."""


class DemoError(BigBrotrError):
    """`bigbrotr demo` could not set up its relays, database or topics."""

"""`bigbrotr dev`: a real local Kafka + PostgreSQL without Docker, for development and tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bigbrotr.config import DevStackSettings
from bigbrotr.devstack.kafka import KafkaBroker
from bigbrotr.devstack.postgres import PostgresServer


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    address: str
    log: Path
    started_now: bool = False


class DevStack:
    """Both servers together; `up` is idempotent and `down` stops only what `up` started."""

    def __init__(self, settings: DevStackSettings) -> None:
        self.kafka = KafkaBroker(settings)
        self.postgres = PostgresServer(settings)

    def up(self) -> list[ComponentStatus]:
        """Start both; if Kafka fails, a PostgreSQL started by this call is stopped again."""
        started_pg = self.postgres.up()
        try:
            started_kafka = self.kafka.up()
        except BaseException:
            if started_pg:
                self.postgres.down()
            raise
        return self._status(started_kafka=started_kafka, started_pg=started_pg)

    def down(self) -> list[str]:
        """Stop both; return the names of what was running and is now stopped."""
        stopped = []
        if self.kafka.down():
            stopped.append("kafka")
        if self.postgres.down():
            stopped.append("postgres")
        return stopped

    def status(self) -> list[ComponentStatus]:
        return self._status()

    def _status(
        self, started_kafka: bool = False, started_pg: bool = False
    ) -> list[ComponentStatus]:
        return [
            ComponentStatus(
                "kafka",
                self.kafka.running(),
                self.kafka.bootstrap,
                self.kafka.server_log,
                started_kafka,
            ),
            ComponentStatus(
                "postgres",
                self.postgres.running(),
                self.postgres.url,
                self.postgres.log_file,
                started_pg,
            ),
        ]

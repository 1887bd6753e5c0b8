"""Creates the topics of the contract (DESIGN.md §2) with partitions and policies from config."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bigbrotr.config import AGGREGATE_TABLES, KafkaSettings, Settings, TopicSettings
from bigbrotr.errors import TopicError

Outcome = Literal["created", "exists", "exists-differs"]


@dataclass(frozen=True)
class TopicReport:
    name: str
    outcome: Outcome
    partitions: int
    cleanup_policy: str
    detail: str = ""


def new_admin(bootstrap_servers: str) -> AdminClient:
    """librdkafka logs every failed connect to stderr; route it to Python logging instead."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "logger": logging.getLogger("bigbrotr.kafka"),
    }
    return AdminClient(config)


def admin_client(settings: KafkaSettings, timeout_s: float = 10.0) -> AdminClient:
    """An AdminClient that has proven it can reach the broker."""
    admin = new_admin(settings.bootstrap_servers)
    _list_topics(admin, settings, timeout_s)
    return admin


def kafka_unreachable(bootstrap_servers: str, cause: object) -> TopicError:
    """The one message every client gives when no broker answers, with what to do next."""
    return TopicError(
        f"cannot reach Kafka at {bootstrap_servers} ({cause}); "
        "is it running? try `bigbrotr dev up` or check kafka.bootstrap_servers"
    )


def _list_topics(admin: AdminClient, settings: KafkaSettings, timeout_s: float) -> Any:
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise kafka_unreachable(settings.bootstrap_servers, exc.args[0]) from exc


def create_topics(settings: KafkaSettings, timeout_s: float = 30.0) -> list[TopicReport]:
    """Create every contract topic that is missing; report existing ones and how they differ."""
    wanted = {settings.topic(name): spec for name, spec in settings.topics.items()}
    return _create(settings, wanted, timeout_s)


def changelog_specs(settings: Settings) -> dict[str, TopicSettings]:
    """The aggregate changelogs as Faust creates them: compacted, partitioned like their table
    (the count tables like `events`, whose increments feed them; relay health like `probes`)."""
    topics = settings.kafka.topics
    return {
        settings.changelog_topic(table): TopicSettings(
            partitions=topics["probes" if table == "relay-health" else "events"].partitions,
            cleanup_policy="compact",
        )
        for table in AGGREGATE_TABLES
    }


def create_changelog_topics(settings: Settings, timeout_s: float = 30.0) -> list[TopicReport]:
    """Create the aggregate changelogs that are missing, in the shape the worker gives them, so
    the sink can follow them before the worker first ran (the worker then finds them made)."""
    return _create(settings.kafka, changelog_specs(settings), timeout_s)


def _create(
    settings: KafkaSettings, wanted: dict[str, TopicSettings], timeout_s: float
) -> list[TopicReport]:
    admin = new_admin(settings.bootstrap_servers)
    existing = _list_topics(admin, settings, timeout_s).topics
    reports: list[TopicReport] = []
    new_topics = []
    for name, spec in sorted(wanted.items()):
        if name in existing:
            have = len(existing[name].partitions)
            differs = have != spec.partitions
            reports.append(
                TopicReport(
                    name,
                    "exists-differs" if differs else "exists",
                    have,
                    spec.cleanup_policy,
                    f"has {have} partitions, config says {spec.partitions}" if differs else "",
                )
            )
            continue
        new_topics.append(
            NewTopic(
                name,
                num_partitions=spec.partitions,
                replication_factor=settings.replication_factor,
                config={
                    "cleanup.policy": spec.cleanup_policy,
                    "retention.ms": str(spec.retention_ms),
                },
            )
        )
    futures = admin.create_topics(new_topics, operation_timeout=timeout_s) if new_topics else {}
    for name, future in futures.items():
        spec = wanted[name]
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                reports.append(TopicReport(name, "exists", spec.partitions, spec.cleanup_policy))
                continue
            raise TopicError(f"creating topic {name} failed: {error}") from exc
        reports.append(TopicReport(name, "created", spec.partitions, spec.cleanup_policy))
    return sorted(reports, key=lambda report: report.name)

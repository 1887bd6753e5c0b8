"""The one typed settings object of BigBrotr.

Sources, strongest first: environment variables `BIGBROTR_<SECTION>__<KEY>`, secret files named by
`BIGBROTR_<SECTION>__<KEY>_FILE`, the YAML file, then the defaults below. Nothing else in the code
base reads the environment: every process gets a `Settings` from `load_settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bigbrotr.errors import ConfigError
from bigbrotr.nostr import InvalidRelayUrl, normalize_relay_url

ENV_PREFIX = "BIGBROTR_"
ENV_NESTED_DELIMITER = "__"
CONFIG_PATH_ENV = "BIGBROTR_CONFIG"
DEFAULT_CONFIG_FILE = Path("bigbrotr.yaml")
PROJECT_ROOT = Path(__file__).resolve().parents[1]

CleanupPolicy = Literal["delete", "compact", "compact,delete"]
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _normalized_relays(urls: list[str]) -> list[str]:
    """Relay URLs in settings are kept normalised; a bad one fails validation with its reason."""
    try:
        return [normalize_relay_url(url) for url in urls]
    except InvalidRelayUrl as exc:
        raise ValueError(str(exc)) from exc


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSettings(_Section):
    """How one topic is created; partitions decide how many processes can share its work."""

    partitions: int = Field(default=6, ge=1, le=1000)
    cleanup_policy: CleanupPolicy = "delete"
    retention_ms: int = Field(default=-1, ge=-1, description="-1 keeps records forever")


def _default_topics() -> dict[str, TopicSettings]:
    week_ms = 7 * 24 * 3600 * 1000
    return {
        "relays": TopicSettings(cleanup_policy="compact"),
        "events.raw": TopicSettings(retention_ms=4 * week_ms),
        "events": TopicSettings(cleanup_policy="compact"),
        "sightings": TopicSettings(),
        "rejects": TopicSettings(),
        "probes": TopicSettings(),
        "sync-cursors": TopicSettings(cleanup_policy="compact"),
        "relay-candidates": TopicSettings(cleanup_policy="compact"),
    }


class KafkaSettings(_Section):
    """Where the log lives and how its topics are named and shaped."""

    bootstrap_servers: str = "127.0.0.1:19092"
    topic_prefix: str = Field(default="bigbrotr.", pattern=r"^[A-Za-z0-9._-]*$")
    replication_factor: int = Field(default=1, ge=1)
    schema_registry_url: str | None = None
    topics: dict[str, TopicSettings] = Field(default_factory=_default_topics)

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value

    @field_validator("topics")
    @classmethod
    def _require_contract_topics(cls, value: dict[str, TopicSettings]) -> dict[str, TopicSettings]:
        missing = sorted(set(_default_topics()) - set(value))
        if missing:
            raise ValueError(f"missing topics of the contract: {', '.join(missing)}")
        return value

    def topic(self, name: str) -> str:
        """Full topic name for a contract name such as `events.raw`."""
        if name not in self.topics:
            raise ConfigError(f"unknown topic {name!r}; known: {', '.join(sorted(self.topics))}")
        return f"{self.topic_prefix}{name}"


class DatabaseSettings(_Section):
    """PostgreSQL connection; the password is kept apart from the URL so it can come from a file."""

    url: str = "postgresql://bigbrotr@127.0.0.1:55432/bigbrotr"
    password: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"must start with postgresql://, got scheme {parts.scheme!r}")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("must name a host and a database, e.g. postgresql://user@host:5432/db")
        return value

    def dsn(self) -> str:
        """The URL with the password filled in, for drivers; never print it."""
        if self.password is None:
            return self.url
        parts = urlsplit(self.url)
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{user}:{self.password.get_secret_value()}@{host}{port}"
        return urlunsplit(parts._replace(netloc=netloc))


class DevStackSettings(_Section):
    """The local Kafka + PostgreSQL that `bigbrotr dev up` runs without Docker."""

    state_dir: Path = PROJECT_ROOT / ".state"
    kafka_version: str = Field(default="3.9.1", pattern=r"^\d+\.\d+\.\d+$")
    kafka_port: int = Field(default=19092, ge=1024, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1024, le=65535)
    kafka_heap: str = Field(default="768m", pattern=r"^\d+[mg]$")
    postgres_port: int = Field(default=55432, ge=1024, le=65535)
    postgres_bin_dir: Path | None = None
    start_timeout_s: float = Field(default=90.0, gt=0)


class ConnectorSettings(_Section):
    """Relay fetchers: which non-public relays may be dialled, how overlays are reached."""

    allow: list[str] = Field(
        default_factory=list,
        description="Relay URLs, hosts or host:port dialled even though they are not public "
        "(loopback relays in development and tests); everything else private is refused",
    )
    socks5_proxy: str | None = Field(
        default=None,
        pattern=r"^socks5h?://[^/]+$",
        description="SOCKS5 proxy for .onion, .i2p and .loki relays, e.g. socks5://127.0.0.1:9050",
    )
    page_size: int = Field(default=500, ge=1, le=5000)


class MonitorSettings(_Section):
    """The prober: how often and how hard relays are checked, and where its NIP-66 events go."""

    group_id: str = Field(
        default="monitor",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer group on the relays topic (prefixed with kafka.topic_prefix); "
        "monitor processes in one group share the relays",
    )
    interval_s: float = Field(
        default=3600.0, ge=1, description="Seconds between two probes of the same relay"
    )
    concurrency: int = Field(default=20, ge=1, le=1000, description="Relays probed at once")
    probe_timeout_s: float = Field(
        default=60.0, gt=0, description="One probe, every step included, is cancelled after this"
    )
    open_timeout_s: float = Field(
        default=10.0, gt=0, description="Websocket connect; also bounds the DNS and TLS steps"
    )
    read_timeout_s: float = Field(default=10.0, gt=0, description="Until a REQ is answered")
    write_timeout_s: float = Field(default=10.0, gt=0, description="Until an EVENT gets its OK")
    nip11_timeout_s: float = Field(default=10.0, gt=0, description="The whole NIP-11 fetch")
    nip11_max_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Larger documents are refused"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Hex secret key of the monitor; enables the write check and the signed NIP-66 "
        "events; best given as BIGBROTR_MONITOR__SECRET_KEY_FILE",
    )
    publish_relays: list[str] = Field(
        default_factory=list,
        description="Relays that receive the kind 30166 and 10166 events (needs secret_key)",
    )
    geoip_city_database: Path | None = Field(
        default=None, description="GeoLite2-City style .mmdb file for country, city and geohash"
    )
    geoip_asn_database: Path | None = Field(
        default=None, description="GeoLite2-ASN style .mmdb file for the autonomous system"
    )

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip().lower()
        if len(text) != 64 or not all(char in "0123456789abcdef" for char in text):
            raise ValueError("must be 64 hex characters (a secp256k1 secret key)")
        if not 0 < int(text, 16) < _SECP256K1_ORDER:
            raise ValueError("is not a valid secp256k1 secret key; generate a new one")
        return SecretStr(text)

    @field_validator("publish_relays")
    @classmethod
    def _check_publish_relays(cls, value: list[str]) -> list[str]:
        return _normalized_relays(value)


class FinderSettings(_Section):
    """Where the finder looks for relay URLs and how patiently it probes them before giving up."""

    seed_path: Path | None = Field(
        default=Path(__file__).parent / "data" / "seed_relays.txt",
        description="Text file of relay URLs, one a line (# starts a comment); null reads none",
    )
    read_events: bool = Field(
        default=True,
        description="Find relay URLs in archived events (kind 10002 r tags, e/p tag hints, "
        "kind 30166 d tags) by consuming the events topic",
    )
    http_sources: list[str] = Field(
        default_factory=list,
        description="HTTP(S) URLs answering a JSON list of relay URLs",
    )
    http_timeout_s: float = Field(default=15.0, gt=0, le=300)
    http_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    http_refresh_s: float = Field(
        default=3600.0, gt=0, description="How often the running finder asks the HTTP sources again"
    )
    interval_s: float = Field(
        default=60.0, gt=0, description="Pause between two passes of the running finder"
    )
    probe_concurrency: int = Field(default=20, ge=1, le=1000)
    probe_timeout_s: float = Field(
        default=15.0, gt=0, le=300, description="Bound on one probe: connect, REQ and its answer"
    )
    max_attempts: int = Field(
        default=5, ge=1, le=100, description="Failed probes after which a candidate is retired"
    )
    retry_delay_s: float = Field(
        default=600.0, gt=0, description="Wait after the first failed probe; later waits grow"
    )
    retry_backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    retry_max_delay_s: float = Field(default=86_400.0, gt=0)

    @field_validator("http_sources")
    @classmethod
    def _check_http_sources(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"expected http:// or https:// URLs, got {url!r}")
        return value


NetworkName = Literal["clearnet", "tor", "i2p", "loki"]


def _default_network_bounds() -> dict[NetworkName, PositiveInt]:
    return {"clearnet": 16, "tor": 4, "i2p": 2, "loki": 2}


class SyncSettings(_Section):
    """The `bigbrotr sync` service: how relays are shared, paced, retried and followed live."""

    group_id: str = Field(
        default="sync",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer group on the relays topic (prefixed with kafka.topic_prefix); "
        "processes in one group share the relays",
    )
    max_concurrent: int = Field(
        default=16, ge=1, le=10_000, description="Relays whose history is pulled at once"
    )
    max_concurrent_per_network: dict[NetworkName, PositiveInt] = Field(
        default_factory=_default_network_bounds,
        description="Relays pulled at once per network, under max_concurrent",
    )
    priority_relays: list[str] = Field(
        default_factory=list, description="Relay URLs served first when pull slots are scarce"
    )
    history_since: int = Field(default=0, ge=0, description="Oldest second to pull (unix time)")
    first_chunk_s: int = Field(
        default=86_400,
        ge=60,
        description="History is pulled newest first in windows starting this long and doubling; "
        "the cursor is published after each, so a stop loses at most one window",
    )
    chunk_timeout_s: float = Field(
        default=300.0, gt=0, description="A window still pulling after this is cancelled"
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    live_session_s: float = Field(
        default=900.0,
        ge=1,
        description="A live subscription is renewed after this long: the history since it "
        "started is pulled, so the cursor moves forward",
    )
    live_backlog_s: float = Field(
        default=5.0,
        gt=0,
        description="A catch-up that ends further than this behind now pulls the newest part "
        "again (at most 5 times) before going live: the live REQ gets the rest only as its "
        "stored answer, which relays cut at their cap",
    )
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open a relay's circuit"
    )
    breaker_cooldown_s: float = Field(
        default=1800.0, gt=0, description="How long an open circuit keeps a relay undialled"
    )
    shutdown_timeout_s: float = Field(default=8.0, gt=0, le=60)
    negentropy: bool = Field(
        default=True,
        description="Pull each window by NIP-77 set reconciliation against the archive's ids "
        "where the relay speaks it, paging otherwise",
    )
    negentropy_frame_bytes: int = Field(
        default=60_000,
        ge=4096,
        le=1 << 20,
        description="Largest negentropy message we send (bytes before hex encoding)",
    )
    negentropy_max_rounds: int = Field(
        default=64, ge=1, le=10_000, description="Reconciliation rounds per window before paging"
    )
    negentropy_max_ids: int = Field(
        default=100_000,
        ge=1,
        description="Ids that may differ in one window; past it the window is paged instead",
    )
    negentropy_answer_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A relay silent this long after NEG-OPEN is taken not to speak NIP-77",
    )
    negentropy_timeout_s: float = Field(
        default=120.0, gt=0, description="Bound on one window's reconciliation"
    )

    @field_validator("priority_relays")
    @classmethod
    def _normalize_priority(cls, value: list[str]) -> list[str]:
        return _normalized_relays(value)

    @model_validator(mode="after")
    def _check_backoff(self) -> SyncSettings:
        if self.backoff_base_s > self.backoff_max_s:
            raise ValueError("backoff_base_s must not exceed backoff_max_s")
        return self


class StreamSettings(_Section):
    """The Faust worker: its identity, local state and the validator's limits."""

    app_id: str = Field(default="bigbrotr", pattern=r"^[A-Za-z0-9._-]+$")
    data_dir: Path = PROJECT_ROOT / ".state" / "streams"
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    max_content_bytes: int = Field(default=128 * 1024, ge=0)
    max_tags: int = Field(default=2500, ge=0)
    max_future_skew_s: int = Field(default=900, ge=0)
    external_topics: list[str] = Field(
        default_factory=list,
        description="Topics of plain Nostr event JSON from other systems, validated like our own",
    )
    shutdown_timeout_s: float = Field(default=8.0, gt=0, le=60)
    aggregates: bool = Field(
        default=True, description="Keep the aggregate tables (counts, relay health) current"
    )
    health_rtt_window_s: int = Field(default=86_400, ge=60, description="RTT percentile window")
    health_rtt_samples: int = Field(default=100, ge=1, le=10_000, description="per relay, check")
    health_percentiles: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=lambda: [50, 95], min_length=1
    )
    session_timeout_s: float = Field(
        default=15.0,
        ge=6,
        le=300,
        description="How long a worker that stopped answering keeps its partitions before the "
        "others take them over",
    )
    commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the worker commits its transactions: the longest an output waits "
        "before readers (read_committed) see it",
    )
    table_memory_mib: int = Field(
        default=64,
        ge=8,
        le=65_536,
        description="Memory of all table databases together (RocksDB block cache and write "
        "buffers, shared by every table partition the worker holds)",
    )
    batch_records: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most records an agent takes at once: already fetched ones are processed "
        "together, under one lock and with one send per destination partition",
    )
    batch_linger_ms: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="How long a batch smaller than batch_records waits once for more records "
        "to arrive before it is processed",
    )


AggregateTable = Literal[
    "events-per-kind", "events-per-pubkey", "events-per-day", "events-per-relay", "relay-health"
]
"""The worker's public aggregate tables (README, "Aggregate tables"); the sink reads their
changelogs, which are named after the table, not a contract topic."""
AGGREGATE_TABLES: tuple[AggregateTable, ...] = get_args(AggregateTable)
SinkTopic = Literal["events", "sightings", "relays", "probes", AggregateTable]


class SinkSettings(_Section):
    """The PostgreSQL sink and replay: what they read, how they batch, how patiently they wait."""

    group_id: str = Field(
        default="sink",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer group (prefixed with kafka.topic_prefix); also the name the offsets "
        "are stored under in sink_offsets, so replay and the sink continue each other",
    )
    topics: list[SinkTopic] = Field(
        default_factory=lambda: list(get_args(SinkTopic)),
        min_length=1,
        description="Contract topics written to PostgreSQL",
    )
    batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Records written in one transaction at most"
    )
    batch_max_wait_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="A batch is written at the latest this long after its first record arrived",
    )
    retry_base_s: float = Field(
        default=0.5, gt=0, description="First wait after PostgreSQL failed; doubles each time"
    )
    retry_max_s: float = Field(default=30.0, gt=0, description="Longest wait between two tries")
    session_timeout_s: float = Field(
        default=10.0,
        ge=6,
        le=300,
        description="A sink that stopped answering (killed, hung) loses its partitions after this",
    )
    rejoin_after_s: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="A sink holding no partitions this long (its group session lost and not "
        "given back) leaves the group and joins again with a new consumer",
    )
    shutdown_timeout_s: float = Field(
        default=8.0,
        gt=0,
        le=9,
        description="After SIGTERM the current batch is finished or rolled back within this; the "
        "process exits by 10 s at the latest",
    )

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, value: list[SinkTopic]) -> list[SinkTopic]:
        if len(set(value)) != len(value):
            raise ValueError("lists a topic twice")
        return value

    @model_validator(mode="after")
    def _check_retry(self) -> SinkSettings:
        if self.retry_base_s > self.retry_max_s:
            raise ValueError("retry_base_s must not exceed retry_max_s")
        return self


ProcessName = Literal["worker", "sync", "monitor", "finder", "sink"]


def _default_metrics_ports() -> dict[ProcessName, int]:
    return {"worker": 9401, "sync": 9402, "monitor": 9403, "finder": 9404, "sink": 9405}


class MetricsSettings(_Section):
    """Where each long-running process serves /metrics, /health and /ready."""

    enabled: bool = Field(default=True, description="Serve metrics and health endpoints")
    host: str = Field(default="127.0.0.1", description="Address to bind; 0.0.0.0 in containers")
    ports: dict[ProcessName, int] = Field(
        default_factory=_default_metrics_ports,
        description="Port per process; 0 picks a free one (logged). A port already taken (two "
        "processes of one kind on one machine) falls back to a free one, with a warning",
    )
    ready_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Bound on each dependency check of /ready"
    )

    @field_validator("ports")
    @classmethod
    def _check_ports(cls, value: dict[ProcessName, int]) -> dict[ProcessName, int]:
        for name, port in value.items():
            if not 0 <= port <= 65535:
                raise ValueError(f"{name}: port {port} is not in 0..65535")
        return {**_default_metrics_ports(), **value}


class StatusSettings(_Section):
    """What `bigbrotr status` calls a slow or a stale relay, and how far back it reads."""

    slow_rtt_ms: int = Field(
        default=1000, ge=1, description="A relay that opened slower than this is slow"
    )
    probe_window_s: float = Field(
        default=7200.0,
        gt=0,
        description="Only probes this recent count for relay health (latest per relay)",
    )
    max_scan_records: int = Field(
        default=1_000_000,
        ge=1,
        description="Most records read per partition of rejects and probes (the newest)",
    )


class TracingSettings(_Section):
    """OpenTelemetry traces from a relay fetch through validation to the database row.

    Off unless `otlp_endpoint` is set; then no span is built and no header is added.
    """

    otlp_endpoint: str | None = Field(
        default=None,
        description="Base URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318; spans go to "
        "<endpoint>/v1/traces. Unset: no tracing, at no cost",
    )
    sample_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of fetches traced; validation and writes follow the fetch's decision",
    )
    export_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="Bound on one export request to the collector"
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:4318"
            )
        return value.strip().rstrip("/")


ApiRoute = Literal["events", "relays", "stats"]
READER_ROLE = "bigbrotr_reader"


class ApiSettings(_Section):
    """`bigbrotr api`: the read-only HTTP query API and NIP-01 relay over the archive."""

    host: str = Field(default="127.0.0.1", description="Address the API and relay listen on")
    port: int = Field(default=8080, ge=1, le=65535)
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of a read-only role; default: database.url as the role "
        f"{READER_ROLE} that the migrations create",
    )
    database_password: SecretStr | None = Field(
        default=None, description="Secret; best given as BIGBROTR_API__DATABASE_PASSWORD_FILE"
    )
    pool_size: int = Field(default=10, ge=1, le=200, description="Database connections at most")
    query_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="A query running longer is cancelled (HTTP 503)"
    )
    default_limit: int = Field(default=100, ge=1, description="Events per page without limit")
    max_limit: int = Field(
        default=500, ge=1, le=10_000, description="Most events one page or one REQ filter returns"
    )
    max_filter_values: int = Field(
        default=1000,
        ge=1,
        description="Most ids, authors, kinds and tag values one filter may list, all together",
    )
    rate_limit: str = Field(
        default="20/second",
        description="Requests (HTTP calls and REQs) per client address, e.g. 20/second, "
        "600/minute; 429 past it",
    )
    keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Secret; API keys (comma or whitespace separated, 16+ characters each) for "
        "the private routes; best given as BIGBROTR_API__KEYS_FILE",
    )
    private_routes: list[ApiRoute] = Field(
        default_factory=list, description="HTTP routes that need an API key (X-API-Key header)"
    )
    relay: bool = Field(default=True, description="Also serve the archive as a NIP-01 relay")
    relay_max_message_bytes: int = Field(
        default=65_536, ge=1024, le=16 * 1024 * 1024, description="Larger client frames close"
    )
    relay_max_subscriptions: int = Field(
        default=20, ge=1, le=1000, description="Open subscriptions per connection"
    )
    relay_max_filters: int = Field(default=10, ge=1, le=100, description="Filters per REQ")
    stats_cache_s: float = Field(
        default=30.0, ge=0, description="How long /stats answers from its last count"
    )

    @field_validator("keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        return value.replace(",", " ").split() if isinstance(value, str) else value

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 16 for key in value):
            raise ValueError("every key needs 16 characters or more; try `openssl rand -hex 16`")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"expected e.g. 20/second or 600/minute ({exc})") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        return None if value is None else DatabaseSettings(url=value).url

    @model_validator(mode="after")
    def _check_routes(self) -> ApiSettings:
        if self.private_routes and not self.keys:
            raise ValueError("private_routes needs api.keys, or nobody could call those routes")
        if self.default_limit > self.max_limit:
            raise ValueError("default_limit must not exceed max_limit")
        return self

    def database(self, archive: DatabaseSettings) -> DatabaseSettings:
        """Where the API reads: its own URL, else the archive's database as the reader role."""
        if self.database_url is not None:
            return DatabaseSettings(url=self.database_url, password=self.database_password)
        parts = urlsplit(archive.url)
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{READER_ROLE}@{parts.hostname}{port}"
        return DatabaseSettings(
            url=urlunsplit(parts._replace(netloc=netloc)), password=self.database_password
        )


ComponentName = Literal["finder", "monitor", "sync", "worker", "sink"]


class RunSettings(_Section):
    """`bigbrotr run`: which components it supervises and how it restarts and stops them."""

    components: list[ComponentName] = Field(
        default_factory=lambda: list(get_args(ComponentName)),
        min_length=1,
        description="Components started as child processes, one process each",
    )
    restart_base_s: float = Field(
        default=1.0, gt=0, description="Wait before restarting a child that exited; doubles"
    )
    restart_max_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait before a restart; a child up this long counts as healthy again",
    )
    shutdown_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="After SIGTERM, children still running past this are killed",
    )

    @field_validator("components")
    @classmethod
    def _unique_components(cls, value: list[ComponentName]) -> list[ComponentName]:
        if len(set(value)) != len(value):
            raise ValueError("lists a component twice")
        return value

    @model_validator(mode="after")
    def _check_restart(self) -> RunSettings:
        if self.restart_base_s > self.restart_max_s:
            raise ValueError("restart_base_s must not exceed restart_max_s")
        return self


class Settings(BaseSettings):
    """Everything a BigBrotr process may be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    dev: DevStackSettings = Field(default_factory=DevStackSettings)
    streams: StreamSettings = Field(default_factory=StreamSettings)
    connectors: ConnectorSettings = Field(default_factory=ConnectorSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)

    finder: FinderSettings = Field(default_factory=FinderSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    run: RunSettings = Field(default_factory=RunSettings)

    @property
    def streams_app_id(self) -> str:
        """The Faust app id, prefixed like the topics so deployments and tests sharing a broker
        never share consumer groups or changelogs."""
        return f"{self.kafka.topic_prefix}{self.streams.app_id}"

    def changelog_topic(self, table: AggregateTable) -> str:
        """Faust names a table's changelog `<app id>-<table>-changelog`."""
        return f"{self.streams_app_id}-{table}-changelog"

    def sink_topic(self, name: SinkTopic) -> str:
        """Full name of a topic the sink reads: a contract topic or an aggregate changelog."""
        if name in AGGREGATE_TABLES:
            return self.changelog_topic(name)
        return self.kafka.topic(name)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_EnvSource(settings_cls), _SecretFileSource(settings_cls), init_settings)


class _EnvSource(EnvSettingsSource):
    """Plain environment values; `*_FILE` names are pointers for `_SecretFileSource`, not values."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            name: value
            for name, value in super()._load_env_vars().items()
            if not name.endswith("_file") and name != CONFIG_PATH_ENV.lower()
        }


class _SecretFileSource(PydanticBaseSettingsSource):
    """Reads `BIGBROTR_X__Y_FILE=/path` as the value of `x.y`, the Docker-secrets convention."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ below builds the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, path in os.environ.items():
            upper = name.upper()
            if not (upper.startswith(ENV_PREFIX) and upper.endswith("_FILE")):
                continue
            if upper == f"{CONFIG_PATH_ENV}_FILE":
                continue
            keys = upper[len(ENV_PREFIX) : -len("_FILE")].lower().split(ENV_NESTED_DELIMITER)
            try:
                secret = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{name}={path}: cannot read the secret file ({exc.strerror}); "
                    "fix the path or unset the variable"
                ) from exc
            target = values
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = secret
        return values


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        env = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(p).upper() for p in item["loc"])
        lines.append(f"config key {key} (env {env}): {item['msg']}")
    return "; ".join(lines)


def config_path(explicit: Path | None = None) -> Path | None:
    """The YAML file in force: `--config`, else $BIGBROTR_CONFIG, else ./bigbrotr.yaml if any."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_PATH_ENV)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build and validate the settings; raise ConfigError naming each bad key."""
    source = config_path(path)
    file_values = _read_yaml(source) if source is not None else {}
    merged = _deep_merge(file_values, overrides)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        origin = f" (file {source})" if source else ""
        raise ConfigError(_describe(exc) + origin) from exc


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced, safe to print or log."""
    data = settings.model_dump(mode="json")
    data["database"]["url"] = _mask_url(settings.database.url)
    if settings.database.password is not None:
        data["database"]["password"] = "********"
    if settings.monitor.secret_key is not None:
        data["monitor"]["secret_key"] = "********"
    data["api"]["keys"] = ["********"] * len(settings.api.keys)
    if settings.api.database_password is not None:
        data["api"]["database_password"] = "********"
    if settings.api.database_url is not None:
        data["api"]["database_url"] = _mask_url(settings.api.database_url)
    if settings.kafka.schema_registry_url:
        data["kafka"]["schema_registry_url"] = _mask_url(settings.kafka.schema_registry_url)
    return data


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:********@{host}{port}"))

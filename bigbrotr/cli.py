"""The `bigbrotr` command: the one place that wires config, stack, topics and components."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bigbrotr.config import DatabaseSettings, Settings, config_path, load_settings, masked
from bigbrotr.errors import BigBrotrError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bigbrotr.config import ProcessName
    from bigbrotr.observability import Observed
    from bigbrotr.observability.lag import Positions
    from bigbrotr.observability.status import Status
    from connectors.sink.run import SinkLoop
    from connectors.synchronizer import SyncReport

app = typer.Typer(
    help="BigBrotr: archive the Nostr network through Kafka into PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
dev_app = typer.Typer(
    help="The local Kafka + PostgreSQL stack (no Docker needed).", no_args_is_help=True
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
topics_app = typer.Typer(help="Manage the Kafka topics of the contract.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(config_app, name="config")
app.add_typer(topics_app, name="topics")

console = Console()
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML settings file (default: $BIGBROTR_CONFIG or ./bigbrotr.yaml)."
    ),
]


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.obj = config


def _settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = load_settings(root.obj)
    return root.obj


@dev_app.command("up")
def dev_up(ctx: typer.Context) -> None:
    """Start Kafka (KRaft) and PostgreSQL on 127.0.0.1; harmless when they already run."""
    from bigbrotr.devstack import DevStack

    settings = _settings(ctx)
    with console.status("starting the local stack (first run fetches Kafka from Maven Central)..."):
        components = DevStack(settings.dev).up()
    for component in components:
        verb = "started" if component.started_now else "already running"
        console.print(f"[green]{component.name}[/] {verb}: [bold]{component.address}[/]")
    console.print(f"bootstrap servers: {components[0].address}")
    console.print(f"database URL:      {components[1].address}")


@dev_app.command("down")
def dev_down(ctx: typer.Context) -> None:
    """Stop what `dev up` started; data stays under the state folder."""
    from bigbrotr.devstack import DevStack

    stopped = DevStack(_settings(ctx).dev).down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@dev_app.command("status")
def dev_status(ctx: typer.Context) -> None:
    """Say which parts of the local stack run, where, and where their logs are."""
    from bigbrotr.devstack import DevStack

    table = Table("component", "state")
    table.add_column("address", overflow="fold")
    table.add_column("log", overflow="fold")
    for component in DevStack(_settings(ctx).dev).status():
        state = "[green]running[/]" if component.running else "[red]stopped[/]"
        table.add_row(component.name, state, component.address, str(component.log))
    console.print(table)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the effective settings (file, environment and defaults merged) with secrets masked."""
    import yaml

    settings = _settings(ctx)
    data = masked(settings)
    source = config_path(ctx.find_root().params.get("config"))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"# settings file: {source or 'none (defaults and environment only)'}")
    typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


@topics_app.command("create")
def topics_create(ctx: typer.Context) -> None:
    """Create every topic with its partitions and cleanup policy; report what existed."""
    from bigbrotr.topics import create_changelog_topics, create_topics

    settings = _settings(ctx)
    table = Table("topic", "outcome", "partitions", "cleanup", "note")
    for report in create_topics(settings.kafka) + create_changelog_topics(settings):
        colour = {"created": "green", "exists": "blue"}.get(report.outcome, "yellow")
        table.add_row(
            report.name,
            f"[{colour}]{report.outcome}[/]",
            str(report.partitions),
            report.cleanup_policy,
            report.detail,
        )
    console.print(table)


@app.command("migrate")
def migrate_command(
    ctx: typer.Context,
    status: Annotated[
        bool, typer.Option("--status", help="Show applied and pending migrations.")
    ] = False,
) -> None:
    """Apply pending SQL migrations in order, each in its own transaction."""
    from bigbrotr.migrate import migrate, migration_status

    dsn = _settings(ctx).database.dsn()
    if status:
        table = Table("version", "name", "state", "applied at")
        for item in asyncio.run(migration_status(dsn)):
            table.add_row(str(item.version), item.name, item.state, str(item.applied_at or ""))
        console.print(table)
        return
    applied = asyncio.run(migrate(dsn))
    for migration in applied:
        console.print(f"[green]applied[/] {migration.version:04d} {migration.name}")
    console.print(f"{len(applied)} migration(s) applied; database is up to date")


@app.command("worker")
def worker_command(
    ctx: typer.Context,
    reprocess: Annotated[
        bool,
        typer.Option(
            "--reprocess", help="Validate the whole raw log again first (no duplicates downstream)."
        ),
    ] = False,
) -> None:
    """Run the stream processor: validate, dedupe and record provenance until stopped."""
    from streams.reprocess import rewind_validator
    from streams.worker import run_worker

    settings = _settings(ctx)
    if reprocess:
        console.print(f"rewound {rewind_validator(settings)} partition(s) of events.raw")
    kafka = settings.kafka
    inputs = [kafka.topic("events.raw"), *settings.streams.external_topics]
    group = kafka.topic_prefix + settings.streams.app_id
    _observe(settings, "worker", committed_by=(group, inputs))
    _trace(settings, "worker")
    run_worker(settings, _config_file(ctx))


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    relay: Annotated[
        str | None,
        typer.Argument(
            help="Relay URL, e.g. wss://relay.example.com; without it, run the service that "
            "follows this process's share of the relays topic until stopped"
        ),
    ] = None,
    since: Annotated[int, typer.Option(help="Oldest second to pull (unix time).", min=0)] = 0,
    until: Annotated[
        int | None, typer.Option(help="Newest second to pull (unix time); default now.", min=0)
    ] = None,
) -> None:
    """Pull one relay's history into events.raw, or run the sync service for all relays."""
    import time

    from bigbrotr.nostr import InvalidRelayUrl, normalize_relay_url

    if relay is None:
        _serve_sync(_settings(ctx), _config_file(ctx))
        return
    try:
        normalize_relay_url(relay)
    except InvalidRelayUrl as exc:
        raise typer.BadParameter(str(exc), param_hint="RELAY") from exc
    settings = _settings(ctx)
    _trace(settings, "sync")
    newest = until if until is not None else int(time.time())
    if newest < since:
        raise typer.BadParameter(f"--until {newest} is before --since {since}")
    with console.status(f"syncing {relay} ..."):
        report = asyncio.run(_sync_once(settings, relay, since, newest))
    console.print(
        f"{report.relay_url}: {report.published} event(s) published to events.raw in "
        f"{report.requests} request(s), {report.unreadable} unreadable"
    )
    for reason, count in sorted(report.end_reasons.items()):
        console.print(f"  requests ended by {reason}: {count}")
    neg = report.negentropy
    if neg is not None:
        console.print(
            f"  NIP-77: {neg.windows_reconciled} window(s) reconciled in {neg.rounds} round(s), "
            f"{neg.needed} id(s) missing, {neg.fetched} fetched by id"
        )
        for fallback in neg.fallbacks:
            console.print(f"  paged instead of reconciled: {fallback}")
    for gap in report.gaps:
        console.print(f"  [yellow]gap[/] {gap.since}..{gap.until}: {gap.reason}")
    cursor = report.cursor
    console.print(f"  complete: {cursor.complete_since}..{cursor.complete_until}")


def _serve_sync(settings: Settings, config: Path | None) -> None:
    import logging
    import signal

    from bigbrotr.reload import reload_on_sighup
    from connectors.max_limit import Nip11MaxLimit
    from connectors.sync_service import SyncService

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    _observe(settings, "sync", database=settings.sync.negentropy)
    _trace(settings, "sync")

    async def serve() -> None:
        max_limit = Nip11MaxLimit(settings)
        service = SyncService(settings, max_limit=max_limit)

        def reload(new: Settings) -> None:
            service.reload(new)
            max_limit.settings = new

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, service.stop)
        reload_on_sighup(config, lambda: service.settings, reload)
        console.print(
            f"sync service: following the relays of group {service.group_id} "
            f"(topic {settings.kafka.topic('relays')}); stop with Ctrl-C"
        )
        await service.run()

    asyncio.run(serve())
    console.print("sync service stopped")


async def _sync_once(settings: Settings, relay: str, since: int, until: int) -> SyncReport:
    from bigbrotr.codec import Codec
    from bigbrotr.producer import new_producer
    from connectors.negentropy_pull import negentropy_puller
    from connectors.sync import SyncPolicy
    from connectors.synchronizer import load_cursor, sync_relay

    producer = new_producer(settings)
    await producer.start()
    try:
        async with negentropy_puller(settings) as negentropy:
            return await sync_relay(
                relay,
                since=since,
                until=until,
                producer=producer,
                codec=Codec(registry=settings.kafka.schema_registry_url),
                settings=settings,
                cursor=await load_cursor(settings, relay),
                policy=SyncPolicy(page_size=settings.connectors.page_size),
                allow=settings.connectors.allow,
                proxy=settings.connectors.socks5_proxy,
                negentropy=negentropy,
            )
    finally:
        await producer.stop()


@app.command("monitor")
def monitor_command(
    ctx: typer.Context,
    relays: Annotated[
        list[str] | None, typer.Argument(help="Relay URLs to probe, e.g. wss://relay.example.com")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Probe each relay once, print the results, and stop.")
    ] = False,
) -> None:
    """Probe relays (NIP-11, NIP-66 checks, DNS, TLS, geo) and publish RelayProbe to probes.

    With no RELAY it probes its share of the `relays` topic, shared by consumer group.
    """
    from bigbrotr.nostr import InvalidRelayUrl, normalize_relay_url

    if once and not relays:
        raise typer.BadParameter("--once needs the relays to probe", param_hint="RELAY")
    try:
        urls = [normalize_relay_url(url) for url in relays or ()]
    except InvalidRelayUrl as exc:
        raise typer.BadParameter(str(exc), param_hint="RELAY") from exc
    settings = _settings(ctx)
    if not once:
        _observe(settings, "monitor")
    asyncio.run(_monitor(settings, urls, once, _config_file(ctx)))


def _config_file(ctx: typer.Context) -> Path | None:
    """The settings file SIGHUP reads again."""
    return config_path(ctx.find_root().params.get("config"))


_MONITOR_HARD_EXIT_S = 10.0


async def _monitor(
    settings: Settings, urls: list[str], once: bool, config: Path | None = None
) -> None:
    from bigbrotr.producer import new_producer
    from bigbrotr.reload import reload_on_sighup
    from connectors.monitor import AssignedRelays, Monitor, static_relays

    producer = new_producer(settings)
    await producer.start()
    try:
        if urls:
            monitor = Monitor(settings, producer, static_relays(urls), on_probe=_print_probe)
            if not once:
                reload_on_sighup(config, lambda: monitor.settings, monitor.reload)
            await monitor.run(once=once)
            return
        assigned = AssignedRelays(settings)
        monitor = Monitor(settings, producer, assigned)
        reload_on_sighup(config, lambda: monitor.settings, monitor.reload)
        stopped = asyncio.Event()
        _stop_on_signals(stopped.set, _MONITOR_HARD_EXIT_S)
        async with asyncio.TaskGroup() as tasks:
            work = [
                tasks.create_task(assigned.assignment.run()),
                tasks.create_task(monitor.run()),
            ]
            await stopped.wait()
            for task in work:
                task.cancel()
    finally:
        await producer.stop()


def _print_probe(record: dict[str, Any]) -> None:
    checks = record["checks"]
    parts = []
    for name in ("open", "read", "write"):
        check = checks[name]
        if check is not None:
            parts.append(f"{name} {check['rtt_ms']}ms" if check["ok"] else f"{name} FAILED")
    parts.append("nip11 ok" if record["nip11"] else "nip11 missing")
    console.print(f"{record['relay_url']}: {', '.join(parts)}", highlight=False)
    for step, error in [(n, c["error"]) for n, c in checks.items() if c and c["error"]]:
        console.print(f"  {step}: {error}", highlight=False)
    if record["nip11_error"]:
        console.print(f"  nip11: {record['nip11_error']}", highlight=False)
    for step, error in sorted(record["errors"].items()):
        console.print(f"  {step}: {error}", highlight=False)


@app.command("finder")
def finder_command(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run one pass (gather, probe what is due) and exit.")
    ] = False,
) -> None:
    """Find relays (seed file, archived events, HTTP lists) and publish those that speak NIP-01."""
    import logging

    settings = _settings(ctx)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not once:
        group = f"{settings.kafka.topic_prefix}finder"
        events = [settings.kafka.topic("events")] if settings.finder.read_events else []
        _observe(settings, "finder", committed_by=(group, events) if events else None)
    asyncio.run(_find(settings, once, _config_file(ctx)))


async def _find(settings: Settings, once: bool, config: Path | None = None) -> None:
    import signal

    from aiokafka.errors import KafkaConnectionError

    from bigbrotr.reload import reload_on_sighup
    from bigbrotr.topics import kafka_unreachable
    from connectors.finder import Finder

    try:
        async with Finder(settings) as finder:
            if once:
                report = await finder.run_pass()
                console.print(
                    f"{report.new_candidates} new candidate(s), {report.probed} probed, "
                    f"{report.accepted} accepted, {report.retired} retired, "
                    f"{report.pending} pending"
                )
                return
            stop = asyncio.Event()
            reload_on_sighup(config, lambda: finder.settings, finder.reload)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await finder.run_forever(stop)
    except KafkaConnectionError as exc:
        raise kafka_unreachable(settings.kafka.bootstrap_servers, exc) from exc


def _observe(
    settings: Settings,
    process: ProcessName,
    *,
    database: bool = False,
    committed_by: tuple[str, list[str]] | None = None,
    positions: Positions | None = None,
) -> Observed:
    """Serve /metrics, /health and /ready for the rest of the process's life. Consumer lag is
    measured from the offsets `committed_by=(group, topics)` commits to Kafka, or from
    `positions` (the sink's, stored with its rows)."""
    from bigbrotr.observability import committed_positions, lag_offsets, observe

    _logging(settings)
    lag = None
    if committed_by is not None:
        group, topics = committed_by
        lag = (group, committed_positions(lag_offsets(settings), group, topics))
    elif positions is not None:
        lag = (settings.kafka.topic_prefix + settings.sink.group_id, positions)
    return observe(settings, process, database=database, lag=lag)


def _trace(settings: Settings, process: ProcessName) -> None:
    """Export this process's spans when `tracing.otlp_endpoint` is set."""
    from bigbrotr.observability import tracing

    tracing.configure(settings, process)


def _logging(settings: Settings) -> None:
    import logging

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _stop_on_signals(stop: Callable[[], None], hard_exit_after_s: float) -> None:
    """SIGTERM / SIGINT call `stop`; should stopping hang, the process exits hard after
    `hard_exit_after_s`, which is safe: an unfinished transaction is rolled back by PostgreSQL."""
    import os
    import signal
    import threading

    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop()
        timer = threading.Timer(hard_exit_after_s, os._exit, args=(3,))
        timer.daemon = True
        timer.start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)


@app.command("sink")
def sink_command(ctx: typer.Context) -> None:
    """Write events, sightings, relays and probes to PostgreSQL, exactly once, until stopped.

    Processes with the same sink.group_id share the partitions; each starts every partition at
    the offset stored with the rows.
    """
    from bigbrotr.reload import reload_on_sighup
    from connectors.sink.service import run_sink

    settings = _settings(ctx)
    _logging(settings)
    _trace(settings, "sink")
    hard_exit = settings.sink.shutdown_timeout_s + 1.5
    running = [settings]

    def started(sink: SinkLoop) -> None:
        def reload(new: Settings) -> None:
            running[0] = new
            sink.batch_size, sink.batch_max_wait_s = new.sink.batch_size, new.sink.batch_max_wait_s

        _stop_on_signals(sink.stop, hard_exit)
        reload_on_sighup(_config_file(ctx), lambda: running[0], reload)
        _observe(settings, "sink", database=True, positions=lambda: sink.source.expected)

    asyncio.run(run_sink(settings, on_start=started))


@app.command("api")
def api_command(ctx: typer.Context) -> None:
    """Serve the archive read-only: HTTP queries (OpenAPI at /openapi.json) and a NIP-01 relay.

    Reads as the role bigbrotr_reader (migration 0007) unless api.database_url names another
    read-only role; refuses to start on a role that may write.
    """
    from bigbrotr.api import serve

    settings = _settings(ctx)
    _logging(settings)
    asyncio.run(serve(settings))


@app.command("run")
def run_command(ctx: typer.Context) -> None:
    """Run the main job: migrate, create topics, then every component (finder, monitor, sync,
    worker, sink) as a child process under one supervisor until Ctrl-C or SIGTERM."""
    from bigbrotr.supervisor import supervise

    settings = _settings(ctx)
    _logging(settings)
    _prepare(settings)
    config = ctx.find_root().params.get("config")
    exits = asyncio.run(supervise(settings, str(config) if config is not None else None))
    killed = [exit_.name for exit_ in exits if exit_.killed]
    if killed:
        console.print(f"[yellow]stopped; killed after the shutdown timeout:[/] {', '.join(killed)}")
        raise typer.Exit(1)
    console.print("stopped: every component exited by itself")


@app.command("demo")
def demo_command(
    ctx: typer.Context,
    events: Annotated[
        int, typer.Option("--events", min=10, max=100_000, help="Distinct valid events to load.")
    ] = 500,
    database: Annotated[
        str, typer.Option("--database", help="Database (on database.url's server) to refill.")
    ] = "bigbrotr_demo",
    timeout: Annotated[
        float, typer.Option("--timeout", min=10, help="Stop waiting for the archive after this.")
    ] = 300,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with the summary as JSON instead of tables.")
    ] = False,
) -> None:
    """Archive two real local relays end to end (nostr-relay and LocalRelay, filled with signed
    events and a few invalid ones) with live progress, then summarise; stops by itself."""
    from bigbrotr.demo.run import run_demo
    from bigbrotr.demo.summary import as_json as summary_json
    from bigbrotr.demo.summary import show

    settings = _settings(ctx)
    config = ctx.find_root().params.get("config")
    outcome = asyncio.run(
        run_demo(
            settings,
            config=str(config) if config is not None else None,
            events=events,
            database=database,
            timeout_s=timeout,
            console=Console(stderr=True) if as_json else console,
        )
    )
    if as_json:
        typer.echo(json.dumps(summary_json(outcome), indent=2, default=str))
    else:
        show(outcome, console)
    if not outcome.complete:
        raise typer.Exit(1)


def _prepare(settings: Settings) -> None:
    """What every component needs before it starts: the tables and the topics (idempotent)."""
    from bigbrotr.migrate import migrate
    from bigbrotr.topics import create_changelog_topics, create_topics

    applied = asyncio.run(migrate(settings.database.dsn()))
    reports = create_topics(settings.kafka) + create_changelog_topics(settings)
    created = [r.name for r in reports if r.outcome == "created"]
    console.print(
        f"database migrated ({len(applied)} applied now); topics ready ({len(created)} created now)"
    )


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    database: Annotated[
        str | None,
        typer.Option(
            "--database", help="Replay into this existing database (URL); migrated first."
        ),
    ] = None,
    fresh: Annotated[
        str | None,
        typer.Option(
            "--fresh", help="Create this database on database.url's server, migrate it, fill it."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--from", help="Start at records written at or after this time (unix seconds or ISO)."
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following the topics after the end offsets.")
    ] = False,
) -> None:
    """Rebuild a database from the topics, up to the end offsets seen at start (or follow)."""
    from connectors.sink.replay import point_in_time_ms

    if database is not None and fresh is not None:
        raise typer.BadParameter("give --database or --fresh, not both")
    try:
        since_ms = None if since is None else point_in_time_ms(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from") from exc
    settings = _settings(ctx)
    if database is not None:
        try:
            checked = DatabaseSettings(url=database)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--database") from exc
        settings = settings.model_copy(
            update={"database": checked.model_copy(update={"password": settings.database.password})}
        )
    _logging(settings)
    asyncio.run(_replay(settings, fresh, since_ms, follow))


async def _replay(
    settings: Settings, fresh: str | None, since_ms: int | None, follow: bool
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from connectors.sink.database import where
    from connectors.sink.databases import create_database
    from connectors.sink.replay import plan, replay

    dsn = settings.database.dsn()
    if fresh is not None:
        dsn = await create_database(dsn, fresh)
        console.print(f"created database {fresh}")
    replay_plan = await asyncio.to_thread(plan, settings, since_ms)
    console.print(f"replaying {replay_plan.total} record(s) into {where(dsn)}")
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} rec/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("replay", total=max(replay_plan.total, 1), rate="-")
        loop = asyncio.get_running_loop()
        started = loop.time()

        def show(done: int, total: int) -> None:
            elapsed = max(loop.time() - started, 1e-6)
            bar.update(task, completed=done, total=max(total, 1), rate=f"{done / elapsed:,.0f}")

        replaying = asyncio.ensure_future(
            replay(settings, dsn, replay_plan, follow=follow, progress=show)
        )

        def stop() -> None:
            replaying.cancel()  # rolls the batch in hand back; stored offsets match the rows

        _stop_on_signals(stop, settings.sink.shutdown_timeout_s + 1.5)
        try:
            totals = await replaying
        except asyncio.CancelledError:
            console.print("replay stopped; run it again to start over, or `bigbrotr sink` to go on")
            return
    elapsed = loop.time() - started
    console.print(
        f"replayed {totals.records} record(s) in {elapsed:.1f} s "
        f"({totals.records / max(elapsed, 1e-6):,.0f}/s), {totals.rejected} dead letter(s)"
    )


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    against: Annotated[
        str | None, typer.Option("--against", help="Compare with this other database (URL).")
    ] = None,
    topics: Annotated[
        bool,
        typer.Option("--topics", help="Compare with the topics, up to the offsets stored here."),
    ] = False,
) -> None:
    """Print per-table row counts and content checksums; compare them; exit 1 on a difference."""
    if against is not None and topics:
        raise typer.BadParameter("give --against or --topics, not both")
    if against is not None:
        try:
            DatabaseSettings(url=against)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--against") from exc
    settings = _settings(ctx)
    if not asyncio.run(_verify(settings, against, topics)):
        raise typer.Exit(1)


async def _verify(settings: Settings, against: str | None, topics: bool) -> bool:
    from connectors.sink.database import where
    from connectors.sink.service import sink_group, sink_topics
    from connectors.sink.verify import TABLES, database_content, differences, topics_content

    group, names = sink_group(settings), sink_topics(settings)
    dsn = settings.database.dsn()
    mine = await database_content(dsn, group, names)
    other = None
    other_name = ""
    if against is not None:
        other, other_name = await database_content(against, group, names), where(against)
    elif topics:
        with console.status("replaying the topics into a scratch database..."):
            other, other_name = await topics_content(settings, mine), "topics"
    table = Table("table", f"rows ({where(dsn)})", "checksum")
    if other is not None:
        table.add_column(f"rows ({other_name})")
        table.add_column("checksum")
        table.add_column("")
    differing = differences(mine, other) if other is not None else []
    for name in TABLES:
        cells = [name, str(mine.tables[name].rows), mine.tables[name].hex]
        if other is not None:
            same = name not in differing
            cells += [
                str(other.tables[name].rows),
                other.tables[name].hex,
                "[green]equal[/]" if same else "[red]DIFFERS[/]",
            ]
        table.add_row(*cells)
    console.print(table, soft_wrap=True)
    if other is None:
        return True
    if differing:
        console.print(f"[red]differ:[/] {', '.join(differing)}")
        return False
    console.print("[green]identical[/]: every table has the same rows and checksum")
    return True


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh until Ctrl-C (JSON: one object a line).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", help="Seconds between the two offset samples of the throughput.", min=0.1
        ),
    ] = 2.0,
) -> None:
    """Per topic and consumer group: end offsets, committed offsets, lag and throughput; rejects
    by reason; relay health (up, slow, down) from the latest probes."""
    import dataclasses

    from bigbrotr.observability.status import gather

    settings = _settings(ctx)
    try:
        while True:
            status = gather(settings, interval)
            if as_json:
                typer.echo(json.dumps(dataclasses.asdict(status), indent=None if watch else 2))
            else:
                if watch:
                    console.clear()
                _print_status(status)
            if not watch:
                return
    except KeyboardInterrupt:
        return


def _print_status(status: Status) -> None:
    import time

    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.at))
    topics = Table("topic", "partitions", "end offset", "records/s", title=f"topics at {stamp}")
    for topic in status.topics:
        topics.add_row(
            topic.topic, str(topic.partitions), str(topic.end_offset), f"{topic.records_per_s:g}"
        )
    groups = Table(title="consumer groups")
    groups.add_column("group", overflow="fold")
    groups.add_column("topic", overflow="fold")
    for name in (
        "committed",
        "end offset",
        "lag",
        "records/s",
        "offsets in",
    ):
        groups.add_column(name)
    for row in status.groups:
        lag = f"[red]{row.lag}[/]" if row.lag else "0"
        groups.add_row(
            row.group,
            row.topic,
            str(row.committed),
            str(row.end_offset),
            lag,
            f"{row.records_per_s:g}",
            row.offsets_in,
        )
    rejects = Table("reason", "records", title="rejects by reason")
    for reason, count in status.rejects.items():
        rejects.add_row(reason, str(count))
    relays = status.relays
    health = Table("up", "slow", "down", title="relay health (latest probes)")
    health.add_row(f"[green]{relays.up}[/]", f"[yellow]{relays.slow}[/]", f"[red]{relays.down}[/]")
    for table in (topics, groups, rejects, health):
        console.print(table)
    for url in relays.down_relays:
        console.print(f"[red]down[/] {url}", highlight=False)
    for url in relays.slow_relays:
        console.print(f"[yellow]slow[/] {url}", highlight=False)
    for note in status.notes:
        console.print(f"note: {note}", highlight=False)


def main() -> None:
    """Entry point: expected failures print one line and a next step, not a traceback."""
    try:
        app()
    except BigBrotrError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)

"""The demo's closing summary, as tables for the terminal and as JSON for scripts."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bigbrotr.demo.run import DemoOutcome


def as_json(outcome: DemoOutcome) -> dict[str, Any]:
    load = outcome.load
    return {
        "complete": outcome.complete,
        "seconds": round(outcome.seconds, 1),
        "relays": [{**row, "loaded": outcome.relays.get(row["url"])} for row in outcome.relay_rows],
        "loaded": {
            "events": load.valid_events,
            "sightings": load.sightings,
            "rejects": dict(load.rejects),
        },
        "archived": {
            "relays": outcome.stored.relays,
            "events": outcome.stored.events,
            "sightings": outcome.stored.sightings,
            "probes": outcome.stored.probes,
            "rejects": dict(outcome.rejects),
            "dead_letters": outcome.dead_letters,
        },
        "lag": outcome.lag,
        "queries": [
            {"title": title, "sql": sql, "rows": rows} for title, sql, rows in outcome.queries
        ],
        "database_url": outcome.database_url,
        "topic_prefix": outcome.topic_prefix,
        "log": str(outcome.log),
    }


def show(outcome: DemoOutcome, console: Console) -> None:
    load, archived = outcome.load, outcome.stored
    relays = Table("relay", "events loaded", "events archived", "open RTT (ms)", title="relays")
    for row in outcome.relay_rows:
        loaded = outcome.relays.get(row["url"])
        relays.add_row(row["url"], str(loaded), str(row["events"]), str(row["open_rtt_ms"]))
    console.print(relays)

    totals = Table("", "loaded", "archived", title="archive")
    totals.add_row("relays", str(len(outcome.relays)), str(archived.relays))
    totals.add_row("events (distinct, valid)", str(load.valid_events), str(archived.events))
    totals.add_row("sightings (event, relay)", str(load.sightings), str(archived.sightings))
    for reason in sorted(set(load.rejects) | set(outcome.rejects)):
        totals.add_row(
            f"rejected: {reason}", str(load.rejects[reason]), str(outcome.rejects[reason])
        )
    totals.add_row("dead letters (repeats included)", "", str(outcome.dead_letters))
    totals.add_row("relay probes", "", str(archived.probes))
    console.print(totals)

    lag = Table("consumer", "topic", "records behind", title="consumer lag")
    for consumer, topics in outcome.lag.items():
        for topic, behind in topics.items():
            lag.add_row(consumer, topic, str(behind))
    console.print(lag)

    for title, sql, rows in outcome.queries:
        console.print(f"[bold]{title}[/]: [cyan]{sql}[/]", highlight=False)
        result = Table(*(rows[0].keys() if rows else ["(no rows)"]))
        for row in rows:
            result.add_row(*(str(value) for value in row.values()))
        console.print(result)

    console.print(
        f"archived in {outcome.seconds:.0f} s; query it yourself: psql {outcome.database_url}; "
        f"topics: {outcome.topic_prefix}*; component logs: {outcome.log}",
        highlight=False,
        soft_wrap=True,
    )
    if outcome.complete:
        console.print("[green]complete[/]: the archive holds exactly what the relays were given")
    else:
        console.print("[red]incomplete[/]: the archive differs from what the relays were given")

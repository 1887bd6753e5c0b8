"""The PostgreSQL sink: Kafka topics into the tables of the migrations, exactly once (DESIGN §3).

One module per job: `source` (Kafka), `writer` and one writer per topic (`events`, `sightings`,
`relays`, `probes`; `counts` and `health` for the aggregate changelogs, whose wire format is in
`changelog`), `load` (one batch, one transaction), `offsets` (stored with the rows), `database`
(waits out PostgreSQL outages), `rejects` (dead letters), `run` (the loop), `service` (wiring),
`replay` and `verify`.
"""

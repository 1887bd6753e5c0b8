-- The worker's aggregate tables, materialised from their compacted changelog topics by the sink
-- (README, "Aggregate tables"). Each row holds the latest value of its key, as compaction keeps it,
-- so the tables are the same whether they were filled live or replayed after compaction.

-- The four counts share one shape (a text key and a number), so they share one table: one writer,
-- one merge and one checksum, and a dimension's rows are a range scan of the primary key. The key
-- is the changelog key exactly as the worker wrote it (a kind in decimal, a pubkey in hex, a UTC
-- day, a relay URL), so a key the worker could write can always be stored.
CREATE TABLE aggregate_counts (
    dimension text   NOT NULL CHECK (dimension IN ('events-per-kind', 'events-per-pubkey',
                                                   'events-per-day', 'events-per-relay')),
    key       text   NOT NULL,
    count     bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (dimension, key)
);

-- One row per relay: the health document as the worker computed it, and beside it the figures a
-- query filters or sorts on (which relays are up, the most available ones, the stale ones).
CREATE TABLE relay_health (
    relay_url        text             PRIMARY KEY,
    last_probe_at    timestamptz      NOT NULL,
    up               boolean          NOT NULL,
    -- NULL when the window holds no probe.
    availability_24h double precision CHECK (availability_24h BETWEEN 0 AND 1),
    availability_7d  double precision CHECK (availability_7d BETWEEN 0 AND 1),
    document         jsonb            NOT NULL
);

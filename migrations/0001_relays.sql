-- Relays BigBrotr knows of, materialised from the compacted `relays` topic (one row per normalised URL).

CREATE TABLE relays (
    -- Normalised by the finder (scheme, host case, punycode, default port, trailing slash), so one
    -- relay has exactly one spelling and the URL itself can be the key.
    url           text        PRIMARY KEY CHECK (url ~ '^wss?://'),
    network       text        NOT NULL CHECK (network IN ('clearnet', 'tor', 'i2p', 'loki')),
    -- Where the URL was first found (seed list, an event's tags, an HTTP API); kept for provenance.
    source        text        NOT NULL,
    discovered_at timestamptz NOT NULL,
    -- Every discovered URL starts as a candidate; probes promote it to active or retire it.
    status        text        NOT NULL DEFAULT 'candidate'
                              CHECK (status IN ('candidate', 'active', 'retired')),
    -- Bookkeeping of this database, not a fact from the log.
    updated_at    timestamptz NOT NULL DEFAULT now()
);

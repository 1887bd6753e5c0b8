-- NIP-66 checks, one row per probe of a relay, materialised from the `probes` topic. The documents a
-- probe fetched (NIP-11, DNS, TLS) go to relay_metadata; this table keeps the measurements.

CREATE TABLE relay_probes (
    relay_url    text        NOT NULL,
    probed_at    timestamptz NOT NULL,
    -- Every probe tries to open a websocket; read and write are NULL when they were not attempted
    -- (the open failed, or no key was given to write with).
    open_ok      boolean     NOT NULL,
    open_rtt_ms  integer     CHECK (open_rtt_ms >= 0),
    read_ok      boolean,
    read_rtt_ms  integer     CHECK (read_rtt_ms >= 0),
    write_ok     boolean,
    write_rtt_ms integer     CHECK (write_rtt_ms >= 0),
    -- What went wrong, by check, as the probe reported it; NULL when nothing did.
    error        jsonb,
    -- Uptime and RTT over time for one relay is a range scan of this key.
    PRIMARY KEY (relay_url, probed_at)
);

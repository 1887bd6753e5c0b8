-- Which relay served which event, and when: materialised from the `sightings` topic.
-- first_seen_at / last_seen_at are kept with LEAST / GREATEST on conflict, so the result does not
-- depend on the order in which sightings are replayed.

CREATE TABLE sightings (
    event_id      bytea       NOT NULL CHECK (octet_length(event_id) = 32),
    relay_url     text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (event_id, relay_url),
    CHECK (last_seen_at >= first_seen_at)
);

-- No foreign keys to events or relays: a sighting may be written before its event or relay row, as
-- they come from different topics. The primary key serves "where was this event seen?"; this index
-- serves "what did this relay serve?".
CREATE INDEX sightings_relay_url_idx ON sightings (relay_url);

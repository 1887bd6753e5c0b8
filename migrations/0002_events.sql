-- Validated Nostr events, one row per event id, materialised from the `events` topic.

-- The values NIP-01 `#x` filters match: 'x:value' for every tag whose name is a single letter
-- a-z or A-Z, taken from the tag's first value. Stored in a generated column so the GIN index below
-- answers `tagvalues @> ARRAY['e:<hex id>']` without triggers and without the writer computing it.
--
-- Values longer than 1024 bytes are left out: a GIN entry larger than about 2.7 kB makes the whole
-- INSERT fail, and a hostile relay must not be able to make an event unstorable. Such events are
-- still archived; only a `#x` lookup on that long value misses them.
--
-- IMMUTABLE is true: the result depends on the argument alone (the regex runs in the "C" collation,
-- and the order follows the tag order), which PostgreSQL requires of a generated column.
CREATE FUNCTION event_tagvalues(tags jsonb) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(
    SELECT (tag ->> 0) || ':' || (tag ->> 1)
    FROM jsonb_array_elements(
             CASE WHEN jsonb_typeof(tags) = 'array' THEN tags ELSE '[]'::jsonb END
         ) WITH ORDINALITY AS t (tag, position)
    WHERE jsonb_typeof(tag) = 'array'
      AND (tag ->> 0) COLLATE "C" ~ '^[A-Za-z]$'
      AND octet_length(tag ->> 1) <= 1024
    ORDER BY position
);

CREATE TABLE events (
    -- Raw bytes rather than hex text: half the size in the table and in every index.
    id               bytea       PRIMARY KEY CHECK (octet_length(id) = 32),
    pubkey           bytea       NOT NULL CHECK (octet_length(pubkey) = 32),
    -- Unix seconds exactly as signed; a timestamptz would not round-trip every value a relay serves.
    created_at       bigint      NOT NULL,
    kind             integer     NOT NULL CHECK (kind BETWEEN 0 AND 65535),
    tags             jsonb       NOT NULL CHECK (jsonb_typeof(tags) = 'array'),
    content          text        NOT NULL,
    sig              bytea       NOT NULL CHECK (octet_length(sig) = 64),
    -- First sighting of the event anywhere. No foreign key to relays: facts arrive on different topics
    -- in any order, and the sink must store whatever arrives.
    first_seen_at    timestamptz NOT NULL,
    -- NULL when the event came from an external topic rather than from a relay.
    first_seen_relay text,
    tagvalues        text[]      NOT NULL GENERATED ALWAYS AS (event_tagvalues(tags)) STORED
);

-- The common NIP-01 filters: by author, by kind, by time alone, and by tag; newest first, as relays
-- answer.
CREATE INDEX events_pubkey_created_at_idx ON events (pubkey, created_at DESC);
CREATE INDEX events_kind_created_at_idx ON events (kind, created_at DESC);
CREATE INDEX events_created_at_idx ON events (created_at DESC);
CREATE INDEX events_tagvalues_idx ON events USING gin (tagvalues);

-- The PostgreSQL sink's Kafka offsets. The sink commits them in the same transaction as the rows they
-- cover, and on start seeks to them instead of to the offsets committed in Kafka, so a crash at any
-- instant neither loses nor duplicates a row.

CREATE TABLE sink_offsets (
    -- Named consumer_group because GROUP is a reserved word.
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL CHECK (partition >= 0),
    -- The offset of the next record to consume, as Kafka commits it (last processed + 1).
    next_offset    bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Relay metadata (NIP-11 documents, NIP-66 results, DNS, TLS...) as a time series of references to
-- documents stored once by content hash. Relays serve the same document for months; storing it once
-- keeps the series to a few bytes per observation.

CREATE TABLE metadata_documents (
    -- sha256 of the document's canonical JSON, computed by the writer. A hash, not a counter: two
    -- different documents can never share it, and the same document gets the same key on replay.
    sha256        bytea       NOT NULL CHECK (octet_length(sha256) = 32),
    kind          text        NOT NULL CHECK (kind ~ '^[a-z0-9_]+$'),
    document      jsonb       NOT NULL,
    first_seen_at timestamptz NOT NULL,
    -- The kind is part of the key: identical JSON (say `{}`) may be both a NIP-11 and a NIP-66
    -- document, and each must keep its own kind and first_seen_at.
    PRIMARY KEY (sha256, kind)
);

CREATE TABLE relay_metadata (
    relay_url       text        NOT NULL,
    kind            text        NOT NULL,
    observed_at     timestamptz NOT NULL,
    document_sha256 bytea       NOT NULL,
    -- Newest document of a kind for a relay is a backward scan of this key.
    PRIMARY KEY (relay_url, kind, observed_at),
    -- Both come from one probe record, so the sink writes the document first in the same
    -- transaction; the key includes kind so a row cannot point at a document of another kind.
    FOREIGN KEY (document_sha256, kind) REFERENCES metadata_documents (sha256, kind)
);

-- Serves the foreign key check on document deletion and "which relays serve this document?".
CREATE INDEX relay_metadata_document_idx ON relay_metadata (document_sha256, kind);

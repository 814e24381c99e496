-- Privacy: each site's consent mode and raw-event retention, and the erasure tombstones.

-- cookieless (default: no consent needed, nothing stored on the device, daily-salted
-- identity) or consent-required (analytics events without consent are refused).
ALTER TABLE sites ADD COLUMN consent_mode VARCHAR DEFAULT 'cookieless';
-- Days raw events are kept (0: for ever); rollups are kept whatever this says.
ALTER TABLE sites ADD COLUMN retention_days INTEGER DEFAULT 0;

-- Subjects erased recently. Only a keyed hash (HMAC-SHA256 with the server's privacy
-- key) of the erased id is kept, never the id. The writer discards events of these
-- subjects received before erased_at, so events still in flight when the erasure ran
-- (spool, Redis, RabbitMQ, outbox) never reach the store.
CREATE TABLE privacy_tombstones (
    kind      VARCHAR NOT NULL,   -- visitor | user
    id_hash   VARCHAR NOT NULL,
    site_id   VARCHAR NOT NULL,   -- '' for every site
    erased_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, id_hash, site_id)
);

-- The key of those hashes, made once and shared by every process of the installation
-- (unless privacy_secret sets one).
CREATE TABLE privacy_keys (
    name       VARCHAR PRIMARY KEY,
    key_hex    VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);

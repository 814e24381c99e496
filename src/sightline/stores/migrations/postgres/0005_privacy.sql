-- Privacy: each site's consent mode and raw-event retention, and the erasure tombstones.

-- cookieless (default: no consent needed, nothing stored on the device, daily-salted
-- identity) or consent-required (analytics events without consent are refused).
ALTER TABLE sites ADD COLUMN consent_mode text COLLATE "C" NOT NULL DEFAULT 'cookieless';
-- Days raw events are kept (0: for ever); rollups are kept whatever this says.
ALTER TABLE sites ADD COLUMN retention_days integer NOT NULL DEFAULT 0;

-- Subjects erased recently. Only a keyed hash (HMAC-SHA256 with the server's privacy
-- key) of the erased id is kept, never the id. The writer discards events of these
-- subjects received before erased_at, so events still in flight when the erasure ran
-- (spool, Redis, RabbitMQ, outbox) never reach the store.
CREATE TABLE privacy_tombstones (
    kind      text COLLATE "C" NOT NULL,
    id_hash   text COLLATE "C" NOT NULL,
    site_id   text COLLATE "C" NOT NULL,
    erased_at timestamp NOT NULL,
    PRIMARY KEY (kind, id_hash, site_id)
);

-- The key of those hashes, made once and shared by every process of the installation
-- (unless privacy_secret sets one).
CREATE TABLE privacy_keys (
    name       text COLLATE "C" PRIMARY KEY,
    key_hex    text COLLATE "C" NOT NULL,
    created_at timestamp NOT NULL
);

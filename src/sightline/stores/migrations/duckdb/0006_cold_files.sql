-- The cold tier's manifest: one row per Parquet file of archived events. A file counts
-- (for queries, export and erasure) only once its row is here; the row is written in the
-- same transaction that deletes the file's events from the events table, so an event is
-- always in exactly one tier.
CREATE TABLE cold_files (
    -- relative to the cold location: site=<id>/day=<YYYY-MM-DD>/part-<uuid>.parquet
    path        VARCHAR PRIMARY KEY,
    site_id     VARCHAR NOT NULL,
    -- the UTC day the file's events fall in
    day         DATE NOT NULL,
    rows        BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    archived_at TIMESTAMP NOT NULL
);
CREATE INDEX cold_files_site_day ON cold_files (site_id, day);

-- The cold tier's manifest (mirrors duckdb/0006): one row per Parquet file of archived
-- events, written in the transaction that deletes the file's events from the events table.
CREATE TABLE cold_files (
    path        text PRIMARY KEY,
    site_id     text NOT NULL,
    day         date NOT NULL,
    rows        bigint NOT NULL,
    bytes       bigint NOT NULL,
    archived_at timestamp NOT NULL
);
CREATE INDEX cold_files_site_day ON cold_files (site_id, day);

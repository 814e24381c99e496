-- The seed's sessionDuration enrichment (mirrors duckdb/0003): seconds from the session's
-- first event (as known when the event was stored) to this event.
ALTER TABLE events ADD COLUMN session_duration bigint NOT NULL DEFAULT 0;

-- The seed's sessionDuration enrichment: seconds from the session's first event (as known
-- when the event was stored) to this event.
ALTER TABLE events ADD COLUMN session_duration BIGINT NOT NULL DEFAULT 0;

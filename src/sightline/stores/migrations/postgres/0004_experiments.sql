-- Experiments (A/B tests), mirrors duckdb/0004: one row per site and key. variants is a
-- JSON list of {key, weight, name} (the first is the control); goal is {eventType,
-- filters}; targeting is {pages}. status goes draft -> running -> stopped.
CREATE TABLE experiments (
    site_id                   text COLLATE "C" NOT NULL,
    key                       text COLLATE "C" NOT NULL,
    name                      text COLLATE "C" NOT NULL,
    description               text COLLATE "C" NOT NULL,
    variants                  jsonb NOT NULL,
    goal                      jsonb NOT NULL,
    targeting                 jsonb NOT NULL,
    minimum_detectable_effect double precision NOT NULL,
    status                    text COLLATE "C" NOT NULL,
    created_at                timestamp NOT NULL,
    updated_at                timestamp NOT NULL,
    started_at                timestamp,
    stopped_at                timestamp,
    PRIMARY KEY (site_id, key)
);

-- Experiments (A/B tests): one row per site and key. variants is a JSON list of
-- {key, weight, name} (the first is the control); goal is {eventType, filters}; targeting
-- is {pages}. status goes draft -> running -> stopped.
CREATE TABLE experiments (
    site_id                   VARCHAR NOT NULL,
    key                       VARCHAR NOT NULL,
    name                      VARCHAR NOT NULL,
    description               VARCHAR NOT NULL,
    variants                  JSON NOT NULL,
    goal                      JSON NOT NULL,
    targeting                 JSON NOT NULL,
    minimum_detectable_effect DOUBLE NOT NULL,
    status                    VARCHAR NOT NULL,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL,
    started_at                TIMESTAMP,
    stopped_at                TIMESTAMP,
    PRIMARY KEY (site_id, key)
);

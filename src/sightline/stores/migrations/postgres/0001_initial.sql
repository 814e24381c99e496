-- Sightline warm store, PostgreSQL flavour: the initial schema (mirrors duckdb/0001).
-- Timestamps are UTC (timestamp without time zone); every connection runs with
-- TimeZone = UTC. Day boundaries use each site's time zone. Text compares and sorts by
-- code point (COLLATE "C"), as in DuckDB, whatever the database's locale: results come
-- out in the same order, and keys compare with memcmp instead of the locale's rules.

CREATE TABLE sites (
    id              text COLLATE "C" PRIMARY KEY,
    domain          text COLLATE "C" NOT NULL UNIQUE,
    site_key        text COLLATE "C" NOT NULL UNIQUE,
    allowed_origins text[] NOT NULL,
    timezone        text COLLATE "C" NOT NULL DEFAULT 'UTC',
    created_at      timestamp NOT NULL
);

CREATE TABLE users (
    id            text COLLATE "C" PRIMARY KEY,
    email         text COLLATE "C" NOT NULL UNIQUE,
    password_hash text COLLATE "C",
    role          text COLLATE "C" NOT NULL,
    created_at    timestamp NOT NULL
);

CREATE TABLE api_tokens (
    id           text COLLATE "C" PRIMARY KEY,
    user_id      text COLLATE "C" NOT NULL,
    name         text COLLATE "C" NOT NULL,
    token_hash   text COLLATE "C" NOT NULL UNIQUE,
    created_at   timestamp NOT NULL,
    revoked_at   timestamp
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Events, partitioned by UTC day of ts. The writer creates a day's partition before the
-- first batch that needs it (events_pYYYYMMDD); dropping a partition is how old days go.
CREATE TABLE events (
    site_id           text COLLATE "C" NOT NULL,
    event_id          text COLLATE "C" NOT NULL,
    event_type        text COLLATE "C" NOT NULL,
    ts                timestamp NOT NULL,
    received_at       timestamp NOT NULL,
    session_id        text COLLATE "C" NOT NULL,
    visitor_id        text COLLATE "C" NOT NULL,
    user_id           text COLLATE "C" NOT NULL,
    page_url          text COLLATE "C" NOT NULL,
    page_path         text COLLATE "C" NOT NULL,
    page_title        text COLLATE "C" NOT NULL,
    referrer          text COLLATE "C" NOT NULL,
    referrer_source   text COLLATE "C" NOT NULL,
    channel           text COLLATE "C" NOT NULL,
    screen_resolution text COLLATE "C" NOT NULL,
    viewport          text COLLATE "C" NOT NULL,
    device_type       text COLLATE "C" NOT NULL,
    os                text COLLATE "C" NOT NULL,
    browser           text COLLATE "C" NOT NULL,
    browser_version   text COLLATE "C" NOT NULL,
    country           text COLLATE "C" NOT NULL,
    region            text COLLATE "C" NOT NULL,
    city              text COLLATE "C" NOT NULL,
    utm_source        text COLLATE "C" NOT NULL,
    utm_medium        text COLLATE "C" NOT NULL,
    utm_campaign      text COLLATE "C" NOT NULL,
    utm_term          text COLLATE "C" NOT NULL,
    utm_content       text COLLATE "C" NOT NULL,
    product_id        text COLLATE "C" NOT NULL,
    -- properties.revenue in cents (0 when absent)
    revenue           bigint NOT NULL,
    properties        jsonb NOT NULL
) PARTITION BY RANGE (ts);

-- Every dashboard, breakdown, funnel and export query reads one site over a time range:
-- partitions prune the days, this index the site within them.
CREATE INDEX events_site_ts ON events (site_id, ts);
-- Realtime reads the last minutes by arrival; rows arrive in received_at order, so a
-- block-range index answers that for a few pages of index per partition.
CREATE INDEX events_received ON events USING brin (received_at);

-- Idempotent ingest: one row per stored event, keyed by a 128-bit hash of (site,
-- eventId). The writer inserts a batch's keys in the same transaction as its events and
-- stores only the events whose key was new, so a redelivered batch or a client's retry
-- never counts twice, whichever worker gets it
-- (docs/decisions/0006-idempotent-postgres-writes.md). Keys older than the dedupe
-- horizon are deleted by the writers.
CREATE TABLE event_keys (
    key     bytea PRIMARY KEY,
    seen_at timestamp NOT NULL
);
CREATE INDEX event_keys_seen ON event_keys USING brin (seen_at);

-- The seed's SessionStats: one row per session, merged exactly as its events arrive
-- (in any order). interactions counts events that make a visit "engaged".
CREATE TABLE session_stats (
    site_id         text COLLATE "C" NOT NULL,
    session_id      text COLLATE "C" NOT NULL,
    visitor_id      text COLLATE "C" NOT NULL,
    started_at      timestamp NOT NULL,
    ended_at        timestamp NOT NULL,
    duration        bigint NOT NULL,
    page_views      bigint NOT NULL,
    events          bigint NOT NULL,
    interactions    bigint NOT NULL,
    bounce          boolean NOT NULL,
    converted       boolean NOT NULL,
    revenue         bigint NOT NULL,
    landing_page    text COLLATE "C",
    landing_at      timestamp,
    exit_page       text COLLATE "C",
    exit_at         timestamp,
    referrer        text COLLATE "C" NOT NULL,
    referrer_source text COLLATE "C" NOT NULL,
    channel         text COLLATE "C" NOT NULL,
    utm_source      text COLLATE "C" NOT NULL,
    utm_medium      text COLLATE "C" NOT NULL,
    utm_campaign    text COLLATE "C" NOT NULL,
    device_type     text COLLATE "C" NOT NULL,
    browser         text COLLATE "C" NOT NULL,
    os              text COLLATE "C" NOT NULL,
    country         text COLLATE "C" NOT NULL,
    PRIMARY KEY (site_id, session_id)
);
-- Session metrics read one site over a range of session starts.
CREATE INDEX session_stats_site_started ON session_stats (site_id, started_at);
-- The writer looks up a cookieless visitor's recent server-made sessions.
CREATE INDEX session_stats_server_visitor ON session_stats (site_id, visitor_id, ended_at)
    WHERE session_id LIKE 'srv\_%';

-- The seed's DailyStats, per site and local day (recomputed from events when a day changes).
CREATE TABLE daily_stats (
    site_id              text COLLATE "C" NOT NULL,
    date                 date NOT NULL,
    events               bigint NOT NULL,
    page_views           bigint NOT NULL,
    unique_visitors      bigint NOT NULL,
    sessions             bigint NOT NULL,
    avg_session_duration double precision NOT NULL,
    bounce_rate          double precision NOT NULL,
    product_views        bigint NOT NULL,
    affiliate_clicks     bigint NOT NULL,
    conversions          bigint NOT NULL,
    revenue              bigint NOT NULL,
    PRIMARY KEY (site_id, date)
);

-- The seed's ProductStats, per site, product and local day.
CREATE TABLE product_stats (
    site_id         text COLLATE "C" NOT NULL,
    product_id      text COLLATE "C" NOT NULL,
    date            date NOT NULL,
    views           bigint NOT NULL,
    unique_views    bigint NOT NULL,
    clicks          bigint NOT NULL,
    unique_clicks   bigint NOT NULL,
    conversions     bigint NOT NULL,
    revenue         bigint NOT NULL,
    ctr             double precision,
    conversion_rate double precision,
    PRIMARY KEY (site_id, product_id, date)
);
CREATE INDEX product_stats_site_date ON product_stats (site_id, date);

-- Where each transport's consumer stands; written in the same transaction as the events.
CREATE TABLE checkpoints (
    name       text COLLATE "C" PRIMARY KEY,
    position   text COLLATE "C" NOT NULL,
    updated_at timestamp NOT NULL
);

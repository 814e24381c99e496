-- Sightline warm store, DuckDB flavour: the initial schema.
-- Timestamps are UTC (TIMESTAMP without zone); day boundaries use each site's time zone.

CREATE TABLE sites (
    id              VARCHAR PRIMARY KEY,
    domain          VARCHAR NOT NULL UNIQUE,
    site_key        VARCHAR NOT NULL UNIQUE,
    allowed_origins VARCHAR[] NOT NULL,
    timezone        VARCHAR NOT NULL DEFAULT 'UTC',
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id            VARCHAR PRIMARY KEY,
    email         VARCHAR NOT NULL UNIQUE,
    password_hash VARCHAR,
    role          VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE api_tokens (
    id           VARCHAR PRIMARY KEY,
    user_id      VARCHAR NOT NULL,
    name         VARCHAR NOT NULL,
    token_hash   VARCHAR NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);

CREATE TABLE events (
    site_id           VARCHAR NOT NULL,
    event_id          VARCHAR NOT NULL,
    event_type        VARCHAR NOT NULL,
    ts                TIMESTAMP NOT NULL,
    received_at       TIMESTAMP NOT NULL,
    session_id        VARCHAR NOT NULL,
    visitor_id        VARCHAR NOT NULL,
    user_id           VARCHAR NOT NULL,
    page_url          VARCHAR NOT NULL,
    page_path         VARCHAR NOT NULL,
    page_title        VARCHAR NOT NULL,
    referrer          VARCHAR NOT NULL,
    referrer_source   VARCHAR NOT NULL,
    channel           VARCHAR NOT NULL,
    screen_resolution VARCHAR NOT NULL,
    viewport          VARCHAR NOT NULL,
    device_type       VARCHAR NOT NULL,
    os                VARCHAR NOT NULL,
    browser           VARCHAR NOT NULL,
    browser_version   VARCHAR NOT NULL,
    country           VARCHAR NOT NULL,
    region            VARCHAR NOT NULL,
    city              VARCHAR NOT NULL,
    utm_source        VARCHAR NOT NULL,
    utm_medium        VARCHAR NOT NULL,
    utm_campaign      VARCHAR NOT NULL,
    utm_term          VARCHAR NOT NULL,
    utm_content       VARCHAR NOT NULL,
    product_id        VARCHAR NOT NULL,
    -- properties.revenue in cents (0 when absent)
    revenue           BIGINT NOT NULL,
    properties        JSON NOT NULL
);

-- The seed's SessionStats: one row per session, merged exactly as its events arrive
-- (in any order). interactions counts events that make a visit "engaged".
CREATE TABLE session_stats (
    site_id         VARCHAR NOT NULL,
    session_id      VARCHAR NOT NULL,
    visitor_id      VARCHAR NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP NOT NULL,
    duration        BIGINT NOT NULL,
    page_views      BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    interactions    BIGINT NOT NULL,
    bounce          BOOLEAN NOT NULL,
    converted       BOOLEAN NOT NULL,
    revenue         BIGINT NOT NULL,
    landing_page    VARCHAR,
    landing_at      TIMESTAMP,
    exit_page       VARCHAR,
    exit_at         TIMESTAMP,
    referrer        VARCHAR NOT NULL,
    referrer_source VARCHAR NOT NULL,
    channel         VARCHAR NOT NULL,
    utm_source      VARCHAR NOT NULL,
    utm_medium      VARCHAR NOT NULL,
    utm_campaign    VARCHAR NOT NULL,
    device_type     VARCHAR NOT NULL,
    browser         VARCHAR NOT NULL,
    os              VARCHAR NOT NULL,
    country         VARCHAR NOT NULL,
    PRIMARY KEY (site_id, session_id)
);

-- The seed's DailyStats, per site and local day (recomputed from events when a day changes).
CREATE TABLE daily_stats (
    site_id              VARCHAR NOT NULL,
    date                 DATE NOT NULL,
    events               BIGINT NOT NULL,
    page_views           BIGINT NOT NULL,
    unique_visitors      BIGINT NOT NULL,
    sessions             BIGINT NOT NULL,
    avg_session_duration DOUBLE NOT NULL,
    bounce_rate          DOUBLE NOT NULL,
    product_views        BIGINT NOT NULL,
    affiliate_clicks     BIGINT NOT NULL,
    conversions          BIGINT NOT NULL,
    revenue              BIGINT NOT NULL,
    PRIMARY KEY (site_id, date)
);

-- The seed's ProductStats, per site, product and local day.
CREATE TABLE product_stats (
    site_id         VARCHAR NOT NULL,
    product_id      VARCHAR NOT NULL,
    date            DATE NOT NULL,
    views           BIGINT NOT NULL,
    unique_views    BIGINT NOT NULL,
    clicks          BIGINT NOT NULL,
    unique_clicks   BIGINT NOT NULL,
    conversions     BIGINT NOT NULL,
    revenue         BIGINT NOT NULL,
    ctr             DOUBLE,
    conversion_rate DOUBLE,
    PRIMARY KEY (site_id, product_id, date)
);

-- Where each transport's consumer stands; written in the same transaction as the events.
CREATE TABLE checkpoints (
    name       VARCHAR PRIMARY KEY,
    position   VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

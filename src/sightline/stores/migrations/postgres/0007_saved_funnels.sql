-- Funnels saved from the dashboard (mirrors duckdb/0007), shared by everyone who may see
-- the site. definition is JSON text: {"steps": [...], "window": "1d"}.
CREATE TABLE saved_funnels (
    id         text COLLATE "C" PRIMARY KEY,
    site_id    text COLLATE "C" NOT NULL,
    name       text NOT NULL,
    definition text NOT NULL,
    created_by text NOT NULL,
    created_at timestamp NOT NULL,
    UNIQUE (site_id, name)
);

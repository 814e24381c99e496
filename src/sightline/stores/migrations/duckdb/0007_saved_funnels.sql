-- Funnels saved from the dashboard, shared by everyone who may see the site.
-- definition is JSON text: {"steps": ["page_view;page:contains:/p/", ...], "window": "1d"}.
CREATE TABLE saved_funnels (
    id         VARCHAR PRIMARY KEY,
    site_id    VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    definition VARCHAR NOT NULL,
    created_by VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, name)
);

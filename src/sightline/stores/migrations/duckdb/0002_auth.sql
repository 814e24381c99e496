-- Authentication and administration: per-site roles, dashboard sign-ins, token hygiene,
-- and an audit trail of administrative changes.

-- users.role is now the user's role on EVERY site; 'none' means the user sees only the
-- sites granted below. A user's role on a site is the higher of the two.
CREATE TABLE site_grants (
    user_id    VARCHAR NOT NULL,
    site_id    VARCHAR NOT NULL,
    role       VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, site_id)
);

-- Dashboard sign-ins. Only the SHA-256 of the cookie value is stored; the CSRF token is
-- bound to its session and must come back in X-CSRF-Token on unsafe requests.
CREATE TABLE login_sessions (
    id_hash    VARCHAR PRIMARY KEY,
    user_id    VARCHAR NOT NULL,
    csrf_token VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- When each API token was last seen (updated at most every few seconds per process).
CREATE TABLE token_activity (
    token_id     VARCHAR PRIMARY KEY,
    last_used_at TIMESTAMP NOT NULL
);

-- Who changed what: users, grants, tokens, sites, sign-ins. Never holds secrets.
CREATE TABLE audit_log (
    ts      TIMESTAMP NOT NULL,
    actor   VARCHAR NOT NULL,
    action  VARCHAR NOT NULL,
    target  VARCHAR NOT NULL,
    details JSON NOT NULL
);

-- Authentication and administration (mirrors duckdb/0002): per-site roles, dashboard
-- sign-ins, token hygiene, and an audit trail of administrative changes.

-- users.role is the user's role on EVERY site; 'none' means the user sees only the
-- sites granted below. A user's role on a site is the higher of the two.
CREATE TABLE site_grants (
    user_id    text COLLATE "C" NOT NULL,
    site_id    text COLLATE "C" NOT NULL,
    role       text COLLATE "C" NOT NULL,
    created_at timestamp NOT NULL,
    PRIMARY KEY (user_id, site_id)
);

-- Dashboard sign-ins. Only the SHA-256 of the cookie value is stored; the CSRF token is
-- bound to its session and must come back in X-CSRF-Token on unsafe requests.
CREATE TABLE login_sessions (
    id_hash    text COLLATE "C" PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL,
    csrf_token text COLLATE "C" NOT NULL,
    created_at timestamp NOT NULL,
    expires_at timestamp NOT NULL
);
CREATE INDEX login_sessions_user ON login_sessions (user_id);

-- When each API token was last seen (updated at most every few seconds per process).
CREATE TABLE token_activity (
    token_id     text COLLATE "C" PRIMARY KEY,
    last_used_at timestamp NOT NULL
);

-- Who changed what: users, grants, tokens, sites, sign-ins. Never holds secrets.
CREATE TABLE audit_log (
    ts      timestamp NOT NULL,
    actor   text COLLATE "C" NOT NULL,
    action  text COLLATE "C" NOT NULL,
    target  text COLLATE "C" NOT NULL,
    details jsonb NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);

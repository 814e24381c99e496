"""Administrative operations shared by the CLI and the running server.

The embedded store has one writer process. When a server is running on a data
directory, the CLI sends these operations to it (``POST /api/v1/control/<op>`` with the
local control secret from ``<data_dir>/server.json``); otherwise it opens the store
itself. Either way the same functions below do the work.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sightline.sites import (
    Site,
    default_origins,
    new_site_id,
    new_site_key,
    normalise_domain,
    normalise_origin,
)
from sightline.stores.base import Store

ROLES = ("admin", "analyst", "viewer")
#: ``users.role`` of a user who has roles only on the sites granted to them.
NO_ROLE = "none"
SERVER_INFO = "server.json"
#: Who acts when an operation comes from the command line (the machine's operator).
CLI_ACTOR = "cli"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
#: argon2 takes 64 MiB and tens of milliseconds per hash: at most two at a time.
_hash_slots = threading.BoundedSemaphore(2)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the e-mail is unknown, so a sign-in takes as long either way (made
    on first use: a hash costs tens of milliseconds, which every CLI start would pay)."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AdminError(ValueError):
    """A refused operation; ``code`` is the machine-readable reason, ``status`` its HTTP
    status when it happens under an API route."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    with _hash_slots:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; takes the same time when there is no hash."""
    with _hash_slots:
        try:
            return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AdminError("weak_password", f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AdminError("invalid_password", f"a password has at most {MAX_PASSWORD} characters")


def site_json(site: Site) -> dict[str, Any]:
    return {
        "id": site.id,
        "domain": site.domain,
        "siteKey": site.site_key,
        "allowedOrigins": site.allowed_origins,
        "timezone": site.timezone,
        "consentMode": site.consent_mode,
        "retentionDays": site.retention_days,
    }


def add_site(
    store: Store,
    domain: str,
    origins: list[str] | None = None,
    timezone: str = "UTC",
    actor: str = CLI_ACTOR,
) -> dict[str, Any]:
    try:
        domain = normalise_domain(domain)
        allowed = [normalise_origin(o) for o in origins] if origins else default_origins(domain)
    except ValueError as exc:
        raise AdminError("invalid_site", str(exc)) from None
    _check_timezone(timezone)
    if store.get_site(domain) is not None:
        raise AdminError("site_exists", f"a site for {domain} exists already", 409)
    site = Site(
        id=new_site_id(),
        domain=domain,
        site_key=new_site_key(),
        allowed_origins=allowed,
        timezone=timezone,
        created_at=int(time.time() * 1000),
    )
    store.add_site(site)
    _audit(store, actor, "site.create", site.id, {"domain": domain})
    return site_json(site)


def update_site(
    store: Store,
    key: str,
    *,
    domain: str | None = None,
    origins: Sequence[str] | None = None,
    timezone: str | None = None,
    goals: Sequence[str] | None = None,
    actor: str = CLI_ACTOR,
) -> dict[str, Any]:
    """Change a site's domain, allowed origins or time zone.

    A new time zone moves day boundaries, so the site's daily rollups are rebuilt
    (with ``goals``, the conversion event types) when ``goals`` is given.
    """
    site = _site(store, key)
    try:
        new_domain = normalise_domain(domain) if domain is not None else site.domain
        allowed = [normalise_origin(o) for o in origins] if origins is not None else None
    except ValueError as exc:
        raise AdminError("invalid_site", str(exc)) from None
    if allowed is not None and not allowed:
        raise AdminError("invalid_site", "a site needs at least one allowed origin")
    new_zone = timezone if timezone is not None else site.timezone
    _check_timezone(new_zone)
    if new_domain != site.domain:
        other = store.get_site(new_domain)
        if other is not None and other.id != site.id:
            raise AdminError("site_exists", f"a site for {new_domain} exists already", 409)
    new_origins = allowed if allowed is not None else site.allowed_origins
    store.update_site(site.id, new_domain, list(dict.fromkeys(new_origins)), new_zone)
    if new_zone != site.timezone and goals is not None:
        store.rebuild_site_rollups(site.id, goals, previous_timezone=site.timezone)
    _audit(
        store,
        actor,
        "site.update",
        site.id,
        {"domain": new_domain, "allowedOrigins": new_origins, "timezone": new_zone},
    )
    return site_json(_site(store, site.id))


def rotate_site_key(store: Store, key: str, actor: str = CLI_ACTOR) -> dict[str, Any]:
    """Give a site a new public key; the collector refuses the old one from now on."""
    site = _site(store, key)
    store.set_site_key(site.id, new_site_key())
    _audit(store, actor, "site.rotate_key", site.id)
    return site_json(_site(store, site.id))


def delete_site(store: Store, key: str, actor: str = CLI_ACTOR) -> dict[str, Any]:
    """Delete a site and every event, session and rollup stored for it."""
    site = _site(store, key)
    store.delete_site(site.id)
    _audit(store, actor, "site.delete", site.id, {"domain": site.domain})
    return {"id": site.id, "domain": site.domain, "deleted": True}


def _check_timezone(timezone: str) -> None:
    try:
        if not timezone or timezone != timezone.strip() or "\0" in timezone:
            raise ValueError(timezone)
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise AdminError("invalid_timezone", f"unknown time zone {timezone!r}") from None


def audit_json(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "at": iso_time(record["ts"]),
        "actor": record["actor"],
        "action": record["action"],
        "target": record["target"],
        "details": msgspec.json.decode(record["details"]),
    }


def _audit(store: Store, actor: str, action: str, target: str, details: Any = None) -> None:
    store.record_audit(actor, action, target, details)


def iso_time(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def list_sites(store: Store) -> list[dict[str, Any]]:
    return [site_json(site) for site in store.list_sites()]


def add_user(
    store: Store,
    email: str,
    role: str | None,
    password: str | None,
    grants: Mapping[str, str] | None = None,
    actor: str = CLI_ACTOR,
) -> dict[str, Any]:
    """Add a user with a ``role`` on every site (None: none) and roles on some ``grants``
    (site id or domain -> role)."""
    email = normalise_email(email)
    _check_role(role)
    if password is not None:
        check_password_strength(password)
    site_grants = _resolve_grants(store, grants or {})
    if store.get_user(email) is not None:
        raise AdminError("user_exists", f"a user {email} exists already", 409)
    user_id = secrets.token_hex(8)
    store.create_user(
        user_id, email, hash_password(password) if password else None, role or NO_ROLE, site_grants
    )
    _audit(
        store, actor, "user.create", user_id, {"email": email, "role": role, "sites": site_grants}
    )
    result: dict[str, Any] = {"id": user_id, "email": email, "role": role}
    if site_grants:
        result["sites"] = [{"siteId": k, "role": v} for k, v in site_grants.items()]
    return result


def normalise_email(email: str) -> str:
    text = email.strip().lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or len(email) > 254 or any(c.isspace() for c in text):
        raise AdminError("invalid_email", f"not an e-mail address: {email!r}")
    return text


def user_json(store: Store, record: Mapping[str, Any]) -> dict[str, Any]:
    """A user as the API and the CLI show it (never a password hash)."""
    domains = {site.id: site.domain for site in store.list_sites()}
    role = record["role"]
    return {
        "id": record["id"],
        "email": record["email"],
        "role": None if role == NO_ROLE else role,
        "sites": [
            {"siteId": g["siteId"], "domain": domains.get(g["siteId"], ""), "role": g["role"]}
            for g in record["grants"]
        ],
        "hasPassword": bool(record["has_password"]),
        "createdAt": iso_time(record["created_at"]),
    }


def list_users(store: Store) -> list[dict[str, Any]]:
    return [user_json(store, record) for record in store.user_records()]


def get_user(store: Store, key: str) -> dict[str, Any]:
    return user_json(store, _user_record(store, key))


_UNCHANGED: Any = msgspec.UNSET


def update_user(
    store: Store,
    key: str,
    *,
    role: str | None = _UNCHANGED,
    grants: Mapping[str, str] | None = None,
    password: str | None = None,
    actor: str = CLI_ACTOR,
) -> dict[str, Any]:
    """Change a user's role on every site (None: none), replace their per-site ``grants``
    and/or set a new password (which ends their dashboard sign-ins)."""
    record = _user_record(store, key)
    new_role: str | None = None
    if role is not _UNCHANGED:
        _check_role(role)
        new_role = role or NO_ROLE
        _keep_an_admin(store, record, new_role)
    site_grants = None if grants is None else _resolve_grants(store, grants)
    if password is not None:
        check_password_strength(password)
    if new_role is not None or site_grants is not None:
        store.update_user_access(record["id"], new_role, site_grants)
        _audit(store, actor, "user.update", record["id"], {"role": new_role, "sites": site_grants})
    if password is not None:
        _set_password(store, record["id"], password, keep_session=None)
        _audit(store, actor, "user.password", record["id"])
    return user_json(store, _user_record(store, record["id"]))


def grant_site(
    store: Store, key: str, site: str, role: str | None, actor: str = CLI_ACTOR
) -> dict[str, Any]:
    """Give a user ``role`` on one site, or take it away (None)."""
    record = _user_record(store, key)
    _check_role(role)
    site_id = _site(store, site).id
    if not store.set_site_grant(record["id"], site_id, role):
        raise AdminError("not_granted", f"{record['email']} has no role of its own on {site}", 404)
    _audit(store, actor, "user.grant", record["id"], {"site": site_id, "role": role})
    return user_json(store, _user_record(store, record["id"]))


def set_password(
    store: Store,
    key: str,
    password: str,
    actor: str = CLI_ACTOR,
    keep_session: str | None = None,
) -> None:
    """Set a user's password; every dashboard sign-in but ``keep_session`` ends."""
    record = _user_record(store, key)
    check_password_strength(password)
    _set_password(store, record["id"], password, keep_session)
    _audit(store, actor, "user.password", record["id"])


def _set_password(store: Store, user_id: str, password: str, keep_session: str | None) -> None:
    store.set_password_hash(user_id, hash_password(password))
    store.delete_login_sessions(user_id=user_id, keep=keep_session)


def delete_user(store: Store, key: str, actor: str = CLI_ACTOR) -> dict[str, Any]:
    record = _user_record(store, key)
    _keep_an_admin(store, record, None)
    store.delete_user(record["id"])
    _audit(store, actor, "user.delete", record["id"], {"email": record["email"]})
    return {"id": record["id"], "email": record["email"], "deleted": True}


def _user_record(store: Store, key: str) -> dict[str, Any]:
    text = key.strip()
    records = store.user_records(text if "@" not in text else text.lower())
    if not records:
        raise AdminError("unknown_user", f"no user {key}", 404)
    return records[0]


def _check_role(role: str | None) -> None:
    if role is not None and role not in ROLES:
        raise AdminError("invalid_role", f"role must be one of {', '.join(ROLES)}")


def _keep_an_admin(store: Store, record: Mapping[str, Any], new_role: str | None) -> None:
    if record["role"] == "admin" and new_role != "admin" and store.count_admins() <= 1:
        raise AdminError(
            "last_admin", "this is the last admin of every site; make another admin first", 409
        )


def _resolve_grants(store: Store, grants: Mapping[str, str]) -> dict[str, str]:
    """Site id -> role; of two names for one site (id and domain) the later counts."""
    resolved: dict[str, str] = {}
    for site, role in grants.items():
        if role not in ROLES:
            raise AdminError("invalid_role", f"role must be one of {', '.join(ROLES)}")
        resolved[_site(store, site).id] = role
    return resolved


def _site(store: Store, key: str) -> Site:
    text = key.strip()
    site = store.get_site(text) or store.get_site(text.lower())
    if site is None:
        raise AdminError("unknown_site", f"no site {key!r}", 404)
    return site


def create_token(
    store: Store, email: str, name: str = "", actor: str = CLI_ACTOR
) -> dict[str, Any]:
    user = store.get_user(email.strip().lower()) or store.get_user(email.strip())
    if user is None:
        raise AdminError("unknown_user", f"no user {email}; add one with `sightline user add`", 404)
    name = name.strip()[:100]
    token = "sl_" + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(8)
    store.add_token(token_id, user["id"], name or "cli", hash_token(token))
    _audit(store, actor, "token.create", token_id, {"user": user["id"], "name": name or "cli"})
    role = user["role"]
    return {
        "id": token_id,
        "token": token,
        "name": name or "cli",
        "email": user["email"],
        "role": None if role == NO_ROLE else role,
    }


def token_json(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "name": record["name"],
        "userId": record["user_id"],
        "email": record["email"],
        "createdAt": iso_time(record["created_at"]),
        "lastUsedAt": iso_time(record["last_used_at"]),
        "revokedAt": iso_time(record["revoked_at"]),
    }


def list_tokens(store: Store, email: str | None = None) -> list[dict[str, Any]]:
    user_id = _user_record(store, email)["id"] if email else None
    return [token_json(r) for r in store.api_token_records(user_id=user_id)]


def revoke_token(store: Store, token_id: str, actor: str = CLI_ACTOR) -> dict[str, Any]:
    """Revoke an API token: refused at once by this process, within seconds by others."""
    records = store.api_token_records(token_id=token_id.strip())
    if not records:
        raise AdminError("unknown_token", f"no API token {token_id!r}", 404)
    if not store.revoke_api_token(records[0]["id"]):
        raise AdminError("token_revoked", f"API token {token_id} is revoked already", 409)
    _audit(store, actor, "token.revoke", records[0]["id"], {"user": records[0]["user_id"]})
    return token_json(store.api_token_records(token_id=records[0]["id"])[0])


def run_read_query(store: Store, sql: str) -> list[list[Any]]:
    """Read-only SQL for operators and tests; anything that writes is rolled back."""
    if not sql.lstrip().lower().startswith(("select", "with", "from", "describe", "show")):
        raise AdminError("read_only", "only SELECT queries are allowed")
    cur = store.cursor()
    cur.execute("BEGIN")
    try:
        rows = cur.execute(sql).fetchall()
    finally:
        cur.execute("ROLLBACK")
    return [list(row) for row in rows]


#: The operations the control endpoint and the CLI share: name -> (store, args) -> result.
OPERATIONS: dict[str, Callable[[Store, dict[str, Any]], Any]] = {
    "site-add": lambda s, a: add_site(s, a["domain"], a.get("origins"), a.get("timezone") or "UTC"),
    "site-list": lambda s, a: list_sites(s),
    "site-update": lambda s, a: update_site(
        s,
        a["site"],
        domain=a.get("domain"),
        origins=a.get("origins"),
        timezone=a.get("timezone"),
        goals=a.get("goals"),
    ),
    "site-rotate-key": lambda s, a: rotate_site_key(s, a["site"]),
    "site-delete": lambda s, a: delete_site(s, a["site"]),
    "user-add": lambda s, a: add_user(
        s,
        a["email"],
        None if a.get("sites") else a["role"],
        a.get("password"),
        dict.fromkeys(a.get("sites") or [], a["role"]),
    ),
    "user-list": lambda s, a: list_users(s),
    "user-grant": lambda s, a: grant_site(s, a["email"], a["site"], a.get("role")),
    "user-role": lambda s, a: update_user(s, a["email"], role=a.get("role")),
    "user-password": lambda s, a: set_password(s, a["email"], a["password"]),
    "user-delete": lambda s, a: delete_user(s, a["email"]),
    "token-create": lambda s, a: create_token(s, a["email"], a.get("name", "")),
    "token-list": lambda s, a: list_tokens(s, a.get("email")),
    "token-revoke": lambda s, a: revoke_token(s, a["id"]),
    "query": lambda s, a: run_read_query(s, a["sql"]),
}


# -- the running server's address card ---------------------------------------------------


def write_server_info(data_dir: Path, url: str, secret: str) -> None:
    path = data_dir / SERVER_INFO
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "pid": os.getpid(), "secret": secret}, fh)
    os.replace(tmp, path)


def read_server_info(data_dir: Path) -> dict[str, Any] | None:
    """The running server's card, or None if there is none or its process is gone."""
    try:
        info: dict[str, Any] = json.loads((data_dir / SERVER_INFO).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return info


def remove_server_info(data_dir: Path) -> None:
    (data_dir / SERVER_INFO).unlink(missing_ok=True)

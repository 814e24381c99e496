"""The ``sightline`` command line.

Commands that read or change data work whether or not a server runs on the same data
directory: with one running they go through it (the embedded store has one writer).
Every command takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from sightline import __version__, admin
from sightline.config import Settings, load_settings

F = Callable[..., Any]


def common_options(fn: F) -> F:
    fn = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)
    fn = click.option("--config", type=click.Path(dir_okay=False), help="A sightline.toml file.")(
        fn
    )
    fn = click.option(
        "--data-dir", type=click.Path(file_okay=False), help="Data directory (SIGHTLINE_DATA_DIR)."
    )(fn)
    return fn


def settings_from(config: str | None, data_dir: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, **overrides)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def call(settings: Settings, op: str, args: dict[str, Any], timeout: float = 30) -> Any:
    """Run an administrative operation through the running server, or on the store."""
    info = admin.read_server_info(settings.data_path)
    if info is not None:
        import httpx  # (only here: importing it costs every command a quarter second)

        try:
            response = httpx.post(
                f"{info['url']}/api/v1/control/{op}",
                json=args,
                headers={"X-Sightline-Control": info["secret"]},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"the server at {info['url']} did not answer: {exc}"
            ) from None
        if response.status_code != 200:
            error = response.json().get("error", {})
            raise click.ClickException(error.get("message", response.text))
        return response.json()
    from sightline.stores.base import open_store

    store = open_store(settings, pool_size=1)
    try:
        store.migrate()
        if op == "site-update":
            # A new time zone rebuilds the rollups from warm and archived events.
            from sightline.stores.parquet import open_cold

            open_cold(settings, store)
        return admin.OPERATIONS[op](store, args)
    except admin.AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sightline")
def main() -> None:
    """Sightline: self-hosted, privacy-first web and product analytics."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("sightline.stores").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


# -- serve ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", help="Address to listen on (SIGHTLINE_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (SIGHTLINE_PORT, default 8000).")
@click.option(
    "--role", type=click.Choice(["all", "collector", "api"]), help="What this process runs."
)
@common_options
def serve(
    host: str | None,
    port: int | None,
    role: str | None,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Run Sightline: collector, writer, API and dashboard in one process (--role all), or
    only the collector or only the API and dashboard of a scaled deployment."""
    import uvicorn

    from sightline.app import check_role, create_app

    settings = settings_from(config, data_dir, host=host, port=port, role=role)
    try:
        check_role(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    running = admin.read_server_info(settings.data_path)
    if running is not None:
        raise click.ClickException(
            f"a server (pid {running['pid']}) already runs on {settings.data_path}: "
            f"{running['url']}"
        )

    def announce() -> None:
        base = settings.base_url
        info = {
            "dashboard": f"{base}/",
            "collector": f"{base}/api/v1/analytics/collect",
            "dataDir": str(settings.data_path.resolve()),
        }
        emit(
            as_json,
            info,
            f"Sightline {__version__} is ready\n"
            f"  dashboard:  {info['dashboard']}\n"
            f"  collector:  {info['collector']}\n"
            f"  data dir:   {info['dataDir']}\n"
            "Press Ctrl+C to stop.",
        )

    app = create_app(settings, on_ready=announce)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        # X-Forwarded-For is believed only from `trusted_proxies`, by our own code.
        proxy_headers=False,
    )


@main.command()
@click.option(
    "--consumers",
    type=click.IntRange(min=1),
    help="Consumer processes to run (SIGHTLINE_WORKER_CONSUMERS, default 2).",
)
@click.option(
    "--metrics-port",
    type=int,
    help="Serve Prometheus metrics on 127.0.0.1 from this port (one port per consumer).",
)
@common_options
def worker(
    consumers: int | None,
    metrics_port: int | None,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Consume the shared transport (redis or rabbitmq) into PostgreSQL; SIGTERM drains."""
    from sightline.workers.worker import check_worker_settings, run_consumer, run_workers

    settings = settings_from(config, data_dir)
    try:
        check_worker_settings(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    count = consumers or settings.worker_consumers
    if count == 1:
        index = int(os.environ.get("SIGHTLINE_WORKER_INDEX", "0"))
        port = metrics_port + index if metrics_port is not None else None
        sys.exit(run_consumer(settings, metrics_port=port))
    child_args: list[str] = []
    for flag, value in (("--config", config), ("--data-dir", data_dir)):
        if value is not None:
            child_args += [flag, value]
    if metrics_port is not None:
        child_args += ["--metrics-port", str(metrics_port)]
    sys.exit(run_workers(settings, count, child_args))


@main.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue (redis and rabbitmq transports)."""


def _dead_letter_transport(settings: Settings) -> Any:
    if settings.transport == "local":
        raise click.ClickException(
            "the local transport has no dead-letter queue (nothing is ever set aside)"
        )
    from sightline.transport import open_transport

    transport = open_transport(settings, publisher=False, consumer=False)
    try:
        transport.start(None)
    except Exception as exc:
        raise click.ClickException(f"cannot reach the {settings.transport} broker: {exc}") from None
    return transport


@dlq.command("list")
@click.option("--limit", default=100, show_default=True, help="Most messages to show.")
@common_options
def dlq_list(limit: int, data_dir: str | None, config: str | None, as_json: bool) -> None:
    """List dead-lettered messages: id, why, how many events (they stay queued)."""
    transport = _dead_letter_transport(settings_from(config, data_dir))
    try:
        letters = transport.dead_letters(limit)
    finally:
        transport.close()
    result = [
        {"id": d.id, "reason": d.reason, "events": d.events, "bytes": len(d.payload)}
        for d in letters
    ]
    lines = [f"{d['id']:<36} {d['events']:>6} events  {d['reason']}" for d in result]
    emit(as_json, result, "\n".join(lines) or "the dead-letter queue is empty")


@dlq.command("replay")
@click.option("--id", "ids", multiple=True, help="Replay only this message (repeatable).")
@common_options
def dlq_replay(
    ids: tuple[str, ...], data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Put dead-lettered messages back on the events queue (all, or those --id)."""
    transport = _dead_letter_transport(settings_from(config, data_dir))
    try:
        replayed = transport.replay_dead_letters(list(ids) or None)
    finally:
        transport.close()
    emit(as_json, {"replayed": replayed}, f"replayed {replayed} message(s)")


@main.command()
@common_options
def migrate(data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Create or upgrade the schema of the configured store."""
    from sightline.stores.base import open_store

    settings = settings_from(config, data_dir)
    if settings.store == "duckdb" and admin.read_server_info(settings.data_path) is not None:
        emit(
            as_json,
            {"applied": [], "note": "server running"},
            "A server runs on this data directory; it migrated the store at start-up.",
        )
        return
    try:
        store = open_store(settings, pool_size=1)
    except Exception as exc:
        raise click.ClickException(f"cannot open the {settings.store} store: {exc}") from None
    try:
        applied = store.migrate()
        version = store.schema_version()
    finally:
        store.close()
    emit(
        as_json,
        {"applied": applied, "version": version},
        f"schema at version {version}" + (f" (applied {applied})" if applied else " (up to date)"),
    )


# -- sites, users, tokens -------------------------------------------------------------------


@main.group()
def site() -> None:
    """Manage tracked sites."""


@site.command("add")
@click.argument("domain")
@click.option(
    "--origin", "origins", multiple=True, help="An allowed origin (repeatable; '*' = any)."
)
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone for days.")
@common_options
def site_add(
    domain: str,
    origins: tuple[str, ...],
    timezone: str,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Add a site; prints its id and public site key."""
    settings = settings_from(config, data_dir)
    result = call(
        settings,
        "site-add",
        {"domain": domain, "origins": list(origins) or None, "timezone": timezone},
    )
    emit(
        as_json,
        result,
        f"site id:   {result['id']}\nsite key:  {result['siteKey']}\n"
        f"origins:   {', '.join(result['allowedOrigins'])}\n"
        f'snippet:   <script defer src="{settings.base_url}/sdk/v1/sightline.js" '
        f'data-site-key="{result["siteKey"]}"></script>',
    )


@site.command("list")
@common_options
def site_list(data_dir: str | None, config: str | None, as_json: bool) -> None:
    """List the sites."""
    result = call(settings_from(config, data_dir), "site-list", {})
    lines = [f"{s['domain']:<32} {s['id']}  {s['siteKey']}  {s['timezone']}" for s in result]
    emit(as_json, result, "\n".join(lines) or "no sites")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(admin.ROLES), required=True)
@click.option(
    "--site",
    "sites",
    multiple=True,
    help="Give the role on this site only (id or domain; repeatable). Default: every site.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@common_options
def user_add(
    email: str,
    role: str,
    sites: tuple[str, ...],
    password_stdin: bool,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Add a user with a role (admin, analyst or viewer) on every site or on some."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    args: dict[str, Any] = {"email": email, "role": role, "password": password}
    if sites:
        args["sites"] = list(sites)
    result = call(settings_from(config, data_dir), "user-add", args)
    where = f"on {', '.join(sites)}" if sites else "on every site"
    emit(
        as_json,
        result,
        f"user {result['email']} ({role} {where}) added, id {result['id']}",
    )


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--email", required=True, help="The user the token acts for.")
@click.option("--name", default="", help="A label for the token.")
@common_options
def token_create(
    email: str, name: str, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Create an API token (shown once; only its hash is stored)."""
    result = call(settings_from(config, data_dir), "token-create", {"email": email, "name": name})
    emit(as_json, result, f"{result['token']}\n(shown once: store it now)")


# -- administration: roles, passwords, tokens, site changes ---------------------------------


def _user_line(user: dict[str, Any]) -> str:
    grants = ", ".join(f"{g['domain'] or g['siteId']}={g['role']}" for g in user["sites"])
    every = user["role"] or "-"
    return f"{user['email']:<32} {user['id']}  every site: {every:<8} {grants}"


@user.command("list")
@common_options
def user_list(data_dir: str | None, config: str | None, as_json: bool) -> None:
    """List users with their role on every site and their per-site roles."""
    result = call(settings_from(config, data_dir), "user-list", {})
    emit(as_json, result, "\n".join(_user_line(u) for u in result) or "no users")


@user.command("grant")
@click.argument("email")
@click.option("--site", required=True, help="The site (id or domain).")
@click.option("--role", type=click.Choice(admin.ROLES), required=True)
@common_options
def user_grant(
    email: str, site: str, role: str, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Give a user a role on one site."""
    result = call(
        settings_from(config, data_dir), "user-grant", {"email": email, "site": site, "role": role}
    )
    emit(as_json, result, _user_line(result))


@user.command("revoke")
@click.argument("email")
@click.option("--site", required=True, help="The site (id or domain).")
@common_options
def user_revoke(
    email: str, site: str, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Take away a user's role on one site (their role on every site stays)."""
    result = call(
        settings_from(config, data_dir), "user-grant", {"email": email, "site": site, "role": None}
    )
    emit(as_json, result, _user_line(result))


@user.command("role")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice([*admin.ROLES, admin.NO_ROLE]),
    required=True,
    help="The role on every site; none leaves only the per-site roles.",
)
@common_options
def user_role(
    email: str, role: str, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Set a user's role on every site."""
    result = call(
        settings_from(config, data_dir),
        "user-role",
        {"email": email, "role": None if role == admin.NO_ROLE else role},
    )
    emit(as_json, result, _user_line(result))


@user.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@common_options
def user_password(
    email: str, password_stdin: bool, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Set a user's password; their dashboard sign-ins end."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    call(settings_from(config, data_dir), "user-password", {"email": email, "password": password})
    emit(as_json, {"email": email, "passwordChanged": True}, f"password of {email} changed")


@user.command("delete")
@click.argument("email")
@common_options
def user_delete(email: str, data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Delete a user with their roles, sign-ins and API tokens."""
    result = call(settings_from(config, data_dir), "user-delete", {"email": email})
    emit(as_json, result, f"user {result['email']} deleted")


@token.command("list")
@click.option("--email", help="Only this user's tokens.")
@common_options
def token_list(email: str | None, data_dir: str | None, config: str | None, as_json: bool) -> None:
    """List API tokens (never the tokens themselves)."""
    result = call(settings_from(config, data_dir), "token-list", {"email": email})
    lines = [
        f"{t['id']}  {t['email']:<32} {t['name']:<16} "
        f"{'revoked ' + t['revokedAt'] if t['revokedAt'] else 'active'}"
        f"  last used {t['lastUsedAt'] or 'never'}"
        for t in result
    ]
    emit(as_json, result, "\n".join(lines) or "no tokens")


@token.command("revoke")
@click.argument("token_id")
@common_options
def token_revoke(token_id: str, data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Revoke an API token by its id; it stops working at once."""
    result = call(settings_from(config, data_dir), "token-revoke", {"id": token_id})
    emit(as_json, result, f"token {result['id']} ({result['email']}) revoked")


@site.command("update")
@click.argument("site_ref", metavar="SITE")
@click.option("--domain", help="A new domain.")
@click.option(
    "--origin", "origins", multiple=True, help="Replace the allowed origins (repeatable)."
)
@click.option("--timezone", help="A new IANA time zone (daily rollups are rebuilt).")
@common_options
def site_update(
    site_ref: str,
    domain: str | None,
    origins: tuple[str, ...],
    timezone: str | None,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Change a site's domain, allowed origins or time zone."""
    settings = settings_from(config, data_dir)
    result = call(
        settings,
        "site-update",
        {
            "site": site_ref,
            "domain": domain,
            "origins": list(origins) or None,
            "timezone": timezone,
            "goals": list(settings.conversion_events),
        },
    )
    emit(
        as_json,
        result,
        f"{result['domain']}  {result['id']}  {result['timezone']}  "
        f"origins: {', '.join(result['allowedOrigins'])}",
    )


@site.command("rotate-key")
@click.argument("site_ref", metavar="SITE")
@common_options
def site_rotate_key(site_ref: str, data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Give a site a new public site key; the old one is refused from now on."""
    result = call(settings_from(config, data_dir), "site-rotate-key", {"site": site_ref})
    emit(as_json, result, f"new site key for {result['domain']}: {result['siteKey']}")


@site.command("delete")
@click.argument("site_ref", metavar="SITE")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
def site_delete(
    site_ref: str, yes: bool, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Delete a site and every event, session and rollup stored for it."""
    if not yes:
        click.confirm(f"Delete {site_ref} and all its data?", abort=True)
    result = call(settings_from(config, data_dir), "site-delete", {"site": site_ref})
    emit(as_json, result, f"site {result['domain']} ({result['id']}) deleted with its data")


# -- privacy ---------------------------------------------------------------------------------


def call_privacy(settings: Settings, op: str, args: dict[str, Any]) -> Any:
    """A privacy operation through the running server, or on the data directory itself."""
    if admin.read_server_info(settings.data_path) is not None:
        return call(settings, op, args)
    from sightline.privacy import service as privacy_service
    from sightline.stores.base import open_store

    store = open_store(settings, pool_size=1)
    hot = None
    try:
        store.migrate()
        if settings.hot_store == "redis":
            from sightline.stores.redis_hot import RedisHotStore

            hot = RedisHotStore(settings.redis_url, settings.redis_prefix)
        from sightline.stores.parquet import open_cold

        cold = open_cold(settings, store)
        service = privacy_service.PrivacyService.build(settings, store, hot=hot, cold=cold)
        return privacy_service.OPERATIONS[op](service, args)
    except admin.AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if hot is not None:
            hot.close()
        store.close()


def _subject_args(
    visitors: tuple[str, ...], users: tuple[str, ...], site_ref: str | None
) -> dict[str, Any]:
    if not visitors and not users:
        raise click.UsageError("give --visitor ID or --user ID")
    return {"visitorIds": list(visitors), "userIds": list(users), "site": site_ref}


def subject_options(fn: F) -> F:
    fn = click.option("--site", "site_ref", help="Only this site (id or domain); default: all.")(fn)
    fn = click.option("--user", "users", multiple=True, help="A user id (repeatable).")(fn)
    fn = click.option("--visitor", "visitors", multiple=True, help="A visitor id (repeatable).")(fn)
    return fn


@main.group()
def gdpr() -> None:
    """Data-subject requests: export or erase everything about a visitor or user."""


@gdpr.command("export")
@subject_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="sightline-subject-export.zip",
    show_default=True,
    help="Where to write the zip archive.",
)
@common_options
def gdpr_export(
    visitors: tuple[str, ...],
    users: tuple[str, ...],
    site_ref: str | None,
    out: str,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Write a zip of every record about the subject, from every tier, with a manifest."""
    import base64

    settings = settings_from(config, data_dir)
    result = call_privacy(settings, "gdpr-export", _subject_args(visitors, users, site_ref))
    with open(out, "wb") as fh:
        fh.write(base64.b64decode(result["archive"]))
    manifest = result["manifest"]
    found = ", ".join(f"{tier}: {count}" for tier, count in manifest["found"].items())
    emit(as_json, {"archive": out, "manifest": manifest}, f"wrote {out} ({found})")


@gdpr.command("erase")
@subject_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
def gdpr_erase(
    visitors: tuple[str, ...],
    users: tuple[str, ...],
    site_ref: str | None,
    yes: bool,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Erase every record about the subject from every tier (audited; cannot be undone)."""
    args = _subject_args(visitors, users, site_ref)
    if not yes:
        click.confirm("Erase everything stored about this subject?", abort=True)
    report = call_privacy(settings_from(config, data_dir), "gdpr-erase", args)
    counts = ", ".join(f"{tier}: {count}" for tier, count in report["tiers"].items())
    emit(as_json, report, f"erased in {report['seconds']}s ({counts})")


@main.command()
@click.option("--site", "site_ref", help="Only this site (id or domain); default: all.")
@common_options
def retention(
    site_ref: str | None, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Delete raw events older than each site's retention (rollups are kept)."""
    report = call_privacy(settings_from(config, data_dir), "retention", {"site": site_ref})
    lines = [
        f"{r['domain']}: {r['eventsDeleted']} events, {r['sessionsDeleted']} sessions "
        f"older than {r['retentionDays']} days deleted"
        for r in report["sites"]
    ]
    emit(as_json, report, "\n".join(lines) or "no site has a retention period")


@site.command("privacy")
@click.argument("site_ref", metavar="SITE")
@click.option(
    "--consent-mode",
    type=click.Choice(["cookieless", "consent-required"]),
    help="cookieless (no consent needed) or consent-required.",
)
@click.option("--retention-days", type=int, help="Days raw events are kept (0: for ever).")
@common_options
def site_privacy(
    site_ref: str,
    consent_mode: str | None,
    retention_days: int | None,
    data_dir: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Show or change a site's consent mode and raw-event retention."""
    result = call_privacy(
        settings_from(config, data_dir),
        "site-privacy",
        {"site": site_ref, "consentMode": consent_mode, "retentionDays": retention_days},
    )
    keep = f"{result['retentionDays']} days" if result["retentionDays"] else "for ever"
    emit(
        as_json,
        result,
        f"{result['domain']}: consent mode {result['consentMode']}, raw events kept {keep}",
    )


# -- demo ------------------------------------------------------------------------------------


DEMO_DOMAIN = "demo.sightline.local"


@main.command()
@click.option("--days", default=30, show_default=True, help="Days of history to generate.")
@click.option("--visitors", default=500, show_default=True, help="Distinct visitors.")
@click.option("--seed", default=7, show_default=True, help="Random seed.")
@common_options
def demo(
    days: int, visitors: int, seed: int, data_dir: str | None, config: str | None, as_json: bool
) -> None:
    """Send realistic traffic for an affiliate product catalogue through the collector."""
    from sightline import demo as traffic

    settings = settings_from(config, data_dir)
    max_days = settings.max_event_age_hours // 24
    if not 1 <= days <= max_days:
        raise click.BadParameter(
            f"between 1 and {max_days} (events older than max_event_age_hours are refused)",
            param_hint="--days",
        )
    with _collector_for(settings) as (base_url, headers):
        sites = call(settings, "site-list", {})
        found = [s for s in sites if s["domain"] == DEMO_DOMAIN]
        site_info = (
            found[0]
            if found
            else call(settings, "site-add", {"domain": DEMO_DOMAIN, "origins": ["*"]})
        )
        requests = list(traffic.generate_traffic(days=days, visitors=visitors, seed=seed))
        with click.progressbar(
            length=len(requests),
            label="sending demo traffic",
            file=sys.stderr,
            show_pos=True,
            show_eta=True,
        ) as bar:
            summary = traffic.send_traffic(
                base_url,
                site_info["siteKey"],
                requests,
                headers=headers,
                on_progress=bar.update,
            )
    result = {
        "site": site_info["domain"],
        "siteId": site_info["id"],
        "events": summary.queued,
        "rejected": summary.rejected,
        "requests": summary.requests,
        "seconds": round(summary.seconds, 2),
    }
    emit(
        as_json,
        result,
        f"demo: {summary.queued} events in {summary.requests} requests for "
        f"{site_info['domain']} (site id {site_info['id']}) in {summary.seconds:.1f}s"
        + (f"; {summary.rejected} rejected" if summary.rejected else ""),
    )


@contextlib.contextmanager
def _collector_for(settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    """The running server's collector, or a temporary in-process one on a free port."""
    info = admin.read_server_info(settings.data_path)
    if info is not None:
        yield info["url"], {"X-Sightline-Control": info["secret"]}
        return
    import uvicorn

    from sightline.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    local = Settings(
        **{
            **{f: getattr(settings, f) for f in Settings.__struct_fields__},
            "host": "127.0.0.1",
            "port": port,
        }
    )
    ready = threading.Event()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(local, on_ready=ready.set),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise click.ClickException("the temporary server did not start")
    info = admin.read_server_info(local.data_path)
    assert info is not None
    try:
        yield f"http://127.0.0.1:{port}", {"X-Sightline-Control": info["secret"]}
    finally:
        server.should_exit = True
        thread.join(60)
        while admin.read_server_info(local.data_path) is not None and thread.is_alive():
            time.sleep(0.1)


if __name__ == "__main__":
    main()


# -- the cold tier --------------------------------------------------------------------------


@contextlib.contextmanager
def _archive_operations(settings: Settings) -> Iterator[Callable[[str, dict[str, Any]], Any]]:
    """Run archive operations through the running server, or on the store here."""
    if admin.read_server_info(settings.data_path) is not None:
        # One day of a busy site can take minutes to archive.
        yield lambda op, args: call(settings, op, args, timeout=900)
        return
    if settings.store != "duckdb":
        raise click.ClickException(
            "the cold tier is read by the embedded DuckDB store only (store = duckdb)"
        )
    if settings.warm_days <= 0:
        raise click.ClickException("warm_days is 0: archiving is turned off")
    from sightline.stores.base import open_store
    from sightline.stores.duckdb import DuckDBStore
    from sightline.stores.parquet import ColdError, open_cold
    from sightline.workers import archive as archiving

    store = open_store(settings, pool_size=1)
    try:
        store.migrate()
        cold = open_cold(settings, store)
        assert cold is not None and isinstance(store, DuckDBStore)
        archiver = archiving.Archiver(store, cold, archiving.effective_warm_days(settings))

        def run(op: str, args: dict[str, Any]) -> Any:
            try:
                return archiving.OPERATIONS[op](archiver, args)
            except (ColdError, archiving.ArchiveRequestError) as exc:
                raise click.ClickException(str(exc)) from None

        yield run
    finally:
        store.close()


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list the days that would be archived.")
@common_options
def archive(dry_run: bool, data_dir: str | None, config: str | None, as_json: bool) -> None:
    """Move events older than the warm window (warm_days) to Parquet in the cold tier."""
    settings = settings_from(config, data_dir)
    started = time.monotonic()
    with _archive_operations(settings) as run:
        plan = run("archive-plan", {})
        pending = plan["pending"]
        done: list[dict[str, Any]] = []
        if not dry_run:
            total = len(pending)
            for index, item in enumerate(pending, 1):
                line = run("archive-day", {"site": item["site"], "day": item["day"]})
                done.append(line)
                click.echo(
                    f"[{index}/{total}] {line['site']} {line['day']}: {line['rows']} events, "
                    f"{line['bytes'] / 1024:.1f} KiB in {line.get('seconds', 0):.2f}s",
                    err=True,
                )
        status = run("archive-status", {})
    result = {
        "cutoff": plan["cutoff"],
        "dryRun": dry_run,
        "pending": pending if dry_run else [],
        "days": len(done),
        "rows": sum(d["rows"] for d in done),
        "bytes": sum(d["bytes"] for d in done),
        "removedUnrecorded": len(plan["removedUnrecorded"]),
        "cold": status,
        "seconds": round(time.monotonic() - started, 2),
    }
    if dry_run:
        text = f"{len(pending)} day(s) older than {plan['cutoff']} would be archived" + "".join(
            f"\n  {p['site']} {p['day']}: {p['rows']} events" for p in pending
        )
    else:
        text = (
            f"archived {result['days']} day(s), {result['rows']} events, "
            f"{result['bytes'] / 1024:.1f} KiB; the cold tier holds {status['rows']} events "
            f"in {status['files']} file(s) at {status['location']}"
        )
    emit(as_json, result, text)

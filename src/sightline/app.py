"""The composition root: builds the backends from settings and wires the web app."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from sightline import admin
from sightline.api import routes as api_routes
from sightline.api.auth import Authenticator, AuthorizationGuard
from sightline.collector import routes as collector_routes
from sightline.collector.ratelimit import RateLimiter
from sightline.config import Settings
from sightline.errors import ApiError, error_response
from sightline.metrics import Metrics
from sightline.pipeline import Pipeline, build_pipeline
from sightline.pipeline.proxies import TrustedProxies, resolve_client_ip
from sightline.sites import SiteRegistry
from sightline.stores.base import DUCKDB_FILE, Store, open_store
from sightline.transport import Transport, open_transport
from sightline.workers.ingest import Writer

if TYPE_CHECKING:
    from sightline.privacy.service import PrivacyService
    from sightline.stores.parquet import ColdStore
    from sightline.stores.redis_hot import RedisHotStore
    from sightline.workers.archive import Archiver

log = logging.getLogger("sightline")

STORE_FILE = DUCKDB_FILE


@dataclass
class Runtime:
    """Everything one Sightline process holds, built from its settings."""

    settings: Settings
    #: The warm store (any stores.base.Store: DuckDB or PostgreSQL). Annotated with the
    #: embedded store's class while the administrative operations are typed with it.
    store: Store
    transport: Transport
    pipeline: Pipeline
    metrics: Metrics
    sites: SiteRegistry
    rate_limiter: RateLimiter
    auth: Authenticator
    #: The in-process writer (role all); collector and api processes have none.
    writer: Writer | None
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    control_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: bool = False
    #: Realtime counters shared by every process (hot_store = redis).
    hot: RedisHotStore | None = None
    #: GDPR export and erasure over every tier, retention, consent settings.
    privacy: PrivacyService = field(default=None)  # type: ignore[assignment]
    #: Archived events (DuckDB store) and what moves them there (role all, warm_days > 0).
    cold: ColdStore | None = None
    archiver: Archiver | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        check_role(settings)
        settings.data_path.mkdir(parents=True, exist_ok=True)
        store = open_store(settings)
        store.migrate()
        role = settings.role
        transport = open_transport(
            settings, publisher=role in ("all", "collector"), consumer=role == "all"
        )
        metrics = Metrics()
        pipeline = build_pipeline(settings)
        metrics.watch_pipeline(pipeline)
        metrics.watch_queue(transport.pending)
        writer = (
            Writer(store, transport, settings, metrics, shared=settings.transport != "local")
            if role == "all"
            else None
        )
        hot = None
        if settings.hot_store == "redis":
            from sightline.stores.redis_hot import RedisHotStore

            hot = RedisHotStore(settings.redis_url, settings.redis_prefix)
            if writer is not None:
                writer.listeners.append(hot.record)
        from sightline.privacy.service import PrivacyService
        from sightline.stores.duckdb import DuckDBStore
        from sightline.stores.parquet import open_cold
        from sightline.workers.archive import Archiver, effective_warm_days

        cold = open_cold(settings, store)
        privacy = PrivacyService.build(settings, store, writer=writer, hot=hot, cold=cold)
        archiver = (
            Archiver(store, cold, effective_warm_days(settings))
            if cold is not None
            and isinstance(store, DuckDBStore)
            and role == "all"
            and settings.warm_days > 0
            else None
        )
        return cls(
            privacy=privacy,
            settings=settings,
            store=store,
            transport=transport,
            pipeline=pipeline,
            metrics=metrics,
            sites=SiteRegistry(store.list_sites),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute),
            auth=Authenticator(store),
            writer=writer,
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            hot=hot,
            cold=cold,
            archiver=archiver,
        )

    def start(self) -> None:
        self.pipeline.maintain()
        if self.writer is not None:
            self.transport.start(self.store.checkpoint(self.writer.checkpoint_name))
            self.writer.start()
        elif self.settings.role == "collector":
            self.transport.start(None)
        self.store.watch_sites(self.sites.reload)
        self.sites.reload()
        admin.write_server_info(
            self.settings.data_path, self.settings.base_url, self.control_secret
        )
        self.started = True

    def stop(self) -> None:
        """Drain: the writer commits what the transport holds, then everything closes."""
        self.started = False
        if self.writer is not None:
            self.writer.stop()
        if self.settings.role != "api":
            self.transport.close()
        admin.remove_server_info(self.settings.data_path)
        if self.hot is not None:
            self.hot.close()
        self.store.close()

    def readiness_problems(self) -> list[str]:
        problems = []
        if not self.started:
            problems.append("starting or stopping")
        if self.writer is not None and (
            self.writer._thread is None or not self.writer._thread.is_alive()
        ):
            problems.append("the writer is not running")
        return problems

    def is_control(self, request: Request) -> bool:
        """The request carries this server's local control secret (the CLI, the demo)."""
        given = request.headers.get("x-sightline-control")
        return given is not None and hmac.compare_digest(given, self.control_secret)

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else ""
        return resolve_client_ip(peer, request.headers.get("x-forwarded-for"), self.trusted_proxies)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(
        ApiError(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)),
        dict(exc.headers or {}),
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal_error", "something went wrong on our side"))


def _extra_routes() -> list[BaseRoute]:
    from sightline import dashboard, tracker
    from sightline.api import (
        experiments,
        funnels,
        openapi,
        privacy,
        session,
        sites,
        stream,
        users,
        vitals,
    )
    from sightline.collector import experiments as experiment_config

    return [
        *experiment_config.routes,
        *experiments.routes,
        *privacy.routes,
        *stream.routes,
        *vitals.routes,
        *session.routes,
        *users.routes,
        *sites.routes,
        *funnels.routes,
        *openapi.routes,
        *tracker.routes,
        *dashboard.routes,
    ]


def check_role(settings: Settings) -> None:
    """Refuse role/backend combinations that cannot work (raises ValueError)."""
    if settings.role == "all":
        return
    if settings.store != "postgres":
        raise ValueError(
            f"role {settings.role} shares its store with other processes: it needs "
            "store = postgres (the embedded DuckDB file has one process)"
        )
    if settings.role == "collector" and settings.transport == "local":
        raise ValueError(
            "role collector hands events to workers: it needs transport = redis or rabbitmq"
        )


def _routes_for(role: str) -> list[BaseRoute]:
    """collector: ingest, the tracker script, health and metrics; api: everything else;
    all: everything."""
    from sightline import tracker
    from sightline.api import analytics

    if role == "collector":
        analytics_routes = set(map(id, analytics.routes))
        service = [r for r in api_routes.routes if id(r) not in analytics_routes]
        return [*collector_routes.routes, *service, *tracker.routes]
    if role == "api":
        return [*api_routes.routes, *_extra_routes()]
    return [*collector_routes.routes, *api_routes.routes, *_extra_routes()]


#: How often the pipeline's upkeep runs (salt rotation and deletion, cache pruning).
MAINTENANCE_SECONDS = 60.0


async def _apply_retention_periodically(runtime: Runtime) -> None:
    """The retention job (role all: the process that owns the writer)."""
    minutes = runtime.settings.retention_interval_minutes
    while minutes > 0 and runtime.writer is not None:
        await asyncio.sleep(minutes * 60)
        try:
            await asyncio.to_thread(runtime.privacy.apply_retention)
        except Exception:
            log.exception("retention job failed; retrying in %d minutes", minutes)


async def _maintain_periodically(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(MAINTENANCE_SECONDS)
        try:
            runtime.pipeline.maintain()
        except Exception:
            log.exception("pipeline upkeep failed; retrying in %.0fs", MAINTENANCE_SECONDS)


#: Seconds after start-up before the first scheduled archive run.
ARCHIVE_DELAY_SECONDS = 300.0


async def _archive_periodically(runtime: Runtime) -> None:
    """Archive days older than the warm window, every ``archive_interval_hours``."""
    archiver = runtime.archiver
    interval = runtime.settings.archive_interval_hours * 3600
    if archiver is None or interval <= 0:
        return
    await asyncio.sleep(min(ARCHIVE_DELAY_SECONDS, interval))
    while True:
        try:
            summary = await asyncio.to_thread(archiver.run)
            if summary["days"] or summary["failed"]:
                log.info("archived %s", summary)
        except Exception:
            log.exception("archiving failed; retrying in %.0fs", interval)
        await asyncio.sleep(interval)


#: Longest a stopping server waits for the warm-up's current query.
WARM_UP_STOP_SECONDS = 30.0


def _warm_in_background(app: Starlette, runtime: Runtime) -> Callable[[], Awaitable[None]]:
    """Start warming the store (api.warmup) in a thread; returns what stops it."""
    if runtime.settings.role == "collector":

        async def nothing() -> None:
            return None

        return nothing
    from sightline.api.warmup import warm_overviews

    stop = threading.Event()
    task = asyncio.create_task(asyncio.to_thread(warm_overviews, app.state, stop))

    async def stopping() -> None:
        stop.set()
        await asyncio.wait({task}, timeout=WARM_UP_STOP_SECONDS)

    return stopping


def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """The ASGI app. Backends start in the lifespan (or use a prebuilt ``runtime``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime or Runtime.build(settings)
        app.state.runtime = rt
        rt.start()
        upkeep = asyncio.create_task(_maintain_periodically(rt))
        retention = asyncio.create_task(_apply_retention_periodically(rt))
        archiving = asyncio.create_task(_archive_periodically(rt))
        warming = _warm_in_background(app, rt)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            upkeep.cancel()
            retention.cancel()
            archiving.cancel()
            await warming()
            rt.stop()

    return Starlette(
        routes=_routes_for(settings.role),
        lifespan=lifespan,
        middleware=[Middleware(AuthorizationGuard)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )

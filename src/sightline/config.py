"""Settings: defaults, then ``sightline.toml``, then ``SIGHTLINE_*`` environment variables.

Every setting is documented in docs/settings.md (a test keeps the two in step).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

ENV_PREFIX = "SIGHTLINE_"


class Settings(msgspec.Struct, kw_only=True):
    # -- where and how to run ----------------------------------------------------------
    #: Directory holding the store, the spool and the salts.
    data_dir: str = "sightline-data"
    #: Address the server listens on.
    host: str = "127.0.0.1"
    #: Port the server listens on.
    port: int = 8000
    #: What this process runs: everything (embedded), only the collector, or only the API.
    role: Literal["all", "collector", "api"] = "all"
    #: Address users reach Sightline at, for printed URLs and snippets (default: host:port).
    public_url: str = ""
    # -- backends ----------------------------------------------------------------------
    #: Warm store engine: duckdb (one file in data_dir, embedded) or postgres (scaled).
    store: Literal["duckdb", "postgres"] = "duckdb"
    #: PostgreSQL connection URL (store = postgres).
    postgres_url: str = ""
    #: How accepted events reach the writer: local (on-disk spool, embedded), redis
    #: (Streams) or rabbitmq (quorum queue); redis and rabbitmq need `sightline worker`.
    transport: Literal["local", "redis", "rabbitmq"] = "local"
    #: Redis URL (transport = redis, hot store).
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key and stream, so installations can share one Redis.
    redis_prefix: str = "sightline"
    #: RabbitMQ URL; its vhost isolates installations (transport = rabbitmq).
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    #: A MaxMind-format .mmdb file for country, region and city (empty: no geo).
    geoip_db: str = ""
    #: Cold tier location for archived events: a directory or an s3://bucket/prefix URL
    #: (empty: the "cold" directory in data_dir). S3 credentials come from the usual AWS
    #: environment variables.
    cold_url: str = ""
    #: Endpoint of an S3-compatible server for an s3:// cold_url (empty: AWS S3).
    cold_s3_endpoint_url: str = ""
    #: Days of events kept in the warm store; older whole UTC days are archived to the
    #: cold tier (0: never archive; never fewer than max_event_age_hours in days + 1).
    warm_days: int = 90
    #: Hours between the embedded server's archive runs (0: only `sightline archive`).
    archive_interval_hours: float = 24
    # -- production backends -----------------------------------------------------------
    #: Connections each process keeps to PostgreSQL (store = postgres).
    postgres_pool_size: int = 8
    #: Hours the PostgreSQL store remembers stored event ids, so a redelivered batch or a
    #: client's retry is never stored twice.
    postgres_dedupe_hours: int = 168
    #: Consumer processes `sightline worker` runs (redis or rabbitmq transport).
    worker_consumers: int = 2
    #: Messages a RabbitMQ consumer may hold unacknowledged (its prefetch).
    rabbitmq_prefetch: int = 200
    #: Milliseconds a busy RabbitMQ collector waits for more requests before publishing
    #: (busy: its last message carried several requests), so each message carries more
    #: events: less CPU per event for the broker and both clients, a little more
    #: acknowledge latency under load (0: publish at once).
    rabbitmq_linger_ms: float = 5
    #: Seconds a Redis stream entry may stay unacknowledged before another consumer
    #: claims it (its consumer is presumed dead).
    redis_claim_idle_seconds: float = 60
    #: Deliveries of one message before it is moved to the dead-letter queue (high enough
    #: that redeliveries after dropped connections never set a good message aside).
    delivery_limit: int = 20
    #: Largest local outbox (bytes) a collector fills while the broker is unreachable;
    #: beyond it, the collector answers 503 with Retry-After.
    outbox_max_bytes: int = 1024 * 1024 * 1024
    #: Realtime counters and the query result cache shared by every process: none (counters
    #: read from the warm store, each process caches for itself) or redis.
    hot_store: Literal["none", "redis"] = "none"
    # -- collector ---------------------------------------------------------------------
    #: Requests per minute one client IP may make to the collector (0 turns it off).
    rate_limit_per_minute: int = 100
    #: Proxies (IPs or CIDR ranges) whose X-Forwarded-For is believed.
    trusted_proxies: list[str] = []
    # -- dashboard sign-in -------------------------------------------------------------
    #: Mark the sign-in cookies Secure: auto (when public_url or the request is https),
    #: always, or never.
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    #: How long a dashboard sign-in lasts, in hours.
    session_hours: int = 168
    # -- local transport (spool) -------------------------------------------------------
    #: Size at which the spool starts a new segment file, in bytes.
    spool_segment_bytes: int = 64 * 1024 * 1024
    #: Most accepted events waiting for the writer before the collector answers 503.
    queue_max_events: int = 200_000
    # -- writer ------------------------------------------------------------------------
    #: Most events the writer commits in one transaction.
    writer_batch_events: int = 50_000
    #: Longest an accepted event waits before the writer commits it, in milliseconds.
    writer_flush_ms: int = 200
    #: How many recent event ids the writer remembers to drop duplicates.
    dedupe_window: int = 1_000_000
    #: Event types that count as a conversion (a session converts on any of them).
    conversion_events: list[str] = msgspec.field(default_factory=lambda: ["affiliate_click"])
    #: Minutes of inactivity that end a session.
    session_timeout_minutes: int = 30
    # -- privacy -----------------------------------------------------------------------
    #: Drop events sent with a `DNT: 1` or `Sec-GPC: 1` request header (never stored).
    honour_privacy_signals: bool = True
    #: Secret key of the keyed hashes (HMAC-SHA256) the erasure audit and tombstones keep
    #: instead of erased ids; empty: a random key made once and kept in the warm store.
    privacy_secret: str = ""
    #: Days an erased subject's tombstone is kept: events of the subject received before
    #: the erasure and still queued are discarded when they reach the writer.
    tombstone_days: int = 30
    #: Minutes between two runs of the retention job in the server (0 turns it off).
    retention_interval_minutes: int = 60
    # -- enrichment --------------------------------------------------------------------
    #: Drop crawlers, headless browsers, HTTP clients and monitors (see docs/enrichment.md).
    bot_filter: bool = True
    #: File of datacenter networks (one CIDR per line); events from them are dropped as bots.
    datacenter_ranges_file: str = ""
    #: "prefix" keeps the client's /24 (IPv4) or /48 (IPv6) network in properties.$ipPrefix.
    anonymize_ip: Literal["off", "prefix"] = "off"
    #: Extra query-parameter / property names whose values are scrubbed.
    scrub_names: list[str] = []
    #: Names never scrubbed, overriding the built-in denylist (e.g. "code").
    scrub_allow: list[str] = []
    #: Extra regular expressions; matching text in URLs, titles and properties is scrubbed.
    scrub_patterns: list[str] = []
    #: Client clocks within this many seconds of the server's are not corrected (transit
    #: jitter is not skew).
    clock_skew_tolerance_seconds: float = 30
    #: Events older than this (after clock correction) are rejected as too_old.
    max_event_age_hours: int = 31 * 24
    #: Events further ahead of the server clock than this are rejected as in_future.
    max_future_seconds: int = 300
    #: Distinct user agents whose parse results are kept in memory.
    user_agent_cache_size: int = 10_000

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        wildcard = self.host in ("0.0.0.0", "::", "")  # noqa: S104 - reached via loopback
        host = "127.0.0.1" if wildcard else self.host
        return f"http://{host}:{self.port}"


SETTING_NAMES: tuple[str, ...] = Settings.__struct_fields__


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, a TOML file, the environment and explicit overrides.

    Without ``config_file``, ``SIGHTLINE_CONFIG`` or ``./sightline.toml`` is read if present.
    Overrides whose value is None are ignored (handy for optional CLI flags).
    """
    values: dict[str, Any] = {}
    path = config_file or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if path is None and Path("sightline.toml").is_file():
        path = "sightline.toml"
    if path is not None:
        with open(path, "rb") as fh:
            file_values = tomllib.load(fh)
        unknown = set(file_values) - set(SETTING_NAMES)
        if unknown:
            raise ValueError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
        values.update(file_values)
    for name in SETTING_NAMES:
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _parse_env(name, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid setting: {exc}") from None


def _parse_env(name: str, raw: str) -> Any:
    default = getattr(Settings(), name)
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw

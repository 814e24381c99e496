"""Real PostgreSQL, Redis and RabbitMQ for tests, each run isolated and cleaned up.

- PostgreSQL: a fresh database per use (dropped afterwards), on the server at
  ``SIGHTLINE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
- Redis: a fresh key prefix per use (its keys deleted afterwards), on
  ``SIGHTLINE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
- RabbitMQ: a fresh vhost per use (deleted afterwards), made with the management HTTP
  API when it answers (``SIGHTLINE_TEST_RABBITMQ_API``, default ``http://127.0.0.1:15672``)
  or else ``rabbitmqctl``; the broker is ``SIGHTLINE_TEST_RABBITMQ_URL`` (default
  ``amqp://guest:guest@127.0.0.1:5672/``).

A missing service skips the test with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from tests.conftest import skip_or_fail

POSTGRES_URL = os.environ.get(
    "SIGHTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SIGHTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("SIGHTLINE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_API = os.environ.get("SIGHTLINE_TEST_RABBITMQ_API", "http://127.0.0.1:15672")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


# -- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database; dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
        raise
    name = unique_name("sightline_test")
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield with_path(POSTGRES_URL, "/" + name)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# -- Redis -----------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix no one else uses; every key under it is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
        raise
    prefix = unique_name("sightline-test")
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


# -- RabbitMQ --------------------------------------------------------------------------------


class _VhostAdmin:
    """Creates and deletes vhosts through the management API or rabbitmqctl."""

    def __init__(self) -> None:
        parts = urlsplit(RABBITMQ_URL)
        self.user = parts.username or "guest"
        self.password = parts.password or "guest"
        self.api: str | None = None
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(
                RABBITMQ_API + "/api/overview", auth=(self.user, self.password), timeout=3
            )
            if response.status_code == 200:
                self.api = RABBITMQ_API
        self.ctl = shutil.which("rabbitmqctl") if self.api is None else None

    @property
    def available(self) -> bool:
        return self.api is not None or self.ctl is not None

    def add(self, vhost: str) -> None:
        if self.api is not None:
            auth = (self.user, self.password)
            base = f"{self.api}/api"
            httpx.put(f"{base}/vhosts/{quote(vhost, safe='')}", auth=auth).raise_for_status()
            httpx.put(
                f"{base}/permissions/{quote(vhost, safe='')}/{quote(self.user, safe='')}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
                auth=auth,
            ).raise_for_status()
            return
        assert self.ctl is not None
        self._ctl("add_vhost", vhost)
        self._ctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")

    def delete(self, vhost: str) -> None:
        if self.api is not None:
            httpx.delete(
                f"{self.api}/api/vhosts/{quote(vhost, safe='')}", auth=(self.user, self.password)
            )
            return
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("delete_vhost", vhost)

    def _ctl(self, *args: str) -> None:
        assert self.ctl is not None
        subprocess.run([self.ctl, "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """The AMQP URL of a new vhost (guest may use it); deleted afterwards."""
    parts = urlsplit(RABBITMQ_URL)
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or 5672):
        skip_or_fail(f"RabbitMQ is not reachable at {parts.hostname}:{parts.port or 5672}")
    admin = _VhostAdmin()
    if not admin.available:
        skip_or_fail(
            "cannot create a RabbitMQ vhost: neither the management API "
            f"({RABBITMQ_API}) nor rabbitmqctl is available"
        )
    vhost = unique_name("sightline-test")
    try:
        admin.add(vhost)
    except (httpx.HTTPError, subprocess.SubprocessError) as exc:
        skip_or_fail(f"cannot create a RabbitMQ vhost: {exc}")
    try:
        yield with_path(RABBITMQ_URL, "/" + quote(vhost, safe=""))
    finally:
        admin.delete(vhost)

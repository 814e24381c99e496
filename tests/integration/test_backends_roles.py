"""The scaled roles and their commands, as processes against real services.

A collector process, a worker and an API process share PostgreSQL and Redis: events sent
to the collector are stored by the worker, counted in the Redis hot store, and read
through the API process. ``sightline migrate`` upgrades PostgreSQL; ``sightline dlq``
lists and replays dead letters of both broker transports; impossible combinations are
refused with a message.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis

from sightline.events import Event
from sightline.stores.redis_hot import RedisHotStore
from tests.support.server import BROWSER_UA, running_server, sightline_command
from tests.support.services import (
    REDIS_URL,
    postgres_database,
    rabbitmq_vhost,
    redis_prefix,
)


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTLINE_")} | env
    result = subprocess.run(
        [*sightline_command(), *args], env=full, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def env_of(settings: dict[str, Any], data_dir: Path) -> dict[str, str]:
    env = {f"SIGHTLINE_{k.upper()}": str(v) for k, v in settings.items()}
    env["SIGHTLINE_DATA_DIR"] = str(data_dir)
    return env


def test_migrate_against_postgres(tmp_path: Path) -> None:
    with postgres_database() as url:
        env = env_of({"store": "postgres", "postgres_url": url}, tmp_path)
        first = json.loads(cli(env, "migrate", "--json").stdout)
        folder = Path(__file__).parents[2] / "src/sightline/stores/migrations/postgres"
        versions = sorted(int(p.name.split("_")[0]) for p in folder.glob("*.sql"))
        assert first["applied"] == versions and first["version"] == versions[-1]
        again = json.loads(cli(env, "migrate", "--json").stdout)
        assert again == {"applied": [], "version": versions[-1]}


def test_impossible_combinations_are_refused(tmp_path: Path) -> None:
    worker = cli(env_of({}, tmp_path), "worker", check=False)
    assert worker.returncode == 1 and "transport = redis or rabbitmq" in worker.stderr
    embedded_store = cli(
        env_of({"transport": "redis"}, tmp_path), "worker", "--consumers", "1", check=False
    )
    assert embedded_store.returncode == 1 and "store = postgres" in embedded_store.stderr
    collector = cli(env_of({}, tmp_path), "serve", "--role", "collector", check=False)
    assert collector.returncode == 1 and "store = postgres" in collector.stderr


def test_collector_worker_and_api_processes_share_one_installation(tmp_path: Path) -> None:
    with postgres_database() as url, redis_prefix() as prefix:
        shared = {
            "store": "postgres",
            "postgres_url": url,
            "transport": "redis",
            "redis_prefix": prefix,
            "hot_store": "redis",
            "rate_limit_per_minute": 0,
        }
        with (
            running_server(tmp_path / "collector", role="collector", **shared) as collector,
            running_server(tmp_path / "api", role="api", **shared) as api,
        ):
            worker = subprocess.Popen(
                [*sightline_command(), "worker", "--consumers", "1"],
                env={**collector.env(), "SIGHTLINE_DATA_DIR": str(tmp_path / "worker")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                site = api.add_site("roles.example", origins=["*"])  # seen by the collector
                now = int(time.time() * 1000)
                batch = [
                    {
                        "eventId": str(uuid.uuid4()),
                        "eventType": kind,
                        "timestamp": now,
                        "sessionId": "s1",
                        "visitorId": f"v{i % 3}",
                        "pagePath": "/",
                    }
                    for i, kind in enumerate(["page_view"] * 6 + ["click"] * 4)
                ]
                body = {"siteKey": site["siteKey"], "events": batch, "metadata": {"sentAt": now}}
                deadline = time.monotonic() + 40
                while True:  # the collector reloads its sites within its registry's TTL
                    response = httpx.post(
                        collector.url + "/api/v1/analytics/collect/batch",
                        content=json.dumps(body),
                        headers={"user-agent": BROWSER_UA},
                    )
                    if response.status_code == 200 or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                assert response.json()["queued"] == 10, response.text
                assert api.wait_for_events(10, timeout=30) == 10
                hot = RedisHotStore(REDIS_URL, prefix)
                try:
                    stats = hot.realtime(site["id"])
                finally:
                    hot.close()
                assert stats == {
                    "activeUsers": 3,
                    "pageViewsLastMinute": 6,
                    "clicksLastMinute": 4,
                    "eventsLastMinute": 10,
                }
                # Each role serves its own routes.
                assert httpx.get(collector.url + "/sdk/v1/sightline.js").status_code == 200
                assert httpx.post(api.url + "/api/v1/analytics/collect", json={}).status_code == 404
                token = {"Authorization": f"Bearer {api.token}"}
                assert httpx.get(collector.url + "/", headers=token).status_code == 404
                assert httpx.get(api.url + "/api/v1/sites", headers=token).status_code == 200
            finally:
                worker.terminate()
                assert worker.wait(60) == 0


def test_hot_counters_are_shared_and_windowed() -> None:
    with redis_prefix() as prefix:
        one, two = RedisHotStore(REDIS_URL, prefix), RedisHotStore(REDIS_URL, prefix)
        try:
            now = int(time.time() * 1000)

            def event(kind: str, visitor: str, ago_ms: int) -> Event:
                return Event(
                    event_type=kind,
                    event_id=uuid.uuid4().hex,
                    visitor_id=visitor,
                    site_id="s",
                    server_timestamp=now - ago_ms,
                )

            one.record([event("page_view", "a", 1000), event("product_click", "b", 2000)])
            two.record([event("page_view", "c", 90_000), event("page_view", "d", 400_000)])
            assert two.realtime("s", now) == {
                "activeUsers": 3,
                "pageViewsLastMinute": 1,
                "clicksLastMinute": 1,
                "eventsLastMinute": 2,
            }
            assert one.data_version() == two.data_version() == 2
        finally:
            one.close()
            two.close()


def dead_letter_payload(n: int) -> bytes:
    now = int(time.time() * 1000)
    events = [
        Event(event_type="page_view", event_id=uuid.uuid4().hex, site_id="s", timestamp=now)
        for _ in range(n)
    ]
    return msgspec.msgpack.encode(events)


@pytest.mark.parametrize("transport", ["redis", "rabbitmq"])
def test_dlq_list_and_replay_commands(transport: str, tmp_path: Path) -> None:
    if transport == "redis":
        with redis_prefix() as prefix:
            client = redis.Redis.from_url(REDIS_URL)
            client.xadd(
                f"{prefix}:events:dead",
                {"d": dead_letter_payload(4), "n": 4, "id": "1-0", "reason": "delivered 6 times"},
            )
            env = env_of({"transport": "redis", "redis_prefix": prefix}, tmp_path)
            check_dlq_commands(env, "delivered 6 times")
            assert client.xlen(f"{prefix}:events") == 1
            assert client.xlen(f"{prefix}:events:dead") == 0
            client.close()
    else:
        with rabbitmq_vhost() as url:
            env = env_of({"transport": "rabbitmq", "rabbitmq_url": url}, tmp_path)
            assert json.loads(cli(env, "dlq", "list", "--json").stdout) == []  # declares
            asyncio.run(publish_dead(url, dead_letter_payload(4)))
            check_dlq_commands(env, "")


def check_dlq_commands(env: dict[str, str], reason: str) -> None:
    listed = json.loads(cli(env, "dlq", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["events"] == 4 and reason in listed[0]["reason"]
    assert "4 events" in cli(env, "dlq", "list").stdout
    assert json.loads(cli(env, "dlq", "replay", "--json").stdout) == {"replayed": 1}
    assert json.loads(cli(env, "dlq", "list", "--json").stdout) == []


async def publish_dead(url: str, payload: bytes) -> None:
    import aio_pika

    from sightline.transport.rabbitmq import DEAD_QUEUE

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(payload, headers={"n": 4}, message_id="m1"), routing_key=DEAD_QUEUE
        )

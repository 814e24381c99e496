#!/usr/bin/env python3
"""Scaled-topology benchmark: collectors + workers + PostgreSQL + each broker, on one machine.

Run it from the repository with the project's environment (PostgreSQL, Redis and
RabbitMQ must be running; see --help for their addresses)::

    .venv/bin/python bench/scaled.py                       # store phase, then each transport
    .venv/bin/python bench/scaled.py --phases store        # PostgreSQL write throughput only
    .venv/bin/python bench/scaled.py --transports redis --collectors 2 --workers 2

Store phase (PostgreSQL alone, in a fresh database): rows/s of

- COPY (binary) of demo events into the writer's staging table, and straight into the
  partitioned ``events`` table (a plain bulk load);
- the writer's whole idempotent write (``PostgresStore.write_events``: COPY into the
  stage, claim the (site, eventId) keys, insert the new events, merge their sessions,
  commit), at two batch sizes; the same batches written again (a redelivery: every event
  already stored); and the same write without the key claim, for comparison
  (docs/decisions/0006-idempotent-postgres-writes.md).

End-to-end phase, per transport (a fresh database and Redis key prefix / RabbitMQ vhost
each): ``--collectors`` processes ``sightline serve --role collector`` on their own
ports, one ``sightline worker --consumers N`` (N = ``--workers``), and the load generator
of bench/ingest.py (one Python process, raw keep-alive HTTP/1.1, 50-event batches of
realistic demo events, connections spread over the collectors, closed loop). Reported:
accepted events/s; end-to-end events/s (accepted events / time from the first request
until PostgreSQL holds them all); acknowledge latency (request sent to answer read: the
collector answers once the broker has the events) p50 and p99 at saturation, and again
in an open-loop run at half the end-to-end rate (requests sent on a schedule whatever the
answers do: the latency of a normal load); and where the CPU went, per stored event.

Everything shares the machine's cores with everything else (and with whatever else runs
on the machine: the ``machine busy`` column is the whole machine's CPU use).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import msgspec
import psycopg

from ingest import (  # bench/ingest.py: the load generator
    BATCH_EVENTS,
    COLLECT_BATCH,
    Bodies,
    Phase,
    Server,
    cpu_seconds,
    free_port,
    memory_kib,
    run_phase,
    sightline_command,
)
from sightline.demo import generate_traffic
from sightline.events import Event
from sightline.stores import postgres as pg
from sightline.stores.postgres import PostgresStore

TARGET_E2E_EVENTS_PER_S = 30_000
TARGET_POSTGRES_ROWS_PER_S = 100_000
GOALS = ["affiliate_click"]


# -- services ------------------------------------------------------------------------------


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"sightline_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_path(admin_url, "/" + name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_vhost(amqp_url: str, api: str) -> Iterator[str]:
    """A new RabbitMQ vhost (management API if it answers, else rabbitmqctl)."""
    parts = urlsplit(amqp_url)
    user, password = parts.username or "guest", parts.password or "guest"
    vhost = f"sightline-bench-{uuid.uuid4().hex[:10]}"
    use_api = False
    with contextlib.suppress(httpx.HTTPError):
        use_api = httpx.get(f"{api}/api/overview", auth=(user, password), timeout=3).is_success
    quoted = quote(vhost, safe="")
    if use_api:
        httpx.put(f"{api}/api/vhosts/{quoted}", auth=(user, password)).raise_for_status()
        httpx.put(
            f"{api}/api/permissions/{quoted}/{quote(user, safe='')}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=(user, password),
        ).raise_for_status()
    else:
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            sys.exit("cannot create a RabbitMQ vhost: no management API and no rabbitmqctl")
        subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            [ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
    try:
        yield with_path(amqp_url, "/" + quoted)
    finally:
        if use_api:
            httpx.delete(f"{api}/api/vhosts/{quoted}", auth=(user, password))
        else:
            subprocess.run(
                [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "delete_vhost", vhost],
                check=False,
                capture_output=True,
            )


def delete_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def processes_named(*names: str) -> list[int]:
    """Pids whose command name is one of ``names`` (the services' server processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
            if comm in names:
                found.append(int(stat.parent.name))
    return found


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (not their children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


SERVICE_PROCESSES = {
    "postgres": ("postgres",),
    "redis": ("redis-server",),
    "rabbitmq": ("beam.smp", "erl_child_setup"),
}


def process_children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children.extend(int(child) for child in task.read_text().split())
    return children


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# -- the store phase -----------------------------------------------------------------------


def demo_events(count: int, site_id: str) -> list[Event]:
    """Realistic events (the demo's affiliate catalogue), fresh ids, stamped for a site."""
    raw = [e for request in generate_traffic(days=1, visitors=400, seed=5) for e in request.events]
    now = int(time.time() * 1000)
    events: list[Event] = []
    while len(events) < count:
        for item in raw[: count - len(events)]:
            event = msgspec.convert(item, Event)
            event.event_id = uuid.uuid4().hex
            event.site_id = site_id
            event.timestamp = now - 3_600_000 + len(events) % 3_000_000
            event.server_timestamp = event.timestamp
            event.session_id = f"{event.session_id}-{len(events) // len(raw)}"
            events.append(event)
    return events


def copy_into_stage(store: PostgresStore, rows: list[tuple[Any, ...]]) -> float:
    with store.connection() as conn, conn.transaction(), conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(pg._COPY_SQL) as copy:
            copy.set_types(pg._STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        return time.perf_counter() - started


def copy_into_events(store: PostgresStore, rows: list[tuple[Any, ...]]) -> float:
    """A plain bulk load: binary COPY straight into the partitioned events table."""
    epoch = dt.datetime(1970, 1, 1)
    positions = [pg._STAGE_COLUMNS.index(c) for c in pg.EVENT_COLUMNS]
    times = {pg.EVENT_COLUMNS.index("ts"), pg.EVENT_COLUMNS.index("received_at")}
    ready = [
        tuple(
            epoch + dt.timedelta(milliseconds=row[p]) if i in times else row[p]
            for i, p in enumerate(positions)
        )
        for row in rows
    ]
    types = [
        "timestamp"
        if c in ("ts", "received_at")
        else "int8"
        if c in ("revenue", "session_duration")
        else "jsonb"
        if c == "properties"
        else "text"
        for c in pg.EVENT_COLUMNS
    ]
    with store.connection() as conn, conn.transaction(), conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(
            f"COPY events ({', '.join(pg.EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            for row in ready:
                copy.write_row(row)
        return time.perf_counter() - started


def write_without_key_claim(store: PostgresStore, events: list[Event]) -> float:
    """The write path minus event_keys: rows, COPY, insert every event, merge sessions."""
    started = time.perf_counter()
    rows = pg.events_to_rows(events)
    with store.connection() as conn, conn.transaction(), conn.cursor() as cur:
        with cur.copy(pg._COPY_SQL) as copy:
            copy.set_types(pg._STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(pg._INSERT_EVENTS_SQL)
        cur.execute(pg._SESSION_MERGE_SQL, {"goals": GOALS, "passive": pg._PASSIVE})
    return time.perf_counter() - started


def store_phase(admin_url: str, rows_total: int) -> list[tuple[str, int, float]]:
    results: list[tuple[str, int, float]] = []
    with fresh_database(admin_url) as url:
        store = PostgresStore(url, pool_size=2)
        store.migrate()
        print(f"store phase: preparing {rows_total:,} demo events...", file=sys.stderr)
        events = demo_events(rows_total, "bench")
        rows = pg.events_to_rows(events)
        store.ensure_partitions({row[pg._STAGE_COLUMNS.index("ts")] // pg.DAY_MS for row in rows})

        def measure(name: str, count: int, seconds: float) -> None:
            results.append((name, count, seconds))
            print(f"  {name}: {count / seconds:,.0f} rows/s", file=sys.stderr)

        chunk = 20_000
        for name, fn in (
            ("COPY into the staging table", copy_into_stage),
            ("COPY straight into events", copy_into_events),
        ):
            seconds = sum(fn(store, rows[i : i + chunk]) for i in range(0, len(rows), chunk))
            measure(name, len(rows), seconds)
        store.query("TRUNCATE events, event_keys, session_stats")
        half = len(events) // 2
        for size, part in ((5_000, events[:half]), (20_000, events[half:])):
            started = time.perf_counter()
            for i in range(0, len(part), size):
                store.write_events(part[i : i + size], checkpoint=None, goals=GOALS)
            measure(
                f"write_events, {size:,}-event batches (idempotent)",
                len(part),
                time.perf_counter() - started,
            )
        started = time.perf_counter()
        for i in range(0, len(events), 20_000):
            store.write_events(events[i : i + 20_000], checkpoint=None, goals=GOALS)
        measure(
            "the same batches again (all duplicates)", len(events), time.perf_counter() - started
        )
        assert store.query("SELECT count(*) FROM events")[0][0] == len(events)
        store.query("TRUNCATE events, event_keys, session_stats")
        seconds = sum(
            write_without_key_claim(store, events[i : i + 20_000])
            for i in range(0, len(events), 20_000)
        )
        measure("write without the key claim, 20,000 (not idempotent)", len(events), seconds)
        store.close()
    return results


# -- the end-to-end phase ------------------------------------------------------------------


@dataclass
class Deployment:
    transport: str
    env: dict[str, str]
    collectors: list[tuple[subprocess.Popen[bytes], Server]] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None
    workdir: Path = Path()


def cli_json(env: dict[str, str], *args: str, stdin: str | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [*sightline_command(), *args, "--json"],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"sightline {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout)
    return result


@contextlib.contextmanager
def deploy(
    transport: str, settings: dict[str, str], collectors: int, workers: int
) -> Iterator[Deployment]:
    workdir = Path(tempfile.mkdtemp(prefix="sightline-scaled-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTLINE_")}
    env |= {f"SIGHTLINE_{k.upper()}": v for k, v in settings.items()}
    env["SIGHTLINE_DATA_DIR"] = str(workdir / "admin")
    deployment = Deployment(transport, env, workdir=workdir)
    try:
        cli_json(env, "migrate")
        site = cli_json(env, "site", "add", "bench.local", "--origin", "*")
        email = "bench@bench.local"
        cli_json(env, "user", "add", email, "--role", "admin", "--password-stdin", stdin="x" * 12)
        token = cli_json(env, "token", "create", "--email", email)["token"]
        for index in range(collectors):
            port = free_port()
            data_dir = workdir / f"collector{index}"
            with open(workdir / f"collector{index}.log", "wb") as log:
                process = subprocess.Popen(
                    [*sightline_command(), "serve", "--role", "collector", "--port", str(port)],
                    env={**env, "SIGHTLINE_DATA_DIR": str(data_dir)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            url = f"http://127.0.0.1:{port}"
            server = Server(url, "127.0.0.1", port, process.pid, site["id"], site["siteKey"], token)
            deployment.collectors.append((process, server))
        with open(workdir / "worker.log", "wb") as log:
            deployment.worker = subprocess.Popen(
                [*sightline_command(), "worker", "--consumers", str(workers)],
                env={**env, "SIGHTLINE_DATA_DIR": str(workdir / "worker")},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for process, server in deployment.collectors:
            wait_ready(process, server.url, workdir)
        yield deployment
    finally:
        processes = [p for p, _ in deployment.collectors] + [deployment.worker]
        for process in processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_ready(process: subprocess.Popen[bytes], url: str, workdir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = "".join(p.read_text()[-2000:] for p in workdir.glob("*.log"))
            sys.exit(f"a collector exited early:\n{logs}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    sys.exit("a collector did not get ready")


def stored_events(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def wait_stored(url: str, expected: int, since: float, timeout: float = 180) -> float:
    deadline = time.perf_counter() + timeout
    while True:
        stored = stored_events(url)
        now = time.perf_counter()
        if stored >= expected:
            return now - since
        if now > deadline:
            sys.exit(f"only {stored:,} of {expected:,} accepted events stored after {timeout}s")
        time.sleep(0.25)


@dataclass
class E2E:
    transport: str
    collectors: int
    workers: int
    phase: Phase
    e2e_seconds: float
    collector_cpu: float
    worker_cpu: float
    busy: float
    #: The open-loop run at half the end-to-end rate (latency under a normal load).
    steady: Phase | None = None
    #: CPU seconds per component over the measured span (for per-event costs).
    cpu: dict[str, float] = field(default_factory=dict)
    #: Peak resident memory (MiB): a collector, and a worker consumer (averages).
    memory: dict[str, float] = field(default_factory=dict)

    @property
    def e2e_rate(self) -> float:
        return self.phase.accepted / self.e2e_seconds if self.e2e_seconds else 0.0


def drive(
    deployment: Deployment,
    bodies: Bodies,
    concurrency: int,
    duration: float,
    max_events: int,
    events_per_second: float | None = None,
) -> Phase:
    """Every collector at once, closed loop (or open loop at ``events_per_second`` in all);
    one merged Phase."""
    import asyncio

    servers = [server for _, server in deployment.collectors]
    rate = events_per_second / BATCH_EVENTS / len(servers) if events_per_second else None
    phases = [
        Phase(s.url, COLLECT_BATCH, BATCH_EVENTS, max(1, concurrency // len(servers)), rate)
        for s in servers
    ]
    per_collector = max_events // len(servers)

    async def run_all() -> None:
        await asyncio.gather(
            *(
                run_phase(s, bodies, p, max_events=per_collector, duration=duration)
                for s, p in zip(servers, phases, strict=True)
            )
        )

    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(run_all())
    merged = Phase("merged", COLLECT_BATCH, BATCH_EVENTS, concurrency)
    merged.started = min(p.started for p in phases)
    merged.send_seconds = max(p.started + p.send_seconds for p in phases) - merged.started
    for p in phases:
        merged.requests += p.requests
        merged.events_sent += p.events_sent
        merged.accepted += p.accepted
        merged.statuses.update(p.statuses)
        merged.latencies.extend(p.latencies)
    return merged


def e2e_phase(args: argparse.Namespace, transport: str) -> E2E:
    with contextlib.ExitStack() as stack:
        postgres_url = stack.enter_context(fresh_database(args.postgres_url))
        settings = {
            "store": "postgres",
            "postgres_url": postgres_url,
            "transport": transport,
            "rate_limit_per_minute": "0",
            "queue_max_events": "2000000",
        }
        if transport == "redis":
            prefix = f"sightline-bench-{uuid.uuid4().hex[:10]}"
            stack.callback(delete_redis_prefix, args.redis_url, prefix)
            settings |= {"redis_url": args.redis_url, "redis_prefix": prefix}
        else:
            settings["rabbitmq_url"] = stack.enter_context(
                fresh_vhost(args.rabbitmq_url, args.rabbitmq_api)
            )
        print(
            f"{transport}: {args.collectors} collector(s), {args.workers} worker consumer(s)...",
            file=sys.stderr,
        )
        deployment = stack.enter_context(deploy(transport, settings, args.collectors, args.workers))
        bodies = Bodies(deployment.collectors[0][1].site_key)
        warm = drive(deployment, bodies, 8, 2.0, 20_000)
        expected = warm.accepted
        wait_stored(postgres_url, expected, warm.started)
        pids = [p.pid for p, _ in deployment.collectors]
        assert deployment.worker is not None
        collector_cpu = sum(cpu_seconds(pid) for pid in pids)
        worker_cpu = cpu_seconds(deployment.worker.pid)
        busy_before = machine_busy()
        services = {
            name: processes_named(*SERVICE_PROCESSES[name]) for name in ("postgres", transport)
        }
        services_before = {name: cpu_of(pids) for name, pids in services.items()}
        generator_before = time.process_time()
        phase = drive(deployment, bodies, args.concurrency, args.duration, args.events)
        generator_cpu = time.process_time() - generator_before
        expected += phase.accepted
        e2e_seconds = wait_stored(postgres_url, expected, phase.started)
        busy_after = machine_busy()
        span = e2e_seconds
        result = E2E(
            transport,
            args.collectors,
            args.workers,
            phase,
            e2e_seconds,
            (sum(cpu_seconds(pid) for pid in pids) - collector_cpu) / span,
            (cpu_seconds(deployment.worker.pid) - worker_cpu) / span,
            (busy_after[0] - busy_before[0]) / max(1.0, busy_after[1] - busy_before[1]),
        )
        result.cpu = {
            "collectors": result.collector_cpu * span,
            "workers": result.worker_cpu * span,
            **{name: cpu_of(pids) - services_before[name] for name, pids in services.items()},
            "load generator": generator_cpu,
        }
        print(
            f"  accepted {phase.accepted_rate:,.0f} ev/s, end to end {result.e2e_rate:,.0f} ev/s, "
            f"p99 ack {phase.percentile(0.99):.1f} ms",
            file=sys.stderr,
        )
        steady = drive(
            deployment, bodies, args.concurrency, args.duration, args.events, result.e2e_rate / 2
        )
        expected += steady.accepted
        wait_stored(postgres_url, expected, steady.started)
        result.steady = steady
        consumers = process_children(deployment.worker.pid) or [deployment.worker.pid]
        result.memory = {
            "collector": sum(memory_kib(pid)["VmHWM"] for pid in pids) / len(pids) / 1024,
            "worker consumer": sum(memory_kib(pid)["VmHWM"] for pid in consumers)
            / len(consumers)
            / 1024,
        }
        print(
            f"  at {result.e2e_rate / 2:,.0f} ev/s (open loop): "
            f"p50 ack {steady.percentile(0.5):.1f} ms, p99 {steady.percentile(0.99):.1f} ms",
            file=sys.stderr,
        )
        return result


# -- the report ----------------------------------------------------------------------------


def print_report(store: list[tuple[str, int, float]], e2e: list[E2E]) -> None:
    cpus = os.cpu_count() or 1
    print()
    print(
        f"Sightline scaled benchmark - {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{cpus} CPUs shared by every process (and anything else running)"
    )
    if store:
        print()
        print("PostgreSQL writes (one connection, demo events ~31 columns):")
        header = f"{'operation':<56}{'rows':>10}{'rows/s':>12}"
        print(header)
        print("-" * len(header))
        for name, rows, seconds in store:
            print(f"{name:<56}{rows:>10,}{rows / seconds:>12,.0f}")
        best_copy = max(rows / seconds for name, rows, seconds in store if "COPY" in name)
        print(
            f"target >= {TARGET_POSTGRES_ROWS_PER_S:,} rows/s (COPY): {best_copy:,.0f}  "
            f"{'met' if best_copy >= TARGET_POSTGRES_ROWS_PER_S else 'NOT met'}"
        )
    if e2e:
        print()
        print("End to end (50-event batches, closed loop, acknowledged = broker has them):")
        header = (
            f"{'transport':<10}{'coll.':>6}{'workers':>8}{'requests':>10}{'accepted ev/s':>15}"
            f"{'e2e ev/s':>10}{'p50 ack ms':>12}{'p99 ack ms':>12}{'non-2xx':>9}"
            f"{'collectors CPU':>16}{'workers CPU':>13}{'machine busy':>14}"
        )
        print(header)
        print("-" * len(header))
        for r in e2e:
            p = r.phase
            bad = sum(n for status, n in p.statuses.items() if not 200 <= status < 300)
            print(
                f"{r.transport:<10}{r.collectors:>6}{r.workers:>8}{p.requests:>10,}"
                f"{p.accepted_rate:>15,.0f}{r.e2e_rate:>10,.0f}"
                f"{p.percentile(0.5):>12.1f}{p.percentile(0.99):>12.1f}{bad:>9}"
                f"{r.collector_cpu * 100:>15.0f}%{r.worker_cpu * 100:>12.0f}%"
                f"{r.busy * 100:>13.0f}%"
            )
        print(
            "CPU columns: share of one core from the first request until every event was "
            "stored; machine busy: all CPUs, all processes."
        )
        print()
        print("Acknowledge latency under a steady load (open loop at half the end-to-end rate):")
        header = (
            f"{'transport':<10}{'ev/s offered':>14}{'accepted ev/s':>15}{'p50 ms':>9}{'p99 ms':>9}"
        )
        print(header)
        print("-" * len(header))
        for r in e2e:
            if r.steady is not None:
                s = r.steady
                print(
                    f"{r.transport:<10}{r.e2e_rate / 2:>14,.0f}{s.accepted_rate:>15,.0f}"
                    f"{s.percentile(0.5):>9.1f}{s.percentile(0.99):>9.1f}"
                )
        print()
        print("CPU per stored event, microseconds (from the first request until stored):")
        names = list(dict.fromkeys(n for r in e2e for n in r.cpu))
        header = f"{'transport':<10}" + "".join(f"{n:>16}" for n in names) + f"{'sum':>10}"
        print(header)
        print("-" * len(header))
        for r in e2e:
            costs = {n: r.cpu.get(n, 0.0) / max(1, r.phase.accepted) * 1e6 for n in names}
            print(
                f"{r.transport:<10}"
                + "".join(f"{costs[n]:>16.1f}" for n in names)
                + f"{sum(costs.values()):>10.1f}"
            )
        print(
            "Sum of the columns = CPU the whole pipeline needs per event; cores needed for a "
            "rate = rate x sum / 1e6 (docs/deployment.md)."
        )
        for r in e2e:
            print(
                f"peak memory ({r.transport}): "
                + ", ".join(f"{name} {mib:,.0f} MiB" for name, mib in r.memory.items())
            )
        for r in e2e:
            ok = r.e2e_rate >= TARGET_E2E_EVENTS_PER_S
            print(
                f"target >= {TARGET_E2E_EVENTS_PER_S:,} events/s end to end via {r.transport}: "
                f"{r.e2e_rate:,.0f}  {'met' if ok else 'NOT met'}"
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="store,e2e", help="store, e2e (default: both)")
    parser.add_argument("--transports", default="redis,rabbitmq", help="default: both")
    parser.add_argument("--collectors", type=int, default=1, help="collector processes")
    parser.add_argument("--workers", type=int, default=2, help="worker consumer processes")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in all")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of sending")
    parser.add_argument("--events", type=int, default=1_000_000, help="most events sent")
    parser.add_argument("--store-rows", type=int, default=200_000, help="store phase rows")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "SIGHTLINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SIGHTLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument(
        "--rabbitmq-url",
        default=os.environ.get(
            "SIGHTLINE_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"
        ),
    )
    parser.add_argument("--rabbitmq-api", default="http://127.0.0.1:15672")
    args = parser.parse_args(argv)
    if args.duration > 60:
        parser.error("--duration is at most 60 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = set(args.phases.split(","))
    store = store_phase(args.postgres_url, args.store_rows) if "store" in phases else []
    e2e = []
    if "e2e" in phases:
        for transport in args.transports.split(","):
            e2e.append(e2e_phase(args, transport))
    print_report(store, e2e)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Ingest benchmark: how fast the embedded server takes events in and makes them queryable.

Run it from the repository with the project's environment::

    .venv/bin/python bench/ingest.py                  # all phases, 8 s each (about a minute)
    .venv/bin/python bench/ingest.py --duration 5 --events 200000 --concurrency 32

It starts its own ``sightline serve`` on a temporary data directory (rate limit off), adds
a site, an admin user and an API token with the CLI first, then runs these phases against
the collector:

(a) single-event requests to ``/api/v1/analytics/collect``, closed loop, N connections;
(b) 50-event requests to ``/api/v1/analytics/collect/batch``, closed loop, N connections;
(c) both again, open loop at half the request rate (a) and (b) reached: requests are
    scheduled at a fixed rate whatever the answers do, and latency counts from the
    scheduled moment, so a stalled server shows up in the percentiles instead of hiding
    (no coordinated omission). Requests are dispatched on a 1 ms timer, which adds up to
    about 1 ms to these latencies;
(ref) ``POST /healthz``, which the router refuses with 405 at once: the ceiling of the
    HTTP stack itself on this machine, for reading the other rows.

After each phase it polls the dashboard API (``totals.events``) until every accepted
event is queryable; end-to-end events/s is accepted events divided by the time from the
phase's first request to that moment. Latency is per request: from sending the request
(scheduled moment in open loop) to reading the whole answer. A second table splits the
server's CPU time per accepted event using its own /metrics counters (enrichment steps,
writer commit time, rows per commit).

The load generator is a single Python process: uvloop (when installed) and one
``asyncio.Protocol`` per HTTP/1.1 keep-alive connection, request bytes built from
pre-encoded event templates (realistic demo events; only the ids change), answers parsed
from the status line and Content-Length. It shares the machine's cores with the server,
so the numbers are a floor for the server; the table shows how much CPU each side used.
Server memory is read from /proc/<pid>/status (VmRSS, VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import msgspec

from sightline.demo import generate_traffic

COLLECT = "/api/v1/analytics/collect"
COLLECT_BATCH = "/api/v1/analytics/collect/batch"
BATCH_EVENTS = 50

TARGET_BATCH_EVENTS_PER_S = 100_000
TARGET_SINGLE_REQUESTS_PER_S = 15_000
TARGET_P99_MS = 10.0


# -- the server under test ---------------------------------------------------------------


@dataclasses.dataclass
class Server:
    url: str
    host: str
    port: int
    pid: int
    site_id: str
    site_key: str
    token: str

    def stored_events(self, client: httpx.Client) -> int:
        today = dt.datetime.now(dt.UTC).date()
        response = client.get(
            f"{self.url}/api/v1/analytics/dashboard",
            params={
                "site": self.site_id,
                "startDate": (today - dt.timedelta(days=3)).isoformat(),
                "endDate": (today + dt.timedelta(days=1)).isoformat(),
            },
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response.raise_for_status()
        return int(response.json()["totals"]["events"])


def sightline_command() -> list[str]:
    script = Path(sys.executable).with_name("sightline")
    if script.exists():
        return [str(script)]
    found = shutil.which("sightline")
    if found is None:
        sys.exit("the `sightline` command is not installed in this environment")
    return [found]


def run_cli(*args: str, stdin: str | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [*sightline_command(), *args, "--json"],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"sightline {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout)
    return result


def free_port() -> int:
    """A free TCP port below 32768 (outside the usual ephemeral range)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    sys.exit("no free port found")


@contextlib.contextmanager
def start_server(keep: bool) -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="sightline-bench-"))
    log_path = data_dir / "server.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        common = ("--data-dir", str(data_dir))
        site = run_cli("site", "add", "bench.local", *common)
        email = "bench@bench.local"
        run_cli(
            "user",
            "add",
            email,
            "--role",
            "admin",
            "--password-stdin",
            *common,
            stdin="bench-password-not-secret\n",
        )
        token = run_cli("token", "create", "--email", email, *common)["token"]
        port = free_port()
        env = {**os.environ, "SIGHTLINE_RATE_LIMIT_PER_MINUTE": "0"}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    *sightline_command(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *common,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                sys.exit(f"the server exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit(f"the server did not get ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Server(url, "127.0.0.1", port, process.pid, site["id"], site["siteKey"], token)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if keep:
            print(f"data directory kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return pids


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of the server process tree, in KiB."""
    totals = {"VmRSS": 0, "VmHWM": 0}
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in totals:
                    totals[key] += int(value.split()[0])
    return totals


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process tree (all threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


# -- request bodies ----------------------------------------------------------------------


class Bodies:
    """Collect bodies with fresh eventIds, from pre-encoded demo events.

    The pool is one day of demo traffic. Each pass over it gets new session and visitor
    ids (a new crowd of visitors) and every event a new uuid-shaped eventId, so nothing
    is a duplicate and the store sees ordinary sessions.
    """

    _TOKEN = re.compile(rb"~(EID|PASS)~")

    def __init__(self, site_key: str, visitors: int = 300) -> None:
        templates: list[list[bytes]] = []
        for request in generate_traffic(days=1, visitors=visitors, seed=11):
            for event in request.events:
                event = {**event, "eventId": "~EID~"}
                event["sessionId"] += "~PASS~"
                event["visitorId"] += "~PASS~"
                templates.append(self._TOKEN.split(msgspec.json.encode(event)))
        self.templates = templates
        self.user_agent = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"  # noqa: E501
        self.head = b'{"siteKey":"' + site_key.encode() + b'","metadata":{"sentAt":'
        self.run = random.getrandbits(32)
        self.counter = 0
        self.cursor = 0
        self.passes = 0
        self.resolved = self._resolve()

    def _resolve(self) -> list[tuple[bytes, bytes]]:
        """The pool with this pass's suffix filled in, split around the eventId."""
        suffix = f"-{self.passes}".encode()
        resolved = []
        for parts in self.templates:
            before, after, chunk = b"", b"", parts[0]
            seen_eid = False
            for i in range(1, len(parts), 2):
                if parts[i] == b"EID":
                    before, chunk, seen_eid = chunk, b"", True
                else:
                    chunk += suffix
                chunk += parts[i + 1]
            after = chunk
            assert seen_eid
            resolved.append((before, after))
        return resolved

    def average_event_bytes(self) -> float:
        sizes = [len(before) + 36 + len(after) for before, after in self.resolved]
        return sum(sizes) / len(sizes)

    def events(self, count: int) -> tuple[bytes, int]:
        items = []
        for _ in range(count):
            if self.cursor == len(self.resolved):
                self.passes += 1
                self.cursor = 0
                self.resolved = self._resolve()
            before, after = self.resolved[self.cursor]
            self.cursor += 1
            self.counter += 1
            eid = f"{self.run:08x}-0000-4000-8000-{self.counter:012x}".encode()
            items.append(before + eid + after)
        sent_at = str(int(time.time() * 1000)).encode()
        body = b"".join(
            (self.head, sent_at, b',"sdkVersion":"bench"},"events":[', b",".join(items), b"]}")
        )
        return body, count


def http_request(path: str, host: str, user_agent: bytes, body: bytes) -> bytes:
    return b"".join(
        (
            b"POST ",
            path.encode(),
            b" HTTP/1.1\r\nHost: ",
            host.encode(),
            b"\r\nUser-Agent: ",
            user_agent,
            b"\r\nContent-Type: application/json\r\nContent-Length: ",
            str(len(body)).encode(),
            b"\r\n\r\n",
            body,
        )
    )


# -- the load generator ------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, on_answer: Callable[[Connection, int, bytes], None]) -> None:
        self.on_answer = on_answer
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.events = 0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, data: bytes, started: float, events: int) -> None:
        assert self.transport is not None
        self.started = started
        self.events = events
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            status = int(head[9:12])
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            elif b"transfer-encoding: chunked" in head:
                close = buffer.find(b"\r\n0\r\n\r\n", end)
                if close < 0:
                    return
                length = close + 7 - (end + 4)
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            self.on_answer(self, status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


@dataclasses.dataclass
class Phase:
    name: str
    path: str
    events_per_request: int
    concurrency: int
    #: Requests per second for an open-loop phase; None = closed loop.
    rate: float | None = None
    requests: int = 0
    events_sent: int = 0
    accepted: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    latencies: array[float] = dataclasses.field(default_factory=lambda: array("d"))
    started: float = 0.0
    send_seconds: float = 0.0
    e2e_seconds: float | None = None
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    rss_kib: int = 0
    #: Server CPU seconds from the phase's start until its events were queryable.
    server_cpu_total: float = 0.0
    #: Change of the server's /metrics counters over the same span.
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def request_rate(self) -> float:
        return self.requests / self.send_seconds if self.send_seconds else 0.0

    @property
    def accepted_rate(self) -> float:
        return self.accepted / self.send_seconds if self.send_seconds else 0.0

    @property
    def e2e_rate(self) -> float | None:
        return self.accepted / self.e2e_seconds if self.e2e_seconds else None

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run_phase(
    server: Server, bodies: Bodies, phase: Phase, *, max_events: int, duration: float
) -> None:
    loop = asyncio.get_running_loop()
    decode = msgspec.json.Decoder(dict[str, Any]).decode
    max_requests = max(1, max_events // phase.events_per_request)
    idle: deque[Connection] = deque()
    backlog: deque[float] = deque()
    finished = loop.create_future()
    state = {"issued": 0, "in_flight": 0, "stop_at": 0.0}

    def next_request() -> tuple[bytes, int]:
        body, count = bodies.events(phase.events_per_request)
        return http_request(phase.path, server.host, bodies.user_agent, body), count

    def may_issue() -> bool:
        return state["issued"] < max_requests and time.perf_counter() < state["stop_at"]

    def issue(conn: Connection, started: float) -> None:
        data, count = next_request()
        state["issued"] += 1
        state["in_flight"] += 1
        conn.send(data, started, count)

    def check_done() -> None:
        if state["in_flight"] == 0 and not may_issue() and not finished.done():
            finished.set_result(None)

    def on_answer(conn: Connection, status: int, body: bytes) -> None:
        now = time.perf_counter()
        state["in_flight"] -= 1
        phase.latencies.append(now - conn.started)
        phase.requests += 1
        phase.events_sent += conn.events
        phase.statuses[status] += 1
        if status == 204:
            phase.accepted += conn.events
        elif 200 <= status < 300 and body:
            phase.accepted += int(decode(body).get("queued", 0))
        if phase.rate is None:
            if may_issue():
                issue(conn, time.perf_counter())
        elif backlog and may_issue():
            issue(conn, backlog.popleft())
        else:
            idle.append(conn)
        check_done()

    connections = []
    for _ in range(phase.concurrency):
        _, conn = await loop.create_connection(
            lambda: Connection(on_answer), server.host, server.port
        )
        connections.append(conn)

    cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
    started = phase.started = time.perf_counter()
    state["stop_at"] = started + duration
    if phase.rate is None:
        for conn in connections:
            issue(conn, time.perf_counter())
    else:
        idle.extend(connections)
        scheduler = loop.create_task(schedule(phase.rate, started, idle, backlog, may_issue, issue))
        scheduler.add_done_callback(lambda _: check_done())
    stalled = [c.lost for c in connections]
    done, _ = await asyncio.wait([finished, *stalled], return_when=asyncio.FIRST_COMPLETED)
    if finished not in done:
        raise SystemExit("the server closed a connection mid-phase; see its log")
    phase.send_seconds = time.perf_counter() - started
    phase.server_cpu = cpu_seconds(server.pid) - cpu_before
    phase.client_cpu = time.process_time() - client_before
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()


async def schedule(
    rate: float,
    started: float,
    idle: deque[Connection],
    backlog: deque[float],
    may_issue: Callable[[], bool],
    issue: Callable[[Connection, float], None],
) -> None:
    """Open loop: request k is due at started + k / rate, busy connections or not."""
    due = 0
    while may_issue():
        now = time.perf_counter()
        while started + due / rate <= now:
            moment = started + due / rate
            due += 1
            if idle:
                issue(idle.popleft(), moment)
            else:
                backlog.append(moment)
        # Timers tick in milliseconds: sleep at least one and send what fell due meanwhile
        # (a shorter sleep returns at once and the loop would spin, taking the server's CPU).
        await asyncio.sleep(max(0.001, started + due / rate - time.perf_counter()))
    backlog.clear()


def scrape_metrics(server: Server) -> dict[str, float]:
    """The server's Prometheus counters, by ``name{labels}``."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[key] = float(value)
    return values


def wait_queryable(server: Server, expected: int, since: float, timeout: float) -> float:
    """Seconds from ``since`` (perf_counter) until the dashboard counts ``expected`` events."""
    with httpx.Client(timeout=10) as client:
        deadline = time.perf_counter() + timeout
        while True:
            stored = server.stored_events(client)
            now = time.perf_counter()
            if stored >= expected:
                if stored > expected:
                    print(f"  note: {stored} stored, {expected} accepted", file=sys.stderr)
                return now - since
            if now > deadline:
                raise SystemExit(
                    f"only {stored} of {expected} accepted events queryable after {timeout}s"
                )
            time.sleep(0.1)  # each poll is a full dashboard query: keep it light


# -- the report --------------------------------------------------------------------------


def print_table(phases: list[Phase], server: Server, event_bytes: float) -> None:
    cpus = os.cpu_count() or 1
    memory = memory_kib(server.pid)
    loop_name = "uvloop" if "uvloop" in sys.modules else "asyncio"
    print()
    print(
        f"Sightline ingest benchmark - {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{cpus} CPUs shared by server and load generator"
    )
    print(
        f"server: sightline serve (embedded: local spool + DuckDB), rate limit off; "
        f"load: 1 Python process ({loop_name}, raw HTTP/1.1 keep-alive), "
        f"demo events (~{event_bytes:.0f} B each)"
    )
    print()
    header = (
        f"{'phase':<30}{'load':>12}{'requests':>10}{'events':>10}{'req/s':>9}"
        f"{'accepted ev/s':>15}{'e2e ev/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv CPU':>9}{'gen CPU':>9}{'non-2xx':>9}"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        load = f"{p.concurrency} conns" if p.rate is None else f"{p.rate:,.0f} req/s"
        e2e = f"{p.e2e_rate:,.0f}" if p.e2e_rate else "-"
        bad = sum(n for status, n in p.statuses.items() if not 200 <= status < 300)
        server_share = p.server_cpu / p.send_seconds * 100
        client_share = p.client_cpu / p.send_seconds * 100
        print(
            f"{p.name:<30}{load:>12}{p.requests:>10,}{p.events_sent:>10,}"
            f"{p.request_rate:>9,.0f}{p.accepted_rate:>15,.0f}{e2e:>11}"
            f"{p.percentile(0.5):>9.2f}{p.percentile(0.99):>9.2f}"
            f"{server_share:>8.0f}%{client_share:>8.0f}%"
            f"{bad:>9}"
        )
    print()
    print(
        f"server memory: VmRSS {memory['VmRSS'] / 1024:,.0f} MiB, "
        f"peak (VmHWM) {memory['VmHWM'] / 1024:,.0f} MiB"
    )
    print(
        "CPU columns: share of one core during the send phase (server process tree; "
        "load generator process)."
    )
    print_costs(phases)
    print()
    by_name = {p.name.split(" ")[0]: p for p in phases}
    print("targets (2-core machine):")
    if "(b)" in by_name:
        rate = by_name["(b)"].e2e_rate or 0.0
        print(
            f"  >= {TARGET_BATCH_EVENTS_PER_S:,} events/s batched, end to end: "
            f"{rate:,.0f}  {verdict(rate >= TARGET_BATCH_EVENTS_PER_S)}"
        )
    if "(a)" in by_name:
        rate = by_name["(a)"].request_rate
        print(
            f"  >= {TARGET_SINGLE_REQUESTS_PER_S:,} single-event requests/s: "
            f"{rate:,.0f}  {verdict(rate >= TARGET_SINGLE_REQUESTS_PER_S)}"
        )
    for key in ("(c1)", "(c2)"):
        if key in by_name:
            p99 = by_name[key].percentile(0.99)
            print(
                f"  p99 < {TARGET_P99_MS:.0f} ms at half the peak rate {key}: "
                f"{p99:.2f} ms  {verdict(p99 < TARGET_P99_MS)}"
            )


def print_costs(phases: list[Phase]) -> None:
    """Server CPU per accepted event, and the parts /metrics accounts for."""
    steps = sorted(
        {k[len(STEP_SECONDS) :] for p in phases for k in p.metrics if k.startswith(STEP_SECONDS)}
    )
    names = [re.sub(r'\{step="(.*)"\}', r"\1", s) for s in steps]
    print()
    print("server cost per accepted event, in microseconds (phase start until queryable):")
    header = f"{'phase':<30}{'CPU':>8}" + "".join(f"{n:>11}" for n in names)
    header += f"{'writer wall':>13}{'rows/commit':>13}"
    print(header)
    print("-" * len(header))
    for p in phases:
        if not p.accepted:
            continue
        row = f"{p.name:<30}{p.server_cpu_total / p.accepted * 1e6:>8.0f}"
        for step in steps:
            seconds = p.metrics.get(STEP_SECONDS + step, 0.0)
            events = p.metrics.get(STEP_EVENTS + step, 0.0)
            row += f"{seconds / events * 1e6:>11.1f}" if events else f"{'-':>11}"
        written = p.metrics.get("sightline_events_written_total", 0.0)
        write_seconds = p.metrics.get("sightline_write_latency_seconds_sum", 0.0)
        commits = p.metrics.get("sightline_write_batch_events_count", 0.0)
        row += f"{write_seconds / written * 1e6:>13.1f}" if written else f"{'-':>13}"
        row += f"{written / commits:>13,.0f}" if commits else f"{'-':>13}"
        print(row)
    print(
        "CPU: server process CPU time / accepted events; steps: enrichment pipeline "
        "(sightline_pipeline_step_*); writer wall: time the writer spent committing "
        "(sightline_write_latency_seconds) / events written. The rest of the CPU is "
        "HTTP, decoding, validation and the spool."
    )


STEP_SECONDS = "sightline_pipeline_step_seconds_total"
STEP_EVENTS = "sightline_pipeline_step_events_total"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="most events per phase (default 1,000,000)"
    )
    parser.add_argument(
        "--duration", type=float, default=8.0, help="most seconds of sending per phase (default 8)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="connections per phase (default 32)"
    )
    parser.add_argument(
        "--phases",
        default="a,b,c,ref",
        help="phases to run: a, b, c (needs a and/or b), ref (default: all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    if args.duration > 60:
        parser.error("--duration is at most 60 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run: Callable[[Any], Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    wanted = set(args.phases.split(","))
    with start_server(args.keep) as server:
        print(f"server pid {server.pid} at {server.url}; preparing events...", file=sys.stderr)
        bodies = Bodies(server.site_key)
        phases: list[Phase] = []
        expected = 0

        def measure(phase: Phase, max_events: int) -> None:
            nonlocal expected
            print(f"{phase.name} ...", file=sys.stderr)
            metrics_before, cpu_before = scrape_metrics(server), cpu_seconds(server.pid)
            run(run_phase(server, bodies, phase, max_events=max_events, duration=args.duration))
            expected += phase.accepted
            phase.e2e_seconds = wait_queryable(server, expected, phase.started, timeout=120)
            phase.server_cpu_total = cpu_seconds(server.pid) - cpu_before
            after = scrape_metrics(server)
            phase.metrics = {k: v - metrics_before.get(k, 0.0) for k, v in after.items()}
            phase.rss_kib = memory_kib(server.pid)["VmRSS"]
            phases.append(phase)

        # Warm up (caches, DuckDB, first sessions); counted in the store, not reported.
        warm = Phase("warm-up", COLLECT_BATCH, BATCH_EVENTS, 8)
        measure(warm, 20_000)
        phases.clear()
        peak: dict[str, Phase] = {}
        if "a" in wanted:
            peak["a"] = Phase("(a) single /collect", COLLECT, 1, args.concurrency)
            measure(peak["a"], args.events)
        if "b" in wanted:
            peak["b"] = Phase(
                "(b) batch-50 /collect/batch", COLLECT_BATCH, BATCH_EVENTS, args.concurrency
            )
            measure(peak["b"], args.events)
        if "c" in wanted:
            for key, label in (("a", "(c1) single @ half peak"), ("b", "(c2) batch @ half peak")):
                if key in peak and peak[key].request_rate > 0:
                    base = peak[key]
                    measure(
                        Phase(
                            label,
                            base.path,
                            base.events_per_request,
                            args.concurrency,
                            rate=base.request_rate / 2,
                        ),
                        args.events,
                    )
        if "ref" in wanted:
            # The HTTP stack's own ceiling: a request the router refuses (405) at once.
            measure(Phase("(ref) POST /healthz -> 405", "/healthz", 1, args.concurrency), 10**7)
        print_table(phases, server, bodies.average_event_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())

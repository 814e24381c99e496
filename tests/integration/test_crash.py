"""Nothing acknowledged is lost, nothing is stored twice — with real SIGKILLs.

A client streams batches from several threads; the server is killed with SIGKILL in the
middle of the stream (twice), restarted on the same data directory, and then every
event whose request was acknowledged must be stored exactly once. Clients then retry
everything (as the tracker does after errors); duplicates must still not appear.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import BROWSER_UA, ServerProcess, running_server

BATCH = 50
SENDERS = 4


def make_batch(site_key: str, n: int = BATCH) -> dict[str, Any]:
    now = int(time.time() * 1000)
    events = [
        {
            "eventId": str(uuid.uuid4()),
            "eventType": "page_view",
            "timestamp": now,
            "sessionId": f"s{i % 7}",
            "visitorId": f"v{i % 13}",
            "pagePath": f"/p/{i}",
        }
        for i in range(n)
    ]
    return {"siteKey": site_key, "events": events, "metadata": {"sentAt": now}}


class Sender:
    """Sends batches until stopped; remembers which were acknowledged."""

    def __init__(self, server: ServerProcess, site_key: str) -> None:
        self.server = server
        self.site_key = site_key
        self.acked: list[dict[str, Any]] = []
        self.unacked: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        with httpx.Client(timeout=5, headers={"user-agent": BROWSER_UA}) as client:
            while not self.stop.is_set():
                batch = make_batch(self.site_key)
                try:
                    response = client.post(
                        self.server.url + "/api/v1/analytics/collect/batch",
                        content=json.dumps(batch),
                    )
                    ok = response.status_code == 200 and response.json()["queued"] == BATCH
                except httpx.HTTPError:
                    ok = False
                with self.lock:
                    (self.acked if ok else self.unacked).append(batch)
                if not ok:
                    time.sleep(0.02)

    def acked_ids(self) -> set[str]:
        return {e["eventId"] for b in self.acked for e in b["events"]}


def stream_and_kill(server: ServerProcess, sender: Sender, run_for: float) -> None:
    threads = [threading.Thread(target=sender.run) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    time.sleep(run_for)
    server.kill()
    time.sleep(0.2)
    sender.stop.set()
    for thread in threads:
        thread.join()


def assert_exactly_once(server: ServerProcess, expected: set[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.count_events() >= len(expected):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # anything still in flight would show up as a duplicate now
    rows = server.query("SELECT event_id, count(*) FROM events GROUP BY event_id")
    stored = {event_id: count for event_id, count in rows}
    missing = expected - stored.keys()
    doubled = {event_id for event_id, count in stored.items() if count > 1}
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert not doubled, f"{len(doubled)} events stored more than once"


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_event_and_doubles_none(tmp_path: Path) -> None:
    with running_server(tmp_path, rate_limit_per_minute=0) as server:
        site_key = server.add_site("crash.example", origins=["*"])["siteKey"]
        acked: set[str] = set()
        sent_batches: list[dict[str, Any]] = []
        for round_ in range(2):
            sender = Sender(server, site_key)
            stream_and_kill(server, sender, run_for=1.5 + round_)
            acked |= sender.acked_ids()
            sent_batches += sender.acked + sender.unacked
            server.restart()
            assert_exactly_once(server, acked)
        assert len(acked) >= 2000, f"only {len(acked)} events were acknowledged"

        # Clients retry everything they sent, acknowledged or not: still exactly once.
        with httpx.Client(timeout=30, headers={"user-agent": BROWSER_UA}) as client:
            for batch in sent_batches:
                response = client.post(
                    server.url + "/api/v1/analytics/collect/batch", content=json.dumps(batch)
                )
                assert response.status_code == 200
        everything = {e["eventId"] for b in sent_batches for e in b["events"]}
        assert_exactly_once(server, everything)
        assert server.count_events() == len(everything)

        # The sessions and rollups agree with the events after the crashes.
        sessions = server.query("SELECT sum(events) FROM session_stats")[0][0]
        assert sessions == len(everything)

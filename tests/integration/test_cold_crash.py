"""The archiver and an erasure killed (SIGKILL) at any point lose and double nothing.

A real subprocess archives a store; it is killed at chosen steps (just after a file is
durable but unrecorded, just after a commit) or at arbitrary moments from outside. After
each kill, every event must be found exactly once across the warm store and the files the
manifest lists, the queries must count each once, and a new run must finish the job and
remove the unrecorded files.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sightline.config import Settings
from sightline.query.engine import QueryEngine
from sightline.query.model import Period, Query, parse_metrics
from sightline.sites import Site
from sightline.stores.base import DUCKDB_FILE
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import ColdStore, open_cold, read_cold
from sightline.workers.archive import Archiver
from tests.support.history import history

pytestmark = pytest.mark.slow

SITE = "shop"
TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=120)
WARM_DAYS = 90

ARCHIVE = """
import os, signal, sys
from sightline.config import Settings
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import open_cold
from sightline.workers.archive import Archiver

data_dir, step, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = DuckDBStore(os.path.join(data_dir, "sightline.duckdb"))
cold = open_cold(Settings(data_dir=data_dir), store)
seen = 0

def hook(name, details):
    global seen
    if name == "day":
        print("day", flush=True)
    if name == step:
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)

print("started", flush=True)
Archiver(store, cold, int(os.environ["WARM_DAYS"])).run(on_step=hook)
print("finished", flush=True)
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[str]]:
    path = tmp_path_factory.mktemp("crash-template")
    store = DuckDBStore(path / DUCKDB_FILE)
    store.migrate()
    store.add_site(Site(id=SITE, domain="shop.example", site_key="pk_shop", timezone="UTC"))
    events = history(SITE, FIRST, TODAY - timedelta(days=1), sessions_per_day=20)
    store.write_events(events, checkpoint=None, goals=["affiliate_click"])
    store.close()
    return path, Counter(e.event_id for e in events)


def _copy(template: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(template / DUCKDB_FILE, data_dir / DUCKDB_FILE)
    return data_dir


def _start(data_dir: Path, step: str, nth: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ARCHIVE, str(data_dir), step, str(nth)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"WARM_DAYS": str(WARM_DAYS), "PATH": "/usr/bin:/bin"},
    )


def _found(store: DuckDBStore, cold: ColdStore) -> Counter[str]:
    """Event ids in the warm store and in the files the manifest lists."""
    found: Counter[str] = Counter(r[0] for r in store.query("SELECT event_id FROM events"))
    for entry in cold.manifest.cold_files():
        with cold.fs.open(cold.location(entry.path), "rb") as fh:
            ids = read_cold(fh, columns=["event_id"]).column("event_id").to_pylist()
        assert len(ids) == entry.rows
        found.update(ids)
    return found


def _check_exactly_once(data_dir: Path, expected: Counter[str]) -> tuple[int, int]:
    """(files listed, unrecorded files on disk) after checking every event is there once."""
    store = DuckDBStore(data_dir / DUCKDB_FILE)
    try:
        cold = open_cold(Settings(data_dir=str(data_dir)), store)
        assert cold is not None
        assert _found(store, cold) == expected
        total = QueryEngine(store, cold).totals(
            Query(SITE, Period(FIRST, TODAY, "UTC")), parse_metrics(["events"])
        )
        assert total["events"] == sum(expected.values())
        listed = len(cold.manifest.cold_files())
        on_disk = len(list((data_dir / "cold").rglob("part-*")))
        return listed, on_disk - listed
    finally:
        store.close()


def _finish(data_dir: Path) -> dict[str, object]:
    store = DuckDBStore(data_dir / DUCKDB_FILE)
    try:
        cold = open_cold(Settings(data_dir=str(data_dir)), store)
        assert cold is not None
        return Archiver(store, cold, WARM_DAYS).run()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("step", "nth"),
    [("written", 1), ("committed", 1), ("written", 4), ("committed", 9), ("written", 30)],
)
def test_killed_at_a_step(
    template: tuple[Path, Counter[str]], tmp_path: Path, step: str, nth: int
) -> None:
    path, expected = template
    data_dir = _copy(path, tmp_path)
    process = _start(data_dir, step, nth)
    out, err = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, err
    assert "finished" not in out

    listed, unrecorded = _check_exactly_once(data_dir, expected)
    assert listed == (nth - 1 if step == "written" else nth)
    assert unrecorded == (1 if step == "written" else 0)

    summary = _finish(data_dir)
    assert summary["removedUnrecorded"] == unrecorded
    assert summary["failed"] == []
    listed, unrecorded = _check_exactly_once(data_dir, expected)
    assert listed == (TODAY - timedelta(days=WARM_DAYS) - FIRST).days
    assert unrecorded == 0


@pytest.mark.parametrize(("days", "pause"), [(1, 0.0), (3, 0.004), (8, 0.011), (17, 0.023)])
def test_killed_from_outside(
    template: tuple[Path, Counter[str]], tmp_path: Path, days: int, pause: float
) -> None:
    """Killed by another process a moment after a number of days were done: wherever
    that moment falls (reading, writing, fsync, rename, commit)."""
    path, expected = template
    data_dir = _copy(path, tmp_path)
    process = _start(data_dir, "never", 0)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    for _ in range(days):
        assert process.stdout.readline().strip() == "day"
    time.sleep(pause)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    listed, _ = _check_exactly_once(data_dir, expected)
    total_days = (TODAY - timedelta(days=WARM_DAYS) - FIRST).days
    assert days <= listed < total_days
    assert _finish(data_dir)["failed"] == []
    listed, unrecorded = _check_exactly_once(data_dir, expected)
    assert listed == total_days
    assert unrecorded == 0


ERASE = """
import os, signal, sys
from sightline.config import Settings
from sightline.stores.duckdb import DuckDBStore
from sightline.stores.parquet import open_cold

data_dir, subjects, when, nth = sys.argv[1], sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])
store = DuckDBStore(os.path.join(data_dir, "sightline.duckdb"))
cold = open_cold(Settings(data_dir=data_dir), store)
swap = store.replace_cold_file
swaps = 0

def replace_cold_file(old, new):
    # Die just before or just after the nth manifest swap of a rewrite.
    global swaps
    swaps += 1
    if when == "before" and swaps == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    swap(old, new)
    if when == "after" and swaps == nth:
        os.kill(os.getpid(), signal.SIGKILL)

store.replace_cold_file = replace_cold_file
print("started", flush=True)
print(cold.erase_subject(None, subjects, []), flush=True)
"""
SUBJECTS = [f"v{i:03d}" for i in range(0, 60, 3)]


@pytest.mark.parametrize(
    ("when", "nth", "pause"),
    [("before", 1, 0), ("after", 1, 0), ("before", 12, 0), ("after", 20, 0), ("-", 0, 0.08)],
)
def test_erasure_killed_mid_way(
    template: tuple[Path, Counter[str]], tmp_path: Path, when: str, nth: int, pause: float
) -> None:
    """Killed while it rewrites files (just before or after a manifest swap, or at some
    moment), an erasure leaves every listed file whole: each other event is still there
    exactly once; run again, it completes and nothing unrecorded is left."""
    path, expected = template
    data_dir = _copy(path, tmp_path)
    _finish(data_dir)
    store = DuckDBStore(data_dir / DUCKDB_FILE)
    cold = open_cold(Settings(data_dir=str(data_dir)), store)
    assert cold is not None
    subject_ids = Counter(r["event_id"] for r in cold.export_subject(None, SUBJECTS, []))
    store.close()
    others = expected - subject_ids
    assert subject_ids and others

    process = subprocess.Popen(
        [sys.executable, "-c", ERASE, str(data_dir), ",".join(SUBJECTS), when, str(nth)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    if pause:
        time.sleep(pause)
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    store = DuckDBStore(data_dir / DUCKDB_FILE)
    try:
        cold = open_cold(Settings(data_dir=str(data_dir)), store)
        assert cold is not None
        found = _found(store, cold)
        # Nothing doubled, nothing else lost; the subject partly erased.
        assert max(found.values()) == 1
        assert found - subject_ids == others
        left = sum((found & subject_ids).values())
        if not pause:
            # Files rewritten before the kill lost the subject; the others kept it.
            assert left > 0
            assert left < sum(subject_ids.values()) or (when, nth) == ("before", 1)
        assert cold.erase_subject(None, SUBJECTS, []) == left
        assert _found(store, cold) == others
        cold.reconcile()
        assert sorted(cold._listing()) == sorted(f.path for f in cold.manifest.cold_files())
    finally:
        store.close()

"""Daily rotating salts for the cookieless visitor id.

A visitor without analytics consent keeps nothing on their device; their visitor id is
then ``keyed_hash(salt of the day, site, client IP, user agent)`` (see
``sightline.pipeline.identity``). Each UTC day gets a fresh random 32-byte salt. Today's
salt makes new ids; yesterday's is kept only so that sessions running across midnight
can finish under the id they started with. Every older salt is deleted, so no salt is
ever more than 48 hours old and an id from the day before yesterday cannot be
recomputed by anyone, including us.

``SaltStore`` is the interface; ``FileSaltStore`` (the embedded default) keeps one file
per day under ``<data_dir>/salts/`` (``YYYY-MM-DD.salt``, mode 0600), written to a
temporary file, fsynced and then linked into place, so a crash never leaves a torn salt
and two processes starting the same day agree on one salt. A store shared by several
collector machines (Redis) implements the same two methods.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

DAY_MS = 86_400_000
SALT_BYTES = 32
#: How long a half-written temporary file from a crashed writer is left alone.
_STALE_TMP_SECONDS = 600


class Salts(NamedTuple):
    #: The UTC day of ``current``, in days since the Unix epoch.
    day: int
    current: bytes
    #: Yesterday's salt, or None when there was none.
    previous: bytes | None


class SaltStore(Protocol):
    def salts(self, now_ms: int | None = None) -> Salts:
        """Today's salt (made if missing) and yesterday's; deletes older salts."""
        ...

    def rotate(self, now_ms: int | None = None) -> Salts:
        """Delete every salt older than yesterday's, whether or not the day changed.

        Called on a timer, so that old salts go at midnight even without traffic.
        """
        ...


def day_of(now_ms: int) -> int:
    return now_ms // DAY_MS


def _day_name(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _name_day(name: str) -> int | None:
    if not name.endswith(".salt"):
        return None
    try:
        date = dt.date.fromisoformat(name[: -len(".salt")])
    except ValueError:
        return None
    return (date - dt.date(1970, 1, 1)).days


class FileSaltStore:
    """Salts as files in ``directory``; ``clock`` (seconds, like ``time.time``) is used
    when a call gives no ``now_ms``."""

    def __init__(self, directory: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: Salts | None = None

    def _now_ms(self, now_ms: int | None) -> int:
        return int(self.clock() * 1000) if now_ms is None else now_ms

    def salts(self, now_ms: int | None = None) -> Salts:
        day = day_of(self._now_ms(now_ms))
        cached = self._cached
        if cached is not None and cached.day == day:
            return cached
        return self._load(day)

    def rotate(self, now_ms: int | None = None) -> Salts:
        return self._load(day_of(self._now_ms(now_ms)))

    def _load(self, day: int) -> Salts:
        with self._lock:
            self._prepare_directory()
            self.delete_expired(day)
            current = self._read(day) or self._create(day)
            salts = Salts(day, current, self._read(day - 1))
            self._cached = salts
            return salts

    def _prepare_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)

    def delete_expired(self, day: int) -> list[str]:
        """Delete salts of days before yesterday (and of days more than one ahead, left
        by a clock that was wrong); returns the names deleted."""
        deleted = []
        now = time.time()
        for entry in os.scandir(self.directory):
            salt_day = _name_day(entry.name)
            if salt_day is not None:
                if salt_day < day - 1 or salt_day > day + 1:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                    deleted.append(entry.name)
            elif entry.name.endswith(".tmp") and entry.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
        if deleted:
            _fsync_directory(self.directory)
        return deleted

    def _path(self, day: int) -> Path:
        return self.directory / f"{_day_name(day)}.salt"

    def _read(self, day: int) -> bytes | None:
        try:
            data = self._path(day).read_bytes()
        except FileNotFoundError:
            return None
        return data if len(data) == SALT_BYTES else None

    def _create(self, day: int) -> bytes:
        path = self._path(day)
        salt = secrets.token_bytes(SALT_BYTES)
        tmp = self.directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, salt)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if path.exists() and self._read(day) is None:
                os.replace(tmp, path)  # a damaged salt file: replace it
            else:
                try:
                    os.link(tmp, path)  # never overwrites: the first writer of the day wins
                except FileExistsError:
                    existing = self._read(day)
                    if existing is not None:
                        return existing
                    os.replace(tmp, path)
                except OSError:
                    os.replace(tmp, path)  # a file system without hard links
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_directory(self.directory)
        return salt


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

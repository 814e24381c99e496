"""The built tracker files and what HTTP caching needs to know about them.

The files in ``dist/`` are built from ``sdk/`` (``python3 tasks.py sdk``) and committed, so
running Sightline needs no Node.js. Each is read once, gzipped once (deterministically,
so every process of a deployment sends the same bytes and the same validators), and
hashed into strong ETags: one for the plain bytes, one for the gzipped ones.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

#: How long browsers and caches may use a copy without asking, then may keep using it
#: for a day while they revalidate in the background.
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"
MEDIA_TYPE = "text/javascript; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str

    def validators(self) -> tuple[str, str]:
        return self.etag, self.gzip_etag


def build_asset(name: str, body: bytes) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Asset(
        name=name,
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gz"',
    )


def load_assets() -> dict[str, Asset]:
    """Every built file, by the name it is served under (``/sdk/v1/<name>``)."""
    dist = resources.files("sightline.tracker").joinpath("dist")
    assets: dict[str, Asset] = {}
    if dist.is_dir():
        for entry in dist.iterdir():
            if entry.name.endswith(".js"):
                assets[entry.name] = build_asset(entry.name, entry.read_bytes())
    return assets


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        allowed[name.strip().lower()] = quality > 0
    for name in ("gzip", "x-gzip"):
        if name in allowed:
            return allowed[name]
    return allowed.get("*", False)


def etag_matches(if_none_match: str | None, etags: tuple[str, ...]) -> bool:
    """If-None-Match's weak comparison: ``*``, or any listed tag equal to one of ``etags``."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    listed = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return any(tag in listed for tag in etags)

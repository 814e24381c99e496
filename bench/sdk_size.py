#!/usr/bin/env python3
"""Tracker size: the bytes a page downloads for Sightline's tracker, raw and gzipped.

    .venv/bin/python bench/sdk_size.py                          # the files this checkout serves
    .venv/bin/python bench/sdk_size.py --url http://127.0.0.1:8000   # what a server sends

Without ``--url`` it reads the built files exactly as the server holds them (gzip level 9,
as served). With ``--url`` it downloads each file twice from a running server, once
asking for gzip and once not, and counts the body bytes on the wire.

Rows: the core (``sightline.js``, what a page's <script> tag loads), the optional features
the core fetches after it (``sightline-extras.js``), and the React bindings; then what a
page loads in all. The size target is for the core: at most 3,000 bytes gzipped.
"""

from __future__ import annotations

import argparse
import sys

import httpx

from sightline.tracker import ASSETS

TARGET_CORE_GZIP = 3000
ROWS = [
    ("sightline.js", "core: API, consent, sessions, page views, SPA, delivery"),
    ("sightline-extras.js", "optional features, loaded by the core"),
    ("sightline-react.js", "React bindings (pages using React)"),
    ("sightline-experiments.js", "getVariant() for A/B tests (pages running experiments)"),
]


def measure_local() -> dict[str, tuple[int, int]]:
    return {name: (len(a.body), len(a.gzipped)) for name, a in ASSETS.items()}


def measure_server(url: str) -> dict[str, tuple[int, int]]:
    sizes = {}
    with httpx.Client(base_url=url.rstrip("/"), timeout=30) as client:
        for name, _ in ROWS:
            raw = client.get(f"/sdk/v1/{name}", headers={"Accept-Encoding": "identity"})
            raw.raise_for_status()
            with client.stream(
                "GET", f"/sdk/v1/{name}", headers={"Accept-Encoding": "gzip"}
            ) as zipped:
                zipped.raise_for_status()
                wire = sum(len(chunk) for chunk in zipped.iter_raw())
            sizes[name] = (len(raw.content), wire)
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="measure what this running server sends")
    args = parser.parse_args()
    sizes = measure_server(args.url) if args.url else measure_local()

    print(f"{'file':<22} {'what':<56} {'raw B':>8} {'gzip B':>8}")
    print("-" * 97)
    for name, what in ROWS:
        raw, gz = sizes[name]
        print(f"{name:<22} {what:<56} {raw:>8,} {gz:>8,}")
    print("-" * 97)
    core_raw, core_gz = sizes["sightline.js"]
    extra_raw, extra_gz = sizes["sightline-extras.js"]
    react_raw, react_gz = sizes["sightline-react.js"]
    page = (core_raw + extra_raw, core_gz + extra_gz)
    with_react = (page[0] + react_raw, page[1] + react_gz)
    print(f"{'a page loads':<22} {'core + optional features':<56} {page[0]:>8,} {page[1]:>8,}")
    print(
        f"{'a React page loads':<22} {'core + optional + React bindings':<56} "
        f"{with_react[0]:>8,} {with_react[1]:>8,}"
    )
    verdict = "within" if core_gz <= TARGET_CORE_GZIP else "OVER"
    print(f"\ncore gzipped: {core_gz:,} B, {verdict} the {TARGET_CORE_GZIP:,} B target")
    return 0 if core_gz <= TARGET_CORE_GZIP else 1


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate the reference docs that are derived from code: settings and event schema.

Run with `python3 tasks.py docs`; tests/unit/test_docs.py fails when they are stale.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from sightline.config import Settings
from sightline.events import event_json_schema

ROOT = Path(__file__).resolve().parents[1]

INTRO = """# Settings

Sightline reads its settings from, in order (later wins): built-in defaults, a TOML
file (`--config FILE`, `SIGHTLINE_CONFIG`, or `./sightline.toml` if present), `SIGHTLINE_*`
environment variables, and command-line flags (`--data-dir`, `--host`, `--port`, `--role`).

In the TOML file each setting is a top-level key named as below; an unknown key is an error.
As an environment variable it is `SIGHTLINE_` + the name in upper case; list settings take
comma-separated values (`SIGHTLINE_TRUSTED_PROXIES=10.0.0.0/8,192.168.0.1`).

```toml
# sightline.toml
data_dir = "/var/lib/sightline"
port = 8000
rate_limit_per_minute = 300
trusted_proxies = ["127.0.0.1"]
```

This page is generated from `src/sightline/config.py` by `python3 tasks.py docs`.
"""


def settings_markdown() -> str:
    source = (ROOT / "src/sightline/config.py").read_text()
    body = source[source.index("class Settings") : source.index("    @property")]
    out = [INTRO]
    comment: list[str] = []
    defaults = Settings()
    for line in body.splitlines()[1:]:
        text = line.strip()
        if text.startswith("# --"):
            title = text.strip("# -").strip()
            out += [
                f"\n## {title[0].upper()}{title[1:]}\n",
                "| Setting | Environment variable | Type | Default | Meaning |",
                "|---|---|---|---|---|",
            ]
            comment = []
        elif text.startswith("#:"):
            comment.append(text[2:].strip())
        elif match := re.match(r"(\w+): ([^=]+?) = ", text):
            name, kind = match.group(1), match.group(2).replace("|", "or")
            value = getattr(defaults, name)
            shown = f'"{value}"' if isinstance(value, str) else repr(value)
            out.append(
                f"| `{name}` | `SIGHTLINE_{name.upper()}` | {kind} | `{shown}` | "
                f"{' '.join(comment)} |"
            )
            comment = []
    return "\n".join(out) + "\n"


def schema_json() -> str:
    return json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n"


GENERATED = {
    "docs/settings.md": settings_markdown,
    "docs/event.schema.json": schema_json,
}


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for name, render in GENERATED.items():
        path = ROOT / name
        text = render()
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text)
    if check and stale:
        print("stale:", ", ".join(stale), "- run `python3 tasks.py docs`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

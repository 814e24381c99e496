"""Documentation that is tested: a setting, route, command or event type that the docs
do not mention fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
from starlette.routing import Route

from sightline.cli import main as cli_main
from sightline.config import SETTING_NAMES
from sightline.events import EventType

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def read(name: str) -> str:
    return (DOCS / name).read_text()


def test_generated_reference_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_is_documented() -> None:
    text = read("settings.md")
    for name in SETTING_NAMES:
        assert f"`SIGHTLINE_{name.upper()}`" in text, name


def test_every_event_type_is_documented() -> None:
    text = read("events.md")
    for event_type in EventType:
        assert f"`{event_type.value}`" in text, event_type


def test_every_route_is_documented() -> None:
    from sightline.api import routes as api_routes
    from sightline.collector import routes as collector_routes

    text = read("api.md")
    for route in [*api_routes.routes, *collector_routes.routes]:
        assert isinstance(route, Route)
        assert route.path in text, route.path


def test_every_cli_command_is_documented() -> None:
    text = read("cli.md")

    def walk(command: click.Command, prefix: str) -> list[str]:
        if isinstance(command, click.Group):
            return [
                n
                for name, sub in command.commands.items()
                for n in walk(sub, f"{prefix} {name}".strip())
            ]
        return [prefix]

    for name in walk(cli_main, ""):
        assert f"sightline {name}" in text, name


def test_readme_quick_start_holds_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```\w*\n(.*?)```", section, re.S)
    assert block is not None
    assert block.group(1).strip().splitlines() == [
        "python3 tasks.py serve",
        "python3 tasks.py test",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 tasks.py test" in ci


def test_docs_links_resolve() -> None:
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"

"""The CLI on a data directory with no server running, and the quick start's serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import free_port, sightline_command

ROOT = Path(__file__).resolve().parents[2]


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """A ``sightline`` command on ``data_dir``, run in this process the way the console
    script runs it (an interpreter per command would cost a second each; the quick-start
    test below runs the real executable). Unexpected exceptions propagate."""
    from click.testing import CliRunner

    from sightline.cli import main

    argv = [*args, "--data-dir", str(data_dir)]
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SIGHTLINE_")}
    result = CliRunner().invoke(main, argv, input=stdin, env=unset, catch_exceptions=False)
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)


def cli_json(data_dir: Path, *args: str, stdin: str | None = None) -> Any:
    result = cli(data_dir, *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_admin_commands_work_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli_json(data, "migrate")["version"] >= 1
    site = cli_json(data, "site", "add", "https://www.Shop.example/", "--timezone", "Europe/Berlin")
    assert site["domain"] == "www.shop.example"
    assert site["siteKey"].startswith("pk_")
    assert site["allowedOrigins"] == ["https://shop.example", "https://www.shop.example"]
    again = cli(data, "site", "add", "www.shop.example")
    assert again.returncode == 1
    assert "exists already" in again.stderr
    bad_zone = cli(data, "site", "add", "x.example", "--timezone", "Mars/Olympus")
    assert bad_zone.returncode == 1
    assert "time zone" in bad_zone.stderr
    listed = cli_json(data, "site", "list")
    assert [s["id"] for s in listed] == [site["id"]]
    user = cli_json(
        data,
        "user",
        "add",
        "Ana@Example.com",
        "--role",
        "analyst",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert user == {"id": user["id"], "email": "ana@example.com", "role": "analyst"}
    weak = cli(
        data,
        "user",
        "add",
        "b@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 1
    token = cli_json(data, "token", "create", "--email", "ana@example.com", "--name", "ci")
    assert token["token"].startswith("sl_")
    assert cli(data, "token", "create", "--email", "nobody@example.com").returncode == 1
    text = cli(data, "site", "add", "plain.example")
    assert "site key:" in text.stdout
    assert "data-site-key" in text.stdout


def test_help_lists_every_command() -> None:
    result = subprocess.run([*sightline_command(), "--help"], capture_output=True, text=True)
    for command in ("serve", "worker", "migrate", "site", "user", "token", "demo"):
        assert command in result.stdout


def test_quick_start_serve_loads_demo_data_and_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTLINE_")}
    env |= {"SIGHTLINE_DATA_DIR": str(tmp_path / "data"), "SIGHTLINE_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tasks.py"), "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.5)
        if not ready:
            process.kill()
            output, _ = process.communicate(timeout=60)
            pytest.fail(f"the quick start's server did not come up:\n{output[-4000:]}")
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200
        # The demo admin's sign-in is kept in the data directory and opens the dashboard.
        email, password = (tmp_path / "data" / "demo-login.txt").read_text().strip().split(" / ")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            credentials = {"email": email, "password": password}
            signed_in = client.post("/api/v1/auth/login", json=credentials)
            assert signed_in.status_code == 200, signed_in.text
            sites = client.get("/api/v1/sites").json()
        assert "demo.sightline.local" in str(sites)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}/" in output
    assert "demo:" in output
    assert f"dashboard sign-in (demo admin): {email} / {password}" in output

"""A real Sightline server in a subprocess, for tests and benchmarks.

with running_server(tmp_path, rate_limit_per_minute=0) as server:
    site = server.add_site("example.com", origins=["*"])
    httpx.post(server.url + "/api/v1/analytics/collect", json={...})
    server.wait_for_events(10)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ADMIN_EMAIL = "admin@test.invalid"
#: A real browser's User-Agent: requests without one look like bots and are dropped.
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def free_port() -> int:
    """A free TCP port below 32768 (outside the kernel's ephemeral range)."""
    for _ in range(200):
        port = 10000 + int.from_bytes(os.urandom(2), "big") % 20000
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def sightline_command() -> list[str]:
    return [sys.executable, "-m", "sightline"]


class ServerProcess:
    def __init__(self, data_dir: Path, settings: dict[str, Any], log_path: Path) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        #: One keep-alive client for get(): suites of thousands of requests pay for a
        #: connection once.
        self._client: httpx.Client | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTLINE_")}
        env["SIGHTLINE_DATA_DIR"] = str(self.data_dir)
        env["SIGHTLINE_PORT"] = str(self.port)
        env["SIGHTLINE_HOST"] = "127.0.0.1"
        for key, value in self.settings.items():
            env[f"SIGHTLINE_{key.upper()}"] = (
                ",".join(value) if isinstance(value, list) else str(value)
            )
        return env

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*sightline_command(), "serve"], env=self.env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no draining."""
        self.close_client()
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: a graceful shutdown drains the queue."""
        self.close_client()
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def restart(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    # -- administration through the CLI (exercises the running-server path) ------------

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        result = subprocess.run(
            [*sightline_command(), *args, "--json"],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"sightline {' '.join(args)} failed: {result.stderr}")
        return json.loads(result.stdout)

    def add_site(
        self, domain: str, origins: list[str] | None = None, timezone: str = "UTC"
    ) -> dict[str, Any]:
        args = ["site", "add", domain, "--timezone", timezone]
        for origin in origins or []:
            args += ["--origin", origin]
        site: dict[str, Any] = self.cli(*args)
        return site

    @property
    def token(self) -> str:
        """An admin API token (the admin user is created on first use)."""
        if self._token is None:
            with contextlib.suppress(RuntimeError):
                self.cli("user", "add", ADMIN_EMAIL, "--role", "admin")
            self._token = self.cli("token", "create", "--email", ADMIN_EMAIL)["token"]
        return self._token

    def control(self, op: str, args: dict[str, Any]) -> Any:
        info = json.loads((self.data_dir / "server.json").read_text())
        response = httpx.post(
            f"{self.url}/api/v1/control/{op}",
            json=args,
            headers={"X-Sightline-Control": info["secret"]},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Read-only SQL against the server's store."""
        return [tuple(row) for row in self.control("query", {"sql": sql})]

    def count_events(self, where: str = "true") -> int:
        return int(self.query(f"SELECT count(*) FROM events WHERE {where}")[0][0])

    def wait_for_events(self, n: int, timeout: float = 30.0, where: str = "true") -> int:
        """Wait until at least ``n`` events are stored; returns the count."""
        deadline = time.monotonic() + timeout
        count = self.count_events(where)
        while count < n and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.count_events(where)
        return count

    def get(self, path: str, **params: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.Client(timeout=60)
        return self._client.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {self.token}"}
        )


@contextlib.contextmanager
def running_server(tmp_path: Path, **settings: Any) -> Iterator[ServerProcess]:
    """Start ``sightline serve`` on a fresh data dir under ``tmp_path``; stop it after."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(data_dir, settings, tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.close_client()
        if server.process is not None and server.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.stop()

#!/usr/bin/env python3
"""Sightline's task runner. Needs only Python 3.11+ and pip; run `python3 tasks.py help`.

Every target creates the project's virtual environment (.venv) first if it is missing,
installing the locked dependencies with uv, so a fresh clone needs nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ROOT / ".cache" / "tools"
UV_VERSION = "0.13.9"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")

TARGETS: dict[str, tuple[Callable[[list[str]], int], str]] = {}


def target(help_text: str) -> Callable[[Callable[[list[str]], int]], Callable[[list[str]], int]]:
    def register(fn: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        TARGETS[fn.__name__.replace("_", "-")] = (fn, help_text)
        return fn

    return register


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def run(*cmd: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    merged = {**os.environ, **(env or {})}
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=merged)
    if check and code != 0:
        sys.exit(code)
    return code


def uv() -> Path:
    exe = TOOLS / "bin" / "uv"
    if not exe.exists():
        say(f"installing uv {UV_VERSION} into {TOOLS.relative_to(ROOT)}")
        run(
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            TOOLS,
            f"uv=={UV_VERSION}",
        )
    return exe


def ensure_venv() -> None:
    stamp = VENV / ".synced"
    lock = ROOT / "uv.lock"
    if stamp.exists() and lock.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    say("creating .venv with the locked dependencies")
    run(
        uv(),
        "sync",
        "--frozen",
        "--python",
        sys.executable,
        env={"UV_PYTHON_DOWNLOADS": "never", "UV_PROJECT_ENVIRONMENT": str(VENV)},
    )
    stamp.touch()


def sightline(*args: str, check: bool = True) -> int:
    return run(BIN / "sightline", *args, check=check)


def ensure_chromium() -> bool:
    """Debian's Chromium for the browser tests; installed with apt-get when we may."""
    if shutil.which("chromium"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing Debian's chromium for the browser tests")
        quiet = {"DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", check=False, env=quiet)
        run("apt-get", "install", "-y", "-qq", "chromium", check=False, env=quiet)
    return shutil.which("chromium") is not None


@target("install the locked dependencies into .venv")
def setup(args: list[str]) -> int:
    ensure_venv()
    return 0


@target("run Sightline on the embedded default (loads demo data on first start)")
def serve(args: list[str]) -> int:
    ensure_venv()
    data_dir = os.environ.get("SIGHTLINE_DATA_DIR", "sightline-data")
    if not (Path(data_dir) / "sightline.duckdb").exists() or "--demo" in args:
        say("first start: loading demo data (sightline demo)")
        sightline("demo", "--data-dir", data_dir)
        demo_login(Path(data_dir))
    args = [a for a in args if a != "--demo"]
    login = Path(data_dir) / DEMO_LOGIN
    if login.exists():
        say(f"dashboard sign-in (demo admin): {login.read_text().strip()}")
    return sightline("serve", "--data-dir", data_dir, *args, check=False)


DEMO_LOGIN = "demo-login.txt"
DEMO_EMAIL = "demo@sightline.local"


def demo_login(data_dir: Path) -> None:
    """A demo admin with a random password, so the dashboard can be opened at once; the
    sign-in is kept in the data directory (readable by its owner only) and printed."""
    import secrets

    login = data_dir / DEMO_LOGIN
    if login.exists():
        return
    password = secrets.token_urlsafe(12)
    command = [str(BIN / "sightline"), "user", "add", DEMO_EMAIL, "--role", "admin"]
    code = subprocess.run(
        [*command, "--password-stdin", "--data-dir", str(data_dir)],
        input=password + "\n",
        text=True,
        cwd=ROOT,
        capture_output=True,
    ).returncode
    if code == 0:
        login.touch(mode=0o600)
        login.write_text(f"{DEMO_EMAIL} / {password}\n")


@target("run the whole test suite: lint, types, unit, integration and browser tests")
def test(args: list[str]) -> int:
    ensure_venv()
    ensure_chromium()
    lint([])
    backends = ["tests/integration/test_backends_*", "tests/integration/test_faults_*"]
    say("pytest (unit and integration)")
    ignore = [f"--ignore-glob={glob}" for glob in backends]
    # Three processes, a test file each at a time (a file's tests may share a server):
    # most tests wait on servers, subprocesses and fsyncs, so this halves the wall time.
    parallel = ["-n", "3", "--dist", "loadfile"]
    code = run(BIN / "pytest", "-m", "not browser", *parallel, *ignore, *args, check=False)
    if code != 0:
        return code
    # The production backends (PostgreSQL, Redis, RabbitMQ, worker processes) run in their
    # own invocation: a broker fault test cannot leave anything behind in the others.
    say("pytest (production backends)")
    paths = sorted(str(p.relative_to(ROOT)) for g in backends for p in ROOT.glob(g))
    code = run(BIN / "pytest", "-m", "not browser", *paths, *args, check=False)
    if code != 0:
        return code
    say("pytest (browser)")
    code = run(BIN / "pytest", "-m", "browser", *args, check=False)
    return 0 if code == 5 else code  # 5: no browser tests collected


@target("ruff (lint and format check) and mypy --strict")
def lint(args: list[str]) -> int:
    ensure_venv()
    say("ruff check")
    run(BIN / "ruff", "check", "src", "tests", "bench", "scripts", "tasks.py")
    say("ruff format --check")
    run(BIN / "ruff", "format", "--check", "src", "tests", "bench", "scripts", "tasks.py")
    say("mypy")
    run(BIN / "mypy")
    return 0


@target("format the code with ruff")
def fmt(args: list[str]) -> int:
    ensure_venv()
    run(BIN / "ruff", "check", "--fix", "src", "tests", "bench", "scripts", "tasks.py")
    return run(BIN / "ruff", "format", "src", "tests", "bench", "scripts", "tasks.py")


@target("run a benchmark: bench NAME [args] (e.g. bench ingest)")
def bench(args: list[str]) -> int:
    ensure_venv()
    if not args:
        names = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
        print("benchmarks:", ", ".join(names))
        return 0
    return run(BIN / "python", ROOT / "bench" / f"{args[0]}.py", *args[1:], check=False)


@target("rebuild the shipped tracker from sdk/ (needs Node.js and npm; not needed to run)")
def sdk(args: list[str]) -> int:
    run("npm", "ci", "--no-audit", "--no-fund", "--prefix", ROOT / "sdk")
    return run("npm", "run", "build", "--prefix", ROOT / "sdk", check=False)


@target("regenerate docs/settings.md and docs/event.schema.json from the code")
def docs(args: list[str]) -> int:
    ensure_venv()
    return run(BIN / "python", ROOT / "scripts" / "generate_docs.py", *args, check=False)


@target("refresh uv.lock after changing pyproject.toml")
def lock(args: list[str]) -> int:
    return run(uv(), "lock", env={"UV_PYTHON_DOWNLOADS": "never"})


@target("list the targets")
def help(args: list[str]) -> int:
    print("usage: python3 tasks.py TARGET [ARGS...]\n\ntargets:")
    for name, (_, text) in TARGETS.items():
        print(f"  {name:<10} {text}")
    return 0


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "help"
    if name in ("-h", "--help"):
        name = "help"
    if name not in TARGETS:
        print(f"unknown target {name!r}\n", file=sys.stderr)
        help([])
        return 2
    return TARGETS[name][0](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

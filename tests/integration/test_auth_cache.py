"""Revocation across processes: a process that did not make the change refuses a revoked
token within CACHE_SECONDS. Two stores on one DuckDB file stand for two processes (each
has its own Authenticator and cache, and hears only its own changes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.requests import Request

from sightline import admin
from sightline.api.auth import CACHE_SECONDS, Authenticator
from sightline.errors import ApiError
from sightline.stores.duckdb import DuckDBStore


def bearer(token: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/v1/auth/me",
            "headers": [(b"authorization", f"Bearer {token}".encode())],
        }
    )


def test_a_revoked_token_is_refused_elsewhere_within_the_cache_time(tmp_path: Path) -> None:
    here = DuckDBStore(tmp_path / "sightline.duckdb")
    here.migrate()
    elsewhere = DuckDBStore(tmp_path / "sightline.duckdb")
    try:
        admin.add_user(here, "a@example.com", "viewer", None)
        token = admin.create_token(here, "a@example.com")
        local, remote = Authenticator(here), Authenticator(elsewhere)
        assert local.authenticate(bearer(token["token"])).email == "a@example.com"
        assert remote.authenticate(bearer(token["token"])).email == "a@example.com"

        admin.revoke_token(here, token["id"])
        revoked_at = time.monotonic()
        with pytest.raises(ApiError) as refused:
            local.authenticate(bearer(token["token"]))
        assert refused.value.code == "invalid_token"

        codes: list[str] = []
        while not codes:
            try:
                remote.authenticate(bearer(token["token"]))
            except ApiError as exc:
                codes.append(exc.code)
            else:
                assert time.monotonic() - revoked_at <= CACHE_SECONDS + 0.5
                time.sleep(0.1)
        assert codes == ["invalid_token"]
    finally:
        elsewhere.close()
        here.close()

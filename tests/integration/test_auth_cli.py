"""The administration commands on a data directory with no server running."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import cli, cli_json


def test_roles_tokens_and_site_changes_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = cli_json(data, "site", "add", "a.example")
    b = cli_json(data, "site", "add", "b.example", "--origin", "https://b.example")
    boss = cli_json(data, "user", "add", "boss@example.com", "--role", "admin")
    assert boss["role"] == "admin"
    viewer = cli_json(
        data, "user", "add", "v@example.com", "--role", "viewer", "--site", "a.example"
    )
    assert viewer["role"] is None
    assert viewer["sites"] == [{"siteId": a["id"], "role": "viewer"}]

    granted = cli_json(
        data, "user", "grant", "v@example.com", "--site", b["id"], "--role", "analyst"
    )
    assert {g["domain"]: g["role"] for g in granted["sites"]} == {
        "a.example": "viewer",
        "b.example": "analyst",
    }
    revoked = cli_json(data, "user", "revoke", "v@example.com", "--site", "b.example")
    assert [g["domain"] for g in revoked["sites"]] == ["a.example"]
    assert cli(data, "user", "revoke", "v@example.com", "--site", "b.example").returncode == 1
    assert (
        cli(
            data, "user", "grant", "v@example.com", "--site", "nowhere.example", "--role", "viewer"
        ).returncode
        == 1
    )
    listed = cli_json(data, "user", "list")
    assert [u["email"] for u in listed] == ["boss@example.com", "v@example.com"]
    assert "every site: admin" in cli(data, "user", "list").stdout

    promoted = cli_json(data, "user", "role", "v@example.com", "--role", "analyst")
    assert promoted["role"] == "analyst"
    assert cli_json(data, "user", "role", "v@example.com", "--role", "none")["role"] is None
    last = cli(data, "user", "role", "boss@example.com", "--role", "viewer")
    assert last.returncode == 1
    assert "last admin" in last.stderr
    assert cli(data, "user", "delete", "boss@example.com").returncode == 1

    weak = cli(data, "user", "password", "v@example.com", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1
    changed = cli_json(
        data, "user", "password", "v@example.com", "--password-stdin", stdin="long enough pw\n"
    )
    assert changed["passwordChanged"] is True

    token = cli_json(data, "token", "create", "--email", "v@example.com", "--name", "ci")
    tokens = cli_json(data, "token", "list", "--email", "v@example.com")
    assert [t["id"] for t in tokens] == [token["id"]]
    assert "token" not in tokens[0]
    assert cli_json(data, "token", "revoke", token["id"])["revokedAt"] is not None
    assert cli(data, "token", "revoke", token["id"]).returncode == 1
    assert cli(data, "token", "revoke", "no-such-id").returncode == 1
    assert "revoked" in cli(data, "token", "list").stdout

    updated = cli_json(
        data,
        "site",
        "update",
        "b.example",
        "--domain",
        "shop.b.example",
        "--origin",
        "https://shop.b.example",
        "--timezone",
        "Europe/Berlin",
    )
    assert updated["domain"] == "shop.b.example"
    assert updated["allowedOrigins"] == ["https://shop.b.example"]
    assert updated["timezone"] == "Europe/Berlin"
    assert cli(data, "site", "update", "shop.b.example", "--domain", "a.example").returncode == 1
    assert cli(data, "site", "update", "a.example", "--timezone", "Nowhere/Else").returncode == 1
    rotated = cli_json(data, "site", "rotate-key", b["id"])
    assert rotated["siteKey"] != b["siteKey"]
    assert cli(data, "site", "delete", "shop.b.example").returncode == 1  # not confirmed
    deleted = cli_json(data, "site", "delete", "shop.b.example", "--yes")
    assert deleted == {"id": b["id"], "domain": "shop.b.example", "deleted": True}
    assert [s["domain"] for s in cli_json(data, "site", "list")] == ["a.example"]
    assert cli_json(data, "user", "delete", "v@example.com")["deleted"] is True

"""The tier registry: order, names, and any subject store registered in one line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from sightline.privacy.tiers import CacheTier, NamedTier, Tier, TierRegistry


class Archive:
    """A tier as another module would offer it: the two methods, no name."""

    def __init__(self) -> None:
        self.rows = [{"visitor_id": "v1", "n": 1}, {"visitor_id": "v2", "n": 2}]

    def export_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["visitor_id"] in visitor_ids]

    def erase_subject(
        self, site_id: str, visitor_ids: Sequence[str], user_ids: Sequence[str]
    ) -> int:
        before = len(self.rows)
        self.rows = [r for r in self.rows if r["visitor_id"] not in visitor_ids]
        return before - len(self.rows)


def test_a_subject_store_registers_in_one_line_and_keeps_the_order() -> None:
    registry = TierRegistry()
    cleared: list[bool] = []
    registry.register(CacheTier([lambda: cleared.append(True)]))
    archive = Archive()
    registry.register(NamedTier("cold", archive), before="cache")
    assert registry.names() == ["cold", "cache"]
    cold = registry.get("cold")
    assert isinstance(cold, Tier)
    assert cold.export_subject("s", ["v1"], []) == [{"visitor_id": "v1", "n": 1}]
    assert [t.erase_subject("s", ["v1"], []) for t in registry] == [1, 0]
    assert archive.rows == [{"visitor_id": "v2", "n": 2}] and cleared == [True]
    with pytest.raises(ValueError, match="registered already"):
        registry.register(NamedTier("cold", archive))

"""Experiments (A/B tests): what one is, how it is checked, and who sees which variant.

An experiment belongs to a site and is named by a ``key``. It has two or more variants
with integer weights (the first is the control), a goal (an event type, optionally
narrowed by filters in the analytics API's ``dimension:op:values`` syntax, e.g.
``product:is:sku-1``), optional targeting (page path patterns where it runs) and a
status: ``draft`` -> ``running`` -> ``stopped``.

Assignment is a pure function of (experiment key, visitor id), computed identically here
and in the browser tracker (``sdk/src/experiments.js``)::

    h      = fmix32(fnv1a32(utf8(key + ":" + visitorId)))   # 32-bit unsigned
    point  = floor(h / 2**32 * totalWeight)                 # 0 <= point < totalWeight
    variant = the first variant whose cumulative weight exceeds point

FNV-1a spreads the bytes, MurmurHash3's 32-bit finaliser (``fmix32``) mixes the result so
its high bits (the ones ``point`` uses) depend on every input bit. Both need only 32-bit
multiplication, so the tracker computes them synchronously (``Math.imul``). ``point`` is
exact in IEEE doubles while the total weight stays below 2**21 (it is at most 10,000).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

#: Experiment and variant keys: letters, digits, ``_ . -``, starting with a letter or
#: digit (a subset of the query model's property-name pattern, so ``variant:<key>`` works).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_KEY = re.compile(KEY_PATTERN)
#: Keys that would collide with a fixed path under /api/v1/experiments/.
RESERVED_KEYS = frozenset({"config"})
#: The sum of a variant list's weights is at most this.
MAX_TOTAL_WEIGHT = 10_000
MAX_VARIANTS = 10
MAX_GOAL_FILTERS = 10
MAX_TARGET_PAGES = 50
#: Statuses, in the only order they can happen.
STATUSES = ("draft", "running", "stopped")
Status = Literal["draft", "running", "stopped"]

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Key = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN, description="letters, digits, _ . -")]
Name = Annotated[str, msgspec.Meta(max_length=200, pattern=_PRINTABLE)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
Weight = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOTAL_WEIGHT)]
PagePattern = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=512,
        pattern=r"^/[^\x00-\x1f\x7f]*$",
        description="a page path; * matches any characters",
    ),
]
GoalFilter = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=2048,
        description="dimension:op:values, as the analytics API's filter parameter",
        examples=["product:is:sku-1", "prop:plan:is:pro"],
    ),
]
EventTypeName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Effect = Annotated[float, msgspec.Meta(gt=0, le=10)]


class Variant(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    key: Key
    weight: Weight = 1
    name: Name = ""


class Goal(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    #: The event type that counts as a conversion (built-in or custom).
    event_type: EventTypeName
    #: Every filter must hold (event dimensions only: page, product, eventType, prop:<name>).
    filters: Annotated[list[GoalFilter], msgspec.Meta(max_length=MAX_GOAL_FILTERS)] = []


class Targeting(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    #: Page paths where the experiment runs (``*`` matches anything); empty: every page.
    pages: Annotated[list[PagePattern], msgspec.Meta(max_length=MAX_TARGET_PAGES)] = []


Variants = Annotated[list[Variant], msgspec.Meta(min_length=2, max_length=MAX_VARIANTS)]


class ExperimentCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The body of ``POST /api/v1/experiments``."""

    key: Key
    variants: Variants
    goal: Goal
    name: Name = ""
    description: Description = ""
    targeting: Targeting = msgspec.field(default_factory=Targeting)
    #: The smallest relative uplift the experiment should be able to detect (0.1 = 10 %);
    #: sets the minimum sample per variant (95 % confidence, 80 % power).
    minimum_detectable_effect: Effect = 0.1


class ExperimentUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The body of ``PATCH /api/v1/experiments/{key}``: only the fields given change.
    Variants change only while the experiment is a draft."""

    name: Name | None = None
    description: Description | None = None
    variants: Variants | None = None
    goal: Goal | None = None
    targeting: Targeting | None = None
    minimum_detectable_effect: Effect | None = None


class ExperimentError(ValueError):
    """An experiment definition that cannot work; ``code`` names the problem."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def check_key(key: str) -> None:
    if not _KEY.match(key):
        raise ExperimentError(
            "invalid_key",
            "an experiment key is 1-64 letters, digits, _ . - starting with a letter or digit",
        )
    if key in RESERVED_KEYS:
        raise ExperimentError("invalid_key", f"{key!r} is reserved; choose another key")


def check_variants(variants: Sequence[Variant]) -> None:
    keys = [v.key for v in variants]
    if len(set(keys)) != len(keys):
        raise ExperimentError("duplicate_variant", "variant keys must be unique")
    total = sum(v.weight for v in variants)
    if total <= 0:
        raise ExperimentError("invalid_weights", "at least one variant needs a weight above 0")
    if total > MAX_TOTAL_WEIGHT:
        raise ExperimentError(
            "invalid_weights", f"the weights add up to {total}; at most {MAX_TOTAL_WEIGHT}"
        )


def check_goal(goal: Goal) -> None:
    from sightline.events.types import is_valid_event_type
    from sightline.query.model import QueryError, Scope
    from sightline.query.params import parse_filter

    if not is_valid_event_type(goal.event_type):
        raise ExperimentError(
            "invalid_goal",
            f"goal.eventType {goal.event_type!r} is neither a built-in event type nor a "
            "valid custom event name",
        )
    for text in goal.filters:
        try:
            parsed = parse_filter(text)
        except QueryError as exc:
            raise ExperimentError("invalid_goal", f"goal filter {text[:80]!r}: {exc}") from None
        if parsed.dimension.scope is not Scope.EVENT:
            raise ExperimentError(
                "invalid_goal",
                f"goal filter {text[:80]!r}: only event dimensions (page, product, "
                "eventType, prop:<name>) can narrow a goal",
            )


# -- assignment ----------------------------------------------------------------------------

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF


def fnv1a32(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def assignment_hash(experiment_key: str, visitor_id: str) -> int:
    """The 32-bit unsigned hash assignment is decided by."""
    return fmix32(fnv1a32(f"{experiment_key}:{visitor_id}".encode()))


def assign_variant(experiment_key: str, visitor_id: str, weights: Sequence[int]) -> int:
    """The index of the variant ``visitor_id`` sees, for variants with ``weights``."""
    total = sum(weights)
    if total <= 0:
        raise ValueError("weights must add up to more than 0")
    point = int(assignment_hash(experiment_key, visitor_id) / 4294967296 * total)
    cumulative = 0
    for index, weight in enumerate(weights):
        cumulative += weight
        if point < cumulative:
            return index
    return len(weights) - 1  # unreachable: point < total


def variant_for(experiment: dict[str, Any], visitor_id: str) -> str:
    """The key of the variant a visitor sees in an experiment record."""
    variants = experiment["variants"]
    index = assign_variant(experiment["key"], visitor_id, [v["weight"] for v in variants])
    return str(variants[index]["key"])


def to_record(body: ExperimentCreate) -> dict[str, Any]:
    """A new experiment's stored fields (as the store's records name them)."""
    return {
        "key": body.key,
        "name": body.name or body.key,
        "description": body.description,
        "variants": msgspec.to_builtins(body.variants),
        "goal": msgspec.to_builtins(body.goal),
        "targeting": msgspec.to_builtins(body.targeting),
        "minimum_detectable_effect": body.minimum_detectable_effect,
        "status": "draft",
    }


def experiment_json(record: dict[str, Any]) -> dict[str, Any]:
    """The API's view of a stored experiment."""
    from sightline.admin import iso_time

    return {
        "key": record["key"],
        "name": record["name"],
        "description": record["description"],
        "status": record["status"],
        "variants": record["variants"],
        "control": record["variants"][0]["key"],
        "goal": record["goal"],
        "targeting": record["targeting"],
        "minimumDetectableEffect": record["minimum_detectable_effect"],
        "createdAt": iso_time(record["created_at"]),
        "updatedAt": iso_time(record["updated_at"]),
        "startedAt": iso_time(record["started_at"]),
        "stoppedAt": iso_time(record["stopped_at"]),
    }

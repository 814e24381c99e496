"""Experiment definitions and deterministic assignment."""

from __future__ import annotations

import uuid
from collections import Counter

import msgspec
import pytest
from scipy import stats

from sightline.experiments import (
    ExperimentCreate,
    ExperimentError,
    Goal,
    Variant,
    assign_variant,
    assignment_hash,
    check_goal,
    check_key,
    check_variants,
    fmix32,
    fnv1a32,
)

#: Reference values of the published algorithms (FNV-1a 32 test vectors; fmix32 by hand).
FNV_VECTORS = {b"": 0x811C9DC5, b"a": 0xE40C292C, b"foobar": 0xBF9CF968}


def test_fnv1a32_matches_the_published_test_vectors() -> None:
    for data, expected in FNV_VECTORS.items():
        assert fnv1a32(data) == expected


def test_fmix32_is_a_bijection_on_samples_and_mixes_every_bit() -> None:
    seen = {fmix32(i) for i in range(50_000)}
    assert len(seen) == 50_000
    assert fmix32(0) == 0
    flips = [bin(fmix32(1) ^ fmix32(1 | (1 << bit))).count("1") for bit in range(1, 32)]
    assert min(flips) >= 8  # one flipped input bit changes many output bits


def test_assignment_is_deterministic_and_depends_on_the_experiment() -> None:
    ids = [uuid.uuid4().hex for _ in range(2000)]
    first = [assign_variant("checkout-cta", v, [1, 1]) for v in ids]
    again = [assign_variant("checkout-cta", v, [1, 1]) for v in ids]
    other = [assign_variant("hero-image", v, [1, 1]) for v in ids]
    assert first == again
    # independent experiments split visitors independently (about half agree)
    agree = sum(a == b for a, b in zip(first, other, strict=True))
    assert 850 < agree < 1150
    assert assignment_hash("k", "v") == assignment_hash("k", "v")
    assert 0 <= assignment_hash("k", "v") < 2**32


@pytest.mark.parametrize(
    "weights", [[1, 1], [50, 50], [9, 1], [1, 2, 7], [25, 25, 25, 25], [0, 3, 1]]
)
def test_100k_visitors_split_by_the_weights_within_statistical_tolerance(
    weights: list[int],
) -> None:
    n = 100_000
    counts = Counter(assign_variant("exp-weights", f"visitor-{i}", weights) for i in range(n))
    observed = [counts.get(i, 0) for i in range(len(weights))]
    total = sum(weights)
    for i, weight in enumerate(weights):
        share = observed[i] / n
        expected = weight / total
        # within 4.5 standard errors of the binomial share (0 stays exactly 0)
        tolerance = 4.5 * (expected * (1 - expected) / n) ** 0.5
        assert abs(share - expected) <= tolerance, (weights, observed)
    positive = [(o, w) for o, w in zip(observed, weights, strict=True) if w]
    result = stats.chisquare([o for o, _ in positive], [n * w / total for _, w in positive])
    assert result.pvalue > 0.0001, (weights, observed, result)


def test_assignment_of_uuid_visitor_ids_is_uniform_over_many_buckets() -> None:
    n = 100_000
    counts = Counter(
        assign_variant("uniformity", str(uuid.UUID(int=i * 7919 + 1)), [1] * 10) for i in range(n)
    )
    result = stats.chisquare([counts[i] for i in range(10)])
    assert result.pvalue > 0.0001, counts


def test_keys_variants_and_goals_are_checked() -> None:
    check_key("checkout-cta")
    for bad in ("", "-x", "a b", "x" * 65, "config", "a:b"):
        with pytest.raises(ExperimentError):
            check_key(bad)
    with pytest.raises(ExperimentError, match="unique"):
        check_variants([Variant("A"), Variant("A")])
    with pytest.raises(ExperimentError, match="above 0"):
        check_variants([Variant("A", 0), Variant("B", 0)])
    with pytest.raises(ExperimentError, match="at most"):
        check_variants([Variant("A", 6000), Variant("B", 6000)])
    check_goal(Goal("affiliate_click", ["product:is:sku-1", "prop:plan:is:pro"]))
    with pytest.raises(ExperimentError, match="event dimensions"):
        check_goal(Goal("affiliate_click", ["country:is:DE"]))
    with pytest.raises(ExperimentError, match="goal filter"):
        check_goal(Goal("affiliate_click", ["nonsense"]))
    with pytest.raises(ExperimentError, match="eventType"):
        check_goal(Goal("1-bad"))


def test_the_create_body_refuses_unknown_fields_and_too_few_variants() -> None:
    good = {
        "key": "cta",
        "variants": [{"key": "A"}, {"key": "B", "weight": 3}],
        "goal": {"eventType": "affiliate_click"},
    }
    body = msgspec.convert(good, ExperimentCreate)
    assert body.variants[1].weight == 3 and body.minimum_detectable_effect == 0.1
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**good, "variants": [{"key": "A"}]}, ExperimentCreate)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**good, "colour": "red"}, ExperimentCreate)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(
            {**good, "variants": [{"key": "A", "weight": -1}, {"key": "B"}]}, ExperimentCreate
        )

"""Every statistic of the experiment results, against SciPy on the same counts."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as sp

from sightline.query import stats
from sightline.query.experiments import SRM_THRESHOLD, shape_results

CASES = [
    # (control conversions, control exposures, variant conversions, variant exposures)
    (50, 1000, 65, 1000),
    (120, 2400, 95, 2380),
    (5, 40, 11, 38),
    (4800, 100_000, 5100, 100_000),
    (0, 500, 3, 510),
    (30, 300, 0, 310),
]


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize(("cc", "nc", "ct", "nt"), CASES)
def test_two_proportion_test_equals_scipy(cc: int, nc: int, ct: int, nt: int) -> None:
    result = stats.compare_proportions(cc, nc, ct, nt)
    assert result is not None
    # pooled z-test == Pearson's chi-square on the 2x2 table without continuity correction
    table = [[ct, nt - ct], [cc, nc - cc]]
    chi2, p, _, _ = sp.chi2_contingency(table, correction=False)
    assert result.p_value is not None and result.z is not None
    assert rel(result.p_value, p) < 1e-9
    assert rel(result.z**2, chi2) < 1e-9
    # absolute uplift: Wald interval with the unpooled standard error
    pc, pt = cc / nc, ct / nt
    z = sp.norm.ppf(0.975)
    se = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    assert result.absolute == pytest.approx(pt - pc, abs=1e-15)
    assert result.absolute_ci == pytest.approx((pt - pc - z * se, pt - pc + z * se), rel=1e-12)
    # relative uplift: SciPy's relative risk and its (Katz log) confidence interval
    if cc and ct:
        rr = sp.contingency.relative_risk(ct, nt, cc, nc)
        ci = rr.confidence_interval(0.95)
        assert result.relative == pytest.approx(rr.relative_risk - 1, rel=1e-12)
        assert result.relative_ci == pytest.approx((ci.low - 1, ci.high - 1), rel=1e-9)
    elif cc:
        assert result.relative == pytest.approx(-1.0) and result.relative_ci is None
    else:
        assert result.relative is None and result.relative_ci is None


def test_the_95_percent_quantiles_equal_scipy() -> None:
    assert abs(stats.Z_95 - sp.norm.ppf(0.975)) < 1e-14
    assert abs(stats.Z_POWER_80 - sp.norm.ppf(0.8)) < 1e-14


@pytest.mark.parametrize(
    ("x", "df"), [(0.0, 1), (0.4, 1), (3.84, 1), (12.3, 2), (0.5, 3), (45.0, 4), (400.0, 9)]
)
def test_chi_square_survival_equals_scipy(x: float, df: int) -> None:
    assert rel(stats.chi2_sf(x, df), sp.chi2.sf(x, df)) < 1e-10


@pytest.mark.parametrize(
    ("x", "a", "b"),
    [(0.3, 1, 1), (0.05, 51, 951), (0.0502, 5001, 95001), (0.9, 3.5, 2), (0.001, 1, 500)],
)
def test_beta_cdf_and_pdf_equal_scipy(x: float, a: float, b: float) -> None:
    assert stats.beta_cdf(x, a, b) == pytest.approx(special.betainc(a, b, x), rel=1e-9)
    assert stats.beta_pdf(x, a, b) == pytest.approx(sp.beta.pdf(x, a, b), rel=1e-9)


def scipy_probability_best(conversions: list[int], exposures: list[int]) -> list[float]:
    params = [(1 + c, 1 + n - c) for c, n in zip(conversions, exposures, strict=True)]
    out = []
    for i, (a, b) in enumerate(params):
        others = [p for j, p in enumerate(params) if j != i]

        def integrand(x: float, a: float = a, b: float = b, others: Any = others) -> float:
            value = sp.beta.pdf(x, a, b)
            for oa, ob in others:
                value *= sp.beta.cdf(x, oa, ob)
            return float(value)

        lo, hi = sp.beta.ppf([1e-12, 1 - 1e-12], a, b)
        out.append(integrate.quad(integrand, lo, hi, limit=500, epsabs=1e-13)[0])
    return out


@pytest.mark.parametrize(
    ("conversions", "exposures"),
    [
        ([50, 65], [1000, 1000]),
        ([500, 540, 520], [10_000, 10_000, 10_000]),
        ([0, 1], [10, 10]),
        ([0, 0], [0, 0]),
        ([4800, 5100], [100_000, 100_000]),
        ([12, 30, 18, 25], [400, 410, 395, 405]),
    ],
)
def test_probability_of_being_best_equals_scipy_integration(
    conversions: list[int], exposures: list[int]
) -> None:
    ours = stats.probability_best(conversions, exposures)
    theirs = scipy_probability_best(conversions, exposures)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert sum(ours) == pytest.approx(1.0, abs=1e-6)


def test_probability_of_being_best_agrees_with_sampling() -> None:
    rng = np.random.default_rng(7)
    draws = np.stack([rng.beta(1 + c, 1 + 1000 - c, 400_000) for c in (50, 58, 62)])
    sampled = np.bincount(draws.argmax(axis=0), minlength=3) / 400_000
    assert stats.probability_best([50, 58, 62], [1000] * 3) == pytest.approx(
        sampled.tolist(), abs=0.004
    )


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([5000, 5000], [1, 1]),
        ([5500, 4500], [1, 1]),
        ([310, 290, 402], [1, 1, 2]),
        ([900, 100], [9, 1]),
    ],
)
def test_sample_ratio_test_equals_scipy_chisquare(observed: list[int], weights: list[int]) -> None:
    result = stats.sample_ratio_test(observed, weights)
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    reference = sp.chisquare(observed, expected)
    assert result is not None
    assert result.chi_square == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert result.degrees_of_freedom == len(observed) - 1


def test_required_sample_size_equals_the_power_formula_with_scipy_quantiles() -> None:
    p1, effect = 0.05, 0.1
    p2 = p1 * (1 + effect)
    za, zb = sp.norm.ppf(0.975), sp.norm.ppf(0.8)
    pbar = (p1 + p2) / 2
    n = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    assert stats.required_sample_size(p1, effect) == math.ceil(n**2 / (p2 - p1) ** 2)
    assert stats.required_sample_size(0.0, 0.1) is None
    # the power this n gives, by SciPy's normal distribution, is 80 %
    n_req = stats.required_sample_size(p1, effect)
    assert n_req is not None
    se1 = math.sqrt(2 * pbar * (1 - pbar) / n_req)
    se2 = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n_req)
    power = sp.norm.cdf(((p2 - p1) - za * se1) / se2)
    assert power == pytest.approx(0.8, abs=0.002)


def test_revenue_difference_uses_the_welch_standard_error() -> None:
    rng = np.random.default_rng(3)
    a = rng.exponential(3.0, 800) * (rng.random(800) < 0.1)
    b = rng.exponential(3.5, 780) * (rng.random(780) < 0.1)
    result = stats.compare_means(
        float(a.sum()), float((a * a).sum()), 800, float(b.sum()), float((b * b).sum()), 780
    )
    assert result is not None
    se = math.sqrt(a.var(ddof=1) / 800 + b.var(ddof=1) / 780)
    z = sp.norm.ppf(0.975)
    diff = b.mean() - a.mean()
    assert result.absolute == pytest.approx(diff, rel=1e-9)
    assert result.ci == pytest.approx((diff - z * se, diff + z * se), rel=1e-9)
    # SciPy's Welch test has the same standard error
    welch = sp.ttest_ind(b, a, equal_var=False)
    assert diff / se == pytest.approx(welch.statistic, rel=1e-9)


# -- the results document ------------------------------------------------------------------

EXPERIMENT = {
    "key": "cta",
    "name": "CTA",
    "status": "running",
    "variants": [{"key": "A", "weight": 1}, {"key": "B", "weight": 1}],
    "goal": {"eventType": "affiliate_click", "filters": []},
    "minimum_detectable_effect": 0.1,
}
LO = datetime(2026, 3, 1, tzinfo=UTC)
HI = datetime(2026, 3, 4, tzinfo=UTC)
DAY_Q = 96  # quarter-hours per day
Q0 = int(LO.timestamp()) // 900


def rows_for(counts: dict[str, tuple[int, int]]) -> list[tuple[Any, ...]]:
    """Result rows: each variant's (exposures, converters), exposed on day 1, converted day 2."""
    rows: list[tuple[Any, ...]] = []
    for variant, (exposed, converted) in counts.items():
        rows.append(
            (variant, Q0 + 4, Q0 + DAY_Q + 4, converted, converted * 1000.0, converted * 1e6)
        )
        rows.append((variant, Q0 + 4, None, exposed - converted, 0.0, 0.0))
    return rows


def test_an_injected_55_45_split_on_a_50_50_experiment_trips_the_srm_check() -> None:
    results = shape_results(
        EXPERIMENT, rows_for({"A": (5500, 500), "B": (4500, 420)}), "UTC", LO, HI
    )
    assert results["srm"]["mismatch"] is True
    assert results["srm"]["pValue"] < SRM_THRESHOLD
    assert any(w["code"] == "sample_ratio_mismatch" for w in results["warnings"])
    fine = shape_results(EXPERIMENT, rows_for({"A": (5020, 500), "B": (4980, 420)}), "UTC", LO, HI)
    assert fine["srm"]["mismatch"] is False
    assert not any(w["code"] == "sample_ratio_mismatch" for w in fine["warnings"])


def test_results_document_counts_rates_revenue_and_a_cumulative_daily_series() -> None:
    results = shape_results(EXPERIMENT, rows_for({"A": (1000, 50), "B": (1000, 65)}), "UTC", LO, HI)
    a, b = results["variants"]
    assert (a["exposures"], a["conversions"], b["exposures"], b["conversions"]) == (
        1000,
        50,
        1000,
        65,
    )
    assert a["isControl"] and not b["isControl"] and a["uplift"] is None
    assert b["conversionRate"] == pytest.approx(0.065)
    assert b["revenue"] == pytest.approx(650.0) and b["revenuePerVisitor"] == pytest.approx(0.65)
    expected = stats.compare_proportions(50, 1000, 65, 1000)
    assert expected is not None
    assert b["uplift"]["pValue"] == pytest.approx(expected.p_value)
    ci = sp.binomtest(65, 1000).proportion_ci(0.95, method="wilson")
    assert b["conversionRateCi"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    assert a["probabilityBest"] + b["probabilityBest"] == pytest.approx(1.0, abs=1e-6)
    series = results["series"]
    assert series["dates"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert series["variants"]["B"]["exposures"] == [1000, 1000, 1000]
    assert series["variants"]["B"]["conversions"] == [0, 65, 65]
    assert series["variants"]["A"]["conversionRate"] == [0.0, 0.05, 0.05]
    assert results["sample"]["enough"] is False  # 1000 < the ~31k a 10 % effect needs
    assert any(w["code"] == "minimum_sample" for w in results["warnings"])


def test_series_days_follow_the_site_time_zone() -> None:
    # exposed at 23:00 UTC on March 1: already March 2 in Berlin
    rows = [("A", Q0 + 92, None, 3, 0.0, 0.0), ("B", Q0 + 92, None, 3, 0.0, 0.0)]
    results = shape_results(EXPERIMENT, rows, "Europe/Berlin", LO, HI)
    series = results["series"]
    assert series["dates"][0] == "2026-03-01"
    index = series["dates"].index("2026-03-02")
    assert series["variants"]["A"]["exposures"][index - 1] == 0
    assert series["variants"]["A"]["exposures"][index] == 3

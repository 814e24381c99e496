"""The statistics of an A/B test, in pure Python (no numerical library at run time).

Every function here is checked against SciPy on the same counts
(tests/unit/query/test_experiment_stats.py); docs/experiments.md gives the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
#: The two-sided 95 % quantile of the standard normal distribution (1.959963984540054).
Z_95 = _NORMAL.inv_cdf(0.975)
#: The one-sided 80 % quantile (power 0.8).
Z_POWER_80 = _NORMAL.inv_cdf(0.8)
_EPS = 1e-15
_TINY = 1e-300


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


# -- special functions ---------------------------------------------------------------------


def regularized_gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the upper regularised incomplete gamma function
    (series below a + 1, Lentz's continued fraction above)."""
    if x <= 0.0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, math.exp(log_prefix) * h)


def chi2_sf(x: float, df: int) -> float:
    """The chi-square distribution's survival function P(X >= x)."""
    return regularized_gamma_q(df / 2.0, x / 2.0)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b): the CDF of Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def beta_pdf(x: float, a: float, b: float) -> float:
    if x < 0.0 or x > 1.0:
        return 0.0
    log_density = -_log_beta(a, b)
    if a != 1.0:
        if x == 0.0:
            return 0.0 if a > 1.0 else math.inf
        log_density += (a - 1.0) * math.log(x)
    if b != 1.0:
        if x == 1.0:
            return 0.0 if b > 1.0 else math.inf
        log_density += (b - 1.0) * math.log1p(-x)
    return math.exp(log_density)


# -- tests ---------------------------------------------------------------------------------

#: Intervals of Simpson's rule per variant for the probability of being best.
SIMPSON_INTERVALS = 400
#: The integral over variant i's posterior spans its mean +- this many standard deviations.
SPAN_SD = 12.0


def probability_best(conversions: Sequence[int], exposures: Sequence[int]) -> list[float]:
    """P(variant i has the highest conversion rate), each rate with a Beta(1, 1) prior, so
    its posterior is Beta(1 + c_i, 1 + n_i - c_i).

    P_i = integral of f_i(x) * prod_{j != i} F_j(x) dx, by Simpson's rule over the part of
    [0, 1] where f_i has its mass (mean +- 12 sd), with F_j the exact Beta CDF. Numerical
    integration, not sampling: the same counts always give the same answer.
    """
    params = [(1.0 + c, 1.0 + n - c) for c, n in zip(conversions, exposures, strict=True)]
    out: list[float] = []
    steps = SIMPSON_INTERVALS
    for i, (a, b) in enumerate(params):
        mean = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
        lo = max(0.0, mean - SPAN_SD * sd)
        hi = min(1.0, mean + SPAN_SD * sd)
        width = (hi - lo) / steps
        others = [p for j, p in enumerate(params) if j != i]
        total = 0.0
        for k in range(steps + 1):
            x = lo + k * width
            value = beta_pdf(x, a, b)
            if value == 0.0 or not math.isfinite(value):
                continue
            for oa, ob in others:
                value *= beta_cdf(x, oa, ob)
                if value == 0.0:
                    break
            weight = 1.0 if k in (0, steps) else (4.0 if k % 2 else 2.0)
            total += weight * value
        out.append(min(1.0, max(0.0, total * width / 3.0)))
    return out


@dataclass(frozen=True, slots=True)
class Comparison:
    """A treatment against the control, on conversion."""

    absolute: float
    absolute_ci: tuple[float, float]
    relative: float | None
    relative_ci: tuple[float, float] | None
    z: float | None
    p_value: float | None


def compare_proportions(
    control_conversions: int,
    control_exposures: int,
    conversions: int,
    exposures: int,
    z_crit: float = Z_95,
) -> Comparison | None:
    """Absolute uplift (p_t - p_c) with its Wald interval (unpooled standard error),
    relative uplift (p_t / p_c - 1) with the log-ratio (Katz) interval, and the two-sided
    p-value of the pooled two-proportion z-test. None when a group has no exposures."""
    if control_exposures <= 0 or exposures <= 0:
        return None
    pc = control_conversions / control_exposures
    pt = conversions / exposures
    diff = pt - pc
    se = math.sqrt(pc * (1 - pc) / control_exposures + pt * (1 - pt) / exposures)
    absolute_ci = (diff - z_crit * se, diff + z_crit * se)
    relative: float | None = None
    relative_ci: tuple[float, float] | None = None
    if control_conversions > 0:
        relative = pt / pc - 1.0
        if conversions > 0:
            log_se = math.sqrt(
                1 / conversions - 1 / exposures + 1 / control_conversions - 1 / control_exposures
            )
            log_ratio = math.log(pt / pc)
            relative_ci = (
                math.exp(log_ratio - z_crit * log_se) - 1.0,
                math.exp(log_ratio + z_crit * log_se) - 1.0,
            )
    pooled = (control_conversions + conversions) / (control_exposures + exposures)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / control_exposures + 1 / exposures))
    z: float | None = None
    p_value: float | None = None
    if pooled_se > 0:
        z = diff / pooled_se
        p_value = normal_two_sided_p(z)
    return Comparison(diff, absolute_ci, relative, relative_ci, z, p_value)


@dataclass(frozen=True, slots=True)
class SampleRatio:
    chi_square: float
    degrees_of_freedom: int
    p_value: float


def sample_ratio_test(observed: Sequence[int], weights: Sequence[float]) -> SampleRatio | None:
    """Pearson's chi-square goodness of fit of the exposures to the configured weights
    (variants of weight 0 are left out). None without exposures or with one variant."""
    pairs = [(o, w) for o, w in zip(observed, weights, strict=True) if w > 0]
    total = sum(o for o, _ in pairs)
    weight = sum(w for _, w in pairs)
    if total <= 0 or len(pairs) < 2:
        return None
    chi = 0.0
    for o, w in pairs:
        expected = total * w / weight
        chi += (o - expected) ** 2 / expected
    df = len(pairs) - 1
    return SampleRatio(chi, df, chi2_sf(chi, df))


def required_sample_size(
    baseline: float,
    relative_effect: float,
    z_alpha: float = Z_95,
    z_beta: float = Z_POWER_80,
) -> int | None:
    """Visitors per variant for a two-sided two-proportion z-test to detect a relative
    change ``relative_effect`` of ``baseline`` (95 % confidence, 80 % power):

    n = (z_a * sqrt(2 p (1 - p)) + z_b * sqrt(p1 (1 - p1) + p2 (1 - p2)))^2 / (p2 - p1)^2

    with p1 = baseline, p2 = baseline * (1 + effect), p = (p1 + p2) / 2. None when it
    cannot be computed (a baseline of 0 or 1, or p2 outside (0, 1))."""
    p1 = baseline
    p2 = baseline * (1.0 + relative_effect)
    if not (0.0 < p1 < 1.0 and 0.0 < p2 < 1.0) or p1 == p2:
        return None
    mean = (p1 + p2) / 2.0
    top = z_alpha * math.sqrt(2.0 * mean * (1.0 - mean)) + z_beta * math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    return math.ceil(top * top / ((p2 - p1) ** 2))


@dataclass(frozen=True, slots=True)
class MeanDifference:
    absolute: float
    ci: tuple[float, float]
    relative: float | None


def compare_means(
    control_sum: float,
    control_sum_sq: float,
    control_n: int,
    total: float,
    total_sq: float,
    n: int,
    z_crit: float = Z_95,
) -> MeanDifference | None:
    """Difference of two means (revenue per visitor) with a normal-approximation interval
    from the unpooled (Welch) standard error; sample variances with n - 1."""
    if control_n < 2 or n < 2:
        return None
    mc, mt = control_sum / control_n, total / n
    vc = max(0.0, (control_sum_sq - control_n * mc * mc) / (control_n - 1))
    vt = max(0.0, (total_sq - n * mt * mt) / (n - 1))
    se = math.sqrt(vc / control_n + vt / n)
    diff = mt - mc
    return MeanDifference(diff, (diff - z_crit * se, diff + z_crit * se), diff / mc if mc else None)

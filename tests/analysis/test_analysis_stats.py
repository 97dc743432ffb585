"""Every statistic against a reference (scipy, statsmodels, rliable, hand computation), and the
small-n defects each one used to have."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pytest
from rliable import metrics as rly
from scipy import stats as sps
from statsmodels.stats.meta_analysis import effectsize_smd
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.weightstats import ttost_ind

from bnorder.analysis import (
    average_difference,
    cliffs_delta,
    critical_difference,
    difference,
    friedman,
    hedges_g,
    holm,
    holm_levels,
    iqm,
    mannwhitney,
    mean_ranks,
    min_detectable_difference,
    nemenyi,
    permutation,
    prob_improvement,
    runs_needed,
    score_distribution,
    std_ci,
    stratified_permutation,
    t_ci,
    tost,
    tost_t,
    varies,
    welch,
    welch_ci,
    welch_power,
)
from bnorder.analysis.aggregate import _t_interval

RNG_SEED = 20261129


def _planted(n: int = 10, shift: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(70.0, 1.0, n), rng.normal(70.0 + shift, 1.0, n)


# ---------------------------------------------------------------- ties: the old p = 1e-29


def test_tied_runs_are_not_significant_by_float_noise() -> None:
    a, b = [0.8] * 3, [0.805] * 3
    assert np.var(a) != 0  # 1.2e-32: the float variance that fooled the old `var() == 0` check
    assert not varies(a)
    assert math.isnan(welch(a, b))  # Welch is undefined, not p = 2.5e-28
    assert all(math.isnan(v) for v in welch_ci(a, b))  # not a zero-width interval
    assert math.isnan(hedges_g(a, b))  # not d = 5e13
    d = difference(a, b)
    assert d.test == "permutation"
    assert d.p == pytest.approx(2 / 20)  # the observed split is the most extreme of C(6, 3)
    assert "no spread in either group" in d.note
    assert all(math.isnan(v) for v in d.ci(0.95))
    assert difference([0.9] * 4, [0.905] * 4).p == pytest.approx(2 / 70)


def test_one_tied_group_also_uses_the_permutation_test() -> None:
    d = difference([0.9, 0.9, 0.9], [0.91, 0.92, 0.905])
    assert d.test == "permutation"
    assert "no spread in the baseline's runs" in d.note
    assert d.p == pytest.approx(0.1)  # 3 vs 3: the smallest two-sided p there is


def test_permutation_test_is_scipys_exact_test() -> None:
    a, b = _planted(n=5, shift=1.0)
    ref = sps.permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        n_resamples=np.inf,
        vectorized=True,
    )
    assert permutation(a, b) == pytest.approx(ref.pvalue)


def test_infinite_values_take_the_rank_test_and_warn_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = difference([1.0, 1.2, 1.1], [0.9, math.inf, 1.0])
        assert d.test == "mann-whitney"
        assert math.isnan(d.diff)
        assert d.p == pytest.approx(mannwhitney([1.0, 1.2, 1.1], [0.9, math.inf, 1.0]))
        assert math.isnan(hedges_g([1.0, 2.0], [1.0, math.inf]))
        assert all(math.isnan(v) for v in t_ci([1.0, math.inf]))


@pytest.mark.parametrize(
    ("a", "b"), [([0.7], [0.8, 0.9]), ([0.7, 0.8], []), ([np.nan, 0.7], [1, 2])]
)
def test_fewer_than_two_runs_are_never_tested(a: list[float], b: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = difference(a, b)
        assert d.test == "none"
        assert math.isnan(d.p)
        for fn in (welch, mannwhitney, hedges_g, permutation, lambda x, y: tost(x, y, 0.1)):
            assert math.isnan(fn(a, b))


def test_identical_runs_have_nothing_to_test() -> None:
    d = difference([0.5, 0.5, 0.5], [0.5, 0.5])
    assert (d.test, d.note) == ("none", "all runs identical: nothing to test")


# ---------------------------------------------------------------- references


def test_welch_matches_scipy_and_its_interval_agrees_with_its_p() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(50):
        a, b = rng.normal(0, 1, 4), rng.normal(0.8, 2, 6)
        ref = sps.ttest_ind(b, a, equal_var=False)
        assert welch(a, b) == pytest.approx(ref.pvalue)
        for level in (0.9, 0.95, 0.99):
            low, high = welch_ci(a, b, level=level)
            assert (low > 0 or high < 0) == (welch(a, b) < 1 - level)
        d = difference(a, b)
        assert d.ci(0.95) == pytest.approx(welch_ci(a, b))
        assert d.df == pytest.approx(ref.df)


def test_hedges_g_matches_statsmodels() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for na, nb in ((2, 2), (3, 5), (10, 10)):
        a, b = rng.normal(0, 1, na), rng.normal(1, 1, nb)
        ref = effectsize_smd(b.mean(), b.std(ddof=1), nb, a.mean(), a.std(ddof=1), na)[0]
        # statsmodels corrects with Hedges' approximation 1 - 3 / (4 N - 9); ours is exact
        assert hedges_g(a, b) == pytest.approx(ref, rel=0.015 if na == 2 else 0.002)
    # at 2 runs per group Cohen's d overstates by 1/J(2) = 1/0.5642
    d = (4 - 1.5) / math.sqrt(0.5)
    assert hedges_g([1, 2], [3.5, 4.5]) == pytest.approx(d * 0.5641895835)


def test_holm_matches_statsmodels_and_keeps_nan_out() -> None:
    p = np.random.default_rng(RNG_SEED).uniform(0, 0.2, 25)
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    assert holm([]).size == 0


def test_holm_levels_reject_exactly_what_holm_rejects() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(200):
        p = rng.uniform(0, 0.1, rng.integers(1, 8))
        levels = holm_levels(p, 0.05)
        np.testing.assert_array_equal(p < levels, holm(p) < 0.05)
        assert np.all(levels <= 0.05)
        assert np.all(levels >= 0.05 / p.size)


def test_interval_at_the_holm_level_never_contradicts_the_decision() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(40):
        base = rng.normal(0, 1, 3)
        contenders = [rng.normal(shift, 1, 3) for shift in rng.uniform(0, 4, 4)]
        tests = [difference(base, b) for b in contenders]
        p = [t.p for t in tests]
        for t, level, adjusted in zip(tests, holm_levels(p, 0.05), holm(p), strict=True):
            low, high = t.ci(1 - level)
            assert (low > 0 or high < 0) == (adjusted < 0.05)


def test_tost_is_statsmodels_and_tost_t_matches_it_for_one_point() -> None:
    a, b = _planted(n=8, shift=0.1)
    p = tost(a, b, 1.0)
    assert p == pytest.approx(ttost_ind(b, a, -1.0, 1.0, usevar="unequal")[0])
    d = average_difference([(a, b)])
    assert tost_t(d.diff, d.se, d.df, 1.0) == pytest.approx(p)
    assert math.isnan(tost(a, b, 0.0))


def test_prob_improvement_iqm_and_profiles_match_rliable() -> None:
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.normal(0, 1, (5, 7)), rng.normal(0.3, 1, (5, 7))  # (runs, tasks)
    strata_a, strata_b = list(a.T), list(b.T)
    ours = np.mean([prob_improvement(x, y) for x, y in zip(strata_a, strata_b, strict=True)])
    assert ours == pytest.approx(rly.probability_of_improvement(b, a))
    assert iqm(a.ravel()) == pytest.approx(rly.aggregate_iqm(a))
    taus = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(score_distribution(strata_a, taus), [np.mean(a > t) for t in taus])


def test_effect_sizes_by_hand() -> None:
    # b over a on 9 pairs: 6 greater, 2 equal, 1 less
    assert cliffs_delta([1, 2, 3], [2, 3, 4]) == pytest.approx(5 / 9)
    assert prob_improvement([1, 2, 3], [2, 3, 4]) == pytest.approx(7 / 9)
    assert prob_improvement([1, 1], [1, 1]) == 0.5
    u = sps.mannwhitneyu([2, 3, 4], [1, 2, 3]).statistic
    assert prob_improvement([1, 2, 3], [2, 3, 4]) == pytest.approx(u / 9)
    assert iqm([1, 2, 3, 100]) == pytest.approx(2.5)


def test_parametric_intervals_by_hand() -> None:
    low, high = t_ci([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) / math.sqrt(3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    low, high = std_ci([1.0, 2.0, 3.0], level=0.9)
    assert (low, high) == pytest.approx(
        (math.sqrt(2 / sps.chi2.ppf(0.95, 2)), math.sqrt(2 / sps.chi2.ppf(0.05, 2)))
    )
    assert t_ci([0.7, 0.7, 0.7]) == (0.7, 0.7)


# ---------------------------------------------------------------- power


@pytest.mark.parametrize("n", [10, 40, 100])
def test_power_meets_statsmodels_where_welch_and_student_agree(n: int) -> None:
    ref = TTestIndPower().solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8)
    assert min_detectable_difference(1.0, 1.0, n, n) == pytest.approx(ref, rel=0.02)
    assert welch_power(0.5, 1.0, 1.0, n, n) == pytest.approx(
        TTestIndPower().power(0.5, nobs1=n, alpha=0.05), abs=0.015
    )


@pytest.mark.parametrize("n", [2, 3])
def test_power_at_small_n_is_welchs_own_not_the_noncentral_t(n: int) -> None:
    # Welch's df is random and small: simulate the real test at the stated difference
    mdd = min_detectable_difference(1.0, 1.0, n, n)
    rng = np.random.default_rng(RNG_SEED + n)
    a, b = rng.normal(0, 1, (4000, n)), rng.normal(mdd, 1, (4000, n))
    rejected = np.mean(sps.ttest_ind(b, a, axis=1, equal_var=False).pvalue < 0.05)
    assert rejected == pytest.approx(0.8, abs=0.025)
    # the old normal approximation claimed 2.8 SD at n = 2, the noncentral t with Welch's df 5.7
    assert mdd > 2 * 5.0 if n == 2 else mdd > 3.0


def test_detectable_difference_grows_with_the_holm_correction() -> None:
    at_alpha = min_detectable_difference(1.0, 1.0, 3, 3, alpha=0.05)
    assert min_detectable_difference(1.0, 1.0, 3, 3, alpha=0.05 / 6) > 1.5 * at_alpha
    assert math.isnan(min_detectable_difference(1.0, 1.0, 1, 10))
    assert math.isnan(min_detectable_difference(0.0, 0.0, 5, 5))


def test_runs_needed_matches_statsmodels_and_handles_the_edges() -> None:
    ref = math.ceil(TTestIndPower().solve_power(effect_size=0.5, nobs1=None, alpha=0.05, power=0.8))
    assert abs(runs_needed(0.5, 1.0) - ref) <= 1
    assert runs_needed(0.0, 1.0) == math.inf
    assert runs_needed(1e-9, 1.0) == math.inf  # more than 10,000
    assert math.isnan(runs_needed(0.5, 0.0))
    assert math.isnan(runs_needed(0.5, math.nan))
    # 4 points of the same spread need about a quarter of the runs per point
    assert runs_needed(0.5, np.ones(4)) <= ref / 4 + 2


# ---------------------------------------------------------------- across points


def test_average_difference_over_one_point_is_welch() -> None:
    a, b = _planted(n=5, shift=1.0)
    avg, one = average_difference([(a, b)]), difference(a, b)
    assert (avg.diff, avg.p, avg.se, avg.df) == pytest.approx((one.diff, one.p, one.se, one.df))


def test_stratified_permutation_over_one_point_is_the_permutation_test() -> None:
    a, b = _planted(n=4, shift=1.0)
    assert stratified_permutation([(a, b)]) == pytest.approx(permutation(a, b), abs=0.01)


def test_average_difference_with_ties_falls_back_to_permutation() -> None:
    pairs = [
        (np.array([0.9, 0.9]), np.array([0.91, 0.91])),
        (np.array([0.8, 0.81]), np.array([0.82, 0.83])),
    ]
    d = average_difference(pairs)
    assert d.test == "permutation"
    assert d.diff == pytest.approx(0.015)
    assert all(math.isnan(v) for v in d.ci(0.95))


def test_friedman_statistic_is_scipys_and_its_p_is_exact() -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(size=(6, 4))
    assert friedman(x).statistic == pytest.approx(sps.friedmanchisquare(*x.T).statistic)
    consistent = np.array([[3.0, 2.0, 1.0]] * 3)
    res = friedman(consistent)
    assert res.exact
    assert res.p == pytest.approx(1 / 36)  # the one most extreme arrangement in 6**3, times 6
    assert mean_ranks(consistent).tolist() == [1.0, 2.0, 3.0]


def test_nemenyi_rejects_exactly_beyond_the_critical_difference() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(30):
        x = rng.normal(size=(12, 4)) + np.array([0, 0.5, 1.0, 1.5])
        ranks, p = mean_ranks(x), nemenyi(x, list("abcd")).to_numpy()
        cd = critical_difference(12, 4)
        for i, j in combinations(range(4), 2):
            if abs(abs(ranks[i] - ranks[j]) - cd) > 1e-6:
                assert (p[i, j] < 0.05) == (abs(ranks[i] - ranks[j]) > cd)


def test_stratified_bootstrap_se_of_a_mean_matches_the_formula() -> None:
    rng = np.random.default_rng(RNG_SEED)
    strata = [
        rng.normal(mu, sd, 3) for mu, sd in zip(range(8), np.linspace(0.5, 2, 8), strict=True)
    ]

    def mean_of_means(*runs: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean([r.mean(axis=axis) for r in runs], axis=0)

    estimate = float(mean_of_means(*strata))
    low, high = _t_interval(estimate, strata, mean_of_means, 0.95, seed=0, resamples=20_000)
    se = math.sqrt(sum(s.var(ddof=1) / s.size for s in strata)) / len(strata)
    half = sps.t.ppf(0.975, sum(s.size - 1 for s in strata)) * se
    assert (high - low) / 2 == pytest.approx(half, rel=0.03)  # rescaled runs: unbiased SE


@pytest.mark.parametrize("fn", [lambda x: t_ci(x), lambda x: std_ci(x)])
def test_one_run_gives_nan_intervals(fn: Callable[..., tuple[float, ...]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(math.isnan(v) for v in fn([0.7]))
        assert all(math.isnan(v) for v in fn([]))

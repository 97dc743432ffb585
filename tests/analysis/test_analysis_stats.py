"""The statistics on known answers: planted effects are found with the right sign, the null
gives nominal error rates, and hand-computed cases match exactly."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps

from bnorder.analysis import stats

RNG_SEED = 20240611


def _planted(n: int = 10, shift: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(70.0, 1.0, n), rng.normal(70.0 + shift, 1.0, n)


# ---------------------------------------------------------------- planted effect, both signs


def test_planted_difference_is_detected_with_its_sign() -> None:
    a, b = _planted()
    assert stats.welch(a, b) < 1e-3
    assert stats.mannwhitney(a, b) < 1e-3
    low, high = stats.diff_ci(a, b)
    assert 0 < low < 3 < high
    w_low, w_high = stats.welch_ci(a, b)
    assert 0 < w_low < 3 < w_high
    assert stats.cohens_d(a, b) > 1.5
    assert stats.cliffs_delta(a, b) > 0.8
    assert stats.prob_improvement(a, b) > 0.9


def test_swapping_groups_flips_every_signed_effect() -> None:
    a, b = _planted()
    assert stats.diff_ci(b, a)[1] < 0
    assert stats.welch_ci(b, a)[1] < 0
    assert stats.cohens_d(b, a) == pytest.approx(-stats.cohens_d(a, b))
    assert stats.cliffs_delta(b, a) == pytest.approx(-stats.cliffs_delta(a, b))
    assert stats.prob_improvement(b, a) == pytest.approx(1 - stats.prob_improvement(a, b))
    assert stats.welch(b, a) == pytest.approx(stats.welch(a, b))


# ---------------------------------------------------------------- the null: nominal error rates


def test_false_positive_rate_under_the_null_is_nominal() -> None:
    rng = np.random.default_rng(RNG_SEED)
    samples = rng.normal(0.0, 1.0, size=(400, 2, 10))
    welch = np.array([stats.welch(a, b) for a, b in samples])
    mw = np.array([stats.mannwhitney(a, b) for a, b in samples])
    assert 0.02 <= np.mean(welch < 0.05) <= 0.09
    assert 0.01 <= np.mean(mw < 0.05) <= 0.09  # the exact test is a little conservative


def test_welch_ci_covers_the_true_difference_at_its_level() -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    hits = [
        low <= 3.0 <= high
        for low, high in (
            stats.welch_ci(rng.normal(0, 1, 10), rng.normal(3, 2, 10)) for _ in range(400)
        )
    ]
    assert 0.91 <= np.mean(hits) <= 0.99


def test_bootstrap_diff_ci_coverage_is_close_to_nominal_with_ten_runs() -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    hits = []
    for i in range(200):
        low, high = stats.diff_ci(
            rng.normal(0, 1, 10), rng.normal(3, 1, 10), n_resamples=400, seed=i
        )
        hits.append(low <= 3.0 <= high)
    # the percentile bootstrap undercovers a little at n = 10 (about 0.92): never claim more
    assert 0.85 <= np.mean(hits) <= 0.99


def test_min_detectable_difference_is_detected_about_as_often_as_promised() -> None:
    mdd = stats.min_detectable_difference(1.0, 1.0, 10, 10)
    rng = np.random.default_rng(RNG_SEED + 3)
    rejected = [
        stats.welch(rng.normal(0, 1, 10), rng.normal(mdd, 1, 10)) < 0.05 for _ in range(400)
    ]
    # normal approximation: the t test's real power is a little below the promised 0.8
    assert 0.65 <= np.mean(rejected) <= 0.88


# ---------------------------------------------------------------- hand-computed cases


def test_holm_on_a_hand_computed_example() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> 0.06 (monotone)
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_keeps_nan_out_of_the_count_and_caps_at_one() -> None:
    np.testing.assert_allclose(stats.holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])
    assert stats.holm([]).size == 0


def test_holm_is_monotone_and_matches_the_definition() -> None:
    p = np.random.default_rng(RNG_SEED).uniform(0, 0.2, 25)
    adjusted = stats.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p)
    assert np.all(adjusted <= 1)
    m = p.size
    by_definition = [min(1.0, max((m - j) * p[order[j]] for j in range(i + 1))) for i in range(m)]
    np.testing.assert_allclose(adjusted[order], by_definition)


def test_cohens_d_by_hand() -> None:
    assert stats.cohens_d([1, 2, 3], [3, 4, 5]) == pytest.approx(2.0)
    # pooled variance (1*2 + 3*5/3) / 4 = 1.75; mean difference 2.5 - 1
    assert stats.cohens_d([0, 2], [1, 2, 3, 4]) == pytest.approx(1.5 / math.sqrt(1.75))


def test_cliffs_delta_and_probability_of_improvement_by_hand() -> None:
    # b over a on 9 pairs: 6 greater, 2 equal, 1 less
    assert stats.cliffs_delta([1, 2, 3], [2, 3, 4]) == pytest.approx(5 / 9)
    assert stats.prob_improvement([1, 2, 3], [2, 3, 4]) == pytest.approx(7 / 9)
    assert stats.cliffs_delta([1, 2], [5, 6]) == 1.0
    assert stats.prob_improvement([1, 1], [1, 1]) == 0.5


def test_probability_of_improvement_is_the_normalised_mann_whitney_u() -> None:
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.integers(0, 5, 12), rng.integers(0, 5, 9)  # with ties
    u = sps.mannwhitneyu(b, a).statistic
    assert stats.prob_improvement(a, b) == pytest.approx(u / (a.size * b.size))


def test_iqm_trims_a_quarter_from_each_end() -> None:
    assert stats.iqm([1, 2, 3, 100]) == pytest.approx(2.5)
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)
    assert stats.iqm([1, 2, 3]) == pytest.approx(2.0)


def test_parametric_intervals_by_hand() -> None:
    low, high = stats.t_ci([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) / math.sqrt(3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    low, high = stats.std_ci([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx(
        (math.sqrt(2 / sps.chi2.ppf(0.975, 2)), math.sqrt(2 / sps.chi2.ppf(0.025, 2)))
    )


def test_min_detectable_difference_by_hand() -> None:
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert stats.min_detectable_difference(1.0, 1.0, 10, 10) == pytest.approx(z * math.sqrt(0.2))
    assert stats.min_detectable_difference(2.0, 2.0, 40, 40) == pytest.approx(
        stats.min_detectable_difference(1.0, 1.0, 10, 10)
    )


# ---------------------------------------------------------------- bootstrap behaviour


def test_bootstrap_ci_is_seeded_and_brackets_the_statistic() -> None:
    x = np.random.default_rng(RNG_SEED).normal(0.8, 0.02, 8)
    assert stats.bootstrap_ci(x) == stats.bootstrap_ci(x)
    assert stats.bootstrap_ci(x, seed=1) != stats.bootstrap_ci(x)
    low, high = stats.bootstrap_ci(x)
    assert low < x.mean() < high
    low, high = stats.bootstrap_ci(x, np.median, method="BCa", n_resamples=2000)
    assert low <= np.median(x) <= high


def test_constant_data_give_a_zero_width_interval() -> None:
    assert stats.bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    assert stats.diff_ci([0.7, 0.7], [0.8, 0.8]) == pytest.approx((0.1, 0.1))


# ---------------------------------------------------------------- NaN, never made-up numbers

TWO_SAMPLE = [
    stats.welch,
    stats.mannwhitney,
    stats.cohens_d,
    lambda a, b: stats.diff_ci(a, b)[0],
    lambda a, b: stats.welch_ci(a, b)[0],
]


@pytest.mark.parametrize("fn", TWO_SAMPLE)
@pytest.mark.parametrize(
    ("a", "b"), [([0.7], [0.8, 0.9]), ([0.7, 0.8], []), ([np.nan, 0.7], [1, 2])]
)
def test_two_sample_statistics_need_two_runs_per_group(
    fn: Callable[..., float], a: list[float], b: list[float]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(fn(a, b))


@pytest.mark.parametrize(
    "fn", [stats.welch, stats.mannwhitney, stats.cohens_d, lambda a, b: stats.welch_ci(a, b)[0]]
)
def test_tests_on_identical_values_are_nan_without_warnings(fn: Callable[..., float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(fn([0.5, 0.5, 0.5], [0.5, 0.5]))


@pytest.mark.parametrize(
    "fn", [stats.bootstrap_ci, stats.t_ci, stats.std_ci, lambda x: (stats.std(x),)]
)
def test_one_run_gives_nan_intervals(fn: Callable[..., tuple[float, ...]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(math.isnan(v) for v in fn([0.7]))
        assert all(math.isnan(v) for v in fn([]))


def test_constant_but_different_groups() -> None:
    # zero variance in both groups: the t statistic is undefined (scipy would say p = 0)
    assert math.isnan(stats.welch([1, 1, 1], [2, 2, 2]))
    # ties: the exact permutation answer (1 split in 20, two-sided), not the normal
    # approximation's 0.047 that would call 3 runs significant
    assert stats.mannwhitney([1, 1, 1], [2, 2, 2]) == pytest.approx(0.1)


def test_empty_groups_give_nan_effect_sizes() -> None:
    assert math.isnan(stats.cliffs_delta([], [1.0]))
    assert math.isnan(stats.prob_improvement([1.0], []))
    assert math.isnan(stats.min_detectable_difference(1.0, 1.0, 1, 10))
    assert math.isnan(stats.iqm([]))

"""Simulation: every interval and test keeps its promise at 2, 3, 5 and 10 runs, or is not
produced. A seeded slice of ``python -m bnorder.analysis.calibration`` (which prints the
whole table), through the same functions the report calls.

Bounds: coverage at least nominal - 3 points (an interval never over-claims) and at most
nominal + 3 points (``conservative`` beyond that: Welch's interval at 2 runs covers about
98%); false positives at most alpha + 0.02; power at a stated detectable difference or at the
runs said to be needed at least 0.75. With the reps used here the Monte-Carlo error of a
coverage near 0.95 is about 0.8 points, so a statistic that met its promise only by luck
would not pass every seed-fixed cell.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bnorder.analysis import calibration as cal

NS = cal.NS
REPS = 700
LOW, HIGH = 0.95 - 0.03, 0.95 + 0.03
MAX_FPR = cal.ALPHA + 0.02


def _seeded(*key: object) -> np.random.Generator:
    """A generator for one cell, fixed by the cell's name (reproducible when run alone)."""
    return np.random.default_rng(sum(ord(c) for c in repr(key)) + 20261129)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)


# ---------------------------------------------------------------- intervals


@pytest.mark.parametrize("n", NS)
def test_mean_and_sd_intervals_cover(n: int) -> None:
    assert LOW <= cal.cover_mean(_seeded("mean", n), n, REPS) <= HIGH
    assert LOW <= cal.cover_sd(_seeded("sd", n), n, REPS) <= HIGH


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("scenario", ["normal", "unequal"])
def test_welch_interval_covers(n: int, scenario: str) -> None:
    coverage = cal.cover_difference(_seeded("welch", n, scenario), n, REPS, scenario)
    assert coverage >= LOW
    assert coverage <= (0.99 if n == 2 else HIGH)  # Welch at 2 runs: ~98%, on the safe side


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("scenario", ["normal", "hetero"])
def test_average_effect_interval_covers_and_its_test_holds_alpha(n: int, scenario: str) -> None:
    rng = _seeded("average", n, scenario)
    coverage = cal.cover_average(rng, n, REPS // 2, scenario)
    assert coverage >= LOW
    assert coverage <= (0.99 if n == 2 else HIGH)  # Satterthwaite over 1-df variances: wide
    assert cal.fpr_average(rng, n, REPS // 2, scenario) <= MAX_FPR


@pytest.mark.parametrize(("points", "n"), [(10, 5), (20, 3)])
@pytest.mark.parametrize("scenario", ["normal", "hetero", "skewed", "large"])
def test_aggregate_intervals_cover_where_produced(points: int, n: int, scenario: str) -> None:
    iqm, poi, made = cal.cover_aggregates(
        _seeded("aggregate", points, n, scenario), n, 250, scenario, points, resamples=400
    )
    assert made == 1.0
    # measured with 600 reps: 93-96% in every one of these cells; 250 reps here (error ~1.4)
    assert iqm >= LOW - 0.01
    assert poi >= LOW - 0.01
    assert max(iqm, poi) <= 0.99


@pytest.mark.parametrize(("points", "n"), [(2, 3), (5, 5), (10, 3), (19, 4)])
def test_aggregate_intervals_are_not_produced_where_they_undercover(points: int, n: int) -> None:
    # measured: 83-89% at 2-5 points with 3 runs, 90% at 10 points with 2-3 runs
    assert cal.cover_aggregates(_seeded("none", points, n), n, 2, "normal", points)[2] == 0.0


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("scenario", cal.SCENARIOS)
def test_difference_test_holds_alpha(n: int, scenario: str) -> None:
    assert cal.fpr_difference(_seeded("difference", n, scenario), n, REPS, scenario) <= MAX_FPR


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("scenario", ["normal", "ties"])
def test_mann_whitney_holds_alpha(n: int, scenario: str) -> None:
    assert cal.fpr_mannwhitney(_seeded("mw", n, scenario), n, REPS, scenario) <= MAX_FPR


@pytest.mark.parametrize("n", NS)
def test_average_effect_test_holds_alpha_when_points_tie(n: int) -> None:
    # rounded accuracies: some points' runs tie and the stratified permutation test decides
    assert cal.fpr_average(_seeded("average-ties", n), n, REPS // 2, "ties") <= MAX_FPR


@pytest.mark.parametrize("orderings", [5, 6])
def test_rank_agreement_holds_alpha(orderings: int) -> None:
    assert cal.fpr_kendall(_seeded("kendall", orderings), orderings, REPS) <= MAX_FPR


@pytest.mark.parametrize("n", NS)
def test_holm_family_and_equivalence_hold_alpha(n: int) -> None:
    rng = _seeded("family", n)
    assert cal.fpr_holm(rng, n, REPS // 2) <= MAX_FPR
    assert cal.fpr_tost(rng, n, REPS) <= MAX_FPR  # true difference on the margin


@pytest.mark.parametrize("n", [2, 3, 5])
def test_spread_test_is_not_produced_below_six_runs(n: int) -> None:
    assert np.isnan(cal.fpr_spread(_seeded("spread", n), n, 5))


@pytest.mark.parametrize("n", [6, 10])
def test_spread_test_holds_alpha_where_produced(n: int) -> None:
    assert cal.fpr_spread(_seeded("spread", n), n, REPS // 2) <= MAX_FPR


@pytest.mark.parametrize("points", [2, 3, 5, 10])
def test_rankings_hold_alpha(points: int) -> None:
    friedman, nemenyi = cal.fpr_rankings(_seeded("rank", points), points, REPS // 2)
    assert friedman <= MAX_FPR
    assert nemenyi <= MAX_FPR
    if points == 2:
        assert friedman == 0.0  # smallest possible p with 3 orderings is 1/6


# ---------------------------------------------------------------- power claims


@pytest.mark.parametrize("n", NS)
def test_stated_detectable_difference_is_detected(n: int) -> None:
    assert cal.power_at_detectable(_seeded("mdd", n), n, REPS) >= 0.75


@pytest.mark.parametrize("points", [1, 5])
def test_runs_said_to_be_needed_give_the_power(points: int) -> None:
    needed, power = cal.power_at_runs_needed(_seeded("needed", points), 0.01, REPS, points)
    assert needed >= 2
    assert power >= 0.75


def test_the_table_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert cal.main(["--reps", "5"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == [
        "statistic",
        "kind",
        "scenario",
        "points",
        "n",
        "value",
        "nominal",
        "status",
        "stress",
    ]
    assert "promises (" in out

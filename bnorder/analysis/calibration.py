"""Does each statistic keep its promise at the n people run? Seeded simulations of every
interval's coverage, every test's false-positive rate and every power claim, through the same
functions the report calls.

``python -m bnorder.analysis.calibration [--reps 2000]`` prints the whole table (a few
minutes); ``tests/analysis/test_calibration.py`` runs a smaller seeded slice of it in CI.

Promises: an interval covers within 3 points of its nominal level (or is not produced at that
n); a test rejects a true null at most ``alpha + 0.02`` of the time; a stated detectable
difference, and the runs said to be needed, give at least 75% power. Each cell is ``ok``,
``conservative`` (an interval wider than promised: it covers more than nominal + 3 points, so
it never over-claims) or ``fails``. Rows marked ``stress`` break an interval's assumption on
purpose (the t and chi-square intervals assume normal runs; ``skewed`` runs are not): they
show how far it degrades, not a promise.

Scenarios: runs are accuracies around 0.75 with SD 0.01 (``normal``); the contender's SD 3x
the baseline's (``unequal``); left-skewed noise, a run falling well short more often than it
overshoots (``skewed``); accuracies on 200 test images, so runs tie (``ties``). Across-point
statistics use T points with means spread over 5 accuracy points (``hetero``: SDs from 0.004
to 0.03 over the points; ``large``: a 3-SD effect, probability of improvement 0.98).
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from bnorder.analysis.aggregate import iqm_interval, poi_interval
from bnorder.analysis.average import average_difference
from bnorder.analysis.difference import difference, mannwhitney, welch_ci
from bnorder.analysis.equivalence import tost
from bnorder.analysis.multiplicity import holm
from bnorder.analysis.power import min_detectable_difference, runs_needed
from bnorder.analysis.ranks import friedman, nemenyi
from bnorder.analysis.stats import std_ci, t_ci
from bnorder.analysis.tables import brown_forsythe

__all__ = ["ALPHA", "NS", "SCENARIOS", "calibration_table", "check"]

ALPHA = 0.05
NS = (2, 3, 5, 10)
SCENARIOS = ("normal", "unequal", "skewed", "ties")
SD = 0.01
Rng = np.random.Generator


def runs(rng: Rng, scenario: str, size: tuple[int, ...], *, mean: float = 0.75, sd: float = SD):
    """Simulated accuracies of ``size`` runs under a scenario (module doc)."""
    if scenario == "skewed":  # gamma(2) noise, mirrored: a long tail of bad seeds
        return mean - sd * (rng.gamma(2.0, 1.0, size) - 2.0) / math.sqrt(2.0)
    x = mean + sd * rng.standard_normal(size)
    if scenario == "ties":
        return np.round(x * 200) / 200
    return x


def _pair(rng: Rng, scenario: str, n: int, shift: float = 0.0):
    a = runs(rng, scenario, (n,))
    ratio = 3.0 if scenario == "unequal" else 1.0
    return a, runs(rng, scenario, (n,), mean=0.75 + shift, sd=SD * ratio)


# ---------------------------------------------------------------- intervals (coverage)


def cover_mean(rng: Rng, n: int, reps: int, scenario: str = "normal") -> float:
    """Coverage of the 95% t interval of the mean (:func:`t_ci`)."""
    hits = [
        low <= 0.75 <= high for low, high in (t_ci(runs(rng, scenario, (n,))) for _ in range(reps))
    ]
    return float(np.mean(hits))


def cover_sd(rng: Rng, n: int, reps: int, scenario: str = "normal") -> float:
    """Coverage of the 95% chi-square interval of the SD (:func:`std_ci`)."""
    hits = [
        low <= SD <= high for low, high in (std_ci(runs(rng, scenario, (n,))) for _ in range(reps))
    ]
    return float(np.mean(hits))


def cover_difference(rng: Rng, n: int, reps: int, scenario: str = "normal") -> float:
    """Coverage of Welch's 95% interval of the difference (:func:`welch_ci`), true diff 0.01."""
    hits = []
    for _ in range(reps):
        low, high = welch_ci(*_pair(rng, scenario, n, shift=0.01))
        hits.append(low <= 0.01 <= high)
    return float(np.mean(hits))


def _points(rng: Rng, scenario: str, t: int, n: int, shift: float):
    """Baseline and contender runs at T points (across-point scenarios)."""
    means = np.linspace(0.70, 0.75, t)
    sds = np.linspace(0.004, 0.03, t) if scenario == "hetero" else np.full(t, SD)
    noise = scenario if scenario in ("skewed", "ties") else "normal"
    a = [runs(rng, noise, (n,), mean=m, sd=s) for m, s in zip(means, sds, strict=True)]
    b = [runs(rng, noise, (n,), mean=m + shift, sd=s) for m, s in zip(means, sds, strict=True)]
    return a, b, means, sds


def cover_average(rng: Rng, n: int, reps: int, scenario: str = "normal", points: int = 5) -> float:
    """Coverage of the average effect's 95% interval over T points (Welch-Satterthwaite)."""
    hits = []
    for _ in range(reps):
        a, b, _, _ = _points(rng, scenario, points, n, 0.01)
        low, high = average_difference(list(zip(a, b, strict=True))).ci(0.95)
        hits.append(low <= 0.01 <= high)
    return float(np.mean(hits))


def _truth(rng: Rng, scenario: str, points: int, shift: float) -> tuple[float, float]:
    """Population IQM of the baseline and probability of improvement, by simulation."""
    big_a, big_b, _, _ = _points(np.random.default_rng(12345), scenario, points, 40_000, shift)
    iqm = float(stats.trim_mean(np.concatenate(big_a), 0.25))
    pairs = zip(big_a, big_b, strict=True)
    poi = float(np.mean([np.mean(b[:4000, None] > a[None, :4000]) for a, b in pairs]))
    return iqm, poi


def cover_aggregates(
    rng: Rng, n: int, reps: int, scenario: str = "normal", points: int = 10, resamples: int = 500
) -> tuple[float, float, float]:
    """(IQM coverage, probability-of-improvement coverage, share produced) over T points."""
    shift = 0.03 if scenario == "large" else 0.01
    noise = "normal" if scenario == "large" else scenario
    iqm_true, poi_true = _truth(rng, noise, points, shift)
    iqm_hits, poi_hits, made = [], [], 0
    for i in range(reps):
        a, b, _, _ = _points(rng, noise, points, n, shift)
        _, low, high = iqm_interval(a, seed=i, resamples=resamples)
        _, p_low, p_high = poi_interval(a, b, seed=i, resamples=resamples)
        if not math.isnan(low):
            made += 1
            iqm_hits.append(low <= iqm_true <= high)
            poi_hits.append(p_low <= poi_true <= p_high)
    if not made:
        return math.nan, math.nan, 0.0
    return float(np.mean(iqm_hits)), float(np.mean(poi_hits)), made / reps


# ---------------------------------------------------------------- tests (false positives)


def fpr_difference(rng: Rng, n: int, reps: int, scenario: str = "normal") -> float:
    """Rejections of a true null by :func:`difference` (Welch, or permutation on ties)."""
    return float(np.mean([difference(*_pair(rng, scenario, n)).p < ALPHA for _ in range(reps)]))


def fpr_mannwhitney(rng: Rng, n: int, reps: int, scenario: str = "normal") -> float:
    """Rejections of a true null by the Mann-Whitney test (exact; permutation with ties)."""
    return float(np.mean([mannwhitney(*_pair(rng, scenario, n)) < ALPHA for _ in range(reps)]))


def fpr_kendall(rng: Rng, orderings: int, reps: int) -> float:
    """Rank agreement of two archs claimed when their rankings are independent."""
    hits = [
        stats.kendalltau(rng.normal(size=orderings), rng.normal(size=orderings)).pvalue < ALPHA
        for _ in range(reps)
    ]
    return float(np.mean(hits))


def fpr_holm(rng: Rng, n: int, reps: int, contenders: int = 4) -> float:
    """Family-wise error of Holm over contenders that share one baseline (complete null)."""
    hits = 0
    for _ in range(reps):
        a = runs(rng, "normal", (n,))
        p = [difference(a, runs(rng, "normal", (n,))).p for _ in range(contenders)]
        hits += bool(np.any(holm(p) < ALPHA))
    return hits / reps


def fpr_tost(rng: Rng, n: int, reps: int, scenario: str = "normal", margin: float = 0.01) -> float:
    """Equivalence wrongly claimed when the true difference sits on the margin."""
    return float(
        np.mean([tost(*_pair(rng, scenario, n, shift=margin), margin) < ALPHA for _ in range(reps)])
    )


def fpr_spread(rng: Rng, n: int, reps: int, orderings: int = 3) -> float:
    """Brown-Forsythe rejections of equal spread (NaN where the test is not produced)."""
    ps = [
        brown_forsythe({str(k): runs(rng, "normal", (n,)) for k in range(orderings)})[0]
        for _ in range(reps)
    ]
    return math.nan if np.isnan(ps).all() else float(np.mean(np.array(ps) < ALPHA))


def fpr_average(rng: Rng, n: int, reps: int, scenario: str = "normal", points: int = 5) -> float:
    """Rejections of a true null average effect over T points."""
    hits = []
    for _ in range(reps):
        a, b, _, _ = _points(rng, scenario, points, n, 0.0)
        hits.append(average_difference(list(zip(a, b, strict=True))).p < ALPHA)
    return float(np.mean(hits))


def fpr_rankings(rng: Rng, points: int, reps: int, orderings: int = 3) -> tuple[float, float]:
    """(Friedman rejections, family-wise error of Nemenyi run after Friedman rejects) when
    no ordering differs; points differ a lot (blocks)."""
    fried = post = 0
    names = [str(k) for k in range(orderings)]
    for i in range(reps):
        x = rng.normal(0, 1, (points, orderings)) + rng.normal(0, 3, (points, 1))
        p = friedman(x, seed=i, resamples=2000).p  # Monte-Carlo p-values are valid too
        if p < ALPHA:
            fried += 1
            pairs = nemenyi(x, names).to_numpy()[np.triu_indices(orderings, 1)]
            post += bool(np.any(pairs < ALPHA))
    return fried / reps, post / reps


# ---------------------------------------------------------------- power claims


def power_at_detectable(rng: Rng, n: int, reps: int) -> float:
    """Rejection rate at the stated minimum detectable difference (true SDs)."""
    mdd = min_detectable_difference(SD, SD, n, n, ALPHA)
    return float(
        np.mean([difference(*_pair(rng, "normal", n, shift=mdd)).p < ALPHA for _ in range(reps)])
    )


def power_at_runs_needed(rng: Rng, diff: float, reps: int, points: int = 1) -> tuple[float, float]:
    """(runs said to be needed to detect ``diff``, rejection rate with that many runs)."""
    n = runs_needed(diff, np.full(points, SD), alpha=ALPHA)
    k = int(n)
    hits = []
    for _ in range(reps):
        a, b, _, _ = _points(rng, "normal", points, k, diff)
        hits.append(average_difference(list(zip(a, b, strict=True))).p < ALPHA)
    return n, float(np.mean(hits))


# ---------------------------------------------------------------- the table


STRESS = {("mean, t interval", "skewed"), ("sd, chi-square interval", "skewed")}


def check(kind: str, value: float, nominal: float) -> str:
    """``ok``, ``conservative``, ``fails`` or ``not produced`` for a cell (module doc)."""
    if math.isnan(value):
        return "not produced"
    if kind == "coverage":
        if value > nominal + 0.03:
            return "conservative"
        return "ok" if value >= nominal - 0.03 else "fails"
    if kind == "false positives":
        return "ok" if value <= nominal + 0.02 else "fails"
    return "ok" if value >= 0.75 else "fails"  # power


def calibration_table(reps: int = 2000, seed: int = 20261129) -> pd.DataFrame:
    """Every promise at n = 2, 3, 5, 10 (module doc); ``reps`` simulations per cell."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []

    def add(stat: str, kind: str, scenario: str, n: int, value: float, points: int = 1) -> None:
        nominal = 0.95 if kind == "coverage" else ALPHA if kind == "false positives" else 0.8
        rows.append(
            {"statistic": stat, "kind": kind, "scenario": scenario, "points": points, "n": n}
            | {"value": value, "nominal": nominal, "status": check(kind, value, nominal)}
            | {"stress": (stat, scenario) in STRESS}
        )

    cells: list[tuple[str, str, Callable[..., float], tuple[str, ...]]] = [
        ("mean, t interval", "coverage", cover_mean, ("normal", "skewed")),
        ("sd, chi-square interval", "coverage", cover_sd, ("normal",)),
        ("difference, Welch interval", "coverage", cover_difference, ("normal", "unequal")),
        ("difference test", "false positives", fpr_difference, SCENARIOS),
        ("Mann-Whitney", "false positives", fpr_mannwhitney, ("normal", "ties")),
        ("equivalence (TOST) at the margin", "false positives", fpr_tost, ("normal", "unequal")),
    ]
    for n in NS:
        for stat, kind, fn, scenarios in cells:
            for sc in scenarios:
                add(stat, kind, sc, n, fn(rng, n, reps, sc))
        add("Holm over 4 contenders", "false positives", "normal", n, fpr_holm(rng, n, reps // 2))
        add("Brown-Forsythe", "false positives", "normal", n, fpr_spread(rng, n, reps // 2))
        half = reps // 2
        for sc in ("normal", "hetero", "skewed"):
            add("average effect, interval", "coverage", sc, n, cover_average(rng, n, half, sc), 5)
        for sc in ("normal", "hetero", "skewed", "ties"):
            add("average effect, test", "false positives", sc, n, fpr_average(rng, n, half, sc), 5)
        add("detectable difference", "power", "normal", n, power_at_detectable(rng, n, reps // 2))
    for orderings in (5, 6, 8):
        kendall = fpr_kendall(rng, orderings, reps)
        add(f"Kendall tau, {orderings} orderings", "false positives", "normal", 0, kendall, 2)
    for points in (2, 3, 5, 10):
        fried, post = fpr_rankings(rng, points, reps // 2)
        add("Friedman", "false positives", "normal", 0, fried, points)
        add("Nemenyi after Friedman", "false positives", "normal", 0, post, points)
    for points, n in ((10, 5), (20, 3), (5, 5), (10, 3)):
        for sc in ("normal", "hetero", "skewed", "large"):
            iqm, poi, _made = cover_aggregates(rng, n, reps // 2, sc, points, resamples=1000)
            add("IQM, stratified bootstrap", "coverage", sc, n, iqm, points)
            add("P(improvement), stratified bootstrap", "coverage", sc, n, poi, points)
    for points in (1, 5):
        needed, power = power_at_runs_needed(rng, 0.01, reps // 2, points)
        add(f"runs needed ({needed:g} per point)", "power", "normal", int(needed), power, points)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2000, help="simulations per cell")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = calibration_table(args.reps)
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    promised = table[~table["stress"]]
    counts = promised["status"].value_counts().to_dict()
    print(
        f"\npromises ({len(promised)} cells): " + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    stress = table[table["stress"]]
    print(
        f"stress ({len(stress)} cells): "
        + ", ".join(f"{v} {k}" for k, v in stress["status"].value_counts().items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

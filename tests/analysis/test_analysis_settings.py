"""Verdicts across a sweep's points on frames with planted effects: rankings, the average
effect, equivalence, aggregates, and every edge a real sweep has (missing contenders, ties,
phases, losses)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bnorder.analysis import across_settings, compare, scored

B, R, L = "conv-bn-relu", "conv-relu-bn", "conv-lrelu-bn"


def grid(
    effects: dict[str, float],
    *,
    lrs: tuple[float, ...] = (0.0003, 0.001, 0.003, 0.01, 0.03),
    depths: tuple[int, ...] = (2, 4),
    n: int = 3,
    sd: float = 0.01,
    seed: int = 0,
    phase: str = "grid",
) -> pd.DataFrame:
    """Trials over an lr x depth grid: accuracy ~ N(0.7 + point offset + effect, sd)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, lr in enumerate(lrs):
        for depth in depths:
            for ordering, effect in effects.items():
                for s in range(n):
                    acc = 0.7 + 0.02 * i - 0.01 * depth + effect + rng.normal(0, sd)
                    rows.append(
                        {"dataset": "fashion_mnist", "arch": "cnn", "ordering": ordering}
                        | {"lr": lr, "depth": depth, "seed": s, "status": "ok", "phase": phase}
                        | {"test_acc_at_best_val": acc, "final_test_acc": acc}
                        | {"final_test_loss": 2.0 - acc}
                    )
    return pd.DataFrame(rows)


def eff(v, ordering: str) -> pd.Series:
    (i,) = np.flatnonzero(v.effects["ordering"] == ordering)
    return v.effects.iloc[i]


def test_a_planted_effect_is_found_over_the_points_where_no_single_point_resolves_it() -> None:
    df = scored(grid({B: 0.0, R: 0.012, L: 0.0}, n=3))
    per_point = compare(df, baseline=B)
    assert not per_point.loc[per_point["ordering"] == R, "significant"].all()
    v = across_settings(df, baseline=B)
    (f,) = v.friedman.itertuples()
    assert (f.points, f.orderings, f.dropped_points) == (10, 3, 0)
    hit = eff(v, R)
    assert hit["verdict"] == "better"
    assert hit["ci_low"] > 0
    assert hit["diff"] == pytest.approx(0.012, abs=0.004)
    assert hit["points"] == 10
    assert hit["runs"] == 3
    assert eff(v, L)["verdict"] in ("inconclusive", "equivalent")
    assert v.orderings.set_index("ordering").loc[R, "mean_rank"] < 1.6


def test_rankings_that_differ_get_nemenyi_and_a_critical_difference() -> None:
    v = across_settings(scored(grid({B: 0.0, R: 0.03, L: -0.03}, n=2)), baseline=B)
    (f,) = v.friedman.itertuples()
    assert f.p < 0.001
    assert f.critical_difference == pytest.approx(1.048, abs=0.001)  # k = 3, 10 points
    (post,) = v.posthoc.values()
    assert post.loc[R, L] < 0.05


def test_no_difference_within_the_margin_is_called_equivalent() -> None:
    v = across_settings(scored(grid({B: 0.0, R: 0.0}, n=5, sd=0.004)), baseline=B, margin=0.01)
    hit = eff(v, R)
    assert hit["equivalent"]
    assert hit["verdict"] == "equivalent"
    assert hit["tost_p_holm"] < 0.05
    assert (v.friedman["p"] > 0.05).all()


def test_aggregate_intervals_appear_only_where_they_keep_their_coverage() -> None:
    small = across_settings(scored(grid({B: 0.0, R: 0.01}, n=3)), baseline=B)
    assert small.orderings["iqm_ci_low"].isna().all()  # 10 points x 3 runs
    assert (
        "needs >= 10 points with >= 5 runs or >= 20 points with >= 3 runs"
        in (small.orderings["note"].iloc[0])
    )
    big = across_settings(scored(grid({B: 0.0, R: 0.01}, n=5)), baseline=B)
    o = big.orderings.set_index("ordering")
    assert (o["iqm_ci_low"] < o["iqm"]).all()
    assert (o["iqm"] < o["iqm_ci_high"]).all()
    hit = eff(big, R)
    assert hit["poi_ci_low"] < hit["poi"] < hit["poi_ci_high"]
    assert hit["poi"] > 0.5


def test_runs_needed_per_point_detects_the_observed_difference() -> None:
    df = scored(grid({B: 0.0, R: 0.004}, n=2, sd=0.03))
    hit = eff(across_settings(df, baseline=B), R)
    assert hit["verdict"] == "inconclusive"
    assert hit["runs_needed"] > 2  # more than it has: otherwise it would have been resolved
    assert hit["target_diff"] == pytest.approx(abs(hit["diff"]))
    target = eff(across_settings(df, baseline=B, target_diff=0.05), R)
    assert target["target_diff"] == 0.05
    assert target["runs_needed"] < hit["runs_needed"]


def test_missing_contenders_and_incomplete_points_are_explicit() -> None:
    df = grid({B: 0.0, R: 0.01, L: 0.0}, n=3)
    drop = (df["ordering"] == L) & (df["lr"] == 0.03)
    v = across_settings(scored(df[~drop]), baseline=B)
    (f,) = v.friedman.itertuples()
    assert (f.points, f.dropped_points) == (8, 2)  # rankings need every ordering at a point
    assert eff(v, R)["points"] == 10  # the average effect uses every point both have
    assert eff(v, L)["points"] == 8


def test_tied_points_fall_back_to_the_stratified_permutation_test() -> None:
    df = grid({B: 0.0, R: 0.01}, n=3)
    df.loc[(df["lr"] == 0.0003) & (df["depth"] == 2), "test_acc_at_best_val"] = 0.8
    hit = eff(across_settings(scored(df), baseline=B), R)
    assert hit["test"] == "permutation"
    assert math.isnan(hit["ci_low"])
    assert "stratified permutation test" in hit["note"]


def test_phases_are_never_pooled_across_points() -> None:
    # concatenated without ignore_index: repeated index labels must not mix the phases
    df = pd.concat([grid({B: 0.0, R: 0.02}), grid({B: 0.0, R: -0.02}, phase="evaluate")])
    v = across_settings(scored(df), baseline=B)
    assert v.friedman["phase"].tolist() == ["grid", "evaluate"]
    assert v.effects.set_index("phase")["verdict"].to_dict() == {
        "grid": "better",
        "evaluate": "worse",
    }


def test_a_loss_is_better_when_lower() -> None:
    df = scored(grid({B: 0.0, R: 0.02}), metric="final_test_loss")
    v = across_settings(df, baseline=B)
    hit = eff(v, R)
    assert hit["diff"] < 0  # a lower loss...
    assert hit["verdict"] == "better"  # ...is better
    assert hit["poi"] > 0.5
    assert v.orderings.set_index("ordering").loc[R, "mean_rank"] == 1.0
    per_point = compare(df, baseline=B)
    assert per_point["diff"].lt(0).all()
    assert not per_point["verdict"].eq("worse").any()


def test_one_point_says_rankings_need_more() -> None:
    v = across_settings(scored(grid({B: 0.0, R: 0.02}, lrs=(0.001,), depths=(4,))), baseline=B)
    (f,) = v.friedman.itertuples()
    assert math.isnan(f.p)
    assert f.note == "ranking orderings across points needs >= 2 points with every ordering (has 1)"
    hit = eff(v, R)
    assert hit["points"] == 1  # one point: the average effect is Welch's test there
    assert hit["p"] == pytest.approx(
        compare(scored(grid({B: 0.0, R: 0.02}, lrs=(0.001,), depths=(4,))), baseline=B)["p"].iloc[0]
    )


def test_two_points_and_three_orderings_cannot_reach_significance() -> None:
    v = across_settings(scored(grid({B: 0.0, R: 0.05, L: 0.1}, lrs=(0.001,))), baseline=B)
    (f,) = v.friedman.itertuples()
    assert f.min_p == pytest.approx(1 / 6)
    assert "needs >= 3 points for p < 0.05 to be possible (has 2, smallest p 0.167)" in f.note

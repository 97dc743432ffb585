"""The tables on synthetic results with planted effects, and on the real quickstart sweep."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bnorder
from bnorder.analysis import (
    across_settings,
    compare,
    coverage,
    generalisation,
    holm,
    point_columns,
    scored,
    seed_table,
    stability,
    summary,
    tuned_vs_fixed,
)
from bnorder.errors import ConfigError
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "results" / "quickstart"
B, R, L = "conv-bn-relu", "conv-relu-bn", "conv-lrelu-bn"


def make_trials(
    means: dict[tuple[str, str], float],
    *,
    n: int = 10,
    sd: float = 0.01,
    seed: int = 0,
    **columns: object,
) -> pd.DataFrame:
    """A trials frame: ``n`` seeds per (arch, ordering) with accuracy ~ N(mean, sd)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (arch, ordering), mean in means.items():
        for s in range(n):
            acc = float(rng.normal(mean, sd))
            rows.append(
                {
                    "dataset": "fashion_mnist",
                    "arch": arch,
                    "ordering": ordering,
                    "depth": 4,
                    "lr": 0.001,
                    "seed": s,
                    "init_seed": s,
                    "data_seed": s,
                    "device": "cpu",
                    "trial_id": f"{arch}-{ordering}-{s}",
                    "status": "ok",
                    "error": None,
                    "phase": "grid",
                    "arm_id": f"fashion_mnist/{arch}/d4/{ordering}",
                    "final_test_acc": acc - 0.002,
                    "test_acc_at_best_val": acc,
                    **columns,
                }
            )
    return pd.DataFrame(rows)


def planted(effect: float = 0.03, **kw: object) -> pd.DataFrame:
    """cnn: case2 ``effect`` above the baseline, case3 equal; mlp: no effect at all."""
    means = {("cnn", B): 0.70, ("cnn", R): 0.70 + effect, ("cnn", L): 0.70}
    means |= {("mlp", B): 0.82, ("mlp", R): 0.82, ("mlp", L): 0.82}
    return make_trials(means, **kw)


def row(df: pd.DataFrame, **where: object) -> pd.Series:
    mask = np.logical_and.reduce([df[k] == v for k, v in where.items()])
    (i,) = np.flatnonzero(mask)
    return df.iloc[i]


# ---------------------------------------------------------------- which rows, which score


def test_scored_keeps_results_and_drops_tuning_and_failures() -> None:
    t = make_trials({("cnn", B): 0.7}, n=8)
    t["phase"] = ["grid", "evaluate", None, "tune", "grid", "grid", "grid", "evaluate"]
    t["status"] = ["ok", "ok", "ok", "ok", "diverged", "failed", "pruned", "diverged"]
    kept = scored(t)
    assert list(kept.index) == [0, 1, 2, 4, 7]
    assert kept.loc[4, "score"] == t.loc[4, "test_acc_at_best_val"]  # diverged keeps its score


def test_scored_prefers_selection_on_validation_and_says_so() -> None:
    t = make_trials({("cnn", B): 0.7}, n=4)
    assert scored(t).attrs["metric"] == "test_acc_at_best_val"
    assert scored(t)["score"].tolist() == t["test_acc_at_best_val"].tolist()
    t.loc[[0, 1], "test_acc_at_best_val"] = np.nan  # no validation split (val_fraction 0)
    s = scored(t)
    assert s["score"].tolist() == [*t["final_test_acc"][:2], *t["test_acc_at_best_val"][2:]]
    assert s["score_metric"].tolist() == ["final_test_acc"] * 2 + ["test_acc_at_best_val"] * 2
    assert s.attrs["metric"] == "final_test_acc / test_acc_at_best_val"
    assert scored(t, metric="final_test_acc").attrs["metric"] == "final_test_acc"


def test_scored_unknown_metric_names_the_closest_column() -> None:
    with pytest.raises(ConfigError, match=r"metric: no such column 'final_test_ac'; did you mean"):
        scored(make_trials({("cnn", B): 0.7}), metric="final_test_ac")


def test_point_columns_follow_what_varies() -> None:
    t = planted()
    assert point_columns(t) == ["dataset", "arch"]  # seeds, device and ordering never count
    t.loc[t["seed"] % 2 == 0, "lr"] = 0.01
    assert point_columns(t) == ["dataset", "arch", "lr"]


def test_execution_modes_are_never_pooled_silently() -> None:
    t = planted(execution="single")
    assert point_columns(t) == ["dataset", "arch"]
    t.loc[t["seed"] < 5, "execution"] = "fused 5"
    assert point_columns(t) == ["dataset", "arch", "execution"]
    t["precision"] = np.where(t["seed"] % 2, "bf16", "fp32")  # a config field: a point too
    assert point_columns(t) == ["dataset", "arch", "precision", "execution"]


def tuned_frame(effect: float = 0.0) -> pd.DataFrame:
    """Evaluate rows of a tuned sweep: every arm at its own tuned lr and batch size."""
    t = planted(effect, phase="evaluate")
    lrs = {B: 0.003, R: 0.01, L: 0.0005}
    t["lr"] = t["ordering"].map(lrs) * t["arch"].map({"cnn": 1.0, "mlp": 0.5})
    t["batch_size"] = t["ordering"].map({B: 64, R: 128, L: 256})
    return t


def test_tuned_hyperparameters_are_not_points() -> None:
    t = tuned_frame()
    assert point_columns(t) == ["dataset", "arch"]
    assert len(compare(scored(t))) == 4  # both orderings per arch, despite per-arm lrs
    mixed = pd.concat([planted(), t], ignore_index=True)
    assert point_columns(mixed) == ["dataset", "arch", "phase"]  # protocols never pooled


# ---------------------------------------------------------------- summary and compare


def test_summary_matches_pandas() -> None:
    df = scored(planted())
    s = summary(df)
    expected = df.groupby(["arch", "ordering"], sort=False)["score"].agg(["mean", "std", "count"])
    got = s.set_index(["arch", "ordering"])
    np.testing.assert_allclose(got["mean"], expected["mean"])
    np.testing.assert_allclose(got["std"], expected["std"])
    assert (got["n"] == expected["count"]).all()
    assert ((s["t_ci_low"] < s["mean"]) & (s["mean"] < s["t_ci_high"])).all()
    assert "ci_low" not in s.columns  # the percentile bootstrap covered 47% at n = 2: gone
    assert s.attrs["metric"] == "test_acc_at_best_val"


@pytest.mark.parametrize("effect", [0.03, -0.03])
def test_compare_detects_a_planted_difference_with_its_sign(effect: float) -> None:
    c = compare(scored(planted(effect)), baseline="case1")
    assert len(c) == 4
    hit = row(c, arch="cnn", ordering=R)
    sign = np.sign(effect)
    assert hit["significant"]
    assert hit["diff"] == pytest.approx(effect, abs=0.01)
    assert sign * hit["ci_low"] > 0  # both ends on the planted side: excludes 0
    assert sign * hit["ci_high"] > 0
    assert hit["verdict"] == ("better" if effect > 0 else "worse")
    assert np.sign(hit["hedges_g"]) == np.sign(hit["cliffs_delta"]) == sign
    assert (hit["prob_improvement"] > 0.5) == (effect > 0)
    assert not c.drop(index=hit.name)["significant"].any()  # nothing where nothing was planted


def test_compare_corrects_across_the_whole_table() -> None:
    c = compare(scored(planted()))
    np.testing.assert_allclose(c["p_holm"], holm(c["p"]))
    np.testing.assert_allclose(c["mannwhitney_p_holm"], holm(c["mannwhitney_p"]))
    np.testing.assert_allclose(c["tost_p_holm"], holm(c["tost_p"]))
    assert (c["p_holm"] >= c["p"]).all()
    assert (c["level"] <= 0.05).all()
    assert (c["baseline"] == B).all()
    assert (c["min_detectable_diff"] > 0).all()


def test_compare_accepts_aliases_and_rejects_unknown_orderings() -> None:
    df = scored(planted())
    pd.testing.assert_frame_equal(compare(df, baseline="case2"), compare(df, baseline=R))
    with pytest.raises(ConfigError, match=r"baseline: unknown op 'bnn'"):
        compare(df, baseline="conv-bnn-relu")


def test_compare_skips_and_lists_groups_without_the_baseline() -> None:
    t = planted()
    t = t[~((t["arch"] == "mlp") & (t["ordering"] == B))]
    c = compare(scored(t))
    assert set(c["arch"]) == {"cnn"}
    assert c.attrs["missing"] == [{"dataset": "fashion_mnist", "arch": "mlp"}]


def test_one_run_gives_nan_not_numbers() -> None:
    t = planted(n=6)
    t = t[~((t["arch"] == "cnn") & (t["ordering"] == R) & (t["seed"] > 0))]
    df = scored(t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, c, st = summary(df), compare(df), stability(df)
    one = row(s, arch="cnn", ordering=R)
    assert one["n"] == 1
    assert one[["std", "sem", "t_ci_low", "t_ci_high"]].isna().all()
    hit = row(c, arch="cnn", ordering=R)
    assert hit[["p", "mannwhitney_p", "hedges_g", "ci_low", "min_detectable_diff"]].isna().all()
    assert (hit["test"], hit["verdict"]) == ("none", "untested")
    assert hit["note"] == "fewer than 2 runs in a group"
    assert not hit["significant"]
    cnn = st[st["arch"] == "cnn"]
    assert cnn["brown_forsythe_p"].isna().all()
    assert cnn["note"].str.contains("needs >= 6 runs per ordering").all()
    assert st.loc[st["arch"] == "mlp", "brown_forsythe_p"].notna().all()


def test_missing_score_column_says_how_to_get_one() -> None:
    with pytest.raises(ConfigError, match=r"metric: no such column 'score'; pass the rows of"):
        summary(planted())


# ---------------------------------------------------------------- stability


def test_stability_finds_a_planted_difference_in_spread() -> None:
    t = planted(n=12)
    noisy = (t["arch"] == "cnn") & (t["ordering"] == L)
    t.loc[noisy, "test_acc_at_best_val"] = 0.70 + np.random.default_rng(0).normal(0, 0.08, 12)
    st = stability(scored(t))
    assert (st.loc[st["arch"] == "cnn", "brown_forsythe_p"] < 0.01).all()
    wide = row(st, arch="cnn", ordering=L)
    assert wide["std_ci_low"] > row(st, arch="cnn", ordering=B)["std_ci_high"]
    assert wide["std_ci_low"] < wide["std"] < wide["std_ci_high"]
    np.testing.assert_allclose(
        st.groupby("arch")["brown_forsythe_p_holm"].first(),
        holm(st.groupby("arch")["brown_forsythe_p"].first()),
    )


@pytest.mark.parametrize("n", [2, 3, 5])
def test_spread_is_not_tested_where_the_test_cannot_work(n: int) -> None:
    # n = 2: Brown-Forsythe answers p = 0 for any data; n = 3: it can never reject
    st = stability(scored(planted(n=n)))
    assert st["brown_forsythe_p"].isna().all()
    assert st["note"].eq(f"the Brown-Forsythe test needs >= 6 runs per ordering (has {n})").all()


def test_equal_spreads_are_not_called_too_few_runs() -> None:
    t = planted(n=6)
    t["test_acc_at_best_val"] = 0.8  # every run identical
    st = stability(scored(t))
    assert st["note"].eq("no ordering's runs vary").all()


# ---------------------------------------------------------------- generalisation and protocols


def test_generalisation_claims_only_what_runs_resolve() -> None:
    means = {("cnn", B): 0.70, ("cnn", R): 0.73, ("cnn", L): 0.69}
    means |= {("mlp", B): 0.80, ("mlp", R): 0.84, ("mlp", L): 0.81}
    g = generalisation(scored(make_trials(means, sd=0.001)))
    e = g.effects
    assert row(e, arch="cnn", ordering=R)["diff"] == pytest.approx(0.03, abs=0.002)
    assert row(e, arch="mlp", ordering=R)["consistency"] == "better in every arch"
    assert row(e, arch="mlp", ordering=L)["consistency"] == "reverses"  # -1 in cnn, +1 in mlp
    (pair,) = g.agreement.itertuples()
    assert (pair.arch_a, pair.arch_b, pair.n_orderings) == ("cnn", "mlp", 3)
    assert math.isnan(pair.kendall_tau)  # 3 orderings can never agree significantly
    assert "needs >= 5 orderings" in pair.note


def test_noise_is_not_called_a_sign_change() -> None:
    # the old report said "changes sign across archs" of differences that were pure noise
    means = {("cnn", B): 0.70, ("cnn", R): 0.70, ("mlp", B): 0.80, ("mlp", R): 0.80}
    g = generalisation(scored(make_trials(means, n=3, sd=0.01, seed=4)))
    diffs = g.effects["diff"]
    assert (diffs > 0).any()
    assert (diffs < 0).any()
    assert g.effects["consistency"].eq("unresolved").all()  # ...and that is all it says


def test_generalisation_never_pools_datasets_and_survives_a_missing_baseline() -> None:
    a = make_trials({("cnn", B): 0.70, ("cnn", R): 0.72, ("mlp", R): 0.8}, sd=0.001)
    b = make_trials({("cnn", B): 0.50, ("cnn", R): 0.55}, sd=0.001, dataset="cifar10")
    g = generalisation(scored(pd.concat([a, b], ignore_index=True)))  # mlp has no baseline
    assert set(g.effects["dataset"]) == {"fashion_mnist", "cifar10"}
    assert len(g.effects) == 2  # one arch with a baseline per dataset
    g = generalisation(scored(pd.concat([a, b], ignore_index=True)), across="dataset")
    assert set(row(g.effects, arch="cnn", dataset="cifar10", ordering=R)[["verdict"]]) == {"better"}


def test_tuned_vs_fixed_reports_a_change_of_winner() -> None:
    fixed = planted(-0.02)  # at lr 0.001 the baseline beats case2 in cnn
    fixed = pd.concat([fixed, planted(0.02, seed=1, lr=0.01)], ignore_index=True)
    tuned = tuned_frame(0.03)  # tuned, case2 wins in cnn
    tv = tuned_vs_fixed(scored(fixed), scored(tuned))
    assert len(tv) == 2 * 2 * 3  # archs x fixed lrs x orderings
    at = row(tv, arch="cnn", lr=0.001, ordering=R)
    assert (at["top_fixed"], at["top_tuned"], at["top_changes"]) == (B, R, True)
    assert at["rank_fixed"] == 3  # case3 ties the baseline, case2 trails both
    assert at["rank_tuned"] == 1
    assert not row(tv, arch="cnn", lr=0.01, ordering=R)["top_changes"]
    assert tv.attrs["unmatched"] == []


# ---------------------------------------------------------------- the seed's table


@pytest.mark.parametrize("ddof", [0, 1])
def test_seed_table_equals_an_independent_groupby(ddof: int) -> None:
    t = planted(n=5).sample(frac=1.0, random_state=0)  # row order must not matter
    table = seed_table(t, ddof=ddof)
    keys = ["dataset", "arch", "ordering"]
    acc = t.sort_values("seed").groupby(keys)["final_test_acc"]
    expected = pd.DataFrame(
        {
            "mean": acc.mean() * 100,
            "std": acc.agg(lambda x: np.std(x.to_numpy(), ddof=ddof)) * 100,
            "runs": acc.agg(lambda x: list(x * 100)),
        }
    )
    got = table.set_index(keys).loc[expected.index]
    np.testing.assert_allclose(got["Mean (%)"], expected["mean"])
    np.testing.assert_allclose(got["Std (%)"], expected["std"])
    runs = got[[f"Run {i}" for i in range(1, 6)]].to_numpy()
    np.testing.assert_allclose(runs, np.stack(expected["runs"].to_numpy()))
    assert list(table.columns[-2:]) == ["Mean (%)", "Std (%)"]


# ---------------------------------------------------------------- coverage


def test_coverage_of_a_partial_sweep() -> None:
    t = planted(n=3)
    failed = (t["arch"] == "mlp") & (t["ordering"] == L) & (t["seed"] == 2)
    t.loc[failed, ["status", "error"]] = ["failed", "RuntimeError: out of memory"]
    cov = coverage(t)
    assert not cov.complete
    (short,) = cov.short.itertuples()
    assert (short.arm_id, short.ok, short.failed, short.short) == (
        "fashion_mnist/mlp/d4/conv-lrelu-bn",
        2,
        1,
        1,
    )
    assert cov.failed["error"].tolist() == ["RuntimeError: out of memory"]
    planned = {("grid", a): 3 for a in t["arm_id"].unique()} | {("grid", "x/cnn/d4/bn"): 3}
    cov = coverage(t, planned)
    assert row(cov.counts, arm_id="x/cnn/d4/bn")[["total", "short"]].tolist() == [0, 3]


def test_coverage_labels_lone_runs() -> None:
    t = make_trials({("cnn", B): 0.7}, n=2, phase=None, arm_id=None)
    (r,) = coverage(t).counts.itertuples()
    assert (r.phase, r.arm_id, r.ok) == ("train", "fashion_mnist/cnn/d4/conv-bn-relu", 2)


# ---------------------------------------------------------------- the real quickstart results


@pytest.fixture(scope="module")
def quickstart() -> pd.DataFrame:
    if not (QUICKSTART / "trials.parquet").exists():
        pytest.skip("results/quickstart has not been produced here")
    return bnorder.load(QUICKSTART).trials


def test_real_quickstart_results_go_through_every_table(quickstart: pd.DataFrame) -> None:
    df = scored(quickstart)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = compare(df, baseline="case1")
        tables = [
            summary(df),
            c,
            stability(df),
            *generalisation(df).__dict__.values(),
            tuned_vs_fixed(df, df),
            seed_table(quickstart),
            coverage(quickstart).counts,
        ]
    assert all(len(t) > 0 for t in tables)
    assert c.groupby("arch").size().to_dict() == {"cnn": 2, "mlp": 2}
    assert math.isclose(summary(df)["n"].sum(), len(df))


def test_real_quickstart_is_complete_against_its_plan(quickstart: pd.DataFrame) -> None:
    spec, _ = load_sweep(QUICKSTART / "sweep.yaml")
    cov = coverage(quickstart, make_plan(spec))
    assert cov.complete
    assert cov.counts["total"].sum() == len(quickstart)
    # adaptive seeds: each arm has at least the plan's first batch, some more
    assert (cov.counts["finished"] >= cov.counts["expected"]).all()


def test_tables_of_no_results_keep_their_columns() -> None:
    full, empty = scored(planted(n=3)), scored(planted(n=3).iloc[:0])
    for fn in (summary, compare, stability):
        assert list(fn(empty).columns) == list(fn(full).columns)
        assert fn(empty).empty
    for name, frame in across_settings(empty).__dict__.items():
        if name != "posthoc":
            assert list(frame.columns) == list(getattr(across_settings(full), name).columns)
    assert list(generalisation(empty).effects.columns) == list(generalisation(full).effects.columns)


def test_seed_table_never_pools_settings() -> None:
    t = pd.concat([planted(n=2), planted(n=2, lr=0.01, seed=1)], ignore_index=True)
    table = seed_table(t)
    assert len(table) == 12
    assert list(table.columns[:4]) == ["dataset", "arch", "lr", "ordering"]

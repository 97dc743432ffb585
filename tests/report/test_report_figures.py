"""The report's figures on frames built here: what each draws, when it declines (None), labels,
consistent colours, and valid PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from bnorder.errors import ConfigError
from bnorder.report import figures

ORDERINGS = ("conv-bn-relu", "conv-relu-bn", "conv-lrelu-bn")


def _trials(lrs: tuple[float, ...] = (1e-3,), depths: tuple[int, ...] = (4,)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for arch in ("cnn", "mlp"):
        for i, ordering in enumerate(ORDERINGS):
            for lr in lrs:
                for depth in depths:
                    for seed in range(3):
                        rows.append(
                            {
                                "trial_id": f"{arch}-{ordering}-{lr}-{depth}-{seed}",
                                "dataset": "d",
                                "arch": arch,
                                "ordering": ordering,
                                "lr": lr,
                                "depth": depth,
                                "width": 8,
                                "seed": seed,
                                "phase": "grid",
                                "status": "ok",
                                "final_test_acc": 0.7 + 0.02 * i + rng.normal(0, 0.01),
                            }
                        )
    return pd.DataFrame(rows)


def _curves(trials: pd.DataFrame, probes: bool = True) -> pd.DataFrame:
    rows = []
    for t in trials.itertuples():
        for epoch in (1, 2, 3):
            row = {
                **t._asdict(),
                "epoch": epoch,
                "val_acc": 0.5 + 0.1 * epoch,
                "test_acc": 0.45 + 0.1 * epoch,
            }
            if probes:
                skew = 1.8 if t.ordering != "conv-bn-relu" else 0.2
                row |= {
                    "norm_in_skew": [skew, skew + 0.1],
                    "norm_in_skew_mean": skew + 0.05,
                    "act_dead_frac_mean": 0.01,
                    "norm_in_zero_frac_mean": 0.5,
                    "grad_norm_mean": 0.5 + 0.1 * epoch,
                }
            rows.append(row)
    return pd.DataFrame(rows).drop(columns="Index")


def _labelled(fig: object) -> None:
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert axes
    for ax in axes:
        assert ax.get_xlabel()
        assert ax.get_ylabel()
        assert ax.get_title()


def test_each_figure_draws_and_saves_a_valid_png(tmp_path: Path) -> None:
    trials = _trials(lrs=(1e-4, 1e-3, 1e-2), depths=(2, 4))
    curves = _curves(trials)
    made = {
        "curves": figures.learning_curves(curves),
        "final": figures.final_accuracy(trials, metric="final_test_acc"),
        "lr": figures.lr_sensitivity(trials, metric="final_test_acc"),
        "depth": figures.depth_curve(trials, metric="final_test_acc"),
        "probes": figures.probe_figure(curves),
        "blocks": figures.probe_blocks_figure(curves, "norm_in_skew"),
    }
    for name, fig in made.items():
        assert fig is not None, name
        _labelled(fig)
        path = figures.save_png(fig, tmp_path / f"{name}.png")
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        image = matplotlib.image.imread(path)
        assert image.ndim == 3
        assert image.shape[0] > 200
        assert image.shape[1] > 300
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_figures_decline_without_their_axis_or_data() -> None:
    trials = _trials()
    assert figures.lr_sensitivity(trials, metric="final_test_acc") is None
    assert figures.depth_curve(trials, metric="final_test_acc") is None
    assert figures.probe_figure(_curves(trials, probes=False)) is None


def test_colours_depend_on_the_ordering_alone() -> None:
    a = figures.ordering_colors(["conv-bn-relu", "conv-relu-bn"])
    b = figures.ordering_colors(["conv-gn-gelu", "conv-relu-bn", "conv-bn-relu", "bn-relu-conv"])
    assert a["conv-bn-relu"] == b["conv-bn-relu"]
    assert a["conv-relu-bn"] == b["conv-relu-bn"]
    assert len(set(a.values())) == 2
    assert figures.ordering_colors(["conv-gn-gelu"]) == {"conv-gn-gelu": b["conv-gn-gelu"]}


@pytest.mark.parametrize("seeds", [1, 3])
def test_single_seed_still_draws(seeds: int) -> None:
    trials = _trials()
    trials = trials[trials.seed < seeds]
    assert figures.learning_curves(_curves(trials)) is not None
    assert figures.final_accuracy(trials, metric="final_test_acc") is not None


# ---------------------------------------------------------------- helpers of the tests below

QUICKSTART = Path(__file__).resolve().parents[2] / "results" / "quickstart"


def _legend_colours(fig: object) -> dict[str, str]:
    """``{ordering: colour}`` from the figure's legend (its ordering entries)."""
    (legend,) = fig.legends
    return {
        h.get_label(): h.get_color()
        for h in legend.legend_handles
        if h.get_label() in figures.ordering_colors(ORDERINGS) or h.get_label().startswith("x-")
    }


@pytest.fixture(scope="module")
def quickstart() -> object:
    if not (QUICKSTART / "trials.parquet").exists():
        pytest.skip(f"no finished quickstart sweep at {QUICKSTART}")
    from bnorder import load

    return load(QUICKSTART)


# ---------------------------------------------------------------- real results


def test_quickstart_figures(quickstart: object, tmp_path: Path) -> None:
    trials, curves = quickstart.trials, quickstart.curves()
    made = {
        "curves": figures.learning_curves(curves),
        "final": figures.final_accuracy(trials),
        "best": figures.final_accuracy(trials, metric="test_acc_at_best_val"),
        "probes": figures.probe_figure(curves),
        "skew": figures.probe_blocks_figure(curves, "norm_in_skew"),
        "grad": figures.probe_blocks_figure(curves, "grad_norm"),
    }
    for name, fig in made.items():
        assert fig is not None, name
        _labelled(fig)
        assert _legend_colours(fig) == figures.ordering_colors(ORDERINGS), name
    assert [ax.get_title() for ax in made["curves"].axes] == [
        "fashion_mnist · cnn",
        "fashion_mnist · mlp",
    ]
    assert len(made["probes"].axes) == 2 * 4  # a row per arch, a column per probe statistic
    assert made["final"].axes[0].get_ylabel() == "final test accuracy (fraction)"
    assert "std" in made["curves"]._suptitle.get_text()
    # one lr, one depth: nothing to draw a curve along
    assert figures.lr_sensitivity(trials) is None
    assert figures.depth_curve(trials) is None
    image = matplotlib.image.imread(figures.save_png(made["curves"], tmp_path / "c.png"))
    assert image.shape[0] > 300
    assert image.shape[1] > 600
    assert image.shape[2] in (3, 4)


# ---------------------------------------------------------------- synthetic edge cases


def test_lr_and_depth_figures_have_the_right_axes() -> None:
    trials = _trials(lrs=(1e-4, 1e-3, 1e-2), depths=(2, 4, 8, 16))
    lr = figures.lr_sensitivity(trials, metric="final_test_acc")
    depth = figures.depth_curve(_trials(depths=(2, 4, 8, 16)), metric="final_test_acc")
    assert len(lr.axes) == 2 * 4  # panels per arch and depth
    assert {ax.get_xscale() for ax in lr.axes} == {"log"}
    assert lr.axes[0].get_title() == "d · cnn · depth 2"
    assert "lr ∈" not in lr._suptitle.get_text()  # lr is the x axis, not pooled
    assert "depth ∈" not in lr._suptitle.get_text()  # depth has its own panels
    assert [ax.get_title() for ax in depth.axes] == ["d · cnn", "d · mlp"]
    assert list(depth.axes[0].get_xticks()) == [2, 4, 8, 16]
    assert depth.axes[0].get_xlabel() == "depth (ordered blocks)"


def test_mixed_settings_are_named_in_the_title() -> None:
    fig = figures.final_accuracy(_trials(lrs=(1e-3, 1e-2)), metric="final_test_acc")
    assert "pooled over lr ∈ {0.001, 0.01}" in fig._suptitle.get_text()


def test_figures_decline_when_the_metric_is_all_nan() -> None:
    trials = _trials(lrs=(1e-4, 1e-3), depths=(2, 4)).assign(final_test_acc=np.nan)
    assert figures.final_accuracy(trials, metric="final_test_acc") is None
    assert figures.lr_sensitivity(trials, metric="final_test_acc") is None
    assert figures.depth_curve(trials, metric="final_test_acc") is None
    # only one lr keeps a finite metric: still no lr axis
    trials.loc[trials.lr == 1e-3, "final_test_acc"] = 0.8
    assert figures.lr_sensitivity(trials, metric="final_test_acc") is None
    curves = _curves(_trials()).assign(val_acc=np.nan, test_acc=np.nan)
    assert figures.learning_curves(curves) is None


def test_probe_figures_decline_without_probe_data() -> None:
    curves = _curves(_trials(), probes=False)
    assert figures.probe_blocks_figure(curves.assign(norm_in_skew=None), "norm_in_skew") is None
    nan_probes = _curves(_trials()).assign(
        act_dead_frac_mean=np.nan,
        norm_in_skew_mean=np.nan,
        norm_in_zero_frac_mean=np.nan,
        grad_norm_mean=np.nan,
    )
    assert figures.probe_figure(nan_probes) is None


def test_a_nan_column_is_left_out() -> None:
    fig = figures.learning_curves(_curves(_trials()).assign(test_acc=np.nan))
    styles = {line.get_linestyle() for ax in fig.axes for line in ax.get_lines()}
    assert styles == {"-"}  # validation only; the test lines (dashed) had no data
    probes = figures.probe_figure(_curves(_trials()).assign(grad_norm_mean=np.nan))
    assert len(probes.axes) == 2 * 3


def test_an_ordering_in_one_arch_only() -> None:
    trials = _trials()
    trials = trials[(trials.arch == "cnn") | (trials.ordering != "conv-lrelu-bn")]
    fig = figures.final_accuracy(trials, metric="final_test_acc")
    ticks = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes]
    assert len(ticks[0]) == 3
    assert ticks[1] == ["conv-bn-relu\n(n=3)", "conv-relu-bn\n(n=3)"]
    assert set(_legend_colours(fig)) == set(ORDERINGS)  # the legend covers every panel
    assert figures.learning_curves(_curves(trials)) is not None


def test_single_seed_draws_no_band() -> None:
    one = _trials()
    one = one[one.seed == 0]
    assert not any(ax.collections for ax in figures.learning_curves(_curves(one)).axes)
    three = figures.learning_curves(_curves(_trials()))
    assert all(ax.collections for ax in three.axes)  # the ± std bands


def test_drawn_colours_follow_the_ordering_not_the_set() -> None:
    trials = _trials(lrs=(1e-4, 1e-3))
    some = trials[trials.ordering != "conv-bn-relu"].assign(
        ordering=lambda d: d.ordering.replace({"conv-lrelu-bn": "x-conv-gn-gelu"})
    )
    everything = _legend_colours(figures.final_accuracy(trials, metric="final_test_acc"))
    subset = _legend_colours(figures.lr_sensitivity(some, metric="final_test_acc"))
    assert subset["conv-relu-bn"] == everything["conv-relu-bn"]
    assert set(subset) == {"conv-relu-bn", "x-conv-gn-gelu"}
    # the box plot's points carry the same colours as the legend
    fig = figures.final_accuracy(trials, metric="final_test_acc")
    points = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    drawn = {matplotlib.colors.to_hex(c.get_facecolor()[0]) for c in points}
    assert drawn == {c.lower() for c in figures.ordering_colors(ORDERINGS).values()}


def test_aliases_share_their_canonical_colour() -> None:
    colours = figures.ordering_colors(["case1", "conv-bn-relu", "Conv → ReLU → BN", "case2"])
    assert colours["case1"] == colours["conv-bn-relu"]
    assert colours["Conv → ReLU → BN"] == colours["case2"]
    assert figures.ordering_colors(["not an ordering!"])  # a label, never an error


def test_unknown_names_are_errors_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown column 'final_test_ac'.*did you mean"):
        figures.final_accuracy(_trials(), metric="final_test_ac")
    with pytest.raises(ConfigError, match="did you mean 'norm_in_skew'"):
        figures.probe_blocks_figure(_curves(_trials()), "norm_in_skw")
    with pytest.raises(ConfigError, match="missing column 'epoch'"):
        figures.learning_curves(_curves(_trials()).drop(columns="epoch"))


def test_output_is_deterministic(tmp_path: Path) -> None:
    trials = _trials(lrs=(1e-4, 1e-3))
    a = figures.save_png(figures.final_accuracy(trials), tmp_path / "a" / "fig.png")
    b = figures.save_png(figures.final_accuracy(trials), tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()

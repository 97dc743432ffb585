"""The report's figures on frames built here: what each draws, when it declines (None), labels,
consistent colours, and valid PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

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

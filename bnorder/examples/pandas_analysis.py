"""From bnorder's Parquet to your own analysis with nothing but pandas and matplotlib.

    uv run python -m bnorder.examples.pandas_analysis results/quickstart

Prints mean ± std of the test accuracy (at the best-validation epoch) per arch and ordering,
and saves a learning-curve plot next to the results.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def main(results: Path) -> None:
    trials = pd.read_parquet(results / "trials.parquet")
    epochs = pd.read_parquet(results / "epochs.parquet")

    # one row per trial: group and aggregate
    ok = trials[trials.status == "ok"]
    table = ok.groupby(["arch", "ordering"]).test_acc_at_best_val.agg(["mean", "std", "count"])
    print(table.round(4).to_string())

    # one row per trial-epoch: join the config columns you need, then plot
    curves = epochs.merge(trials[["trial_id", "arch", "ordering"]], on="trial_id")
    mean = curves.groupby(["arch", "ordering", "epoch"]).val_acc.mean().reset_index()
    archs = sorted(mean.arch.unique())
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs), 3.5), squeeze=False)
    for ax, arch in zip(axes[0], archs, strict=True):
        for ordering, group in mean[mean.arch == arch].groupby("ordering"):
            ax.plot(group.epoch, group.val_acc, marker="o", label=ordering)
        ax.set(title=arch, xlabel="epoch", ylabel="validation accuracy (mean over seeds)")
        ax.legend()
    fig.tight_layout()
    out = results / "val_curves.png"
    fig.savefig(out, dpi=110)
    print(f"saved {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/quickstart"))

"""The report's figures, drawn from the DataFrames of :func:`bnorder.load`.

Each function takes ``Results.trials`` or ``Results.curves()`` (or rows of them: pass the
phase you want compared, e.g. ``trials[trials.phase != "tune"]``) and returns a
:class:`~matplotlib.figure.Figure`, or None when the data lacks what the figure needs (no lr
axis, no probes); none writes files: :func:`save_png` does. Every ordering has one colour in
all figures (:func:`ordering_colors`); lines are means over seeds with a ± 1 std band. The
probe figures live in :mod:`bnorder.report.probe_figures` and are re-exported here.

Example:
    >>> res = bnorder.load("results/quickstart")  # doctest: +SKIP
    >>> save_png(learning_curves(res.curves()), "report/curves.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bnorder.errors import ConfigError
from bnorder.report import style
from bnorder.report.probe_figures import PROBE_PANELS, probe_blocks_figure, probe_figure
from bnorder.report.style import BAND, PANEL_BY, ordering_colors, sort_orderings

__all__ = [
    "PROBE_PANELS",
    "depth_curve",
    "final_accuracy",
    "learning_curves",
    "lr_sensitivity",
    "ordering_colors",
    "probe_blocks_figure",
    "probe_figure",
    "save_png",
]

_LINESTYLES = ("-", "--", ":", "-.")  # metric_cols in order: val solid, test dashed
_JITTER = 0.28  # width of the strip of points around each box (box width 0.5)

# ---------------------------------------------------------------- writing


def save_png(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (a hidden temporary file renamed into place, so a
    reader never sees half an image), then close it.

    Args:
        fig: a figure from this module (or any matplotlib figure).
        path: the PNG file; missing parent folders are created.
        dpi: resolution; 120 keeps the default fonts readable at the panel sizes used here.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique: safe from threads
    try:
        with open(tmp, "xb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _close(fig)
    return path


def _close(fig: Figure) -> None:
    """Release a pyplot-managed figure; a bare Figure (as built here) needs nothing."""
    if getattr(fig.canvas, "manager", None) is not None:
        from matplotlib import pyplot as plt  # already imported by whoever made the figure

        plt.close(fig)


# ---------------------------------------------------------------- helpers


def _check_metric(df: pd.DataFrame, metric: str, *, frame: str) -> None:
    if metric not in df.columns:
        numeric = [str(c) for c in df.columns if pd.api.types.is_float_dtype(df[c])]
        raise ConfigError(f"{frame} metric", metric, "unknown column", choices=numeric)


def _curve_figure(
    trials: pd.DataFrame, metric: str, x: str, split: Sequence[str], title: str
) -> Figure | None:
    """Shared body of lr_sensitivity and depth_curve: ``metric`` against config column ``x``."""
    _check_metric(trials, metric, frame="trials")
    style.require_columns(trials, ["ordering"], frame="trials")
    df = style.finite(trials, metric) if x in trials.columns else trials.iloc[:0]
    if df.empty or df[x].nunique() < 2:
        return None
    orderings = sort_orderings(df["ordering"])
    groups = style.panels(df, style.split_columns(df, PANEL_BY, split))
    fig, axes = style.grid(len(groups))
    xs = sorted(df[x].unique())
    for ax, (name, part) in zip(axes.ravel(), groups, strict=False):
        style.lines_by_ordering(ax, part, x, metric, orderings, marker="o")
        if x == "lr":
            ax.set_xscale("log")
        else:
            style.integer_ticks(ax, xs, log2=min(xs) > 0 and max(xs) / min(xs) >= 4)
        ax.set(title=name, xlabel=style.metric_label(x), ylabel=style.metric_label(metric))
        ax.grid(alpha=0.3)
    style.legend(fig, orderings, [style.band_handle()])
    pooled = [c for c in ("lr", "depth", "width", "epochs") if c != x and c not in split]
    note = style.pooled_note(df, pooled)
    style.suptitle(fig, f"{title} ({BAND})", note)
    return fig


# ---------------------------------------------------------------- figures


def learning_curves(
    curves: pd.DataFrame, *, metric_cols: Sequence[str] = ("val_acc", "test_acc")
) -> Figure | None:
    """Accuracy against epoch, one panel per (dataset, arch), one colour per ordering.

    Args:
        curves: ``Results.curves()`` (epoch rows with their trial's config).
        metric_cols: epoch columns to draw, by line style in order (solid, dashed, ...).

    Returns:
        The figure, or None when no ``metric_cols`` column has data.

    Raises:
        ConfigError: a column of ``metric_cols`` (or ``epoch``/``ordering``) is not in ``curves``.
    """
    style.require_columns(curves, ["epoch", "ordering", *metric_cols], frame="curves")
    metrics = [m for m in metric_cols if style.has_data(curves, m)]
    if not metrics:
        return None
    orderings = sort_orderings(curves["ordering"])
    groups = style.panels(curves, style.split_columns(curves, PANEL_BY))
    fig, axes = style.grid(len(groups))
    for ax, (name, part) in zip(axes.ravel(), groups, strict=False):
        for metric, ls in zip(metrics, _LINESTYLES, strict=False):
            style.lines_by_ordering(ax, part, "epoch", metric, orderings, ls=ls)
        style.integer_ticks(ax, sorted(part["epoch"].dropna().unique()))
        unit = "accuracy (fraction)" if all(m.endswith("_acc") for m in metrics) else "value"
        ax.set(
            title=name,
            xlabel="epoch",
            ylabel=style.metric_label(metrics[0]) if len(metrics) == 1 else unit,
        )
        ax.grid(alpha=0.3)
    kinds = [
        Line2D([], [], color="0.25", ls=ls, label=style.metric_label(m).split(" (")[0])
        for m, ls in zip(metrics, _LINESTYLES, strict=False)
    ]
    style.legend(fig, orderings, [*kinds, style.band_handle()])
    style.suptitle(
        fig, f"Learning curves ({BAND})", style.pooled_note(curves, ["lr", "depth", "width"])
    )
    return fig


def final_accuracy(trials: pd.DataFrame, *, metric: str = "final_test_acc") -> Figure | None:
    """One point per trial (deterministic jitter) over a box per ordering, one panel per
    (dataset, arch).

    Args:
        trials: ``Results.trials``.
        metric: the trials column to compare, e.g. ``final_test_acc`` or
            ``test_acc_at_best_val``.

    Returns:
        The figure, or None when ``metric`` has no finite value.

    Raises:
        ConfigError: ``metric`` (or ``ordering``) is not a column of ``trials``.
    """
    _check_metric(trials, metric, frame="trials")
    style.require_columns(trials, ["ordering"], frame="trials")
    df = style.finite(trials, metric)
    if df.empty:
        return None
    orderings = sort_orderings(df["ordering"])
    groups = style.panels(df, style.split_columns(df, PANEL_BY))
    fig, axes = style.grid(len(groups))
    for ax, (name, part) in zip(axes.ravel(), groups, strict=False):
        _strip_box(ax, part, metric)
        ax.set(title=name, xlabel="ordering", ylabel=style.metric_label(metric))
        ax.grid(axis="y", alpha=0.3)
    style.legend(fig, orderings)
    note = style.pooled_note(df, ["width", "lr", "depth", "epochs"])
    style.suptitle(fig, "Accuracy per ordering (points: trials; box: median, quartiles)", note)
    return fig


def _strip_box(ax: Axes, df: pd.DataFrame, metric: str) -> None:
    """Box per ordering present in ``df`` and its trials as points, jittered by a golden-ratio
    sequence (deterministic, evenly spread, no random state)."""
    orderings = sort_orderings(df["ordering"])
    colors = ordering_colors(orderings)
    values = [df.loc[df["ordering"] == o, metric].to_numpy(dtype=float) for o in orderings]
    boxes = ax.boxplot(
        values,
        positions=range(len(orderings)),
        widths=0.5,
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "black"},
    )
    for box, o in zip(boxes["boxes"], orderings, strict=True):
        box.set(facecolor=colors[o], alpha=0.25)
    for i, (o, v) in enumerate(zip(orderings, values, strict=True)):
        jitter = ((np.arange(len(v)) * 0.618034) % 1 - 0.5) * _JITTER
        ax.scatter(i + jitter, v, color=colors[o], s=22, zorder=3, edgecolor="white", lw=0.5)
    ax.set_xticks(range(len(orderings)))
    labels = [f"{o}\n(n={len(v)})" for o, v in zip(orderings, values, strict=True)]
    ax.set_xticklabels(labels, fontsize=8.5, rotation=20 if len(orderings) > 3 else 0)


def lr_sensitivity(trials: pd.DataFrame, *, metric: str = "final_test_acc") -> Figure | None:
    """Accuracy against learning rate (log x), one line per ordering, one panel per (dataset,
    arch, and depth and width where several).

    Args:
        trials: ``Results.trials``.
        metric: the trials column on the y axis.

    Returns:
        The figure, or None when fewer than 2 learning rates have a finite ``metric``.

    Raises:
        ConfigError: ``metric`` (or ``ordering``) is not a column of ``trials``.
    """
    return _curve_figure(trials, metric, "lr", ["depth", "width"], "Learning-rate sensitivity")


def depth_curve(trials: pd.DataFrame, *, metric: str = "final_test_acc") -> Figure | None:
    """Accuracy against depth, one line per ordering, one panel per (dataset, arch, and lr and
    width where several).

    Args:
        trials: ``Results.trials``.
        metric: the trials column on the y axis.

    Returns:
        The figure, or None when fewer than 2 depths have a finite ``metric``.

    Raises:
        ConfigError: ``metric`` (or ``ordering``) is not a column of ``trials``.
    """
    return _curve_figure(trials, metric, "depth", ["lr", "width"], "Accuracy against depth")

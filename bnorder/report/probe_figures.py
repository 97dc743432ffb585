"""Probe figures: the statistics of :mod:`bnorder.probes` (skewed or sparse norm inputs, dead
units, gradient norms) per ordering, over epochs and per block. Re-exported by
:mod:`bnorder.report.figures`; same conventions (a Figure or None, one colour per ordering)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bnorder.errors import ConfigError
from bnorder.probes import PROBE_STATS
from bnorder.report import style
from bnorder.report.style import BAND, PANEL_BY, sort_orderings

__all__ = ["PROBE_PANELS", "probe_blocks_figure", "probe_figure"]

# probe_figure's columns: the block means of the probe stats (bnorder/probes.py), as
# (panel title, y label, log y when every value is positive).
PROBE_PANELS: dict[str, tuple[str, str, bool]] = {
    "act_dead_frac_mean": ("dead units", "dead channels (fraction)", False),
    "norm_in_skew_mean": ("norm-input skewness", "skewness (mean over blocks)", False),
    "norm_in_zero_frac_mean": ("norm-input zeros", "zero fraction (mean over blocks)", False),
    "grad_norm_mean": ("gradient norm", "L2 norm per block (mean)", True),
}

_STAT_LABELS = {
    "norm_in_mean": "norm-input mean",
    "norm_in_std": "norm-input std",
    "norm_in_skew": "norm-input skewness",
    "norm_in_zero_frac": "norm-input zero fraction",
    "act_zero_frac": "activation zero fraction",
    "act_dead_frac": "dead channels (fraction)",
    "grad_norm": "gradient L2 norm",
}


def probe_figure(
    curves: pd.DataFrame, *, stats: Sequence[str] = tuple(PROBE_PANELS)
) -> Figure | None:
    """Probe statistics (block means) against epoch: a column per statistic, a row per
    (dataset, arch), one line per ordering.

    Args:
        curves: ``Results.curves()`` of trials run with probes.
        stats: columns of :data:`PROBE_PANELS` to draw; those without data are left out.

    Returns:
        The figure, or None when none of ``stats`` has data (probes were off).

    Raises:
        ConfigError: a name in ``stats`` is not in :data:`PROBE_PANELS`.
    """
    for stat in stats:
        if stat not in PROBE_PANELS:
            raise ConfigError("probe_figure stats", stat, "unknown", choices=list(PROBE_PANELS))
    style.require_columns(curves, ["epoch", "ordering"], frame="curves")
    present = [s for s in stats if style.has_data(curves, s)]
    if not present:
        return None
    orderings = sort_orderings(curves["ordering"])
    rows = style.panels(curves, style.split_columns(curves, PANEL_BY))
    fig, axes = style.grid(len(rows) * len(present), ncols=len(present), nrows=len(rows))
    for r, (name, part) in enumerate(rows):
        for c, stat in enumerate(present):
            _probe_panel(axes[r, c], part, stat, orderings)
            if name:
                axes[r, c].set_title(f"{name}: {PROBE_PANELS[stat][0]}")
    style.legend(fig, orderings, [style.band_handle()])
    note = style.pooled_note(curves, ["lr", "depth", "width"])
    style.suptitle(fig, f"Probe statistics during training ({BAND})", note)
    return fig


def _probe_panel(ax: Axes, df: pd.DataFrame, stat: str, orderings: Sequence[str]) -> None:
    title, ylabel, log = PROBE_PANELS[stat]
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    if not style.lines_by_ordering(ax, df, "epoch", stat, orderings, marker="o"):
        style.no_data(ax)
        return
    style.integer_ticks(ax, sorted(df["epoch"].dropna().unique()))
    if log and (style.finite(df, stat)[stat] > 0).all():
        ax.set_yscale("log")


def probe_blocks_figure(curves: pd.DataFrame, stat: str) -> Figure | None:
    """A probe statistic per block (x = block index, input to output) at each trial's last
    epoch, one line per ordering, one panel per (dataset, arch, and depth where several).

    Args:
        curves: ``Results.curves()`` of trials run with probes.
        stat: a per-block probe column, one of ``bnorder.probes.PROBE_STATS``
            (e.g. ``norm_in_skew``).

    Returns:
        The figure, or None when ``stat`` has no finite value.

    Raises:
        ConfigError: ``stat`` is not a probe statistic, or ``curves`` lacks a needed column.
    """
    if stat not in PROBE_STATS:
        raise ConfigError("probe_blocks_figure stat", stat, "unknown", choices=PROBE_STATS)
    style.require_columns(curves, ["trial_id", "epoch", "ordering", stat], frame="curves")
    blocks = _last_epoch_blocks(curves, stat)
    if blocks.empty:
        return None
    orderings = sort_orderings(blocks["ordering"])
    groups = style.panels(blocks, style.split_columns(blocks, PANEL_BY, ["depth"]))
    fig, axes = style.grid(len(groups))
    label = _STAT_LABELS[stat]
    for ax, (name, part) in zip(axes.ravel(), groups, strict=False):
        style.lines_by_ordering(ax, part, "block", stat, orderings, marker="o")
        style.integer_ticks(ax, sorted(part["block"].unique()))
        if stat == "grad_norm" and (part[stat] > 0).all():
            ax.set_yscale("log")
        ax.set(title=name, xlabel="block (1 = nearest the input)", ylabel=label)
        ax.grid(alpha=0.3)
    style.legend(fig, orderings, [style.band_handle()])
    note = style.pooled_note(blocks, ["lr", "width"])
    style.suptitle(fig, f"{label} per block at the last epoch ({BAND})", note)
    return fig


def _last_epoch_blocks(curves: pd.DataFrame, stat: str) -> pd.DataFrame:
    """One row per (trial, block) from each trial's last epoch: ``block`` (1-based) and the
    finite value of ``stat``."""
    has_list = curves[stat].map(lambda v: isinstance(v, list | tuple | np.ndarray) and len(v) > 0)
    rows = curves[has_list]
    if rows.empty:
        return rows.assign(block=pd.Series(dtype=int))
    last = rows.loc[rows.groupby("trial_id")["epoch"].idxmax()]
    long = last.explode(stat)
    long["block"] = long.groupby(level=0).cumcount() + 1
    long[stat] = pd.to_numeric(long[stat], errors="coerce")
    return style.finite(long.reset_index(drop=True), stat)

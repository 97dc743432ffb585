"""What every report figure shares: one colour per ordering, axis labels with units, panel
grids and legends, the mean ± 1 std line-and-band.

Figures are built on :class:`matplotlib.figure.Figure` directly, never through pyplot: no global
state, safe from threads, and PNGs render with Agg whatever backend the user has configured.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

from bnorder.errors import BnorderError, ConfigError
from bnorder.ordering import parse_ordering

__all__ = ["FIXED_COLORS", "metric_label", "ordering_colors", "sort_orderings"]

# Okabe-Ito (colourblind-safe). Fixed, so an ordering keeps its colour in every figure of every
# report whichever others are present; the seed's three orderings get the most distinct hues.
FIXED_COLORS: dict[str, str] = {
    "conv-bn-relu": "#0072B2",  # blue: the convention
    "conv-relu-bn": "#D55E00",  # vermillion
    "conv-lrelu-bn": "#009E73",  # bluish green
    "bn-relu-conv": "#CC79A7",  # reddish purple: pre-activation
    "conv-relu": "#E69F00",  # orange: no norm
    "conv-bn": "#56B4E9",  # sky blue: no activation
}
# Any other ordering: a stable hash (crc32; Python's hash() is salted per process) into Paul
# Tol's colourblind-safe muted palette, minus the hues too close to the fixed ones above.
_OTHER_COLORS = ("#332288", "#882255", "#999933", "#CC6677", "#117733", "#DDCC77", "#777777")

BAND = "mean ± 1 std over seeds"
PANEL_BY = ("dataset", "arch")  # every figure has a panel per (dataset, arch) at least
PANEL_SIZE = (4.4, 3.2)  # inches per panel: readable at the report's 120 dpi
MAX_COLS = 3

_LABELS = {
    "train_acc": "train accuracy (fraction)",
    "val_acc": "validation accuracy (fraction)",
    "test_acc": "test accuracy (fraction)",
    "train_loss": "train loss (cross-entropy)",
    "val_loss": "validation loss (cross-entropy)",
    "test_loss": "test loss (cross-entropy)",
    "final_train_acc": "final train accuracy (fraction)",
    "final_val_acc": "final validation accuracy (fraction)",
    "final_test_acc": "final test accuracy (fraction)",
    "best_val_acc": "best validation accuracy (fraction)",
    "test_acc_at_best_val": "test accuracy at best-val epoch (fraction)",
    "final_train_loss": "final train loss (cross-entropy)",
    "final_test_loss": "final test loss (cross-entropy)",
    "lr": "learning rate (log scale)",
    "depth": "depth (ordered blocks)",
    "epoch": "epoch",
}


def _canonical(ordering: str) -> str:
    """The canonical form of ``ordering`` (aliases folded), or the text itself if it does not
    parse: a figure labels what it is given rather than failing on a label."""
    try:
        return parse_ordering(str(ordering)).canonical
    except BnorderError:
        return str(ordering)


def _color(ordering: str) -> str:
    key = _canonical(ordering)
    if key in FIXED_COLORS:
        return FIXED_COLORS[key]
    return _OTHER_COLORS[zlib.crc32(key.encode()) % len(_OTHER_COLORS)]


def ordering_colors(orderings: Iterable[str]) -> dict[str, str]:
    """A colour for each ordering that depends on that ordering alone.

    Args:
        orderings: ordering strings, canonical as stored in results (aliases such as ``case1``
            get their canonical ordering's colour).

    Returns:
        ``{ordering: hex colour}``. The common orderings have fixed Okabe-Ito colours; others
        hash into a colourblind-safe palette (two rare orderings may then share a colour).

    Example:
        >>> ordering_colors(["conv-relu-bn", "conv-bn-relu"])["conv-bn-relu"]
        '#0072B2'
    """
    return {o: _color(o) for o in orderings}


def sort_orderings(orderings: Iterable[str]) -> list[str]:
    """Distinct orderings in a stable order: the common ones first (as in
    :data:`FIXED_COLORS`), then the rest alphabetically."""
    rank = {o: i for i, o in enumerate(FIXED_COLORS)}
    distinct = {str(o) for o in orderings if isinstance(o, str)}
    return sorted(distinct, key=lambda o: (rank.get(_canonical(o), len(rank)), o))


def metric_label(column: str) -> str:
    """The axis label of a results column, with its unit."""
    return _LABELS.get(column, column.replace("_", " "))


# ---------------------------------------------------------------- checks and grouping


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, frame: str) -> None:
    """Raise ConfigError naming the first of ``columns`` missing from ``df``."""
    for col in columns:
        if col not in df.columns:
            raise ConfigError(
                frame, col, "missing column", choices=sorted(map(str, df.columns))[:40]
            )


def has_data(df: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` exists in ``df`` with at least one finite value."""
    if column not in df.columns:
        return False
    values = pd.to_numeric(df[column], errors="coerce")
    return bool(np.isfinite(values.to_numpy(dtype=float)).any())


def finite(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows of ``df`` where ``column`` is a finite number."""
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    return df[np.isfinite(values)]


def split_columns(df: pd.DataFrame, base: Sequence[str], split: Sequence[str] = ()) -> list[str]:
    """``base`` columns present in ``df``, then the ``split`` columns that take several values."""
    return [c for c in base if c in df.columns] + [
        c for c in split if c in df.columns and df[c].nunique() > 1
    ]


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


def format_value(column: str, value: object) -> str:
    """``lr 0.001``, ``depth 4``; datasets and archs as themselves."""
    return _text(value) if column in ("dataset", "arch") else f"{column} {_text(value)}"


def panels(df: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """``(title, rows)`` per distinct value of ``columns``, sorted; one untitled panel if none."""
    if not columns:
        return [("", df)]
    return [
        (" · ".join(format_value(c, v) for c, v in zip(columns, key, strict=True)), part)
        for key, part in df.groupby(list(columns), sort=True)
    ]


def pooled_note(df: pd.DataFrame, columns: Iterable[str]) -> str:
    """``pooled over lr ∈ {0.001, 0.003}`` for the config columns that vary but have no panel
    of their own, so a figure never hides that it mixes settings."""
    parts = []
    for col in columns:
        if col in df.columns and df[col].nunique() > 1:
            values = sorted(df[col].dropna().unique())
            parts.append(f"{col} ∈ {{{', '.join(map(_text, values))}}}")
    return f"pooled over {'; '.join(parts)}" if parts else ""


def mean_std(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per value of ``x``: mean, std (NaN for one seed) and count of the finite ``y``."""
    values = df[[x, y]].assign(**{y: pd.to_numeric(df[y], errors="coerce")})
    values = values[np.isfinite(values[y].to_numpy(dtype=float))]
    return values.groupby(x, sort=True)[y].agg(["mean", "std", "count"]).reset_index()


# ---------------------------------------------------------------- drawing


def grid(n: int, *, ncols: int = MAX_COLS, nrows: int | None = None) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with ``n`` panels (``nrows`` × ``ncols`` when ``nrows`` is
    given); unused cells are removed so ``fig.axes`` holds only real panels."""
    ncols = max(1, min(n, ncols))
    nrows = nrows or math.ceil(n / ncols)
    width, height = PANEL_SIZE
    fig = Figure(figsize=(width * ncols + 1.8, height * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[n:]:
        fig.delaxes(ax)
    return fig, axes


def value_bounds(column: str) -> tuple[float, float] | None:
    """(0, 1) for fractions (accuracies, zero and dead fractions), where a ± std band stops."""
    if column.endswith(("_acc", "_frac", "_frac_mean")) or "(fraction)" in metric_label(column):
        return (0.0, 1.0)
    return None


def line_band(
    ax: Axes,
    stats: pd.DataFrame,
    x: str,
    color: str,
    *,
    bounds: tuple[float, float] | None = None,
    **line: object,
) -> None:
    """The mean as a line; ± 1 std as a band (within ``bounds``) where there are two seeds."""
    xs = stats[x].to_numpy(dtype=float)
    mean, std = stats["mean"].to_numpy(dtype=float), stats["std"].to_numpy(dtype=float)
    ax.plot(xs, mean, color=color, lw=1.8, ms=4, **line)  # type: ignore[arg-type]
    ok = np.isfinite(std)
    if ok.any():
        lo, hi = mean - std, mean + std
        if bounds is not None:
            lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
        ax.fill_between(xs, lo, hi, where=ok, color=color, alpha=0.18, lw=0)


def integer_ticks(ax: Axes, values: Sequence[float], *, log2: bool = False) -> None:
    """Ticks at exactly ``values`` (epochs, depths, block indices), on a log2 axis if asked."""
    if log2:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
    if len(values) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(sorted(values)))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def lines_by_ordering(
    ax: Axes, df: pd.DataFrame, x: str, y: str, orderings: Sequence[str], **line: object
) -> bool:
    """Mean ± std of ``y`` against ``x``, one line per ordering; whether anything was drawn."""
    colors = ordering_colors(orderings)
    drawn = False
    for o in orderings:
        stats = mean_std(df[df["ordering"] == o], x, y)
        if len(stats):
            line_band(ax, stats, x, colors[o], bounds=value_bounds(y), **line)
            drawn = True
    return drawn


def no_data(ax: Axes) -> None:
    """Mark a panel that has nothing to show, instead of leaving it silently empty."""
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.5")


def ordering_handles(orderings: Sequence[str]) -> list[Artist]:
    """One legend entry per ordering, in its colour."""
    colors = ordering_colors(orderings)
    return [Line2D([], [], color=colors[o], lw=2.5, label=o) for o in orderings]


def band_handle() -> Artist:
    """The legend entry explaining the shaded band."""
    return Patch(color="0.6", alpha=0.4, label=BAND)


def legend(fig: Figure, orderings: Sequence[str], extra: Sequence[Artist] = ()) -> None:
    """The figure's one legend, outside the panels on the right: orderings, then ``extra``."""
    handles = ordering_handles(orderings)
    if extra:
        handles += [Line2D([], [], lw=0, label=" "), *extra]  # a blank row between the groups
    fig.legend(handles=handles, loc="outside right upper", title="ordering", fontsize=9)


def suptitle(fig: Figure, title: str, note: str = "") -> None:
    """The figure title, with an optional smaller second line (what is pooled, what n is)."""
    fig.suptitle(f"{title}\n{note}" if note else title, fontsize=12)

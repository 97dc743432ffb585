"""The report's tables as people read them: one ``point`` column instead of one per key,
intervals as ``[low, high]`` with their level in the header, accuracies in percent, and only
the columns that carry a decision, so every table fits a 1280-px page. The full tables are
the :mod:`bnorder.analysis` frames (``report.md`` says so); these only choose and format."""

from __future__ import annotations

import math

import pandas as pd

from bnorder.analysis.settings import AcrossSettings
from bnorder.report.wording import Units, level_text

__all__ = [
    "across_effects_table",
    "across_orderings_table",
    "comparison_table",
    "effect_size_table",
    "point_label",
    "runs_table",
    "seed_display",
    "spread_table",
    "summary_table",
]


def point_label(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """``fashion_mnist · cnn · lr=0.001`` per row: the point, in one narrow column."""
    if not keys:
        return pd.Series("all", index=frame.index)
    parts = [
        frame[k].astype(str) if k in ("dataset", "arch") else f"{k}=" + frame[k].astype(str)
        for k in keys
    ]
    out = parts[0]
    for p in parts[1:]:
        out = out + " · " + p
    return out


def _value(units: Units, x: float, signed: bool = False) -> str:
    if math.isnan(x):
        return "–"
    if units.name:
        return f"{units.scale * x:+.2f}" if signed else f"{units.scale * x:.2f}"
    return f"{x:+.4g}" if signed else f"{x:.4g}"


def _interval(units: Units, low: float, high: float, *, signed: bool = True) -> str:
    if math.isnan(low):
        return "–"
    return f"[{_value(units, low, signed)}, {_value(units, high, signed)}]"


def _p(p: float) -> str:
    return "–" if math.isnan(p) else f"{p:.3g}" if p >= 0.001 else "<0.001"


def _runs(n: float) -> str:
    return "–" if math.isnan(n) else ">10,000" if math.isinf(n) else f"{int(n)}"


def _unit(units: Units) -> str:
    return " (points)" if units.name else ""


MAX_RUN_COLUMNS = 10  # more runs than this are listed in one cell, so the table stays narrow


def seed_display(seed: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The seed notebook's table with one ``point`` column; many runs in one wrapped cell."""
    runs = [c for c in seed.columns if c.startswith("Run ")]
    out = pd.DataFrame({"point": point_label(seed, keys), "ordering": seed["ordering"]})
    if len(runs) <= MAX_RUN_COLUMNS:
        out = pd.concat([out, seed[runs]], axis=1)
    else:
        out["Runs (%)"] = [
            ", ".join(f"{v:.2f}" for v in row if not math.isnan(v))
            for row in seed[runs].to_numpy(dtype=float)
        ]
    return pd.concat([out, seed[["Mean (%)", "Std (%)"]]], axis=1)


def summary_table(summary: pd.DataFrame, keys: list[str], units: Units) -> pd.DataFrame:
    """n, mean, sd (ddof 1), IQM, the t interval of the mean, min and max."""
    level = level_text(1 - summary.attrs.get("level", 0.95))
    pct = " (%)" if units.name else ""
    v = lambda x: _value(units, x)  # noqa: E731
    return pd.DataFrame(
        {
            "point": point_label(summary, keys),
            "ordering": summary["ordering"],
            "n": summary["n"],
            f"mean{pct}": summary["mean"].map(v),
            f"sd{pct}, ddof 1": summary["std"].map(v),
            f"IQM{pct}": summary["iqm"].map(v),
            f"{level} t interval": [
                _interval(units, lo, hi, signed=False)
                for lo, hi in zip(summary.t_ci_low, summary.t_ci_high, strict=True)
            ],
            f"min{pct}": summary["min"].map(v),
            f"max{pct}": summary["max"].map(v),
        }
    )


def comparison_table(cmp: pd.DataFrame, keys: list[str], units: Units) -> pd.DataFrame:
    """The decision of each comparison: difference, interval at its Holm level, test, p."""
    return pd.DataFrame(
        {
            "point": point_label(cmp, keys),
            "ordering": cmp["ordering"],
            "n": [f"{a} vs {b}" for a, b in zip(cmp.n, cmp.n_base, strict=True)],
            f"diff{_unit(units)}": cmp["diff"].map(lambda x: _value(units, x, True)),
            "interval (level)": [
                "–" if math.isnan(lo) else f"{_interval(units, lo, hi)} ({level_text(lv)})"
                for lo, hi, lv in zip(cmp.ci_low, cmp.ci_high, cmp.level, strict=True)
            ],
            "test": cmp["test"],
            "p (Holm)": cmp["p_holm"].map(_p),
            "TOST p (Holm)": cmp["tost_p_holm"].map(_p),
            "verdict": cmp["verdict"],
        }
    )


def effect_size_table(cmp: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Effect sizes and the rank test, beside the decision."""
    fmt = lambda x: "–" if math.isnan(x) else f"{x:+.2f}"  # noqa: E731
    return pd.DataFrame(
        {
            "point": point_label(cmp, keys),
            "ordering": cmp["ordering"],
            "Hedges' g": cmp["hedges_g"].map(fmt),
            "Cliff's delta": cmp["cliffs_delta"].map(fmt),
            "P(improvement)": cmp["prob_improvement"].map(lambda x: f"{x:.2f}"),
            "Mann-Whitney p (Holm)": cmp["mannwhitney_p_holm"].map(_p),
            "note": cmp["note"],
        }
    )


def runs_table(cmp: pd.DataFrame, keys: list[str], units: Units) -> pd.DataFrame:
    """What the runs could detect, and how many runs per ordering would detect the target."""
    size = lambda x: "–" if math.isnan(x) else _value(units, abs(x))  # noqa: E731
    return pd.DataFrame(
        {
            "point": point_label(cmp, keys),
            "ordering": cmp["ordering"],
            "n": [f"{a} vs {b}" for a, b in zip(cmp.n, cmp.n_base, strict=True)],
            f"|diff|{_unit(units)}": cmp["diff"].map(size),
            f"detectable{_unit(units)}": cmp["min_detectable_diff"].map(size),
            f"target{_unit(units)}": cmp["target_diff"].map(size),
            "runs needed per ordering": cmp["runs_needed"].map(_runs),
            "at level": cmp["level"].map(lambda x: "–" if math.isnan(x) else f"{x:.3g}"),
        }
    )


def spread_table(stab: pd.DataFrame, keys: list[str], units: Units) -> pd.DataFrame:
    """SD per ordering with its chi-square interval, and the spread test where valid."""
    level = level_text(1 - stab.attrs.get("level", 0.95))
    pct = " (%)" if units.name else ""
    return pd.DataFrame(
        {
            "point": point_label(stab, keys),
            "ordering": stab["ordering"],
            "n": stab["n"],
            f"sd{pct}": stab["std"].map(lambda x: _value(units, x)),
            f"{level} interval": [
                _interval(units, lo, hi, signed=False)
                for lo, hi in zip(stab.std_ci_low, stab.std_ci_high, strict=True)
            ],
            "Brown–Forsythe p (Holm)": stab["brown_forsythe_p_holm"].map(_p),
        }
    )


def _context(frame: pd.DataFrame) -> pd.Series:
    return frame["phase"].astype(str) if "phase" in frame.columns else pd.Series("", frame.index)


def across_orderings_table(verdict: AcrossSettings, units: Units) -> pd.DataFrame:
    """Per ordering over the points: mean rank, mean of point means, IQM with its interval."""
    o = verdict.orderings
    level = level_text(o.attrs.get("alpha", 0.05))
    pct = " (%)" if units.name else ""
    out = pd.DataFrame(
        {
            "phase": _context(o),
            "ordering": o["ordering"],
            "points": o["points"],
            "runs per point": o["runs"].map(lambda n: f"{n}+"),
            "mean rank": o["mean_rank"].map(lambda x: "–" if math.isnan(x) else f"{x:.2f}"),
            f"mean{pct}": o["mean"].map(lambda x: _value(units, x)),
            f"IQM{pct}": o["iqm"].map(lambda x: _value(units, x)),
            f"IQM {level} interval": [
                _interval(units, lo, hi, signed=False)
                for lo, hi in zip(o.iqm_ci_low, o.iqm_ci_high, strict=True)
            ],
        }
    )
    return out if "phase" in o.columns else out.drop(columns="phase")


def across_effects_table(verdict: AcrossSettings, units: Units) -> pd.DataFrame:
    """Per contender: the average effect over the points and everything decided on it."""
    e = verdict.effects
    out = pd.DataFrame(
        {
            "phase": _context(e),
            "ordering": e["ordering"],
            "points": e["points"],
            f"mean diff{_unit(units)}": e["diff"].map(lambda x: _value(units, x, True)),
            "interval (level)": [
                "–" if math.isnan(lo) else f"{_interval(units, lo, hi)} ({level_text(lv)})"
                for lo, hi, lv in zip(e.ci_low, e.ci_high, e.level, strict=True)
            ],
            "p (Holm)": e["p_holm"].map(_p),
            "TOST p (Holm)": e["tost_p_holm"].map(_p),
            "verdict": e["verdict"],
            "P(improvement)": [
                "–"
                if math.isnan(p)
                else f"{p:.2f}" + ("" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]")
                for p, lo, hi in zip(e.poi, e.poi_ci_low, e.poi_ci_high, strict=True)
            ],
            "runs needed per point": e["runs_needed"].map(_runs),
        }
    )
    return out if "phase" in e.columns else out.drop(columns="phase")

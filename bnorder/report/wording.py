"""How numbers are said in findings: differences in accuracy points (or the metric's own
units), intervals with the level they were computed at, where a finding holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

__all__ = ["Units", "level_text", "p_text", "runs_text", "units_for", "where"]


@dataclass(frozen=True)
class Units:
    """Accuracy fractions read as points (0.012 -> "+1.2 points"); anything else as itself."""

    scale: float = 100.0
    name: str = "points"

    def diff(self, x: float) -> str:
        if math.isnan(x):
            return "undefined"
        if self.name:
            return f"{self.scale * x:+.1f} {self.name}"
        return f"{x:+.3g}"

    def size(self, x: float) -> str:
        if self.name:
            return f"{self.scale * abs(x):.1f} {self.name}"
        return f"{abs(x):.3g}"

    def span(self, low: float, high: float) -> str:
        """An unsigned range: ``0.7–8.8 points``."""
        if self.name:
            return f"{self.scale * low:.1f}–{self.scale * high:.1f} {self.name}"
        return f"{low:.3g}–{high:.3g}"

    def interval(self, low: float, high: float) -> str:
        if self.name:
            return f"[{self.scale * low:+.1f}, {self.scale * high:+.1f}]"
        return f"[{low:+.3g}, {high:+.3g}]"


def units_for(metric: str) -> Units:
    """Points for accuracies (fractions in [0, 1]), the metric's own units otherwise."""
    return Units() if "acc" in str(metric) else Units(1.0, "")


def where(row: pd.Series, keys: list[str]) -> str:
    """``fashion_mnist, cnn, lr=0.001``: the point a finding is about."""
    return ", ".join(f"{row[k]}" if k in ("dataset", "arch") else f"{k}={row[k]}" for k in keys)


def level_text(level: float) -> str:
    """The confidence of an interval computed at significance ``level``: ``98.3%``."""
    conf = 100 * (1 - level)
    return f"{conf:.0f}%" if abs(conf - round(conf)) < 0.05 else f"{conf:.1f}%"


def p_text(p: float) -> str:
    """``p=0.0498``: three digits, so a p-value just under alpha never reads as alpha."""
    return f"p={p:.3g}" if p >= 0.001 else "p<0.001"


def runs_text(n: float) -> str:
    """``34 runs``, or what to say when no number of runs would do."""
    if math.isnan(n):
        return "an unknown number of runs (no spread observed to plan on)"
    if math.isinf(n):
        return "more than 10,000 runs"
    return f"about {int(n)} runs"

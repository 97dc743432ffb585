"""Reports of sweeps with adaptive seeds: the rule and each arm's n are stated, and a
group-sequential sweep is decided at its looks' levels, not as if n had been fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from crafted import run, write
from scipy import optimize

from bnorder.analysis.difference import welch
from bnorder.report.render import build_report

SWEEP = """
name: crafted
mode: grid
datasets: [synthetic]
archs: [cnn]
orderings: [case1, case2]
fixed: {depth: 2, width: 8, epochs: 1}
seeds: {min: 3, max: 9, step: 2, until: UNTIL}
"""
PATTERN = np.array([0.0, 0.8, -1.1, 0.4, -0.3, 1.2, -0.9, 0.2, -0.5]) * 0.01


def _results(tmp_path: Path, until: str, p: float) -> Path:
    """9 runs per ordering at max, the difference chosen so Welch's p is ``p``."""
    base = 0.80 + PATTERN
    other = 0.80 + PATTERN[::-1] * 0.9

    def gap(shift: float) -> float:
        return welch(base, other + shift) - p

    shift = optimize.brentq(gap, 0.0, 0.05)
    out = tmp_path / until.split(":")[0].strip("{ ").replace(", ", "-")
    write(out, [run("case1", s, a) for s, a in enumerate(base)])
    write(out, [run("case2", s, a) for s, a in enumerate(other + shift)])
    (out / "sweep.yaml").write_text(SWEEP.replace("UNTIL", until))
    return out


def test_a_sequential_sweep_is_decided_at_its_last_look(tmp_path: Path) -> None:
    # p = 0.046: significant with n fixed in advance (one comparison: Holm is alpha), but not
    # at the last look of the design (0.043), whose earlier looks spent the rest of alpha
    out = _results(tmp_path, "verdict", 0.046)
    files = build_report([out], out / "report")
    text = "\n".join(files.findings)
    assert "Seeds per ordering were adaptive: 3 to 9 seeds" in text
    assert "not resolved, stopped at the maximum of 9 seeds" in text
    assert "against the look's level 0.043" in text
    # +0.7 points, inside the 1-point margin: what would settle it is equivalence
    assert "needs about 132 more seeds to show equivalence within ±1.0 points" in text
    md = files.markdown.read_text()
    assert "Scored runs per arm" in md
    assert "| 9 | 0–8 |" in md


def test_outside_the_margin_the_plan_is_to_detect_the_difference(tmp_path: Path) -> None:
    out = _results(tmp_path, "verdict, margin: 0.005", 0.046)
    text = "\n".join(build_report([out], out / "report").findings)
    assert "more seeds to detect the observed 0.7 points" in text


def test_a_precision_rule_is_decided_at_its_looks_too(tmp_path: Path) -> None:
    # stopping when the spread happens to be small inflates a fixed-n test's false positives
    out = _results(tmp_path, "{ci_halfwidth: 0.001}", 0.046)
    text = "\n".join(build_report([out], out / "report").findings)
    assert "until the interval of each difference is within ±0.1 points" in text
    assert "not resolved, stopped at the maximum of 9 seeds" in text
    assert "against the look's level 0.043" in text


def test_a_strong_effect_is_called_at_the_boundary(tmp_path: Path) -> None:
    out = _results(tmp_path, "verdict", 0.001)
    text = "\n".join(build_report([out], out / "report").findings)
    assert "conv-relu-bn is better than conv-bn-relu" in text
    assert "significant at the group-sequential boundary" in text


def test_another_baseline_than_the_designs_is_analysed_fixed_n(tmp_path: Path) -> None:
    out = _results(tmp_path, "verdict", 0.046)
    files = build_report([out], out / "report", baseline="case2")
    assert "analysed as fixed-n (Holm)" in files.markdown.read_text()
    assert any(
        "better than conv-relu-bn" in line or "worse than" in line for line in files.findings
    )

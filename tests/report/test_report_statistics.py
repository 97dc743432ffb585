"""Each statistics defect the report had, through the real ``bnorder report`` CLI on results
written in the real schema (``crafted.py``): every one of these failed on the old code."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from crafted import run, write

B, R, L = "conv-bn-relu", "conv-relu-bn", "conv-lrelu-bn"
Cli = Callable[..., tuple[int, str, str]]


def _report(cli: Cli, results: Path, *args: str) -> tuple[str, str]:
    code, out, err = cli("report", str(results), *args)
    assert code == 0, err
    assert "Traceback" not in err
    assert "RuntimeWarning" not in err
    return out, (results / "report" / "report.md").read_text()


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Quickstart-like: 2 archs x 3 orderings x 3 seeds, real-sized noise, a real effect."""
    rng = np.random.default_rng(3)
    runs = []
    for arch, base in (("cnn", 0.67), ("mlp", 0.82)):
        for ordering, shift in ((B, 0.0), (R, 0.05 if arch == "cnn" else -0.015), (L, 0.015)):
            for seed in range(3):
                acc = round(base + shift + rng.normal(0, 0.015), 4)
                runs.append(run(ordering, seed, acc, arch=arch))
    return write(tmp_path_factory.mktemp("noisy"), runs)


def test_tied_runs_are_not_called_significant(cli: Cli, tmp_path: Path) -> None:
    runs = [run(B, s, 0.8) for s in range(3)] + [run(R, s, 0.805) for s in range(3)]
    out, md = _report(cli, write(tmp_path, runs))
    (sentence,) = [line for line in out.splitlines() if "synthetic, cnn: conv-relu-bn" in line]
    assert "not resolved" in sentence  # the old report: "better ... p=2.5e-28 ... significant"
    assert "exact permutation p=0.1" in sentence
    assert "no spread in either group: exact permutation test" in sentence
    assert "e+13" not in md
    assert "e-28" not in md


def test_two_runs_never_claim_a_spread_difference(cli: Cli, tmp_path: Path) -> None:
    runs = [run(o, s, 0.8 + 0.01 * s * (i + 1)) for i, o in enumerate((B, R, L)) for s in range(2)]
    out, md = _report(cli, write(tmp_path, runs))
    assert "Brown–Forsythe p=0" not in md  # at n = 2 it always said p = 0
    assert (
        "spreads not compared: the Brown-Forsythe test needs >= 6 runs per ordering (has 2)" in out
    )
    assert "an ordering has < 2 runs" not in md


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", text)]


def test_findings_never_contradict_their_numbers(cli: Cli, noisy: Path) -> None:
    out, _ = _report(cli, noisy)
    per_point = [line for line in out.splitlines() if line.startswith("- synthetic, ")]
    comparisons = [line for line in per_point if " CI [" in line]
    assert len(comparisons) == 4
    for line in comparisons:
        diff = _numbers(line.split("(", 1)[1])[0]
        low, high = _numbers(line.split("CI [", 1)[1].split("]")[0])
        assert low <= diff <= high
        if "not resolved" in line:
            assert low <= 0 <= high  # "not significant" never beside an interval excluding 0
            detectable = _numbers(line.split("only differences of", 1)[1])[0]
            assert detectable > abs(diff)  # ...nor beside "could detect smaller"
            assert "needs about" in line or "needs more than" in line
        else:
            assert "significant at alpha=0.05" in line
            assert low > 0 or high < 0
        level = float(re.search(r"(\d+(?:\.\d)?)% CI", line).group(1))
        assert level > 95  # Holm: each interval at the level its comparison was decided at


def test_alpha_sets_every_level(cli: Cli, noisy: Path, tmp_path: Path) -> None:
    out, md = _report(cli, noisy, "--alpha", "0.1", "--out", str(noisy / "report"))
    assert "Student's t interval of the mean at 90%" in md
    assert "90% CI" in out  # the spreads' chi-square intervals
    assert "family-wise alpha=0.1" in md


def test_target_diff_plans_for_the_target(cli: Cli, noisy: Path) -> None:
    out, _ = _report(cli, noisy, "--target-diff", "0.05")
    unresolved = [line for line in out.splitlines() if "not resolved" in line]
    assert unresolved
    assert all("the target 5.0 points needs" in line for line in unresolved if "these runs" in line)


def test_generalisation_claims_no_sign_change_of_noise_and_kendall_needs_orderings(
    cli: Cli, noisy: Path
) -> None:
    _, md = _report(cli, noisy)
    assert "changes sign" not in md
    assert "is not resolved across archs" in md
    assert "Kendall" not in md  # 3 orderings: the smallest possible p is 0.33


def test_an_unfinished_sweep_reports_without_crashing(cli: Cli, tmp_path: Path) -> None:
    runs = [run(o, s, 0.7 + 0.01 * s) for o in (B, R) for s in range(3)]
    runs += [run(R, s, 0.8 + 0.01 * s, arch="mlp") for s in range(2)]  # mlp: no baseline yet
    runs += [run(L, 0, 0.75)]  # one run so far
    out, _md = _report(cli, write(tmp_path, runs))
    assert "No conv-bn-relu runs at synthetic, mlp: its orderings are not compared there." in out
    assert "conv-lrelu-bn vs conv-bn-relu: not tested (fewer than 2 runs in a group)" in out


def test_lower_loss_is_better(cli: Cli, tmp_path: Path) -> None:
    runs = [run(B, s, 0.7, loss=1.0 + 0.01 * s) for s in range(4)]
    runs += [run(R, s, 0.7, loss=0.5 + 0.01 * s) for s in range(4)]
    out, md = _report(cli, write(tmp_path, runs), "--metric", "final_test_loss")
    assert "conv-relu-bn is better than conv-bn-relu (-0.5" in out  # not "worse"
    assert "lower is better" in md


def test_infinite_losses_take_the_rank_test(cli: Cli, tmp_path: Path) -> None:
    runs = [run(B, s, 0.7, loss=1.0 + 0.01 * s) for s in range(3)]
    runs += [run(R, 0, 0.1, loss=math.inf, status="diverged")]
    runs += [run(R, s, 0.7, loss=0.9 + 0.01 * s) for s in (1, 2)]
    out, md = _report(cli, write(tmp_path, runs), "--metric", "final_test_loss")
    assert "infinite values: Mann-Whitney test" in out
    assert "nan" not in md.lower().replace("mann", "")


def test_equivalence_is_claimed_when_the_runs_show_it(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    runs = [run(o, s, round(0.8 + rng.normal(0, 0.002), 4)) for o in (B, R) for s in range(6)]
    out, _ = _report(cli, write(tmp_path, runs), "--margin", "0.01")
    assert "conv-relu-bn and conv-bn-relu are equivalent within ±1.0 points" in out


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--alpha", "1.5", "--alpha: must be between 0 and 0.5, got 1.5"),
        ("--margin", "0", "--margin: must be positive (metric units), got 0.0"),
        ("--target-diff", "-1", "--target-diff: must be positive (metric units), got -1.0"),
    ],
)
def test_bad_statistics_options_are_one_line_errors(
    cli: Cli, noisy: Path, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    code, _out, err = cli("report", str(noisy), flag, value, "--out", str(tmp_path / "r"))
    assert code == 2
    assert err.strip() == f"bnorder report: error: {message}"
    assert not (tmp_path / "r").exists()

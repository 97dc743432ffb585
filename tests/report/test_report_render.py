"""``bnorder report`` on real results (synthetic data, trained for real) and findings on frames
with planted effects."""

from __future__ import annotations

import base64
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnorder import TrialConfig, train_trial, write_result
from bnorder.analysis import compare, scored
from bnorder.report.findings import comparison_findings
from bnorder.report.render import build_report
from bnorder.report.wording import units_for

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results")
    base = TrialConfig(dataset="synthetic", depth=1, width=8, epochs=2, device="cpu", probes=True)
    for arch in ("cnn", "mlp"):
        for ordering in ("case1", "case2", "case3"):
            for seed in range(3):
                write_result(
                    out, train_trial(base.replace(arch=arch, ordering=ordering, seed=seed))
                )
    return out


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")
        self.tables += tag == "table"


def test_report_renders_with_embedded_images(results: Path, tmp_path: Path) -> None:
    files = build_report([results], tmp_path / "report", baseline="case1")
    assert files.figures
    for png in files.figures:
        assert png.read_bytes().startswith(PNG)
    parser = _Images()
    parser.feed(files.html.read_text())
    assert len(parser.sources) == len(files.figures)
    for src in parser.sources:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]).startswith(PNG)
    assert parser.tables >= 4
    md = files.markdown.read_text()
    for png in files.figures:
        assert f"]({png.name})" in md
    assert "## Verdict across settings" in md
    assert "## Findings per point" in md
    assert "## How many runs" in md


def test_seed_table_in_report_matches_groupby(results: Path, tmp_path: Path) -> None:
    md = build_report([results], tmp_path / "report").markdown.read_text()
    md = md.split("## Per-run results")[1].split("\n## ")[0]
    trials = pd.read_parquet(results / "trials.parquet")
    for (arch, ordering), group in trials.groupby(["arch", "ordering"]):
        mean = 100 * group.final_test_acc.mean()
        std = 100 * group.final_test_acc.std(ddof=0)
        row = next(line for line in md.splitlines() if f" · {arch} | {ordering} |" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[-2]) == pytest.approx(mean, abs=0.01)
        assert float(cells[-1]) == pytest.approx(std, abs=0.01)


def test_every_comparison_gets_a_sentence(results: Path, tmp_path: Path) -> None:
    files = build_report([results], tmp_path / "report", baseline="conv-bn-relu")
    per_point = [f for f in files.findings if f.startswith("synthetic, ")]
    sentences = [f for f in per_point if "conv-bn-relu" in f and "sd:" not in f]
    assert len([f for f in sentences if "probe" not in f and "at the last epoch" not in f]) == 4
    verdicts = ("not resolved", "significant at", "equivalent within", "not tested")
    assert all(any(v in f for v in verdicts) for f in sentences if "last epoch" not in f)


def _frame(effect: float, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for ordering, shift in (("conv-bn-relu", 0.0), ("conv-relu-bn", effect)):
        for s in range(n):
            acc = 0.80 + shift + rng.normal(0, 0.01)
            rows.append(
                {
                    "dataset": "d",
                    "arch": "cnn",
                    "ordering": ordering,
                    "seed": s,
                    "phase": "grid",
                    "status": "ok",
                    "test_acc_at_best_val": acc,
                    "final_test_acc": acc,
                }
            )
    return pd.DataFrame(rows)


def test_planted_difference_is_stated_as_significant() -> None:
    table = compare(scored(_frame(0.03, 10)), baseline="conv-bn-relu", by=["dataset", "arch"])
    (sentence,) = comparison_findings(table, ["dataset", "arch"], units_for("acc"))
    assert sentence.startswith(
        "d, cnn: conv-relu-bn is better than conv-bn-relu (+2.5 points, 95% CI"
    )
    assert "significant at alpha=0.05" in sentence


def test_null_result_says_what_n_could_detect() -> None:
    table = compare(scored(_frame(0.0, 5)), baseline="conv-bn-relu", by=["dataset", "arch"])
    (sentence,) = comparison_findings(table, ["dataset", "arch"], units_for("acc"))
    assert "conv-relu-bn vs conv-bn-relu: not resolved" in sentence
    assert "these runs detect (80% power) only differences of" in sentence
    assert "per ordering" in sentence


def test_report_cli_errors(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, _, err = cli("report", str(tmp_path / "none"))
    assert code == 2
    assert "no results found" in err
    assert not (tmp_path / "none").exists()

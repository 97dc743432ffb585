"""``build_report``: results directories in, ``report.md``, a self-contained ``report.html`` and
the PNGs out. Every number comes from ``bnorder.analysis``; every sentence from ``findings``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bnorder import analysis
from bnorder.ordering import parse_ordering
from bnorder.report import figures
from bnorder.report.document import Document, Figure, Heading, Paragraph, Table
from bnorder.report.findings import (
    comparison_findings,
    generalisation_findings,
    probe_findings,
    stability_findings,
)
from bnorder.results import load
from bnorder.results.store import write_text

__all__ = ["ReportFiles", "build_report"]

# Configuration columns a curve needs to be drawn and grouped.
_CURVE_KEYS = ["trial_id", "dataset", "arch", "ordering", "depth", "width", "lr", "seed", "phase"]


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]
    findings: list[str]


def _bullets(lines: list[str], empty: str) -> Paragraph:
    return Paragraph("\n".join(f"- {line}" for line in lines) if lines else empty)


def _figures(scored: pd.DataFrame, curves: pd.DataFrame, metric: str, out: Path) -> list[Figure]:
    made = [
        (
            "learning_curves.png",
            figures.learning_curves(curves),
            "Validation (solid) and test (dashed) accuracy per epoch, mean over seeds with a band.",
        ),
        (
            "final_accuracy.png",
            figures.final_accuracy(scored, metric=metric),
            f"{metric} per ordering: every run as a point, with its box plot.",
        ),
        (
            "lr_sensitivity.png",
            figures.lr_sensitivity(scored, metric=metric),
            f"{metric} against the learning rate, per ordering.",
        ),
        (
            "depth.png",
            figures.depth_curve(scored, metric=metric),
            f"{metric} against depth, per ordering.",
        ),
        (
            "probes.png",
            figures.probe_figure(curves),
            "Probes per epoch (block means): dead channels, norm-input skewness and zeros, "
            "gradient norm.",
        ),
        (
            "probe_blocks_skew.png",
            figures.probe_blocks_figure(curves, "norm_in_skew"),
            "Norm-input skewness per block at the last epoch.",
        ),
    ]
    return [
        Figure(figures.save_png(fig, out / name), caption)
        for name, fig, caption in made
        if fig is not None
    ]


def build_report(
    results: list[str | Path],
    out: str | Path,
    *,
    baseline: str = "conv-bn-relu",
    alpha: float = 0.05,
    metric: str | None = None,
) -> ReportFiles:
    """Analyse one or more results directories and write the report into ``out``.

    Args:
        results: results directories (or globs), as for :func:`bnorder.load`.
        out: the report folder (created).
        baseline: the ordering every other is compared with (an alias such as ``case1`` works).
        alpha: the significance level, after Holm's correction.
        metric: the score column; default test accuracy at the best-validation epoch, or the
            final test accuracy where there is no validation split.

    Returns:
        The written files and the findings (sentences).
    """
    baseline = parse_ordering(baseline, field="--baseline").canonical
    res = load(*results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scored = analysis.scored(res.trials, metric)
    metric_name = scored.attrs.get("metric", "score")
    keys = analysis.point_columns(scored)
    curves = res.epochs.merge(scored[[c for c in _CURVE_KEYS if c in scored]], on="trial_id")

    doc = Document("bnorder report")
    cov = analysis.coverage(res.trials)
    doc.add(
        Paragraph(
            f"Results: {', '.join(map(str, results))}. {len(res.trials)} trials, "
            f"{len(scored)} scored (phases grid/evaluate, status ok or diverged). "
            f"Score: {metric_name}. Baseline: {baseline}. Significance: alpha={alpha} after "
            "Holm's correction across comparisons."
        )
    )
    if not cov.complete:
        doc.add(Heading("Missing or failed"), Table(cov.counts, "Trials per phase and arm"))
        if len(cov.failed):
            doc.add(Table(cov.failed, "Failed trials and their errors"))

    comparison = analysis.compare(scored, baseline=baseline, by=keys, alpha=alpha)
    stability = analysis.stability(scored, by=keys)
    findings = comparison_findings(comparison, keys, alpha)
    doc.add(
        Heading("Findings"), _bullets(findings, "No ordering could be compared with the baseline.")
    )
    stab = stability_findings(stability, keys, alpha)
    doc.add(Heading("Stability", 3), _bullets(stab, "Not enough runs to compare spreads."))
    if scored.arch.nunique() > 1:
        gen = analysis.generalisation(scored, across="arch", baseline=baseline)
        doc.add(
            Heading("Generalisation across architectures", 3),
            _bullets(generalisation_findings(gen.effects, gen.agreement, "arch"), "–"),
        )
    probes = probe_findings(curves, baseline, [k for k in keys if k in curves], alpha)
    doc.add(
        Heading("Why: probes", 3),
        _bullets(probes, "No probe difference is significant (or the sweep ran without probes)."),
    )

    doc.add(
        Heading("Per-run results, in the seed notebook's format"),
        Table(
            analysis.seed_table(scored),
            "Final test accuracy (%) per run, mean and std (ddof 0, as the seed)",
        ),
    )
    summary = analysis.summary(scored, by=keys)
    doc.add(
        Heading("Summary"),
        Table(
            summary[
                [
                    *keys,
                    "ordering",
                    "n",
                    "mean",
                    "std",
                    "iqm",
                    "t_ci_low",
                    "t_ci_high",
                    "min",
                    "max",
                ]
            ],
            f"{metric_name}: mean, std, interquartile mean, 95% t interval of the mean",
        ),
    )
    doc.add(
        Heading("Comparisons with the baseline"),
        Table(
            comparison[
                [
                    *keys,
                    "ordering",
                    "n",
                    "n_base",
                    "diff",
                    "welch_ci_low",
                    "welch_ci_high",
                    "welch_p_holm",
                    "mannwhitney_p_holm",
                    "cohens_d",
                    "cliffs_delta",
                    "prob_improvement",
                    "min_detectable_diff",
                    "significant",
                ]
            ],
            "diff = ordering − baseline; 95% Welch interval; p-values Holm-adjusted",
        ),
    )
    doc.add(
        Table(
            stability[
                [*keys, "ordering", "n", "std", "std_chi2_low", "std_chi2_high", "brown_forsythe_p"]
            ],
            "Run-to-run spread: std with its 95% interval",
        )
    )

    phases = set(scored.phase.dropna())
    if {"grid", "evaluate"} <= phases:  # a fixed-lr grid and a tuned sweep, loaded together
        fixed, tuned = scored[scored.phase == "grid"], scored[scored.phase == "evaluate"]
        doc.add(
            Heading("Fixed learning rate vs per-ordering tuning"),
            Table(
                analysis.tuned_vs_fixed(fixed, tuned),
                "Rank of each ordering under each fixed setting and after tuning (1 = best)",
            ),
        )

    figs = _figures(scored, curves, metric_name, out)
    doc.add(Heading("Figures"), *figs)
    md, html_path = out / "report.md", out / "report.html"
    write_text(md, doc.markdown(out))
    write_text(html_path, doc.html())
    return ReportFiles(md, html_path, [f.path for f in figs], findings + stab + probes)

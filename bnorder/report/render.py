"""``build_report``: results directories in, ``report.md``, a self-contained ``report.html`` and
the PNGs out. Every number comes from ``bnorder.analysis``; every sentence from ``findings``
and ``verdicts``; every table from ``display``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bnorder import analysis
from bnorder.analysis.validity import MIN_RUNS_SPREAD_TEST
from bnorder.errors import ConfigError
from bnorder.ordering import parse_ordering
from bnorder.report import display, figures, verdict_figures
from bnorder.report.adaptive import design_of, runs_per_arm
from bnorder.report.document import Document, Figure, Heading, Paragraph, Table
from bnorder.report.findings import (
    comparison_findings,
    generalisation_findings,
    probe_findings,
    stability_findings,
)
from bnorder.report.verdicts import across_findings
from bnorder.report.wording import Units, level_text, units_for
from bnorder.results import load
from bnorder.results.store import write_text

__all__ = ["ReportFiles", "build_report", "check_options"]

# Configuration columns a curve needs to be drawn and grouped.
_CURVE_KEYS = ["trial_id", "dataset", "arch", "ordering", "depth", "width", "lr", "seed", "phase"]


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]
    findings: list[str]


def check_options(alpha: float, margin: float, target_diff: float | None) -> None:
    """One-line errors for statistics options that make no sense, before anything is read."""
    if not 0 < alpha < 0.5:
        raise ConfigError("--alpha", alpha, "must be between 0 and 0.5, got")
    if not margin > 0:
        raise ConfigError("--margin", margin, "must be positive (metric units), got")
    if target_diff is not None and not target_diff > 0:
        raise ConfigError("--target-diff", target_diff, "must be positive (metric units), got")


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
    return _saved(made, out)


def _saved(made: list[tuple[str, object, str]], out: Path) -> list[Figure]:
    return [
        Figure(figures.save_png(fig, out / name), caption)
        for name, fig, caption in made
        if fig is not None
    ]


def _methods(alpha: float, margin: float, units: Units, direction: str) -> Paragraph:
    better = "higher" if direction == "higher" else "lower"
    return Paragraph(
        f"How to read it: {better} is better. Differences are contender minus baseline; "
        f"p-values are Holm-adjusted (family-wise alpha={alpha:g}) and every interval is at "
        "the level its comparison was decided at (so it excludes 0 exactly when the "
        "difference is significant). Welch's t test where both orderings' runs vary, the "
        "exact permutation test where they tie. 'Equivalent' means a TOST within "
        f"±{units.size(margin)} (--margin); 'not resolved' states what the runs could detect "
        "and how many runs would settle it (80% power). Each statistic is shown only at the "
        "n where simulation showed it keeps its promise (python -m bnorder.analysis."
        "calibration)."
    )


def build_report(
    results: list[str | Path],
    out: str | Path,
    *,
    baseline: str = "conv-bn-relu",
    alpha: float = 0.05,
    metric: str | None = None,
    margin: float = analysis.DEFAULT_MARGIN,
    target_diff: float | None = None,
) -> ReportFiles:
    """Analyse one or more results directories and write the report into ``out``.

    Args:
        results: results directories (or globs), as for :func:`bnorder.load`.
        out: the report folder (created).
        baseline: the ordering every other is compared with (an alias such as ``case1`` works).
        alpha: the family-wise significance level (Holm); intervals follow it.
        metric: the score column; default test accuracy at the best-validation epoch, or the
            final test accuracy where there is no validation split.
        margin: the equivalence margin, in the metric's units (0.01 = one accuracy point).
        target_diff: the difference "runs needed" plans for; default the observed one.

    Returns:
        The written files and the findings (sentences).

    Raises:
        ConfigError: a bad option (alpha, margin, target, baseline, metric).
    """
    check_options(alpha, margin, target_diff)
    baseline = parse_ordering(baseline, field="--baseline").canonical
    res = load(*results)
    scored = analysis.scored(res.trials, metric)
    metric_name = scored.attrs.get("metric", "score")
    direction = analysis.direction(scored)
    units = units_for(metric_name)
    keys = analysis.point_columns(scored)
    curves = res.epochs.merge(scored[[c for c in _CURVE_KEYS if c in scored]], on="trial_id")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = {"alpha": alpha, "margin": margin, "target_diff": target_diff}

    doc = Document("bnorder report")
    cov = analysis.coverage(res.trials)
    doc.add(
        Paragraph(
            f"Results: {', '.join(map(str, results))}. {len(res.trials)} trials, "
            f"{len(scored)} scored (phases grid/evaluate, status ok or diverged). "
            f"Score: {metric_name}. Baseline: {baseline}."
        ),
        _methods(alpha, margin, units, direction),
    )
    design = design_of(results)
    rule = design.rule.rule if design.rule and design.rule.baseline == baseline else None
    if design.rule is not None:
        doc.add(
            Heading("Seeds per ordering"),
            Paragraph(
                design.note
                + (
                    ""
                    if rule
                    else f" The design compared with {design.rule.baseline}, not {baseline}: "
                    "comparisons below are analysed as fixed-n (Holm)."
                )
            ),
            Table(runs_per_arm(scored, design.phase or ""), "Scored runs per arm"),
        )
    elif design.note:
        doc.add(Paragraph(design.note))
    if not cov.complete:
        doc.add(Heading("Missing or failed"), Table(cov.counts, "Trials per phase and arm"))
        if len(cov.failed):
            doc.add(Table(cov.failed, "Failed trials and their errors"))

    verdict = analysis.across_settings(scored, baseline=baseline, **stats)
    across = across_findings(verdict, units)
    if design.rule is not None and across:
        across.insert(
            0,
            "Across settings, the tests below treat each point's runs as a fixed sample; "
            "seeds were added per point by the stopping rule, which these tests were not "
            "simulated under: read them as descriptive, and the per-point verdicts as the "
            "design's.",
        )
    across_figs = _saved(
        [
            (
                "critical_difference.png",
                verdict_figures.cd_diagram(verdict),
                "Critical-difference diagram: mean rank over the points (Demšar 2006).",
            ),
            (
                "aggregates.png",
                verdict_figures.aggregate_intervals(verdict),
                "IQM and probability of improvement with stratified-bootstrap intervals.",
            ),
            (
                "performance_profiles.png",
                verdict_figures.performance_profiles(scored, verdict),
                "Performance profiles: the share of runs scoring better than each threshold.",
            ),
        ],
        out,
    )
    doc.add(
        Heading("Verdict across settings"),
        _bullets(across, "No ordering could be compared across settings."),
        *across_figs[:1],
        Table(display.across_orderings_table(verdict, units), "Orderings over the points"),
        Table(
            display.across_effects_table(verdict, units),
            "Average difference from the baseline over the points",
        ),
        *across_figs[1:],
    )

    comparison = analysis.compare(scored, baseline=baseline, by=keys, rule=rule, **stats)
    stability = analysis.stability(scored, by=keys, level=1 - alpha)
    findings = comparison_findings(comparison, keys, units, targeted=target_diff is not None)
    if comparison.attrs["missing"]:
        places = "; ".join(", ".join(map(str, k.values())) for k in comparison.attrs["missing"])
        findings.append(f"No {baseline} runs at {places}: its orderings are not compared there.")
    doc.add(
        Heading("Findings per point"),
        _bullets(findings, "No ordering could be compared with the baseline."),
    )
    stab = stability_findings(stability, keys, units)
    doc.add(Heading("Stability", 3), _bullets(stab, "Not enough runs to compare spreads."))
    general: list[str] = []
    if scored.arch.nunique() > 1:
        gen = analysis.generalisation(scored, across="arch", baseline=baseline, alpha=alpha)
        general = generalisation_findings(gen.effects, gen.agreement, "arch")
        doc.add(Heading("Generalisation across architectures", 3), _bullets(general, "–"))
    probes = probe_findings(curves, baseline, [k for k in keys if k in curves], alpha)
    doc.add(
        Heading("Why: probes", 3),
        _bullets(probes, "No probe difference is significant (or the sweep ran without probes)."),
    )

    level = level_text(alpha)
    seed_table = analysis.seed_table(scored)
    seed_keys = list(seed_table.columns[: list(seed_table.columns).index("ordering")])
    doc.add(
        Heading("How many runs"),
        Table(
            display.runs_table(comparison, keys, units),
            "What each comparison could detect with 80% power, and the runs per ordering that "
            "would detect the target (the observed difference unless --target-diff), at the "
            "level the comparison was tested at; planned with the pooled SD observed",
        ),
        Heading("Per-run results, in the seed notebook's format"),
        Table(
            display.seed_display(seed_table, seed_keys),
            "Final test accuracy (%) per run, mean and Std (%) with ddof 0, as the seed printed",
        ),
        Heading("Summary"),
        Table(
            display.summary_table(analysis.summary(scored, by=keys, level=1 - alpha), keys, units),
            f"{metric_name}: sd with ddof 1; Student's t interval of the mean at {level}",
        ),
        Heading("Comparisons with the baseline"),
        Table(
            display.comparison_table(comparison, keys, units),
            "diff = ordering − baseline; interval at the level Holm decided it at; p-values "
            "Holm-adjusted over this table",
        ),
        Table(display.effect_size_table(comparison, keys), "Effect sizes (signed like diff)"),
        Table(
            display.spread_table(stability, keys, units),
            f"Run-to-run spread: sd with its chi-square interval; the Brown–Forsythe test needs "
            f">= {MIN_RUNS_SPREAD_TEST} runs per ordering",
        ),
    )

    phases = set(scored.phase.dropna()) if "phase" in scored else set()
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
    all_figs = [f.path for f in across_figs + figs]
    design_line = [design.note] if design.note else []
    return ReportFiles(
        md, html_path, all_figs, design_line + across + findings + stab + general + probes
    )

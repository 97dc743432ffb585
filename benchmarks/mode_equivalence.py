"""Do two execution modes reach the same accuracy? Before a faster mode (channels_last, bf16,
compile, fused arrays) becomes a default, its runs must be shown equivalent to the reference
mode's within a stated margin, on real data.

Give it two results folders of the same sweep run in the two modes (same seeds). Runs are
paired by everything but the mode fields (same arch, ordering, point and seed: same init and
data order), and a paired TOST (statsmodels ``ttost_paired``) tests that the mean per-seed
difference lies within ``±margin``; Holm over the orderings compared.

    uv run python benchmarks/mode_equivalence.py results/nchw results/nhwc --margin 0.01
"""

from __future__ import annotations

import argparse

import pandas as pd
from statsmodels.stats.weightstats import ttost_paired

import bnorder
from bnorder.analysis import holm, scored

MODE_FIELDS = ["precision", "channels_last", "compile", "execution"]
KEYS = ["dataset", "arch", "ordering", "depth", "width", "lr", "epochs", "schedule", "seed"]


def paired(reference: str, other: str) -> pd.DataFrame:
    """One row per (arch, ordering, seed) present in both folders, with both scores."""
    a, b = (scored(bnorder.load(p).trials) for p in (reference, other))
    cols = [*KEYS, "score", *[c for c in MODE_FIELDS if c in a.columns]]
    return a[cols].merge(b[cols], on=KEYS, suffixes=("_ref", "_new"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("reference", help="results folder of the reference mode")
    p.add_argument("other", help="results folder of the mode to check")
    p.add_argument("--margin", type=float, default=0.01, help="equivalence margin (0.01: 1 point)")
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()

    runs = paired(args.reference, args.other)
    modes = [
        c.removesuffix("_ref") for c in runs.columns if c.endswith("_ref") and c != "score_ref"
    ]
    differs = [m for m in modes if (runs[f"{m}_ref"] != runs[f"{m}_new"]).any()]
    print(f"{len(runs)} paired runs; modes that differ: {', '.join(differs) or 'none'}")
    same = runs.groupby("arch").apply(lambda g: bool((g.score_new == g.score_ref).all()))
    if same.any():  # e.g. channels_last in an MLP: nothing to test
        print(f"identical in both modes (the mode does not apply): {', '.join(same[same].index)}")
        runs = runs[~runs.arch.isin(same[same].index)]
    rows = []
    for (arch, ordering), g in runs.groupby(["arch", "ordering"], sort=False):
        d = (g.score_new - g.score_ref) * 100
        p_tost = ttost_paired(g.score_new.values, g.score_ref.values, -args.margin, args.margin)[0]
        rows.append(
            {
                "arch": arch,
                "ordering": ordering,
                "n": len(g),
                "ref": g.score_ref.mean() * 100,
                "new": g.score_new.mean() * 100,
                "mean diff": d.mean(),
                "sd diff": d.std(ddof=1),
                "tost p": p_tost,
            }
        )
    table = pd.DataFrame(rows)
    table["tost p (Holm)"] = holm(table["tost p"].to_numpy())
    table["equivalent"] = table["tost p (Holm)"] < args.alpha
    print(
        f"accuracy in points; equivalence within ±{args.margin * 100:g} points, alpha {args.alpha}"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    pooled = (runs.score_new - runs.score_ref) * 100
    p_all = ttost_paired(runs.score_new.values, runs.score_ref.values, -args.margin, args.margin)[0]
    print(
        f"all pairs: mean diff {pooled.mean():+.2f} points (sd {pooled.std(ddof=1):.2f}), "
        f"paired TOST p={p_all:.3g}: {'equivalent' if p_all < args.alpha else 'not shown'}"
    )


if __name__ == "__main__":
    main()

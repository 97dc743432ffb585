"""Compaction: finished trials' part files merged into a few files, so that thousands of trials
load in well under a second (one file per trial costs ~20 KB and ~3 ms to read, whatever its
rows). Each compaction builds a new generation and swaps it in at once (layout.py): a reader
never sees a row twice or misses one, and a compaction killed at any instant loses nothing.

The sweep's recorder calls :func:`compact` after every trial (nothing happens until ``at`` parts
have accumulated) and with ``final=True`` when a phase ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bnorder.results.layout import (
    EPOCHS,
    TRIALS,
    can_exchange,
    clean,
    current,
    generations,
    locked,
    new_generation,
    number,
    part_name,
    stamp,
    swap_in,
    trial_of,
    write_parquet,
)

__all__ = [
    "COMPACT_AT",
    "Compaction",
    "compact",
    "holder",
    "ids_in",
    "recorded_in",
    "replace",
    "trial_ids",
]

# finished parts that trigger a periodic compaction: 64 one-trial files read in ~0.2 s, and a
# compaction then merges ~1 MB, a pause the sweep driver does not notice
COMPACT_AT = 64
# compacted files of one size tier merged into one of the next: each tier keeps at most 3 files
FANOUT = 4
# files grown to 64 * 4**2 = 1,024 trials are merged no more (~14 MB of epochs at 20 epochs with
# probes; past that, fewer files read no faster): every compaction's work is bounded, and a row
# is rewritten at most 3 times, then once more by a phase's end: O(1) per trial at any size
TOP_TIER = 2
# retired generations are removed this long after the swap, not at once: a reader that began
# listing one just before the swap (plain pandas does, through the link) would otherwise miss
# the files removed under it. A listing takes milliseconds; bnorder's readers also retry.
GRACE_S = 0.5
# sorted by trial_id, row groups this size let one trial's rows be read without the rest
ROW_GROUP = 8192

_IDS: dict[tuple[int, ...], frozenset[str]] = {}


@dataclass(frozen=True)
class Compaction:
    """What one compaction of one table did."""

    table: str
    merged: int  # data files merged (parts and compacted files)
    written: int  # compacted files written
    files: int  # data files in the table afterwards
    seconds: float


def compact(out: str | Path, *, final: bool = False, at: int = COMPACT_AT) -> list[Compaction]:
    """Merge finished trials' part files of ``out`` into compacted files, once ``at`` of them
    have accumulated. ``final`` (a phase's end): all of them, with every compacted file under
    1,024 trials, into one file per table; retired generations are removed (after GRACE_S).

    Finished trials are those with a ``trials.parquet`` row: the epochs of running trials stay
    parts. A plain folder of an older version is upgraded on the way (layout.py).

    Example:
        >>> compact("results/quickstart", final=True)  # doctest: +SKIP

    Returns:
        One :class:`Compaction` per table compacted; empty when none was due.
    """
    out = Path(out).expanduser()
    done = [
        c
        for table in (TRIALS, EPOCHS)
        if (c := _compact_table(out, table, final=final, at=at)) is not None
    ]
    if final:
        for table in (TRIALS, EPOCHS):
            _settle(out, table)
    return done


def _compact_table(out: Path, table: str, *, final: bool, at: int) -> Compaction | None:
    started = time.perf_counter()
    base = current(out, table)
    if base is None or (number(base) == 0 and not can_exchange()):
        return None
    names = os.listdir(base)
    parts = {tid: n for n in names if (tid := trial_of(n)) is not None}
    if not final and len(parts) < at:
        return None  # the cheap, common case: no trial's rows are read
    if table == EPOCHS:  # only finished trials' epochs: a running trial still rewrites its part
        done = trial_ids(current(out, TRIALS))
        parts = {tid: n for tid, n in parts.items() if tid in done}
    files = {n: len(ids_in(base / n)) for n in names if _compacted(n)}
    groups = plan(sorted(parts.values()), files, final=final, at=at)
    if not groups:
        return None
    read = {n: stamp(base / n) for g in groups for n in g if n not in files}  # before reading
    gen = new_generation(out, table)
    try:
        for k, group in enumerate(groups):
            name = f"c{number(gen):06d}-{k:02d}.parquet"
            write_parquet(gen, name, _merge(base, group), row_group_size=ROW_GROUP)
        dropped = {n for g in groups for n in g}
        with locked(out, exclusive=True):
            if not swap_in(out, table, base, gen, dropped=dropped, read=read):
                return None  # a writer replaced a part, or another compaction went first
            clean(out, table, grace_s=GRACE_S)
    finally:
        if current(out, table) != gen:
            shutil.rmtree(gen, ignore_errors=True)
    kept = [n for n in os.listdir(gen) if n.endswith(".parquet") and not n.startswith(".")]
    return Compaction(table, len(dropped), len(groups), len(kept), time.perf_counter() - started)


def _settle(out: Path, table: str) -> None:
    """Remove every retired generation, waiting out the grace period of the newest (at most
    GRACE_S): a phase ends with one generation per table."""
    folder, root = current(out, table), generations(out, table)
    if folder is None or not root.is_dir():
        return
    ages = []
    for entry in os.scandir(root):
        with contextlib.suppress(FileNotFoundError):  # removed by another process meanwhile
            if entry.name != folder.name:
                ages.append(time.time() - entry.stat().st_mtime)
    if ages:
        time.sleep(max(0.0, GRACE_S - min(ages)))
        with locked(out, exclusive=True):
            clean(out, table, grace_s=GRACE_S)


def plan(parts: list[str], files: dict[str, int], *, final: bool, at: int) -> list[list[str]]:
    """The groups of data files to merge, one new file each. ``files``: compacted file -> its
    trial count. Periodic: the parts (``at`` or more) as one new file, then tiers below
    TOP_TIER merged FANOUT files at a time; ``final``: the parts and every file below TOP_TIER
    into one."""
    if final:
        small = sorted(n for n, trials in files.items() if _tier(trials, at) < TOP_TIER)
        return [small + parts] if len(small) + len(parts) > 1 else []
    if len(parts) < at:
        return []
    runs = [(n, [name]) for name, n in sorted(files.items())] + [(len(parts), parts)]
    while True:
        tiers: dict[int, list[int]] = {}
        for i, (n, _) in enumerate(runs):
            tiers.setdefault(_tier(n, at), []).append(i)
        full = sorted(t for t, ms in tiers.items() if len(ms) >= FANOUT and t < TOP_TIER)
        if not full:
            break
        merge = set(tiers[full[0]])
        merged = (sum(runs[i][0] for i in merge), [n for i in sorted(merge) for n in runs[i][1]])
        runs = [r for i, r in enumerate(runs) if i not in merge] + [merged]
    return [names for _, names in runs if len(names) > 1 or names[0] not in files]


def _tier(trials: int, at: int) -> int:
    tier = 0
    while trials >= at * FANOUT ** (tier + 1):
        tier += 1
    return tier


def _merge(base: Path, names: list[str]) -> pa.Table:
    """The rows of ``names`` as one table sorted by trial (and epoch). A trial_id in two of them
    (never, by the layout's rule) keeps the rows of the later one: parts come last."""
    tables = [pq.ParquetFile(base / name).read() for name in names]  # no dataset: ~5x faster
    ids = [pc.unique(t["trial_id"]).to_pylist() for t in tables]
    last = {tid: i for i, these in enumerate(ids) for tid in these}
    if len(last) < sum(map(len, ids)):
        tables = [
            t.filter(pc.is_in(t["trial_id"], pa.array([x for x in ids[i] if last[x] == i])))
            for i, t in enumerate(tables)
        ]
    # columns added since an old part was written: nulls there; int64 and float64: float64
    merged = pa.concat_tables(tables, promote_options="permissive")
    keys = [("trial_id", "ascending")]
    if "epoch" in merged.column_names:
        keys.append(("epoch", "ascending"))
    return merged.sort_by(keys)


def _compacted(name: str) -> bool:
    return name.startswith("c") and name.endswith(".parquet")


def ids_in(path: Path) -> frozenset[str]:
    """The trial_ids of a compacted file, read once per process (such a file never changes)."""
    key = stamp(path)
    ids = _IDS.get(key)
    if ids is None:
        column = pq.ParquetFile(path).read(columns=["trial_id"])["trial_id"]
        ids = frozenset(pc.unique(column).to_pylist())
        if len(_IDS) > 256:
            _IDS.clear()
        _IDS[key] = ids
    return ids


def holder(folder: Path, trial_id: str) -> str | None:
    """The data file of ``folder`` that holds ``trial_id``'s rows, or None: a stat per file and
    set look-ups, cheap enough to ask once per trial of a 5,000-trial sweep."""
    if (folder / part_name(trial_id)).exists():
        return part_name(trial_id)
    for name in sorted(os.listdir(folder)):
        if _compacted(name) and trial_id in ids_in(folder / name):
            return name
    return None


def trial_ids(folder: Path | None) -> set[str]:
    """Every trial_id with rows in ``folder`` (a table's current folder)."""
    if folder is None:
        return set()
    names = os.listdir(folder)
    found = {tid for n in names if (tid := trial_of(n)) is not None}
    for name in names:
        if _compacted(name):
            found |= ids_in(folder / name)
    return found


def recorded_in(out: Path, trial_id: str) -> bool:
    """Whether ``trial_id`` has a trials row in ``out`` (as a part or compacted)."""
    folder = current(out, TRIALS)
    return folder is not None and holder(folder, trial_id) is not None


def replace(out: Path, table: str, trial_id: str, rows: pa.Table) -> bool:
    """New rows for a trial whose old ones are in a compacted file: that file rewritten without
    them and the new part, swapped in together. Hold ``locked(out, exclusive=True)``. False, and
    nothing done, when no compacted file holds ``trial_id`` (write a plain part then)."""
    base = current(out, table)
    name = holder(base, trial_id) if base is not None else None
    if base is None or name is None or not _compacted(name):
        return False
    gen = new_generation(out, table)
    try:
        rest = pq.ParquetFile(base / name).read()
        rest = rest.filter(pc.not_equal(rest["trial_id"], trial_id))
        if rest.num_rows:
            write_parquet(gen, f"c{number(gen):06d}-00.parquet", rest, row_group_size=ROW_GROUP)
        write_parquet(gen, part_name(trial_id), rows)
        if not swap_in(out, table, base, gen, dropped={name}, read={}):
            raise RuntimeError(f"{out / table} changed while locked")  # the lock is not held
        with contextlib.suppress(OSError):
            clean(out, table, grace_s=GRACE_S)
    finally:
        if current(out, table) != gen:
            shutil.rmtree(gen, ignore_errors=True)
    return True

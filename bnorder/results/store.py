"""Writing and reading results: each trial adds one part file to ``<out>/trials.parquet/`` and
``<out>/epochs.parquet/``, written to a hidden temporary name and renamed into place, so a
reader never sees half a file and appending never rewrites (or loses) earlier rows. Finished
trials' parts are later merged into a few files (compaction.py), swapped in atomically (layout.py).
``pandas.read_parquet(<out>/trials.parquet)`` reads them all."""

from __future__ import annotations

import glob
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bnorder.errors import BnorderError, ConfigError
from bnorder.probes import PROBE_STATS
from bnorder.results.compaction import holder, replace, trial_ids
from bnorder.results.layout import (
    EPOCHS,
    TRIALS,
    current,
    locked,
    part_name,
    retrying,
    start,
    write_parquet,
)
from bnorder.results.provenance import provenance
from bnorder.results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA

if TYPE_CHECKING:
    from bnorder.train import TrialResult

__all__ = [
    "EPOCH_PARTS_ENV",
    "Results",
    "check_writable",
    "epoch_parts_every_s",
    "epoch_rows",
    "is_recorded",
    "load",
    "read_epochs",
    "read_trials",
    "recorded_ids",
    "trial_row",
    "write_epochs",
    "write_result",
    "write_text",
]

_UMASK = os.umask(0)
os.umask(_UMASK)


def check_writable(out: str | Path, *, field: str = "out") -> Path:
    """Fail early (before any training) if results could not be written under ``out``;
    creates nothing."""
    out = Path(out).expanduser()
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(
            field, str(out), "output location is not a directory:", hint=f"{existing} is a file"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".bnorder-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            field,
            str(out),
            f"cannot write results under {existing} ({exc.strerror}):",
            hint="choose another --out",
        ) from None
    return out


def trial_row(result: TrialResult) -> dict[str, Any]:
    """The ``trials.parquet`` row of a result."""
    cfg = result.config
    return {
        **cfg.model_dump(),
        "trial_id": result.trial_id,
        "config_hash": cfg.config_hash,
        "group_hash": cfg.group_hash,
        "status": result.status,
        "error": result.error,
        **result.summary(),
        "n_params": result.n_params,
        "wall_seconds": result.wall_seconds,
        "device_name": result.device_name,
        "execution": result.execution,
        "gpu_peak_mib": result.gpu_peak_mib,
        "data_source": result.data_source,
        **provenance(),
        "finished_at": datetime.now(UTC),
        **result.extra,
    }


def epoch_rows(result: TrialResult) -> list[dict[str, Any]]:
    """The ``epochs.parquet`` rows of a result, probe lists with their block means."""
    return epoch_rows_of(result.trial_id, result.epochs)


def epoch_rows_of(trial_id: str, epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for metrics in epochs:
        row: dict[str, Any] = {"trial_id": trial_id, **metrics}
        for stat in PROBE_STATS:
            values = row.get(stat)
            finite = [v for v in values or () if not math.isnan(v)]
            row[f"{stat}_mean"] = sum(finite) / len(finite) if finite else None
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    unknown = set().union(*rows) - set(schema.names) if rows else set()
    if unknown:
        raise ValueError(
            f"columns {sorted(unknown)} are not in the declared schema (results/schema.py)"
        )
    return pa.Table.from_pylist(rows, schema=schema)


def _put(out: Path, table: str, trial_id: str, rows: pa.Table) -> Path:
    """Write (or replace) a trial's rows of ``table`` as its part file. Where a compaction
    already holds its old rows, they are replaced in one swap: a trial never has two copies."""
    name = part_name(trial_id)
    with locked(out, exclusive=False):  # the writing rule: see layout.py
        folder = current(out, table)
        if folder is None and start(out, table, name, rows):
            return out / table / name
        folder = current(out, table)
        if folder is not None and holder(folder, trial_id) in (None, name):
            write_parquet(folder, name, rows)
            return out / table / name
    with locked(out, exclusive=True):
        if not replace(out, table, trial_id, rows):  # compacted no more (another swap between)
            write_parquet(current(out, table) or out / table, name, rows)
    return out / table / name


def write_text(path: Path, text: str) -> Path:
    """Write a text file atomically (temporary name, then rename), readable like any other."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(out: str | Path, result: TrialResult) -> Path:
    """Append one trial to the results in ``out``. Both tables are built (and checked against
    the schema) before anything is written; epochs go first, so a trial row means complete.
    Writing the same trial_id again replaces its rows: resumed sweeps never duplicate."""
    out = Path(out).expanduser()
    epochs = _table(epoch_rows(result), EPOCH_SCHEMA)
    trial = _table([trial_row(result)], TRIAL_SCHEMA)
    try:
        _put(out, EPOCHS, result.trial_id, epochs)
        return _put(out, TRIALS, result.trial_id, trial)
    except OSError as exc:
        raise BnorderError(f"out: cannot write results to {out}: {exc}") from exc


def write_epochs(out: str | Path, trial_id: str, epochs: list[dict[str, Any]]) -> None:
    """Write (replace) the epoch rows of a trial still running: what readers see mid-sweep (a
    sweep's recorder does so at most every few seconds, see recorder.py)."""
    rows = epoch_rows_of(trial_id, epochs)
    try:
        _put(Path(out).expanduser(), EPOCHS, trial_id, _table(rows, EPOCH_SCHEMA))
    except OSError as exc:
        raise BnorderError(f"out: cannot write results to {out}: {exc}") from exc


# A sweep rewrites a running trial's epoch rows at most this often: they are the live view
# (pandas during a sweep), not what a resume relies on, since a resumed trial hands over the
# epochs its checkpoint holds (trainable.EARLIER_EPOCHS). Trials shorter than this write their
# rows once, at the end.
EPOCH_PARTS_ENV = "BNORDER_EPOCH_PARTS_S"
EPOCH_PARTS_S = 5.0


def epoch_parts_every_s() -> float:
    """Seconds between a running trial's epoch-part writes: ``$BNORDER_EPOCH_PARTS_S`` (0: after
    every epoch, as tests that act on a trial's progress need), else 5."""
    text = os.environ.get(EPOCH_PARTS_ENV, "").strip()
    try:
        seconds = float(text) if text else EPOCH_PARTS_S
    except ValueError:
        seconds = math.nan
    if not seconds >= 0 or math.isinf(seconds):
        raise ConfigError(
            EPOCH_PARTS_ENV, text, "must be a number of seconds >= 0, not", hint="e.g. 0 or 5"
        )
    return seconds


def is_recorded(out: str | Path, trial_id: str) -> bool:
    """Whether ``trial_id`` has its ``trials.parquet`` row in ``out`` (a part or compacted): the
    one test of "this trial finished". A few stats and set look-ups, no rows read."""
    out = Path(out).expanduser()

    def look() -> bool:
        folder = current(out, TRIALS)
        found = folder is not None and holder(folder, trial_id) is not None
        if current(out, TRIALS) != folder:  # a swap between: ask the new generation
            raise FileNotFoundError(folder)
        return found

    return retrying(look)


def recorded_ids(out: str | Path) -> set[str]:
    """The trial_ids with a ``trials.parquet`` row in ``out``, without reading their rows."""
    out = Path(out).expanduser()
    return retrying(lambda: trial_ids(current(out, TRIALS)))


def _files_of(out: Path, table: str, trial_ids: list[str]) -> list[tuple[Path, list[str]]]:
    """The data files of ``table`` that hold these trials' rows (parts or compacted files),
    each with the trials it holds."""
    folder = current(out, table)
    if folder is None:
        return []
    by_file: dict[str, list[str]] = {}
    for tid in trial_ids:
        name = holder(folder, tid)
        if name is not None:
            by_file.setdefault(name, []).append(tid)
    return [(folder / name, tids) for name, tids in sorted(by_file.items())]


def read_epochs(out: str | Path, trial_id: str) -> list[dict[str, Any]]:
    """The epoch rows already written for ``trial_id`` (empty if none), as metrics dicts."""
    out = Path(out).expanduser()

    def rows() -> list[dict[str, Any]]:
        return [
            row
            for path, tids in _files_of(out, EPOCHS, [trial_id])
            for row in pq.read_table(path, filters=pc.field("trial_id").isin(tids)).to_pylist()
        ]

    drop = {"trial_id", *(f"{s}_mean" for s in PROBE_STATS)}
    return [
        {k: v for k, v in row.items() if k not in drop and v is not None}
        for row in sorted(retrying(rows), key=lambda r: r["epoch"])
    ]


def read_trials(out: str | Path, trial_ids: list[str]) -> pd.DataFrame:
    """The trials rows of these trial IDs (those written so far), in that order, without
    loading the rest."""
    out = Path(out).expanduser()

    def frames() -> list[pd.DataFrame]:
        return [
            pd.read_parquet(path, filters=[("trial_id", "in", tids)])
            for path, tids in _files_of(out, TRIALS, list(trial_ids))
        ]

    found = retrying(frames)
    if not found:
        return TRIAL_SCHEMA.empty_table().to_pandas()
    order = {tid: i for i, tid in enumerate(trial_ids)}
    frame = pd.concat(found, ignore_index=True)
    return frame.sort_values("trial_id", key=lambda c: c.map(order)).reset_index(drop=True)


@dataclass(frozen=True)
class Results:
    """``trials``: one row per trial; ``epochs``: one row per trial-epoch."""

    trials: pd.DataFrame
    epochs: pd.DataFrame

    def curves(self) -> pd.DataFrame:
        """Epoch rows joined with their trial's config columns, ready for a groupby or plot."""
        keys = ["trial_id", "dataset", "arch", "ordering", "depth", "width", "lr", "seed", "status"]
        return self.epochs.merge(self.trials[keys], on="trial_id", how="left")


def _read(dirs: list[Path], table: str, schema: pa.Schema) -> pd.DataFrame:
    frames = [f for d in dirs if (f := retrying(lambda d=d: _read_one(d, table))) is not None]
    if not frames:
        return schema.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)


def _read_one(out: Path, table: str) -> pd.DataFrame | None:
    # the generation itself, not the link: its listing and its files are one snapshot
    folder = current(out, table)
    if folder is None or not any(folder.glob("*.parquet")):
        return None
    return pd.read_parquet(folder)


def load(*paths: str | Path) -> Results:
    """Load one or more results directories (or glob patterns) into DataFrames.

    Example:
        >>> res = load("results/quickstart")  # doctest: +SKIP
        >>> res.trials.groupby(["arch", "ordering"]).final_test_acc.mean()  # doctest: +SKIP

    Raises:
        ConfigError: no results directory matched (a usage error: exit code 2 in the CLI).
    """
    dirs: list[Path] = []
    for p in paths:
        matches = sorted(glob.glob(str(Path(p).expanduser()))) or [str(p)]
        dirs += [Path(m) for m in matches if (Path(m) / TRIALS).exists()]
    if not dirs:
        raise ConfigError(
            "results",
            ", ".join(map(str, paths)),
            "no results found at {value}",
            hint=f"expected {TRIALS} inside",
        )
    return Results(_read(dirs, TRIALS, TRIAL_SCHEMA), _read(dirs, EPOCHS, EPOCH_SCHEMA))

"""Ray's experiment snapshot, kept whole across a kill on a local or NFS path.

Ray saves an experiment's state (its trials, the searcher's state, callbacks' states) into a
staging folder, then a background thread copies those files into the experiment folder, in
place. A driver killed during that copy leaves a file cut short; seen in a kill test: a 0-byte
``experiment_state-*.json``. Ray's restore then fails *silently*: it logs "Failed to restore
the run state" and starts the experiment over, so ``--resume`` would run every trial again
under new IDs, beside the rows already written. An object store shows each file whole or not at
all; a local or NFS path does not.

So :class:`SnapshotKeeper`, a Tune callback on local storage, copies each snapshot once Ray has
written it into ``.bnorder-snapshot/`` of the experiment folder (a new folder renamed into
place), and :func:`repair_snapshot` puts it back before a restore when Ray's own copy is not
that snapshot: unreadable, lagging, or a mix of two.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from ray.tune import Callback

from bnorder.errors import BnorderError

__all__ = ["KEPT", "SnapshotKeeper", "repair_snapshot", "unreadable_state"]

KEPT = ".bnorder-snapshot"
EXPERIMENT_STATE = "experiment_state-"  # Ray's TuneController.CKPT_FILE_TMPL, before "{}"
# Ray's state files: <kind>-<driver session's start>.<json|pkl>; a restore reads the newest of
# each kind (the greatest name), as TuneController.resume and the searchers do
_STATE = re.compile(r"^(?P<kind>.+)-\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\.(json|pkl)$")


class SnapshotKeeper(Callback):
    """After each step in which Ray saved its experiment state, a whole copy of it in the
    experiment folder's ``.bnorder-snapshot/``. A stat per step; a copy per snapshot (Ray
    snapshots at most every few seconds, or as set by ``TUNE_GLOBAL_CHECKPOINT_S``)."""

    def __init__(self) -> None:
        self._folders: tuple[Path, Path] | None = None  # Ray's staging and experiment folders
        self._state: Path | None = None  # this driver's experiment state file, once written
        self._seen: tuple[int, int] | None = None
        self._warned = False

    def setup(self, **info: Any) -> None:
        self._folders, self._state, self._seen = None, None, None

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if not trials:
            return
        if self._folders is None:  # Ray builds these paths anew on each call: once per driver
            storage = trials[0].storage
            self._folders = (
                Path(storage.experiment_driver_staging_path),
                Path(storage.experiment_fs_path),
            )
        staging, experiment = self._folders
        try:
            if self._state is None:  # the staging folder holds a folder per trial: list it once
                self._state = max(staging.glob(f"{EXPERIMENT_STATE}*.json"), default=None)
                if self._state is None:
                    return
            stat = self._state.stat()
            if (stat.st_mtime_ns, stat.st_size) == self._seen:
                return  # no snapshot since the last copy
            keep_snapshot(staging, experiment)
            self._seen = (stat.st_mtime_ns, stat.st_size)
        except OSError as exc:  # a full disk: Ray's own copy may still be whole
            if not self._warned:
                print(f"bnorder: warning: keeping Ray's snapshot: {exc}", file=sys.stderr)
                self._warned = True


def keep_snapshot(staging: Path, experiment: Path) -> Path:
    """Copy Ray's state files from ``staging`` into ``experiment/.bnorder-snapshot``: written
    into a new folder, then renamed into place (the old one renamed aside first, then removed),
    so that at any instant one whole copy is there or aside."""
    kept, aside = experiment / KEPT, experiment / f"{KEPT}.old"
    fresh = experiment / f"{KEPT}.new-{os.getpid()}"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    for source in staging.iterdir():
        if source.is_file() and _STATE.match(source.name):
            shutil.copyfile(source, fresh / source.name)
    shutil.rmtree(aside, ignore_errors=True)
    if kept.exists():
        kept.rename(aside)
    fresh.rename(kept)
    shutil.rmtree(aside, ignore_errors=True)
    return kept


def unreadable_state(folder: Path) -> list[str]:
    """The state files of ``folder`` that a restore would read (the newest of each kind) and
    that do not load: cut short, or empty. An experiment folder without state files has none."""
    return sorted(p.name for p in _newest(folder).values() if not _loads(p))


def repair_snapshot(experiment: Path) -> str | None:
    """Before ``Tuner.restore`` from a local or NFS ``experiment`` folder: put the kept
    snapshot in place of Ray's state files when they are not that snapshot and it is at least
    as new. Ray's copy may be cut short by the kill (unreadable), of an older snapshot (its
    copy lags the save), or a mix of two (it copies one file at a time: an experiment state
    with a trial the searcher's older state would issue again).

    Returns:
        What was put back and why, for the log; None when Ray's state is the kept snapshot or
        newer (a later driver's, not kept).
    Raises:
        BnorderError: Ray's state is unreadable and no whole copy was kept (a restore would
            start the phase over and run its finished trials again).
    """
    broken = unreadable_state(experiment)
    copies = (experiment / KEPT, experiment / f"{KEPT}.old")
    kept = next((c for c in copies if _newest(c) and not unreadable_state(c)), None)
    if kept is None:
        if broken:
            raise BnorderError(
                f"--resume: Ray's experiment state in {experiment} is unreadable"
                f" ({', '.join(broken)}: cut short when the driver was killed) and no whole"
                " copy was kept; finish this sweep into a new --out"
            )
        return None
    ours, theirs = _newest(kept), _newest(experiment)
    if not broken:
        if _state_name(theirs) > _state_name(ours):
            return None  # a later driver's snapshot, which it had no time to keep
        if all(k in theirs and theirs[k].read_bytes() == p.read_bytes() for k, p in ours.items()):
            return None
    for path in experiment.iterdir():
        if path.is_file() and _STATE.match(path.name):
            path.unlink()
    for source in kept.iterdir():
        _copy_atomic(source, experiment / source.name)
    why = f"{', '.join(broken)} cut short by the kill" if broken else "Ray's copy lagged"
    return f"restored the kept snapshot ({why})"


def _newest(folder: Path) -> dict[str, Path]:
    """Per kind of state file in ``folder``, the newest (the one a restore reads)."""
    newest: dict[str, Path] = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        found = _STATE.match(path.name)
        if found and path.is_file() and path.name > newest.get(found["kind"], Path()).name:
            newest[found["kind"]] = path
    return newest


def _state_name(files: dict[str, Path]) -> str:
    """The name of the experiment state among ``files`` ('' if none): its driver session."""
    return next((p.name for p in files.values() if p.name.startswith(EXPERIMENT_STATE)), "")


def _loads(path: Path) -> bool:
    """Whether Ray could load this state file: JSON (the experiment state) or a pickle."""
    try:
        data = path.read_bytes()
        if path.name.startswith(EXPERIMENT_STATE):
            return bool(json.loads(data).get("trial_data"))  # Ray's restore needs a trial
        import ray.cloudpickle as cloudpickle

        cloudpickle.loads(data)
        return True
    except Exception:  # whatever a cut-short file raises, it is unreadable
        return False


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)

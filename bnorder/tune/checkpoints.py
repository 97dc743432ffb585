"""Checkpoints live only while a trial runs, one per running trial; a sweep may keep each
trial's final weights.

A trial reports a checkpoint after every epoch (model, optimiser, schedule, data RNG, history:
what an exact resume needs) to Ray's storage, local, NFS or object store. Ray would keep them
all (``num_to_keep`` stays off, see runner.py): a 10,000-trial study of the seed CNN, 10 epochs
each, would leave ~350 GB. So the recorder empties them:

- each new checkpoint empties the trial's older ones: a running trial holds one (two for the
  instant between Ray storing the new one and the recorder hearing of it);
- once a trial's rows are written it is never run again (a resumed driver finds the row and
  skips it, see ``trainable.run_trial``), and its last one is emptied too.

Disk use stays O(trials running). Folders are emptied, not removed: Ray's experiment snapshot
may name an older checkpoint than the newest (it is stored every few seconds), and Ray refuses
to restore a trial whose named checkpoint folder is gone. Restored to an emptied one, the
trainable resumes from the trial's newest state instead (:func:`resume_candidates`).

``keep_weights`` (a sweep key) saves what is worth keeping first, in the results folder:
``trial`` keeps every trial's final model weights, ``arm_best`` one file per arm, the final
weights of its best trial by validation accuracy (the selection rule of tuned sweeps). Each file
is self-describing: ``{"trial_id", "arm_id", "config", "best_val_acc", "model"}``;
:func:`load_model` rebuilds the network from it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

__all__ = [
    "WEIGHTS",
    "drop_checkpoints",
    "forget_checkpoints",
    "keep_weights",
    "load_model",
    "resume_candidates",
    "weights_file",
]

WEIGHTS = "weights"  # <out>/weights/
STATE_FILE = "state.pt"  # trainable.STATE_FILE


def drop_checkpoints(trial: Any, keep: Any = None) -> int:
    """Empty the ``checkpoint_*`` folders of a trial wherever Ray stores them, but ``keep`` (a
    running trial's newest checkpoint, just stored); the trial's own small files (params,
    progress, results) stay. Returns how many folders were emptied.

    One listing of the trial's folder; folders already empty are left alone, so each epoch of a
    trial costs one listing and one emptied folder, not one per epoch so far.
    """
    checkpoint = keep if keep is not None else trial.checkpoint
    if checkpoint is None or not trial.path:
        return 0
    fs: pafs.FileSystem = checkpoint.filesystem
    kept = keep.path.rstrip("/") if keep is not None else None
    full = [folder for folder in checkpoint_files(fs, trial.path) if folder != kept]
    for folder in full:
        fs.delete_dir_contents(folder, missing_dir_ok=True)
        fs.create_dir(folder)  # object stores: the folder marker an empty folder needs
    return len(full)


def forget_checkpoints(trial: Any, *, finished: bool = False) -> None:
    """Trim what Ray's driver keeps of a trial to what is left on storage.

    With ``num_to_keep`` off, Ray keeps every checkpoint's result (metrics and config) in the
    trial's run metadata, in the driver and in every experiment snapshot: O(trials x epochs),
    ~0.5 MB per 100-epoch trial. The recorder has emptied all but the newest, so Ray's list
    keeps the newest only (and the one Ray is about to add). ``finished`` (its row written):
    also the per-metric windows behind Ray's ``last-5-avg``/``last-10-avg`` (two deques per
    numeric metric, config values included: ~35 KB a trial), which only a new result would
    use; the averages themselves stay in ``metric_analysis``. Ray internals, version-checked by
    ``tests/tune/test_tune_runner.py``; on a Ray that lays them out differently, nothing is
    trimmed."""
    metadata = getattr(trial, "run_metadata", None)
    manager = getattr(metadata, "checkpoint_manager", None)
    results = getattr(manager, "_checkpoint_results", None)
    if isinstance(results, list) and len(results) > 1:
        manager._checkpoint_results = results[-1:]
        metadata.invalidate_cache()
    if finished and isinstance(getattr(metadata, "metric_n_steps", None), dict):
        metadata.metric_n_steps = {}  # setting it invalidates Ray's cached JSON


def checkpoint_files(fs: pafs.FileSystem, trial_path: str) -> dict[str, set[str]]:
    """The trial's ``checkpoint_*`` folders that hold files, in name order (oldest first), each
    with the names of its files: one recursive listing, empty folders left out."""
    trial_path = trial_path.rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(trial_path, allow_not_found=True, recursive=True))
    held: dict[str, set[str]] = {}
    for info in infos:
        top, _, rest = info.path[len(trial_path) :].lstrip("/").partition("/")
        if info.type == pafs.FileType.File and rest and top.startswith("checkpoint_"):
            held.setdefault(f"{trial_path}/{top}", set()).add(info.base_name)
    return dict(sorted(held.items()))


def resume_candidates(checkpoint: Any) -> list[Any]:
    """Where a trial Ray restores to ``checkpoint`` may resume from, best first: the checkpoint
    itself if it still holds a state, then the trial's other checkpoints holding one, newest
    first (Ray's snapshot named an older checkpoint, which the recorder has emptied since).

    More than one: a checkpoint being stored when its trial was killed holds a partial state
    (a local copy is not atomic), so the caller takes the first that loads. None: every
    checkpoint was emptied, the trial's row is written."""
    from ray import tune

    fs: pafs.FileSystem = checkpoint.filesystem
    path = checkpoint.path.rstrip("/")
    held = checkpoint_files(fs, path.rsplit("/", 1)[0])
    holding = [folder for folder, names in held.items() if STATE_FILE in names]
    ordered = ([path] if path in holding else []) + [f for f in reversed(holding) if f != path]
    return [checkpoint if p == path else tune.Checkpoint(path=p, filesystem=fs) for p in ordered]


def weights_file(out: Path, key: str) -> Path:
    """``<out>/weights/<key>.pt``, with an arm ID's slashes made safe."""
    return out / WEIGHTS / f"{key.replace('/', '__')}.pt"


def keep_weights(
    trial: Any, out: Path, mode: str, members: list[dict[str, Any]], best: dict[str, float]
) -> list[Path]:
    """Save the final weights of a finished Ray trial's members, as ``mode`` asks.

    Args:
        trial: the Ray trial (its latest checkpoint holds the final weights).
        out: the results folder.
        mode: ``none``, ``trial`` or ``arm_best``.
        members: per member: ``trial_id``, ``arm_id``, ``config`` (TrialConfig fields),
            ``status`` and ``best_val_acc``.
        best: arm ID -> best validation accuracy kept so far (``arm_best``; updated).
    Returns:
        The files written.
    """
    if mode == "none" or trial.checkpoint is None:
        return []
    wanted = [
        (k, m)
        for k, m in enumerate(members)
        if mode == "trial"
        or (m["status"] == "ok" and m["best_val_acc"] > best.get(m["arm_id"], -1.0))
    ]
    if not wanted:
        return []
    import torch

    with trial.checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
    written = []
    for k, member in wanted:
        if "array" in state:  # a fused array: member k's slice of every stacked tensor
            model = member_weights(state["array"], len(members), k)
        else:
            model = state["model"]
        key = member["trial_id"] if mode == "trial" else member["arm_id"]
        path = weights_file(out, key)
        _save_atomic({**member, "model": model}, path)
        best[member["arm_id"]] = max(member["best_val_acc"], best.get(member["arm_id"], -1.0))
        written.append(path)
    return written


def member_weights(array_state: dict[str, Any], k: int, index: int) -> dict[str, Any]:
    """Member ``index`` of a ``FusedArray`` of ``k``, from the array's state dict, with the
    original model's keys (as :meth:`FusedArray.member_state_dict`)."""
    return {
        name.removeprefix("net."): t.clone() if t.dim() == 0 else t.chunk(k)[index].clone()
        for name, t in array_state.items()
    }


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The network saved by ``keep_weights`` (eval mode, on CPU) and its record."""
    import torch

    from bnorder.config import TrialConfig
    from bnorder.train import build_model

    record = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(TrialConfig(**record["config"]))
    model.load_state_dict(record["model"])
    return model.eval(), {k: v for k, v in record.items() if k != "model"}


def _save_atomic(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""The Ray Tune function trainable: ``train_trial`` with a checkpoint after every epoch.

A retried or resumed trial restores the last checkpoint (model, optimiser, schedule, data RNG,
history) and continues exactly where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from bnorder.config import TrialConfig
from bnorder.device import granted_device
from bnorder.results.store import is_recorded
from bnorder.train import EpochReport, train_trial
from bnorder.train_fused import train_fused
from bnorder.tune.checkpoints import resume_candidates

__all__ = [
    "EARLIER_EPOCHS",
    "REPORTED_INFO",
    "cell_of",
    "is_fused",
    "load_state",
    "member_configs",
    "member_ids",
    "run_trial",
    "share_gpu",
    "trial_id_for",
    "unwrap",
    "where_am_i",
]

STATE_FILE = "state.pt"
# the first report after a resume: {trial_id: [epoch metrics, ...]} from the checkpoint
EARLIER_EPOCHS = "earlier_epochs"
REPORTED_INFO = (
    "status",
    "n_params",
    "device_name",
    "data_source",
    "wall_seconds",
    "gpu_peak_mib",
)


def trial_id_for(sweep: str, ray_trial_id: str) -> str:
    """The results ``trial_id`` of a Ray trial: stable across retries and resumes."""
    return f"{sweep}-{ray_trial_id}"


def member_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The TrialConfig fields of each trial a Ray trial trains: one, or a fused array's."""
    return config["members"] if "members" in config else [config["trial"]]


def cell_of(cfgs: list[TrialConfig]) -> str:
    """What a Ray trial trains, readable and unique within its sweep: its ``cell`` key (in
    every phase's config, next to ``trial`` or ``members`` and ``meta``) and the start of its
    folder's name. ``cnn-d4-conv-bn-relu-s3-<config hash>``; a fused array
    ``...-s0to3-<hash of its members' config hashes>``. The hash (8 hex digits) tells apart the
    points a grid varies beyond these (learning rate, width, dataset, ...)."""
    first, seeds = cfgs[0], [c.seed for c in cfgs]
    seed = f"s{seeds[0]}" if len(seeds) == 1 else f"s{seeds[0]}to{seeds[-1]}"
    digest = (
        first.config_hash
        if len(cfgs) == 1
        else hashlib.sha256("+".join(c.config_hash for c in cfgs).encode()).hexdigest()
    )
    return f"{first.arch}-d{first.depth}-{first.ordering}-{seed}-{digest[:8]}"


def is_fused(config: dict[str, Any]) -> bool:
    """A fused seed array: more than one member (a grid of fused arrays gives its leftover
    seeds one-member lists, trained and named as lone trials)."""
    return len(config.get("members", ())) > 1


def member_ids(sweep: str, ray_trial_id: str, config: dict[str, Any]) -> list[str]:
    """Results ``trial_id`` of each member: ``<sweep>-<ray id>`` alone, ``...-m<k>`` fused."""
    base = trial_id_for(sweep, ray_trial_id)
    if not is_fused(config):
        return [base]
    return [f"{base}-m{k}" for k in range(len(config["members"]))]


def unwrap(config: dict[str, Any]) -> dict[str, Any]:
    """Grid phases pass each trial as ``{"point": {...}}`` (one grid_search axis); searchers
    pass ``{"trial": ..., "meta": ...}`` directly."""
    return config.get("point", config)


def run_trial(config: dict[str, Any]) -> None:
    """Ray entry point. ``config = {"trial": TrialConfig fields, "meta": sweep bookkeeping}``,
    or ``{"members": [TrialConfig fields, ...], "meta": ...}`` for a fused seed array."""
    from ray import tune

    config = unwrap(config)
    meta = config["meta"]
    # the device follows what Ray granted (not in the hashes: rows stay the same cells)
    cfgs = [
        TrialConfig(**c).replace(device=granted_device(c["device"], float(meta["gpu"])))
        for c in member_configs(config)
    ]
    ids = member_ids(meta["sweep"], tune.get_context().get_trial_id(), config)
    if all(is_recorded(meta["out"], tid) for tid in ids):
        return  # finished before a driver crash that Ray's experiment state did not see
    torch.set_num_threads(
        max(1, int(meta["cpu"]))
    )  # Ray reserves cpu cores; torch must not use more

    share_gpu(float(meta["gpu"]))

    checkpoint = tune.get_checkpoint()
    resume = load_state(checkpoint) if checkpoint is not None else None
    restarts = resume.get("restarts", 0) + 1 if resume is not None else 0
    earlier = resumed_epochs(resume, ids)
    placement = where_am_i()

    def report(ep: EpochReport | list[EpochReport]) -> None:
        # fused: the first live member's metrics stand for the Ray trial (progress, schedulers);
        # every member's own are under "members", which the recorder writes one by one
        reps = ep if isinstance(ep, list) else [ep]
        metrics = {
            **reps[0].metrics,
            **{k: reps[0].info[k] for k in REPORTED_INFO},
            **placement,
            "restarts": restarts,
        }
        if isinstance(ep, list):
            metrics["members"] = [{**r.metrics, "trial_id": r.info["trial_id"]} for r in reps]
        if earlier:  # once, with the first epoch after a resume
            metrics[EARLIER_EPOCHS] = dict(earlier)
            earlier.clear()
        with tempfile.TemporaryDirectory(prefix="bnorder-ckpt-") as folder:
            torch.save({**reps[0].state(), "restarts": restarts}, Path(folder) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    _inject_fault(meta["arm_id"])
    data_root = meta.get("data_root")
    if is_fused(config):
        train_fused(cfgs, report, data_root=data_root, resume=resume, trial_ids=ids)
    else:
        train_trial(cfgs[0], report, data_root=data_root, resume=resume, trial_id=ids[0])


def load_state(checkpoint: Any) -> dict[str, Any] | None:
    """The state to resume from when Ray restores ``checkpoint``: its own, or the trial's newest
    complete one if the recorder emptied it since Ray's snapshot named it (see checkpoints.py);
    None when no checkpoint of the trial holds one (training starts over)."""
    for candidate in resume_candidates(checkpoint):
        try:
            with candidate.as_directory() as folder:
                return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
            # a state cut short by a kill while it was stored: the next newest
            print(f"bnorder: skipping checkpoint {candidate.path}: {exc}", file=sys.stderr)
    return None


def resumed_epochs(resume: dict[str, Any] | None, ids: list[str]) -> dict[str, list[Any]]:
    """Per member trial_id, the epochs a resumed state holds. The driver may not have written
    the last of them: a driver killed after the trial stored checkpoint k, before the result
    of epoch k reached it, restores the trial to k (its snapshot named an older one, since
    emptied) with the rows ending at k - 1. The first report after the resume hands them over,
    so the rows are the state's history whichever checkpoint the trial resumed from."""
    if resume is None:
        return {}
    histories = resume["histories"] if "histories" in resume else [resume["history"]]
    return dict(zip(ids, histories, strict=True))


def share_gpu(fraction: float) -> None:
    """Hold this trial to its share of the GPU Ray assigned it.

    Ray hides the other GPUs (CUDA_VISIBLE_DEVICES), so ``cuda`` is the assigned one, but it does
    not police memory: with ``gpu: 0.25`` four trials share one card and one greedy trial can
    starve the rest. Capping PyTorch's allocator at the share turns that into this trial's own
    out-of-memory error (retried, then recorded), and ``gpu_peak_mib`` in its row shows the use.
    """
    if 0 < fraction < 1 and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction, 0)


def where_am_i() -> dict[str, Any]:
    """The node and GPUs this trial runs on, for its results row."""
    import ray

    ctx = ray.get_runtime_context()
    gpus = ctx.get_accelerator_ids().get("GPU", [])
    return {"node_id": ctx.get_node_id(), "gpu_ids": ",".join(map(str, gpus)) or None}


def _inject_fault(arm_id: str) -> None:
    """Fault injection for tests of retries: ``BNORDER_FAULT=<marker dir>:<n>`` makes the first
    ``n`` attempts (counted with files in the marker dir) raise a simulated out-of-memory error;
    with ``BNORDER_FAULT_ONLY=<text>``, only attempts of arms whose id contains that text."""
    spec = os.environ.get("BNORDER_FAULT")
    if not spec or os.environ.get("BNORDER_FAULT_ONLY", "") not in arm_id:
        return
    folder, _, count = spec.rpartition(":")
    marker = Path(folder)
    marker.mkdir(parents=True, exist_ok=True)
    attempts = len(list(marker.iterdir()))
    if attempts < int(count):
        (marker / f"attempt-{attempts}").touch()
        raise RuntimeError("CUDA out of memory (simulated by BNORDER_FAULT)")

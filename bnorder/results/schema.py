"""The Parquet schema of bnorder's results, declared once.

``trials.parquet``: one row per trial: every :class:`TrialConfig` field, then the outcome and
its provenance. ``epochs.parquet``: one row per trial and epoch, keyed by ``trial_id``; probe
statistics are lists with one value per block plus their mean over blocks (``<stat>_mean``).
"""

from __future__ import annotations

import types
import typing

import pyarrow as pa

from bnorder.config import TrialConfig
from bnorder.probes import PROBE_STATS

__all__ = ["EPOCH_SCHEMA", "OUTCOME_COLUMNS", "SWEEP_COLUMNS", "TRIAL_SCHEMA"]

_ARROW = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}


def _arrow_type(annotation: object) -> pa.DataType:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _arrow_type(inner)
    return _ARROW[annotation]  # type: ignore[index]


CONFIG_COLUMNS = [
    pa.field(n, _arrow_type(f.annotation)) for n, f in TrialConfig.model_fields.items()
]

OUTCOME_COLUMNS = [
    pa.field("trial_id", pa.string()),  # unique per run; joins epochs.parquet
    pa.field("config_hash", pa.string()),  # same experiment cell (config + seeds)
    pa.field("group_hash", pa.string()),  # same point, any seeds: replicates share it
    pa.field("status", pa.string()),  # ok | diverged | pruned (stopped early) | failed
    pa.field("error", pa.string()),  # the exception text of a failed trial
    pa.field("epochs_done", pa.int64()),
    pa.field("final_train_loss", pa.float64()),
    pa.field("final_train_acc", pa.float64()),
    pa.field("final_val_acc", pa.float64()),
    pa.field("final_test_loss", pa.float64()),
    pa.field("final_test_acc", pa.float64()),
    pa.field("best_val_acc", pa.float64()),
    pa.field("best_val_epoch", pa.int64()),
    pa.field("test_acc_at_best_val", pa.float64()),  # model selection on validation only
    pa.field("n_params", pa.int64()),
    pa.field("wall_seconds", pa.float64()),
    pa.field("device_name", pa.string()),
    # single | fused K; with precision, channels_last, compile and trials_per_gpu, the whole
    # execution mode, so no analysis pools modes without saying so
    pa.field("execution", pa.string()),
    pa.field("gpu_peak_mib", pa.float64()),  # CUDA allocator peak: within the trial's GPU share?
    pa.field("data_source", pa.string()),
    pa.field("bnorder_version", pa.string()),
    pa.field("torch_version", pa.string()),
    pa.field("git_sha", pa.string()),
    pa.field("hostname", pa.string()),
    pa.field("finished_at", pa.timestamp("us", tz="UTC")),
]

# Filled by sweeps (null for a lone `bnorder train`).
SWEEP_COLUMNS = [
    pa.field("sweep", pa.string()),  # the sweep's name
    pa.field("sweep_hash", pa.string()),  # of the sweep file's text (stored once as sweep.yaml)
    pa.field("phase", pa.string()),  # grid | tune | evaluate
    pa.field("arm_id", pa.string()),  # dataset/arch/d<depth>/<ordering>: one contender
    pa.field("ray_trial_id", pa.string()),
    pa.field("node_ip", pa.string()),
    pa.field("node_id", pa.string()),  # Ray's node id: tells apart nodes that share an IP
    pa.field("gpu_ids", pa.string()),  # the GPUs Ray assigned (CUDA_VISIBLE_DEVICES), e.g. "0"
    pa.field("cpu_per_trial", pa.float64()),
    pa.field("gpu_fraction", pa.float64()),  # 0.25: four trials shared one GPU
    pa.field("trials_per_gpu", pa.int64()),  # the packing factor, 1/gpu_fraction; null off-GPU
    pa.field("restarts", pa.int64()),  # times the trial resumed from a checkpoint (node loss)
    pa.field("study", pa.string()),  # the arm's Optuna study (tune phase)
    pa.field("optuna_trial", pa.int64()),  # the trial's number in that study
]

TRIAL_SCHEMA = pa.schema(CONFIG_COLUMNS + OUTCOME_COLUMNS + SWEEP_COLUMNS)

EPOCH_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.string()),
        pa.field("epoch", pa.int64()),  # 1-based
        pa.field("train_loss", pa.float64()),  # mean over the epoch's examples, as trained
        pa.field("train_acc", pa.float64()),  # fractions in [0, 1] throughout
        pa.field("val_loss", pa.float64()),
        pa.field("val_acc", pa.float64()),
        pa.field("test_loss", pa.float64()),
        pa.field("test_acc", pa.float64()),
        pa.field("lr_end", pa.float64()),  # the scheduled lr at the end of the epoch
        pa.field("train_seconds", pa.float64()),
        pa.field("eval_seconds", pa.float64()),
        pa.field("images_per_s", pa.float64()),  # training throughput, compiling left out
        pa.field("compile_seconds", pa.float64()),  # steps that compiled a graph; NaN: eager
    ]
    + [pa.field(s, pa.list_(pa.float64())) for s in PROBE_STATS]
    + [pa.field(f"{s}_mean", pa.float64()) for s in PROBE_STATS]
)

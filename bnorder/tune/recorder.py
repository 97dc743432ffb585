"""Driver-side Tune callback: writes every trial's rows to Parquet as it goes and shows
progress: done/total and an ETA (a bar on a terminal, plain lines in logs), each finished trial,
and a table per arm (done / running / pending, best so far)."""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from bnorder.config import TrialConfig
from bnorder.progress import ArmWork, Display, SweepEta
from bnorder.results.compaction import COMPACT_AT, compact
from bnorder.results.schema import EPOCH_SCHEMA
from bnorder.results.store import (
    TRIALS,
    epoch_parts_every_s,
    is_recorded,
    load,
    read_epochs,
    write_epochs,
    write_result,
)
from bnorder.train import TrialResult, best_val_epoch
from bnorder.tune.checkpoints import drop_checkpoints, forget_checkpoints, keep_weights
from bnorder.tune.testpoints import reached
from bnorder.tune.trainable import EARLIER_EPOCHS, is_fused, member_configs, member_ids, unwrap

__all__ = ["ArmProgress", "ResultsRecorder"]

_EPOCH_KEYS = tuple(n for n in EPOCH_SCHEMA.names if n != "trial_id")


def _epoch_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """An epoch's row fields from what the trainable reported (or its checkpoint held)."""
    return {k: metrics[k] for k in _EPOCH_KEYS if k in metrics}


@dataclass
class ArmProgress:
    planned: int
    running: set[str] = field(default_factory=set)
    done: int = 0
    failed: int = 0
    best_val: float = float("nan")

    @property
    def expected(self) -> int:
        """Trials this arm runs: the plan's, or more once adaptive seeds added some."""
        return max(self.planned, self.done + len(self.running))


class ResultsRecorder(Callback):
    """Writes a running trial's ``epochs.parquet`` part as it reports (at most every
    ``BNORDER_EPOCH_PARTS_S``), and its rows in both tables when it ends (ok, diverged, pruned
    or failed). Rows are keyed by a trial_id that is stable across retries and resumes, so
    nothing is ever duplicated."""

    def __init__(
        self,
        *,
        out: Path,
        sweep: str,
        sweep_hash: str,
        phase: str,
        planned: dict[str, int],
        epochs: dict[str, float] | None = None,
        most: dict[str, int] | None = None,
        print_every_s: float = 30.0,
        keep_weights: str = "none",
        listeners: Sequence[Callable[[Any, list[TrialResult]], None]] = (),
    ) -> None:
        """``planned`` trials per arm (adaptive seeds: the fewest, up to ``most``), of
        ``epochs`` epochs each (for the ETA; learnt from the first trials when not given).
        ``listeners`` (experiment trackers) get each Ray trial's results once its rows are
        written: ``listener(trial, [TrialResult, ...])``, one per member."""
        self.out, self.sweep, self.sweep_hash, self.phase = out, sweep, sweep_hash, phase
        self.keep = keep_weights  # none | trial | arm_best (bnorder.tune.checkpoints)
        self.kept: dict[str, float] = {}  # arm_best: the best validation accuracy kept
        self.arms = {arm: ArmProgress(n) for arm, n in planned.items()}
        self.arm_epochs = dict(epochs or {})
        self.most = dict(most or planned)
        self.eta = self._new_eta()
        self.display: Display | None = None
        self.epochs: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.print_every_s = print_every_s
        self.listeners = list(listeners)
        self._last_print = time.monotonic()
        self.started = time.monotonic()
        self.parts_every_s = epoch_parts_every_s()
        self._written: dict[str, float] = {}  # Ray trial -> its last epoch-part write
        self._unwritten: dict[str, set[str]] = {}  # Ray trial -> members with epochs held back
        self._finished_since_compact = 0

    # ---------------------------------------------------------------- Tune hooks
    def setup(self, **info: Any) -> None:
        """At every (re)start: a restored experiment brings back a recorder pickled when it
        began, so counts are re-read from the rows already written."""
        self.started = self._last_print = time.monotonic()
        self.parts_every_s = epoch_parts_every_s()  # this driver's, not the pickled one's
        self._written.clear()
        self._unwritten.clear()
        self._finished_since_compact = 0
        self.epochs.clear()
        self.eta = self._new_eta()
        self.kept.clear()
        for arm in self.arms.values():
            arm.running.clear()
            arm.done, arm.failed, arm.best_val = 0, 0, float("nan")
        if (self.out / TRIALS).exists():
            rows = load(self.out).trials
            rows = rows[(rows.sweep == self.sweep) & (rows.phase == self.phase)]
            for row in rows.itertuples():
                arm = self._arm_named(row.arm_id)
                arm.done += 1
                arm.failed += row.status == "failed"
                if row.best_val_acc == row.best_val_acc and not arm.best_val >= row.best_val_acc:
                    arm.best_val = row.best_val_acc
                self.eta.recorded(row.arm_id, row.wall_seconds, row.epochs_done)
                if row.status == "ok" and row.best_val_acc == row.best_val_acc:
                    key = f"{self.phase}/{row.arm_id}"
                    self.kept[key] = max(self.kept.get(key, -1.0), row.best_val_acc)
        self.display = Display(f"[{self.sweep} {self.phase}]", self._total())
        self._update_display(force=True)

    def _new_eta(self) -> SweepEta:
        return SweepEta(
            {
                arm: ArmWork(
                    epochs=self.arm_epochs.get(arm, 0.0),
                    expected=a.planned,
                    most=max(self.most.get(arm, a.planned), a.planned),
                    group=arm.rsplit("/", 1)[0],  # the arm but its ordering
                )
                for arm, a in self.arms.items()
            }
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "display": None}  # a terminal bar is this process's alone

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._arm(trial).running.add(trial.trial_id)
        members = member_configs(unwrap(trial.config))
        epochs = max(m.get("epochs", 1) for m in members)
        self.arm_epochs.setdefault(arm_label(trial), epochs)
        self.eta.arms[arm_label(trial)].epochs = self.arm_epochs[arm_label(trial)]
        self.eta.start(trial.trial_id, arm_label(trial), len(members), epochs)
        self._written[trial.trial_id] = time.monotonic()  # its first part comes a period on

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        unwritten = self._unwritten.setdefault(trial.trial_id, set())
        # resumed: the epochs its checkpoint holds, of which the rows may lack the last
        for tid, history in result.pop(EARLIER_EPOCHS, {}).items():
            known = self._known_epochs(tid)
            for row in history:
                known.setdefault(int(row["epoch"]), _epoch_row(row))
            unwritten.add(tid)
        # a fused array reports each live member under "members"; a lone trial reports itself
        members = result.get("members") or [{**result, "trial_id": self._ids(trial)[0]}]
        for member in members:
            tid = member["trial_id"]
            self._known_epochs(tid)[int(member["epoch"])] = _epoch_row(member)
            unwritten.add(tid)
        now = time.monotonic()
        if now - self._written.get(trial.trial_id, -math.inf) >= self.parts_every_s:
            self._written[trial.trial_id] = now
            for tid in sorted(unwritten):
                known = self.epochs[tid]
                write_epochs(self.out, tid, [known[e] for e in sorted(known)])
            unwritten.clear()
        self.eta.epoch(trial.trial_id, max(int(m["epoch"]) for m in members))
        # Ray lets callbacks amend the result in place, before its loggers (CSV, JSON,
        # TensorBoard, trackers) and the experiment state see it: Ray's view then ranks on
        # what the Parquet rows hold, and a trial the scheduler stops early says "pruned"
        result.update(self._outcome(trial, members[0]["trial_id"], stopped=result.get("done")))

    def on_checkpoint(
        self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        # Ray has stored the new one: the trial's older checkpoints are emptied (one per
        # running trial, see checkpoints.py), though Ray's last snapshot may name one of them
        emptied = self._careful(
            "deleting older checkpoints", lambda: drop_checkpoints(trial, keep=checkpoint)
        )
        forget_checkpoints(trial)
        if emptied:
            reached("superseded")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if not self._recorded_before(trial):
            self._finish(trial, error=None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if not self._recorded_before(trial):
            self._finish(trial, error=last_error(trial))

    def _recorded_before(self, trial: Any) -> bool:
        """A trial whose row was written before a driver restart, which Ray brought back from
        an older experiment snapshot: the trainable returned at once (or Ray could not restore
        it, its checkpoints being emptied); either way its row stands as it is."""
        tid = self._ids(trial)[0]
        if self.epochs.get(tid) or not is_recorded(self.out, tid):
            return False
        self._arm(trial).running.discard(trial.trial_id)
        self.eta.drop(trial.trial_id)
        self._careful("deleting its checkpoints", lambda: drop_checkpoints(trial))
        return True

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._compact(final=True)  # the phase's rows into a file per table
        self._update_display(force=True)
        if self.display is not None:
            self.display.close()
        self.print_table()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.display is not None and self.display.live:
            self._update_display()  # the bar says it all; the table comes at the end
        elif time.monotonic() - self._last_print >= self.print_every_s:
            self.print_table()

    # ---------------------------------------------------------------- rows
    def _finish(self, trial: Any, error: str | None) -> None:
        config = unwrap(trial.config)
        meta = config["meta"]
        last = trial.last_result or {}
        ids = self._ids(trial)
        self.eta.finish(trial.trial_id, members=len(ids))
        execution = f"fused {len(ids)}" if is_fused(config) else "single"
        results = []
        for tid, fields in zip(ids, member_configs(config), strict=True):
            cfg = TrialConfig(**fields)
            known = self._known_epochs(tid)
            epochs = [known[e] for e in sorted(known)]
            # training ends a trial (or a fused member) on its first non-finite epoch loss, so
            # its own last epoch says whether it diverged
            diverged = bool(epochs) and not math.isfinite(epochs[-1].get("train_loss", 0.0))
            status = "failed" if error else "diverged" if diverged else "ok"
            if status == "ok" and len(epochs) < cfg.epochs:
                status = "pruned"  # stopped early by the scheduler
            result = TrialResult(
                config=cfg,
                trial_id=tid,
                status=status,
                epochs=epochs,
                n_params=last.get("n_params", 0),
                wall_seconds=last.get("wall_seconds", 0.0),
                device_name=last.get("device_name", ""),
                data_source=last.get("data_source", ""),
                error=error,
                gpu_peak_mib=last.get("gpu_peak_mib"),
                execution=execution,
                extra={
                    "sweep": self.sweep,
                    "sweep_hash": self.sweep_hash,
                    "phase": self.phase,
                    "arm_id": meta["arm_id"],
                    "ray_trial_id": trial.trial_id,
                    "node_ip": last.get("node_ip"),
                    "node_id": last.get("node_id"),
                    "gpu_ids": last.get("gpu_ids"),
                    "cpu_per_trial": float(meta["cpu"]),
                    "gpu_fraction": float(meta["gpu"]),
                    "trials_per_gpu": packing(float(meta["gpu"])),
                    "restarts": last.get("restarts", 0),
                    "study": meta.get("study"),
                    "optuna_trial": meta.get("optuna_trial"),
                },
            )
            results.append(result)
        # weights before rows: a row on disk means whatever was to be kept is kept
        self._careful(
            "keeping weights",
            lambda: keep_weights(
                trial, self.out, self.keep, [self._record(r) for r in results], self.kept
            ),
        )
        for result in results:
            write_result(self.out, result)
            self._progress(trial, result)
        if results and trial.last_result:  # what ResultGrid and the state file show
            s = results[0].summary()
            trial.last_result.update(
                status=results[0].status,
                best_val_acc=s["best_val_acc"],
                test_acc_at_best_val=s["test_acc_at_best_val"],
            )
        for listener in self.listeners:
            try:  # a listener's error must not make Ray rewrite these rows as failed
                listener(trial, results)
            except Exception as exc:
                print(f"[{self.sweep} {self.phase}] warning: {listener}: {exc}", file=sys.stderr)
        # recorded: never run again, even by a resumed driver
        self._careful("deleting its checkpoints", lambda: drop_checkpoints(trial))
        forget_checkpoints(trial, finished=True)
        reached("emptied")
        for tid in ids:  # on disk now; kept, a sweep's every epoch would stay in the driver
            self.epochs.pop(tid, None)
        self._written.pop(trial.trial_id, None)
        self._unwritten.pop(trial.trial_id, None)
        self._finished_since_compact += len(ids)
        if self._finished_since_compact >= COMPACT_AT:  # compact() would list the parts, to
            self._finished_since_compact = 0  # find too few, on every trial in between
            self._compact()

    def _careful(self, what: str, step: Callable[[], Any]) -> Any:
        """Storage trouble while keeping weights or cleaning up must not cost the row: the
        step's value, or None after a warning."""
        try:
            return step()
        except Exception as exc:  # a full disk, an object store that went away, ...
            print(f"[{self.sweep} {self.phase}] warning: {what}: {exc}", file=sys.stderr)
            return None

    def _record(self, result: TrialResult) -> dict[str, Any]:
        """What a kept weights file says about its trial."""
        return {
            "trial_id": result.trial_id,
            "arm_id": f"{self.phase}/{result.extra['arm_id']}",  # arm_best: one per phase
            "config": result.config.model_dump(),
            "status": result.status,
            "best_val_acc": result.summary()["best_val_acc"],
        }

    def _outcome(self, trial: Any, tid: str, *, stopped: bool = False) -> dict[str, Any]:
        """The row's verdict so far for Ray's own view of the trial: best validation accuracy,
        test accuracy at that epoch, and status (the first member's, for a fused array)."""
        epochs = [e for _, e in sorted(self._known_epochs(tid).items())]
        best = best_val_epoch(epochs)
        outcome = {
            "best_val_acc": best.get("val_acc", math.nan),
            "test_acc_at_best_val": best.get("test_acc", math.nan),
        }
        planned = member_configs(unwrap(trial.config))[0].get("epochs", 0)
        if epochs and not math.isfinite(epochs[-1].get("train_loss", 0.0)):
            outcome["status"] = "diverged"
        elif stopped and len(epochs) < planned:
            outcome["status"] = "pruned"
        return outcome

    def _compact(self, *, final: bool = False) -> None:
        """Merge finished trials' part files: every COMPACT_AT trials and all at a phase's
        end. A failure only leaves the parts, which load all the same."""
        try:
            compact(self.out, final=final)
        except Exception as exc:  # a full disk, a filesystem without hard links, ...
            warning = f"[{self.sweep} {self.phase}] warning: compacting results: {exc}"
            print(warning, file=sys.stderr)

    def _known_epochs(self, tid: str) -> dict[int, dict[str, Any]]:
        """This driver's epochs of ``tid``; after a driver restart, first those on disk."""
        if not self.epochs.get(tid):
            self.epochs[tid] = {e["epoch"]: e for e in read_epochs(self.out, tid)}
        return self.epochs[tid]

    # ---------------------------------------------------------------- progress
    def _ids(self, trial: Any) -> list[str]:
        return member_ids(self.sweep, trial.trial_id, unwrap(trial.config))

    def _arm(self, trial: Any) -> ArmProgress:
        return self._arm_named(arm_label(trial))

    def _arm_named(self, arm: str) -> ArmProgress:
        if arm not in self.arms:  # not in the plan given (a resumed older layout): track it
            self.arms[arm] = ArmProgress(0)
            self.eta.arms[arm] = ArmWork(self.arm_epochs.get(arm, 0.0), 0, 0, arm.rsplit("/", 1)[0])
        return self.arms[arm]

    def _total(self) -> int:
        return sum(a.expected for a in self.arms.values())

    def eta_text(self) -> str:
        """``ETA 4m10s`` (adaptive: ``ETA 4m10s (3m00s to 5m20s)``), or why there is none yet."""
        for name, arm in self.arms.items():
            self.eta.grow(name, arm.expected)
        estimate = self.eta.estimate()
        return estimate.describe() if estimate is not None else "ETA after the first epochs"

    def _update_display(self, force: bool = False) -> None:
        if self.display is not None and self.display.live:
            done = sum(a.done for a in self.arms.values())
            self.display.update(done, self._total(), self.eta_text(), force=force)

    def _progress(self, trial: Any, result: TrialResult) -> None:
        arm = self._arm(trial)
        arm.running.discard(trial.trial_id)
        arm.done += 1
        arm.failed += result.status == "failed"
        s = result.summary()
        if s["best_val_acc"] == s["best_val_acc"] and not arm.best_val >= s["best_val_acc"]:
            arm.best_val = s["best_val_acc"]
        done = sum(a.done for a in self.arms.values())
        running = sum(len(a.running) for a in self.arms.values())
        total = self._total()
        detail = (
            f"error: {result.error}"
            if result.error
            else (f"val {s['final_val_acc']:.3f} test {s['final_test_acc']:.3f}")
        )
        self._say(
            f"[{self.sweep} {self.phase}] {done}/{total} done, {running} running, "
            f"{total - done - running} pending | {arm_label(trial)} seed {result.config.seed}: "
            f"{result.status} {detail} ({result.wall_seconds:.0f}s)"
            f" | arm best val {arm.best_val:.3f} | {self.eta_text()}"
        )
        self._update_display(force=True)

    def _say(self, text: str) -> None:
        if self.display is not None:
            self.display.line(text)
        else:
            print(text, flush=True)

    def print_table(self) -> None:
        self._last_print = time.monotonic()
        elapsed = time.monotonic() - self.started
        left = (
            ""
            if self.arms and all(a.expected == a.done for a in self.arms.values())
            else (f", {self.eta_text()}")
        )
        print(
            f"[{self.sweep} {self.phase}] {elapsed:.0f}s{left}  arm: done/running/pending"
            "  best val",
            flush=True,
        )
        for name, a in self.arms.items():
            pending = a.expected - a.done - len(a.running)
            fails = f"  ({a.failed} failed)" if a.failed else ""
            print(
                f"  {name:<48} {a.done:>3}/{len(a.running):>2}/{pending:<3}"
                f" {a.best_val:.3f}{fails}",
                flush=True,
            )


def last_error(trial: Any) -> str:
    """The last line of the trial's last failure (the exception), from Ray's error file."""
    local = Path(trial.error_file) if trial.error_file else None
    text = local.read_text() if local is not None and local.exists() else trial.get_error()
    last = str(text or "").rsplit("Failure # ", 1)[-1]
    lines = [ln.strip() for ln in last.splitlines() if ln.strip()]
    return lines[-1] if len(lines) > 1 else "unknown error (Ray recorded no traceback)"


def arm_label(trial: Any) -> str:
    return unwrap(trial.config)["meta"]["arm_id"]


def packing(gpu: float) -> int | None:
    """Trials sharing one GPU: 4 for ``gpu: 0.25``; None for CPU-only trials."""
    if gpu <= 0:
        return None
    return round(1 / gpu) if gpu < 1 else 1

"""Compaction: finished trials' part files merged into a few files and swapped in at once.

At no instant does a reader see a row twice or miss one: a reader thread hammers pandas and
``load`` while a writer and a compactor run, and a compacting process is SIGKILLed at each of
its steps. A trial written again replaces its rows, compacted or not. Old plain folders load
and get compacted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from bnorder.results import is_recorded, load, recorded_ids, write_result
from bnorder.results.compaction import FANOUT, TOP_TIER, compact, plan
from bnorder.results.layout import can_exchange, current
from bnorder.results.store import read_epochs, read_trials, write_epochs
from bnorder.train import TrialResult

MakeResult = Callable[..., TrialResult]


def _data_files(out: Path, table: str) -> list[str]:
    return sorted(n for n in os.listdir(out / table) if not n.startswith((".", "_")))


def _check(out: Path, recorded: set[str], running: frozenset[str] | set[str] = frozenset()) -> None:
    """Plain pandas, ``load`` and the recorded-ids test agree: each trial exactly once, each of
    its epochs exactly once (2 per trial)."""
    trials = pd.read_parquet(out / "trials.parquet")
    epochs = pd.read_parquet(out / "epochs.parquet")
    res = load(out)
    for t, e in ((trials, epochs), (res.trials, res.epochs)):
        assert sorted(t.trial_id) == sorted(recorded)
        assert e.groupby("trial_id").epoch.apply(sorted).to_dict() == {
            tid: [1, 2] for tid in recorded | running
        }
    assert recorded_ids(out) == recorded


def test_periodic_then_final_compaction_keeps_every_row_once(
    tmp_path: Path, make_result: MakeResult
) -> None:
    out, written = tmp_path / "out", set()
    for i in range(40):
        write_result(out, make_result(i))
        written.add(f"t{i:04d}")
        compact(out, at=4)  # as the recorder calls it after each trial
        assert sorted(pd.read_parquet(out / "trials.parquet").trial_id) == sorted(written)
    assert len(_data_files(out, "trials.parquet")) < 10  # 40 trials, tiers of 4, 4 and 16
    _check(out, written)
    compact(out, final=True)
    _check(out, written)
    assert [len(_data_files(out, t)) for t in ("trials.parquet", "epochs.parquet")] == [1, 1]
    assert len(os.listdir(out / ".trials.parquet.d")) == 1  # retired generations removed
    # looked up in the compacted files
    assert is_recorded(out, "t0007")
    assert not is_recorded(out, "t9999")
    assert [e["epoch"] for e in read_epochs(out, "t0007")] == [1, 2]
    assert read_epochs(out, "t0007")[1]["val_acc"] == pytest.approx(0.5)
    assert list(read_trials(out, ["t0031", "t9999", "t0002"]).trial_id) == ["t0031", "t0002"]


def test_a_trial_written_again_replaces_its_compacted_rows(
    tmp_path: Path, make_result: MakeResult
) -> None:
    out = tmp_path / "out"
    for i in range(6):
        write_result(out, make_result(i))
    compact(out, final=True)
    write_result(out, make_result(3, acc=0.9))  # a resumed sweep records t0003 again
    _check(out, {f"t{i:04d}" for i in range(6)})
    row = load(out).trials.set_index("trial_id").loc["t0003"]
    assert row.final_val_acc == pytest.approx(0.9)
    write_epochs(out, "t0004", make_result(4, acc=0.7).epochs)
    assert read_epochs(out, "t0004")[1]["val_acc"] == pytest.approx(0.7)
    compact(out, final=True)
    _check(out, {f"t{i:04d}" for i in range(6)})


def test_running_trials_epochs_stay_parts(tmp_path: Path, make_result: MakeResult) -> None:
    out = tmp_path / "out"
    for i in range(5):
        write_result(out, make_result(i))
    running = make_result(9)
    write_epochs(out, running.trial_id, running.epochs[:1])
    compact(out, final=True)
    assert "part-t0009.parquet" in _data_files(out, "epochs.parquet")
    write_epochs(out, running.trial_id, running.epochs)  # its next epoch, after the compaction
    _check(out, {f"t{i:04d}" for i in range(5)}, running={"t0009"})
    write_result(out, running)
    compact(out, final=True)
    _check(out, {f"t{i:04d}" for i in range(5)} | {"t0009"})
    assert len(_data_files(out, "epochs.parquet")) == 1


def _plain_folder(out: Path, scratch: Path, make_result: MakeResult, n: int) -> None:
    """A results folder as older versions wrote it: plain directories of part files."""
    for i in range(n):
        write_result(scratch, make_result(i))
    for table in ("trials.parquet", "epochs.parquet"):
        shutil.copytree(scratch / table, out / table)  # the generation's files, as a directory
    assert not (out / "trials.parquet").is_symlink()


@pytest.mark.skipif(not can_exchange(), reason="no atomic exchange of a folder for a link here")
def test_old_plain_folders_load_and_get_compacted(tmp_path: Path, make_result: MakeResult) -> None:
    out = tmp_path / "old"
    _plain_folder(out, tmp_path / "scratch", make_result, 5)
    expected = {f"t{i:04d}" for i in range(5)}
    _check(out, expected)
    assert is_recorded(out, "t0001")
    write_result(out, make_result(5))  # still written as a part into the plain folder
    compact(out, final=True)
    assert (out / "trials.parquet").is_symlink()
    _check(out, expected | {"t0005"})
    assert len(_data_files(out, "trials.parquet")) == 1


def test_each_row_is_rewritten_at_most_three_times_and_files_stay_few() -> None:
    """The policy as the recorder drives it, 5,000 trials, 64 parts a compaction: O(1)
    rewrites per trial, each compaction bounded (1,024 trials at most), few files."""
    files: dict[str, list[str]] = {}  # compacted file -> its trials
    rewritten: Counter[str] = Counter()
    biggest, most, parts = 0, 0, []
    for i in range(5000):
        parts.append(f"part-{i}")
        groups = plan(parts, {n: len(t) for n, t in files.items()}, final=False, at=64)
        for k, group in enumerate(groups):
            trials = [t for n in group for t in (files.pop(n) if n in files else [n])]
            files[f"c{i}-{k}"] = trials
            rewritten.update(trials)
            biggest = max(biggest, len(trials))
        if groups:
            parts = []
        most = max(most, len(files))
    assert sum(map(len, files.values())) + len(parts) == 5000
    assert max(rewritten.values()) == 1 + TOP_TIER  # parts -> tier 0 -> 1 -> 2, then left alone
    assert biggest <= 64 * FANOUT**TOP_TIER
    assert most <= 5000 // (64 * FANOUT**TOP_TIER) + (FANOUT - 1) * TOP_TIER + 1
    final = plan(parts, {n: len(t) for n, t in files.items()}, final=True, at=64)
    assert len(final) == 1
    assert sum(len(files.get(n, [n])) for n in final[0]) < 64 * FANOUT**TOP_TIER


def test_readers_never_see_a_row_twice_or_miss_one(tmp_path: Path, make_result: MakeResult) -> None:
    """A writer (some trials written twice), a compactor and two readers (plain pandas through
    the link, bnorder's load) at once. Every read holds each trial once: at least those written
    before it began, at most those begun before it ended, each with both epochs. A plain read
    that listed a generation just before a swap may raise FileNotFoundError (documented: read
    again); load never does."""
    out = tmp_path / "out"
    started: list[str] = []
    acked: list[str] = []
    done = threading.Event()
    reads: Counter[str] = Counter()

    def writer() -> None:
        try:
            for i in range(60):
                started.append(f"t{i:04d}")
                write_result(out, make_result(i))
                acked.append(f"t{i:04d}")
                if i % 7 == 6:  # written again, mostly compacted by now: replaced, not doubled
                    write_result(out, make_result(i - 5, acc=0.9))
        finally:
            done.set()

    def compactor() -> None:
        while not done.is_set():
            if not compact(out, at=3):
                time.sleep(0.002)
        compact(out, final=True)

    def reader(plain: bool) -> None:
        while not done.is_set() or reads["final " + str(plain)] < 1:
            final = done.is_set()
            lower = set(acked)
            if not (out / "trials.parquet").exists():
                continue
            try:
                if plain:
                    trials = pd.read_parquet(out / "trials.parquet")
                    epochs = pd.read_parquet(out / "epochs.parquet")
                else:
                    trials, epochs = load(out).trials, load(out).epochs
            except FileNotFoundError:
                if not plain:
                    raise
                reads["plain read raced a swap"] += 1
                continue
            ids = list(trials.trial_id)
            assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
            assert lower <= set(ids) <= set(started)
            per_trial = epochs.groupby("trial_id").epoch.apply(sorted).to_dict()
            assert all(per_trial.get(tid) == [1, 2] for tid in lower)
            assert not epochs.duplicated(["trial_id", "epoch"]).any()
            reads["plain" if plain else "load"] += 1
            reads["final " + str(plain)] += final

    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(f) for f in (writer, compactor)]
        jobs += [pool.submit(reader, plain) for plain in (True, False)]
        for job in jobs:
            job.result()
    print(dict(reads))
    assert reads["plain"] > 0
    assert reads["load"] > 0
    _check(out, {f"t{i:04d}" for i in range(60)})
    assert load(out).trials.set_index("trial_id").final_val_acc["t0001"] == pytest.approx(0.9)


# ------------------------------------------------------------------------ killed compactions
# A compacting process that stops at one step (its own functions wrapped, nothing in bnorder
# knows of tests) so that the test can SIGKILL it there. It imports no torch: ~1 s to start.
CHILD = r"""
import shutil, sys, time
from pathlib import Path
from bnorder.results import compaction, layout

out, step = Path(sys.argv[1]), sys.argv[2]

def pause(*args, **kwargs):
    print("paused", flush=True)
    time.sleep(600)

def before(module, name):
    original = getattr(module, name)
    setattr(module, name, lambda *a, **k: (pause(), original(*a, **k))[1])

def after(module, name):
    original = getattr(module, name)
    setattr(module, name, lambda *a, **k: (original(*a, **k), pause())[0])

def half_removed(path, **kwargs):  # a clean-up killed half-way through a generation
    for p in sorted(Path(path).iterdir())[::2]:
        p.unlink()
    pause()

{
    "merged": lambda: after(compaction, "_merge"),
    "written": lambda: after(compaction, "write_parquet"),
    "locked": lambda: before(compaction, "swap_in"),
    "linked": lambda: before(layout, "_point"),
    "swapped": lambda: after(layout, "_point"),
    "exchanged": lambda: after(layout, "_exchange"),
    "cleaning": lambda: setattr(shutil, "rmtree", half_removed),
}[step]()
compaction.compact(out, final=True)
print("finished without pausing", flush=True)
"""
# step -> whether the trials link has moved by then (the kill hits the trials table's compaction)
STEPS = {
    "merged": False,  # a new generation begun, its file not yet written
    "written": False,  # its compacted file written, not linked
    "locked": False,  # the lock held exclusive, nothing carried over yet
    "linked": False,  # the parts carried over (hard links), the link not yet swapped
    "swapped": True,  # the link swapped, the old generation not yet retired
    "cleaning": True,  # half of a retired generation's files removed
    "exchanged": True,  # an old plain folder exchanged for the link, not yet put away
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, make_result: MakeResult) -> dict[str, Path]:
    """A folder mid-sweep (compacted files, retired generations, parts, a running trial) and
    an old plain one, copied for each kill."""
    made_up = make_result
    base = tmp_path_factory.mktemp("kill")
    live = base / "live"
    for i in range(14):
        write_result(live, made_up(i))
        compact(live, at=3)
    write_epochs(live, "t0099", made_up(99).epochs)  # running
    _plain_folder(base / "plain", base / "scratch", made_up, 14)
    write_epochs(base / "plain", "t0099", made_up(99).epochs)
    return {"live": live, "plain": base / "plain"}


@pytest.mark.parametrize("step", STEPS)
def test_compaction_killed_at_any_step_loses_nothing(
    tmp_path: Path, folders: dict[str, Path], make_result: MakeResult, step: str
) -> None:
    if step == "exchanged" and not can_exchange():
        pytest.skip("no atomic exchange of a folder for a link here")
    out = tmp_path / "out"
    shutil.copytree(folders["plain" if step == "exchanged" else "live"], out, symlinks=True)
    before = current(out, "trials.parquet")
    recorded = {f"t{i:04d}" for i in range(14)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), step],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line == "paused\n", line + proc.stdout.read()
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    assert (current(out, "trials.parquet") != before) == STEPS[step]
    _check(out, recorded, running={"t0099"})
    write_result(out, make_result(20))  # the lock died with the process
    recorded.add("t0020")
    _check(out, recorded, running={"t0099"})
    compact(out, final=True)  # the next compaction finishes the job and cleans up
    _check(out, recorded, running={"t0099"})
    assert _data_files(out, "trials.parquet") == [os.listdir(out / "trials.parquet")[0]]
    assert len(_data_files(out, "epochs.parquet")) == 2  # the finished trials, the running one
    assert sorted(os.listdir(out)) == [
        ".bnorder.lock",
        ".epochs.parquet.d",
        ".trials.parquet.d",
        "epochs.parquet",
        "trials.parquet",
    ]
    assert len(os.listdir(out / ".trials.parquet.d")) == 1

"""How long a sweep has left: an estimate per arm from finished trials and running epochs,
corrected for how many trials run at once. No Ray here: the recorder feeds it events.

Work is counted in *trial-seconds*: one Ray trial running for one second. An arm's speed is
seconds per member-epoch (a fused array of K members that took T seconds for E epochs did K·E
member-epochs in T), measured on its own finished trials and the completed epochs of its
running ones; an arm with neither borrows from arms of its group (the same dataset, arch and
depth: orderings cost alike), then from every arm. The time left is the work left divided by
the average number of trials that ran at once, and never less than the longest running trial
still needs.

With adaptive seeds the number of trials is known only as a range; the estimate is the midpoint
of the two ends (every open comparison stopping at its next look, or all of them going to the
maximum), and both ends are shown.
"""

from __future__ import annotations

import heapq
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ArmWork", "Display", "Estimate", "SweepEta", "duration", "epoch_eta", "use_bar"]


@dataclass
class ArmWork:
    """What an arm runs (``expected`` to ``most`` members of ``epochs`` epochs each) and what
    it has done; ``group`` names the arms whose speed stands in for this one's."""

    epochs: float
    expected: int
    most: int
    group: str
    members: int = 1  # per Ray trial (fused arrays: K); the last seen
    done: int = 0
    seconds: float = 0.0  # trial-seconds spent on finished and running members' epochs
    member_epochs: float = 0.0


@dataclass
class _Running:
    arm: str
    members: int
    epochs: float
    started: float
    epochs_done: int = 0
    last: float = 0.0  # when the last epoch was reported


@dataclass(frozen=True)
class Estimate:
    """Seconds left: ``low`` to ``high`` (equal unless seeds are adaptive), ``mid`` between."""

    low: float
    high: float

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2

    def describe(self) -> str:
        if math.isclose(self.low, self.high, rel_tol=0.05, abs_tol=5):
            return f"ETA {duration(self.mid)}"
        return f"ETA {duration(self.mid)} ({duration(self.low)} to {duration(self.high)})"


@dataclass
class SweepEta:
    """Events in (``start``, ``epoch``, ``finish``, ``skip``), an :class:`Estimate` out."""

    arms: dict[str, ArmWork]
    clock: Callable[[], float] = time.monotonic
    running: dict[str, _Running] = field(default_factory=dict)
    _busy: float = 0.0  # trial-seconds of running trials, integrated up to _mark
    _mark: float | None = None  # when the first trial started
    _first: float | None = None

    # ---------------------------------------------------------------- events
    def start(self, key: str, arm: str, members: int, epochs: float) -> None:
        now = self._advance()
        self._first = now if self._first is None else self._first
        self.running[key] = _Running(arm, members, epochs, now, last=now)
        self.arms[arm].members = members

    def epoch(self, key: str, epoch: int) -> None:
        run = self.running.get(key)
        if run is None or epoch <= run.epochs_done:
            return
        now = self._advance()
        work = self.arms[run.arm]
        work.seconds += now - run.last
        work.member_epochs += (epoch - run.epochs_done) * run.members
        run.epochs_done, run.last = epoch, now

    def finish(self, key: str, members: int | None = None) -> None:
        """A running trial ended (its time after the last epoch counts as its arm's)."""
        run = self.running.pop(key, None)
        if run is None:
            return
        now = self._advance(ending=run)
        work = self.arms[run.arm]
        work.seconds += now - run.last  # the final evaluation and teardown
        work.done += members if members is not None else run.members

    def drop(self, key: str) -> None:
        """A trial that ended without running (recorded before a driver restart)."""
        if self.running.pop(key, None) is not None:
            self._advance()

    def recorded(self, arm: str, seconds: float, epochs: float) -> None:
        """A member finished before this driver started (a resume): its own wall time."""
        work = self.arms[arm]
        work.done += 1
        work.seconds += seconds
        work.member_epochs += epochs

    def grow(self, arm: str, expected: int) -> None:
        """Adaptive seeds added members to an arm."""
        work = self.arms[arm]
        work.expected = max(work.expected, expected)
        work.most = max(work.most, work.expected)

    # ---------------------------------------------------------------- the estimate
    def estimate(self) -> Estimate | None:
        """Seconds left, or None before any epoch has been timed."""
        now = self._advance()
        rates = {a: self._rate(a) for a in self.arms}
        if any(r is None for r in rates.values()):
            return None
        remaining = [
            max(0.0, (r.epochs - r.epochs_done) * r.members * rates[r.arm] - (now - r.last))
            for r in self.running.values()
        ]
        in_flight = dict.fromkeys(self.arms, 0)
        for r in self.running.values():
            in_flight[r.arm] += r.members
        known = [w.epochs for w in self.arms.values() if w.epochs > 0]
        epochs = {a: w.epochs or sum(known) / max(len(known), 1) for a, w in self.arms.items()}
        parallel = self.concurrency(now)
        slots = max(1, round(parallel), len(self.running))
        ends = []
        for most in (False, True):
            pending = {
                a: -(-max(0, (w.most if most else w.expected) - w.done - in_flight[a]) // w.members)
                for a, w in self.arms.items()
            }
            seconds = {a: w.members * epochs[a] * rates[a] for a, w in self.arms.items()}
            # arms take turns, as a grid's trials interleave; each trial goes to the first free
            # slot; the gaps between trials (concurrency below the slots) stretch the result
            end = _schedule(remaining, pending, seconds, slots)
            ends.append(end * max(1.0, slots / parallel) if any(pending.values()) else end)
        return Estimate(*ends)

    def concurrency(self, now: float | None = None) -> float:
        """Trials running at once, on average since the first started (at least 1)."""
        now = self._advance() if now is None else now
        if self._first is None or now - self._first < 1e-9:
            return max(1.0, float(len(self.running)))
        return max(1.0, self._busy / (now - self._first))

    def _rate(self, arm: str) -> float | None:
        """Trial-seconds per member-epoch: the arm's own, its group's, or every arm's."""
        own = self.arms[arm]
        for pool in (
            [own],
            [w for w in self.arms.values() if w.group == own.group],
            list(self.arms.values()),
        ):
            epochs = sum(w.member_epochs for w in pool)
            if epochs > 0:
                return sum(w.seconds for w in pool) / epochs
        return None

    def _advance(self, ending: _Running | None = None) -> float:
        now = self.clock()
        if self._mark is not None:
            self._busy += (now - self._mark) * (len(self.running) + (ending is not None))
        self._mark = now
        return now


EXACT_UP_TO = 2048  # pending trials simulated one by one; beyond, all but the last few levelled


def _schedule(
    running: list[float], pending: dict[str, int], seconds: dict[str, float], slots: int
) -> float:
    """When the last pending trial ends, the arms taking turns (``pending`` trials per arm of
    ``seconds`` each). Up to EXACT_UP_TO trials, each is placed on the first free slot; beyond,
    the estimate is asked once per finished trial and that would cost O(N) each (O(N²) over a
    sweep), so all but the last ``2 * slots + 64`` are spread evenly over the slots (water
    filling, which greedy placement matches to within one trial), and those last are placed
    one by one: O(arms + slots) per estimate."""
    total = sum(pending.values())
    if total <= EXACT_UP_TO:
        order = [
            a for k in range(max(pending.values(), default=0)) for a in pending if k < pending[a]
        ]
        return _makespan(running, [seconds[a] for a in order], slots)
    tail: list[str] = []  # the round-robin order's last trials, latest first
    k, keep = max(pending.values()) - 1, 2 * slots + 64
    while len(tail) < keep and k >= 0:
        tail += [a for a in reversed(list(pending)) if k < pending[a]][: keep - len(tail)]
        k -= 1
    head = sum(n * seconds[a] for a, n in pending.items()) - sum(seconds[a] for a in tail)
    return _makespan(_level(running, slots, head), [seconds[a] for a in reversed(tail)], slots)


def _level(running: list[float], slots: int, work: float) -> list[float]:
    """Each slot's free time once ``work`` trial-seconds are poured into the earliest free."""
    free = sorted(running) + [0.0] * max(0, slots - len(running))
    free.sort()
    filled, level = 0.0, free[0]
    for i, f in enumerate(free):  # raise the lowest i slots to the next one's time
        if filled + i * (f - level) >= work:
            break
        filled, level = filled + i * (f - level), f
    else:
        i = len(free)
    level += (work - filled) / max(i, 1)
    return [max(f, level) for f in free]


def _makespan(running: list[float], trials: list[float], slots: int) -> float:
    """When the last of ``trials`` ends, each started on the first free of ``slots`` slots,
    some of which are busy for ``running`` seconds."""
    free = sorted(running) + [0.0] * max(0, slots - len(running))
    heapq.heapify(free)
    end = max(running, default=0.0)
    for seconds in trials:
        start = heapq.heappop(free)
        end = max(end, start + seconds)
        heapq.heappush(free, start + seconds)
    return end


def duration(seconds: float) -> str:
    """``45s``, ``4m10s``, ``2h05m``."""
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def epoch_eta(elapsed: float, done: int, total: int) -> str:
    """``bnorder train``'s per-epoch estimate: the epochs so far predict the rest."""
    if done <= 0 or done >= total:
        return ""
    return f"ETA {duration(elapsed / done * (total - done))}"


def use_bar(stream: object = None) -> bool:
    """A live bar only on a terminal; plain lines in CI, logs and ``ray job logs``."""
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class Display:
    """A tqdm bar (done/total, elapsed, ETA) on a terminal, with trial lines printed above it;
    plain lines otherwise. Not picklable state: make one per driver run."""

    def __init__(self, label: str, total: int, *, bar: bool | None = None) -> None:
        self.label = label
        self._bar = None
        if use_bar() if bar is None else bar:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label,
                unit="trial",
                # a terminal that reports no width (some ptys) would get an empty bar
                ncols=shutil.get_terminal_size((100, 20)).columns or 100,
                bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed} elapsed{postfix}",
            )
        self._refreshed = 0.0

    @property
    def live(self) -> bool:
        return self._bar is not None

    def line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def update(self, done: int, total: int, eta: str, *, force: bool = False) -> None:
        """Move the bar (at most once a second unless ``force``); no-op without a bar."""
        if self._bar is None or (not force and time.monotonic() - self._refreshed < 1.0):
            return
        self._refreshed = time.monotonic()
        self._bar.total = max(total, done)
        self._bar.n = done
        self._bar.set_postfix_str(eta, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

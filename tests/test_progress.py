"""The sweep ETA on simulated schedules (a fake clock, seeded durations) and its display."""

from __future__ import annotations

import heapq
import io
import random
from dataclasses import dataclass

import pytest

from bnorder import progress
from bnorder.progress import ArmWork, Display, Estimate, SweepEta, duration, epoch_eta


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(
    jobs: list[tuple[str, float]], epochs: int, slots: int, check_after: int, members: int = 1
) -> tuple[float, float]:
    """Run ``jobs`` (arm, seconds) in order on ``slots`` slots with a fake clock; return the
    estimated and the true seconds left when ``check_after`` trials have finished."""
    arms = {a for a, _ in jobs}
    clock = Clock()
    eta = SweepEta(
        {
            a: ArmWork(
                epochs=epochs,
                expected=sum(j[0] == a for j in jobs) * members,
                most=sum(j[0] == a for j in jobs) * members,
                group=a.rsplit("/", 1)[0],
            )
            for a in arms
        },
        clock=clock,
    )
    events: list[tuple[float, int, str, int]] = []  # (time, order, key, epoch or -1 = end)
    queue = list(enumerate(jobs))
    finished, estimate, order = 0, None, 0

    def launch() -> None:
        nonlocal order
        k, (arm, seconds) = queue.pop(0)
        eta.start(f"t{k}", arm, members, epochs)
        for e in range(1, epochs + 1):
            heapq.heappush(events, (clock.now + seconds * e / epochs, order, f"t{k}", e))
            order += 1
        heapq.heappush(events, (clock.now + seconds + 0.01, order, f"t{k}", -1))
        order += 1

    for _ in range(slots):
        launch()
    while events:
        clock.now, _, key, epoch = heapq.heappop(events)
        if epoch > 0:
            eta.epoch(key, epoch)
            continue
        eta.finish(key)
        finished += 1
        if queue:
            launch()
        if finished == check_after:
            estimate = eta.estimate()
            checked_at = clock.now
    assert estimate is not None
    return estimate.mid, clock.now - checked_at


def test_eta_after_a_quarter_lands_near_the_end() -> None:
    """Two kinds of arm ten times apart in cost, noisy durations in an order the estimate cannot
    know, two slots: made after a quarter of the trials, the estimate is within 25% of the true
    time left on every schedule, and within 10% on the median one."""
    ratios = []
    for seed in range(8):
        rng = random.Random(seed)
        jobs = [
            (f"fm/{arch}/d4/{o}", base * rng.uniform(0.8, 1.2))
            for arch, base in (("mlp", 4.0), ("cnn", 40.0))
            for o in ("a", "b", "c")
            for _ in range(5)
        ]
        rng.shuffle(jobs)
        estimated, actual = simulate(jobs, epochs=3, slots=2, check_after=len(jobs) // 4)
        ratios.append(estimated / actual)
    assert all(0.75 < r < 1.25 for r in ratios), ratios
    assert sorted(ratios)[len(ratios) // 2] == pytest.approx(1.0, abs=0.1)


def test_eta_uses_running_epochs_of_an_arm_with_nothing_finished() -> None:
    clock = Clock()
    eta = SweepEta({"d/cnn/d4/a": ArmWork(epochs=4, expected=3, most=3, group="d/cnn/d4")}, clock)
    assert eta.estimate() is None  # nothing timed yet
    eta.start("t0", "d/cnn/d4/a", 1, 4)
    clock.now = 10.0
    eta.epoch("t0", 1)  # 10 s per epoch
    est = eta.estimate()
    assert est is not None
    # t0 needs 30 s more; two pending trials of 40 s on the one slot seen so far
    assert est.mid == pytest.approx(30 + 80)


def test_arms_without_timings_borrow_from_their_group() -> None:
    clock = Clock()
    arms = {
        "d/cnn/d4/a": ArmWork(epochs=2, expected=1, most=1, group="d/cnn/d4"),
        "d/cnn/d4/b": ArmWork(epochs=2, expected=2, most=2, group="d/cnn/d4"),
        "d/mlp/d4/a": ArmWork(epochs=2, expected=2, most=2, group="d/mlp/d4"),
    }
    eta = SweepEta(arms, clock)
    for key, arm, seconds in (("m", "d/mlp/d4/a", 1.0), ("c", "d/cnn/d4/a", 20.0)):
        eta.start(key, arm, 1, 2)
        clock.now += seconds
        eta.epoch(key, 2)
        eta.finish(key)
    est = eta.estimate()
    assert est is not None
    # cnn/b: 2 trials at cnn/a's 20 s; mlp/a: 1 more at 1 s; one at a time
    assert est.mid == pytest.approx(2 * 20 + 1, rel=1e-6)


def test_the_work_left_is_scheduled_on_the_slots_seen() -> None:
    clock = Clock()
    eta = SweepEta({"x/y/d1/a": ArmWork(epochs=1, expected=10, most=10, group="x/y/d1")}, clock)
    for k in range(4):  # four at once, 8 s each
        eta.start(f"t{k}", "x/y/d1/a", 1, 1)
    clock.now = 8.0
    for k in range(4):
        eta.epoch(f"t{k}", 1)
        eta.finish(f"t{k}")
    est = eta.estimate()
    assert est is not None
    assert eta.concurrency() == pytest.approx(4.0)
    assert est.mid == pytest.approx(2 * 8)  # 6 trials on 4 slots: two rounds, not 6 * 8 / 4


@pytest.mark.parametrize("seed", range(20))
def test_many_pending_trials_are_levelled_within_one_trial_of_the_exact_schedule(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_UP_TO pending trials the estimate spreads all but the last few evenly (asked
    once per finished trial, the one-by-one placement made a sweep O(N²)): it stays within one
    trial of placing every trial on the first free slot."""
    rng = random.Random(seed)
    slots = rng.randint(1, 40)
    pending = {f"a{i}": rng.randint(0, 400) for i in range(rng.randint(1, 12))}
    seconds = {a: rng.uniform(1, 30) for a in pending}
    running = [rng.uniform(0, 30) for _ in range(rng.randint(0, slots))]
    exact = progress._schedule(running, pending, seconds, slots)
    monkeypatch.setattr(progress, "EXACT_UP_TO", 0)
    levelled = progress._schedule(running, pending, seconds, slots)
    assert levelled == pytest.approx(exact, abs=max(seconds.values()))


def test_fused_arrays_count_member_epochs() -> None:
    """A fused array of 4 members taking 20 s does 4 trials' work: 5 s per member."""
    clock = Clock()
    eta = SweepEta({"x/y/d1/a": ArmWork(epochs=2, expected=8, most=8, group="x/y/d1")}, clock)
    eta.start("f0", "x/y/d1/a", 4, 2)
    clock.now = 20.0
    eta.epoch("f0", 2)
    eta.finish("f0")
    est = eta.estimate()
    assert est is not None
    assert eta.arms["x/y/d1/a"].done == 4
    assert est.mid == pytest.approx(4 * 5.0)


def test_adaptive_seeds_give_a_range() -> None:
    clock = Clock()
    eta = SweepEta({"x/y/d1/a": ArmWork(epochs=1, expected=3, most=7, group="x/y/d1")}, clock)
    eta.start("t0", "x/y/d1/a", 1, 1)
    clock.now = 10.0
    eta.epoch("t0", 1)
    eta.finish("t0")
    est = eta.estimate()
    assert est is not None
    assert (est.low, est.high) == pytest.approx((20.0, 60.0))
    assert est.mid == pytest.approx(40.0)
    assert est.describe() == "ETA 40s (20s to 1m00s)"
    eta.grow("x/y/d1/a", 5)  # the rule asked for two more seeds
    assert eta.estimate().low == pytest.approx(40.0)


def test_a_resumed_driver_times_from_recorded_rows() -> None:
    eta = SweepEta({"x/y/d1/a": ArmWork(epochs=2, expected=4, most=4, group="x/y/d1")}, Clock())
    eta.recorded("x/y/d1/a", seconds=12.0, epochs=2)
    eta.recorded("x/y/d1/a", seconds=8.0, epochs=2)
    est = eta.estimate()
    assert est is not None
    assert est.mid == pytest.approx(2 * 10.0)


def test_duration_and_epoch_eta_wording() -> None:
    assert [duration(s) for s in (0.4, 45, 250, 7500)] == ["0s", "45s", "4m10s", "2h05m"]
    assert epoch_eta(30.0, 1, 4) == "ETA 1m30s"
    assert epoch_eta(30.0, 4, 4) == ""
    assert Estimate(10, 10).describe() == "ETA 10s"


def test_display_writes_plain_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    display = Display("[s grid]", 4)  # pytest's stdout is not a terminal
    assert not display.live
    display.update(1, 4, "ETA 3s")
    display.line("[s grid] 1/4 done | ETA 3s")
    display.close()
    assert capsys.readouterr().out == "[s grid] 1/4 done | ETA 3s\n"


def test_display_bar_on_a_terminal_shows_done_total_and_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    display = Display("[s grid]", 4, bar=True)
    display.update(2, 6, "ETA 3s", force=True)
    display.close()
    assert "[s grid] 2/6 |" in err.getvalue()
    assert "elapsed, ETA 3s" in err.getvalue()

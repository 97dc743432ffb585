"""One driver per results folder: the takeover rules of the lock file, and two real drivers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from bnorder.errors import ConfigError
from bnorder.tune.driver_lock import LEASE_S, LOCK_FILE, DriverLock, Holder, is_dead


def _write(out: Path, holder: Holder) -> None:
    (out / LOCK_FILE).write_text(json.dumps(asdict(holder)))


def _holder(**changes: object) -> Holder:
    """This process as a lock holder, with ``changes``."""
    return replace(Holder.me(), token="theirs", **changes)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def test_a_free_folder_is_taken_and_released(tmp_path: Path) -> None:
    with DriverLock(tmp_path) as lock:
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        assert (held["host"], held["pid"]) == (socket.gethostname(), os.getpid())
        assert lock.took_over is None
    assert not (tmp_path / LOCK_FILE).exists()


LIVE: dict[str, Callable[[], Holder]] = {
    "same-machine-alive": lambda: _holder(),  # this very process: alive, same start time
    "other-host-fresh": lambda: _holder(host="elsewhere", lease=time.time() - 5),
    "other-host-clock-ahead": lambda: _holder(host="elsewhere", lease=time.time() + 30),
    # a container with its own PID namespace on this host: its pids mean nothing here
    "other-pidns": lambda: _holder(pidns="pid:[1]", pid=_dead_pid(), lease=time.time() - 5),
}
DEAD: dict[str, Callable[[], Holder]] = {
    "dead-pid": lambda: _holder(pid=_dead_pid()),  # same machine, no such process
    "reused-pid": lambda: _holder(started="1"),  # the pid names a process started later
    "rebooted": lambda: _holder(boot="another-boot", lease=time.time() - LEASE_S - 1),
    "other-host-stale-lease": lambda: _holder(host="elsewhere", lease=time.time() - LEASE_S - 1),
}


@pytest.mark.parametrize("case", LIVE)
def test_a_live_holder_refuses_with_host_and_pid(tmp_path: Path, case: str) -> None:
    holder = LIVE[case]()
    _write(tmp_path, holder)
    with pytest.raises(ConfigError) as err:
        DriverLock(tmp_path).acquire()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"--out: '{tmp_path}' is in use by another sweep driver")
    assert f"pid {holder.pid} on host {holder.host}" in message
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == "theirs"  # untouched


@pytest.mark.parametrize("case", DEAD)
def test_a_dead_holder_is_taken_over(tmp_path: Path, case: str) -> None:
    holder = DEAD[case]()
    _write(tmp_path, holder)
    with DriverLock(tmp_path) as lock:
        assert lock.took_over == holder
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid()
        assert held["token"] == lock.me.token
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_zombie_is_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{proc.pid}/stat")
    try:
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.02)  # until it exits: then a zombie, not reaped before wait() below
        assert is_dead(_holder(pid=proc.pid), Holder.me(), time.time())
    finally:
        proc.wait()


def test_an_unreadable_lock_is_a_driver_starting_until_it_is_old(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("")  # created, not yet written
    with pytest.raises(ConfigError, match="is being taken by another sweep driver starting now"):
        DriverLock(tmp_path).acquire()
    old = time.time() - LEASE_S - 1
    os.utime(tmp_path / LOCK_FILE, (old, old))  # its creator died before writing
    with DriverLock(tmp_path) as lock:
        assert lock.took_over is None
        assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == lock.me.token


def test_renewal_refreshes_the_lease_and_notices_a_takeover(tmp_path: Path) -> None:
    lost: list[Holder] = []
    lock = DriverLock(tmp_path, on_lost=lost.append).acquire()
    try:
        first = json.loads((tmp_path / LOCK_FILE).read_text())["lease"]
        time.sleep(0.01)
        assert lock.renew()
        assert json.loads((tmp_path / LOCK_FILE).read_text())["lease"] > first
        thief = _holder(host="elsewhere")
        _write(tmp_path, thief)  # another driver judged this one dead and took over
        assert not lock.renew()
        assert lost == [thief]
    finally:
        lock.release()
    assert (tmp_path / LOCK_FILE).exists()  # the other driver's lock is left alone


def test_dry_run_takes_no_lock(sweep_file: Callable[..., Path], tmp_path: Path) -> None:
    from bnorder.cli import main

    out = tmp_path / "out"
    out.mkdir()
    with DriverLock(out) as lock:
        assert main(["sweep", str(sweep_file(GRID)), "--out", str(out), "--dry-run"]) == 0
        assert json.loads((out / LOCK_FILE).read_text())["token"] == lock.me.token


GRID = """
name: locked
mode: grid
datasets: [synthetic]
archs: [mlp]
orderings: [case1]
fixed: {depth: 1, width: 4, epochs: 1, device: cpu}
seeds: 1
"""

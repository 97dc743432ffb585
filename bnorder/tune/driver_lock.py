"""One sweep driver per results folder: a lock file that works on NFS and dies with its holder.

Two drivers on one folder would restore the same Ray experiment and train the same trials into
the same checkpoints, so a second driver stops with a one-line error naming the first. fcntl and
flock locks are unreliable on NFS, so the lock is a file, ``<out>/driver.lock``, created with
``O_CREAT | O_EXCL`` (atomic on local disks and on NFSv3 and later) and holding the driver's
host, pid, process start time, boot and PID-namespace ids, and a lease the driver renews every
``REFRESH_S`` seconds. A driver killed with SIGKILL cannot remove it, so the next driver decides
whether the holder is provably dead and, if so, takes the lock over:

1. **Same machine** (same hostname, boot id and PID namespace): the holder is alive exactly when
   its pid exists, is not a zombie and started when the lock says (a pid reused by another
   process has another start time). A dead holder is taken over at once.
2. **Another machine** (or a container with its own PID namespace): its pid cannot be checked
   from here, so it is alive while its lease is fresh, i.e. renewed less than ``LEASE_S``
   seconds ago by this machine's clock (clocks are assumed within a few seconds, as NTP keeps
   them; a lease from the future counts as fresh). A driver on a machine that died, or cut off
   from the filesystem for longer than the lease, is taken over after ``LEASE_S``.
3. **Unreadable** (a driver between creating and writing the file, or one that died there):
   held while the file is younger than ``LEASE_S``, by its modification time.

Takeovers are serialised by a second ``O_EXCL`` file; the winner replaces the stale lock only if
it is still the one judged dead (write to a temporary name, then rename). A holder whose lock was
taken over anyway (it was stopped, or cut off, for longer than the lease) notices at its next
renewal and stops at once rather than write into a folder another driver holds. A driver that
ends in any other way (finished, raised, Ctrl-C) removes the file.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from bnorder.errors import ConfigError
from bnorder.results.store import check_writable

__all__ = ["LOCK_FILE", "DriverLock", "Holder", "hold", "is_dead"]

LOCK_FILE = "driver.lock"
LEASE_S = 60.0  # another machine's driver counts as dead when its lease is this old
REFRESH_S = 10.0  # renewal period: a holder misses 5 renewals before its lease runs out


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written in the lock file."""

    host: str
    pid: int
    started: str | None  # the process's start (Linux: clock ticks after boot); None elsewhere
    boot: str | None  # boot id: a reboot is another machine as far as pids go
    pidns: str | None  # PID namespace: containers sharing a hostname do not share pids
    token: str  # this acquisition: tells a lock taken over from the one this driver wrote
    since: float  # when it was acquired (wall clock, seconds)
    lease: float  # when it was last renewed (wall clock, seconds)

    @classmethod
    def me(cls) -> Holder:
        now = time.time()
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _start_time(pid), _boot_id(), _pid_ns(), "", now, now)

    def same_machine(self, other: Holder) -> bool:
        return (self.host, self.boot, self.pidns) == (other.host, other.boot, other.pidns)

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since).strftime("%Y-%m-%d %H:%M:%S")
        return f"pid {self.pid} on host {self.host}, running since {since}"


def is_dead(holder: Holder, me: Holder, now: float) -> bool:
    """The takeover rule (module docstring): True when ``holder`` is provably not running."""
    if holder.same_machine(me):
        if not _alive(holder.pid):
            return True
        started = _start_time(holder.pid)
        return None not in (started, holder.started) and started != holder.started
    return now - holder.lease >= LEASE_S


class DriverLock:
    """The lock on one results folder; :func:`hold` is the usual way in.

    Args:
        out: the results folder (it must exist).
        on_lost: called (from the renewal thread) if another driver took the lock over; by
            default prints why and ends this process at once.
    """

    def __init__(self, out: Path, *, on_lost: Callable[[Holder], None] | None = None) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_FILE
        self.on_lost = on_lost or _stop_now
        self.me = Holder.me()
        self.took_over: Holder | None = None  # the dead driver this one replaced, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- acquire / release
    def acquire(self) -> DriverLock:
        """Take the lock, or raise ConfigError naming the live driver that holds it."""
        for _ in range(20):  # a few rounds: another driver may be creating or taking over
            self.me = Holder(**{**asdict(Holder.me()), "token": uuid.uuid4().hex})
            if self._create():
                break
            holder = self._read()
            if holder is None:
                if self._age() < LEASE_S:
                    time.sleep(0.1)  # being written right now, or by a driver that just died
                    continue
            elif not is_dead(holder, self.me, time.time()):
                raise self._busy(holder)
            if self._take_over(holder):
                self.took_over = holder
                break
        else:  # still unreadable, or another driver is taking the dead one's lock over
            raise self._busy_starting()
        self._thread = threading.Thread(target=self._renew_loop, name="bnorder-lock", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop renewing and remove the lock file if it is still this driver's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._read()
        if holder is not None and holder.token == self.me.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> DriverLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ---------------------------------------------------------------- renewal
    def renew(self) -> bool:
        """Renew the lease; False (and ``on_lost``) when another driver holds the lock now."""
        try:
            text = self.path.read_text()  # an OSError (NFS away) is retried next period
        except FileNotFoundError:
            text = None
        if text is None and self._create():
            return True  # removed by hand meanwhile: this driver still runs, so it holds it
        holder = self._read() if text is None else _parse(text)
        if holder is None:
            return True  # being written by another driver's create: judged next period
        if holder.token != self.me.token:
            self.on_lost(holder)
            return False
        self.me = Holder(**{**asdict(self.me), "lease": time.time()})
        self._replace(self.me)
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                if not self.renew():
                    return
            except OSError as exc:  # e.g. NFS unreachable for a moment: try again next period
                print(f"bnorder: warning: cannot renew {self.path}: {exc}", file=sys.stderr)

    # ---------------------------------------------------------------- files
    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(asdict(self.me)))
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _read(self) -> Holder | None:
        try:
            return _parse(self.path.read_text())
        except OSError:
            return None

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _replace(self, holder: Holder) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{LOCK_FILE}-", dir=self.out)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(asdict(holder)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _take_over(self, dead: Holder | None) -> bool:
        """Replace the dead holder's lock, if no other driver is doing so or has done so."""
        gate = self.path.with_name(LOCK_FILE + ".takeover")
        try:
            os.close(os.open(gate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            try:
                if time.time() - gate.stat().st_mtime >= LEASE_S:
                    gate.unlink()  # its owner died mid-takeover
            except FileNotFoundError:
                pass
            time.sleep(0.1)
            return False
        try:
            if self._read() != dead:  # changed meanwhile: judge the new holder afresh
                return False
            self._replace(self.me)
            return True
        finally:
            gate.unlink(missing_ok=True)

    # ---------------------------------------------------------------- errors
    def _busy(self, holder: Holder) -> ConfigError:
        return ConfigError(
            "--out",
            str(self.out),
            f"{{value}} is in use by another sweep driver ({holder.describe()})",
            hint="wait for it to finish, or stop it first (a driver that died is taken over "
            "automatically)",
        )

    def _busy_starting(self) -> ConfigError:
        return ConfigError(
            "--out",
            str(self.out),
            "{value} is being taken by another sweep driver starting now",
            hint=f"try again in a minute; remove {self.path} if no driver runs on it",
        )


@contextmanager
def hold(out: Path) -> Iterator[DriverLock]:
    """Hold ``out`` for this driver while the block runs; creates ``out`` if needed.

    Example:
        >>> with hold(Path("results/quickstart")):  # doctest: +SKIP
        ...     run_the_sweep()

    Raises:
        ConfigError: another live driver holds ``out`` (its host and pid are named), or ``out``
            cannot be written.
    """
    check_writable(out, field="--out")
    out.mkdir(parents=True, exist_ok=True)
    with DriverLock(out) as lock:
        if lock.took_over is not None:
            print(f"[{out}] took over the lock of a driver that died ({lock.took_over.describe()})")
        yield lock


def _parse(text: str) -> Holder | None:
    try:
        return Holder(**json.loads(text))
    except (ValueError, TypeError):
        return None


def _stop_now(holder: Holder) -> None:
    print(
        f"bnorder sweep: error: another driver ({holder.describe()}) took over this results "
        "folder while this one was unresponsive; stopping this driver",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)  # at once: any further write would land in a folder another driver holds


# ---------------------------------------------------------------- this machine's processes
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    stat = _stat(pid)
    return stat is None or stat[0] not in ("Z", "X")  # a zombie is dead, only not yet reaped


def _start_time(pid: int) -> str | None:
    stat = _stat(pid)
    return stat[19] if stat is not None and len(stat) > 19 else None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (Linux); None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _pid_ns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None

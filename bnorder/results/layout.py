"""Where a results table's files live, and how a set of them is replaced at once.

``<out>/trials.parquet`` is a symbolic link to a *generation*, ``<out>/.trials.parquet.d/g000007/``:
compacted files (``c000007-00.parquet``, many trials each) and the part files written since
(``part-<trial_id>.parquet``, one trial each). No trial_id is in two of them. A file in a
generation never changes, except that a part may be replaced whole by a rename (a running trial's
epochs, one more each time). A compaction builds the next generation beside it (new files, hard
links to the rest) and points the link at it with one rename(2): a reader of the link sees one
generation or the other, never both. A retired generation is removed no sooner than half a
second later (:func:`clean`), when a reader that was listing it has long finished. The first
generation is linked only once it holds its first file (:func:`start`): never an empty table.

The writing rule: a writer holds ``<out>/.bnorder.lock`` *shared* while it resolves the link and
renames its part in; whoever swaps generations holds it *exclusive* while it hard-links the parts
written since it began into the new one and swaps. So a part lands before a swap (and is carried
over) or after it (in the new generation), never in a generation already left behind. Readers take
no lock.

A folder of an older version is a plain directory of parts; its first compaction exchanges it for
the link in one ``renameat2(RENAME_EXCHANGE)`` (Linux; ``renamex_np`` on macOS). Where neither
exists it is left as it is: it still loads, uncompacted.

Plain ``pandas.read_parquet(<out>/trials.parquet)`` lists the folder, then opens each file by its
path *through the link*: if a swap falls between the two, a listed file may be gone from the new
generation and the read raises ``FileNotFoundError`` (read again). It never returns a row twice
or misses one. bnorder's own readers resolve the link first and retry (:func:`retrying`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "EPOCHS",
    "TRIALS",
    "can_exchange",
    "clean",
    "current",
    "generations",
    "locked",
    "new_generation",
    "number",
    "part_name",
    "retrying",
    "stamp",
    "start",
    "swap_in",
    "trial_of",
    "write_parquet",
]

TRIALS, EPOCHS = "trials.parquet", "epochs.parquet"
LOCK_FILE = ".bnorder.lock"
_GEN = re.compile(r"g(\d{6,})")
_THREADS = threading.Lock()
_UMASK = os.umask(0)
os.umask(_UMASK)
T = TypeVar("T")


def part_name(trial_id: str) -> str:
    return f"part-{trial_id}.parquet"


def trial_of(name: str) -> str | None:
    """The trial_id of a part file's name; None for any other file."""
    if name.startswith("part-") and name.endswith(".parquet"):
        return name[len("part-") : -len(".parquet")]
    return None


def generations(out: Path, table: str) -> Path:
    return out / f".{table}.d"


@contextlib.contextmanager
def locked(out: Path, *, exclusive: bool) -> Iterator[None]:
    """The results folder's lock: shared for writing a part, exclusive for a swap. Never taken
    twice by one thread. Where the filesystem has no locks (NFS without its lock manager) only
    this process's threads are excluded: one driver per folder (driver.lock) keeps sweeps safe."""
    out.mkdir(parents=True, exist_ok=True)
    # threads in turn: NFS emulates flock with POSIX locks, which belong to the whole process
    with _THREADS:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
            yield
        finally:
            os.close(fd)  # releases the lock; so does the process's death


def current(out: Path, table: str) -> Path | None:
    """The folder that holds ``table`` now: the linked generation, a plain folder of an older
    version, or None."""
    link = out / table
    try:
        return out / os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a link
            raise
    return link if link.is_dir() else None


def start(out: Path, table: str, name: str, rows: pa.Table) -> bool:
    """Create ``table`` with its first file: a generation holding it, then the link, so that
    no reader finds the table empty. Hold :func:`locked`. False if another writer linked its
    own first (write into that one then)."""
    gen = new_generation(out, table)
    write_parquet(gen, name, rows)
    try:
        os.symlink(os.path.relpath(gen, out), out / table)
    except FileExistsError:
        _remove(gen)
        return False
    return True


def new_generation(out: Path, table: str) -> Path:
    """A new, empty generation folder, numbered after every one there."""
    root = generations(out, table)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # a concurrent builder may take a number first
        taken = [int(m.group(1)) for p in root.iterdir() if (m := _GEN.fullmatch(p.name))]
        try:
            gen = root / f"g{max(taken, default=0) + 1:06d}"
            gen.mkdir()
            return gen
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free generation number", str(root))


def number(folder: Path) -> int:
    """A generation's number; 0 for a plain folder of an older version."""
    m = _GEN.fullmatch(folder.name)
    return int(m.group(1)) if m else 0


# a part holds one trial's rows, read whole and soon merged: per-column statistics and
# dictionaries were a quarter of its write (~70 columns, one row) and serve no reader; the
# compacted files it is merged into have both
PART_OPTIONS: dict[str, object] = {"write_statistics": False, "use_dictionary": False}


def write_parquet(folder: Path, name: str, table: pa.Table, **options: object) -> Path:
    """Write ``folder/name`` whole or not at all: a hidden temporary file, flushed to disk, then
    renamed into place (pyarrow skips names that start with ``.``). A part file is written with
    :data:`PART_OPTIONS` unless ``options`` say otherwise."""
    if trial_of(name) is not None:
        options = {**PART_OPTIONS, **options}
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh, **options)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / name


def stamp(path: Path) -> tuple[int, int, int, int]:
    """Identifies one version of a file: a part replaced by a rename gets a new inode."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def swap_in(
    out: Path, table: str, base: Path, gen: Path, *, dropped: set[str], read: dict[str, tuple]
) -> bool:
    """Make ``gen`` current in place of ``base``: hard-link into it every data file of ``base``
    but ``dropped`` (and those ``gen`` has already), then swap the link. Hold :func:`locked`
    exclusive. False, and nothing changed, when ``base`` is no longer current or a file read
    (name -> :func:`stamp` when read) was replaced since."""
    if current(out, table) != base:
        return False
    for name, seen in read.items():
        try:
            if stamp(base / name) != seen:
                return False
        except FileNotFoundError:
            return False
    have = set(os.listdir(gen))
    for name in os.listdir(base):
        if name in dropped or name in have or name.startswith((".", "_")):
            continue
        os.link(base / name, gen / name)
    _fsync_dir(gen)
    retired = _point(out, table, gen)
    os.utime(retired)  # retired now: clean() counts from here
    return True


def _point(out: Path, table: str, gen: Path) -> Path:
    """Link ``out/table`` to ``gen`` in one rename; returns the folder it left."""
    link, tmp = out / table, out / f".{table}.swap"
    _remove(tmp)  # left by a swap killed half-way
    os.symlink(os.path.relpath(gen, out), tmp)
    if link.is_symlink():
        retired = out / os.readlink(link)
        os.replace(tmp, link)
    else:  # a plain folder of an older version: exchanged, then kept as a retired generation
        if not _exchange(tmp, link):
            _remove(tmp)
            raise OSError(errno.ENOTSUP, "no atomic exchange here; left uncompacted", str(link))
        retired = generations(out, table) / "g000000"
        os.rename(tmp, retired)
    _fsync_dir(out)
    return retired


def can_exchange() -> bool:
    """Whether this system can swap a folder for a link atomically (to upgrade old folders)."""
    return _exchanger() is not None


def _exchanger() -> Callable[[bytes, bytes], int] | None:
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "renameat2"):  # Linux >= 3.15, glibc >= 2.28
        return lambda a, b: libc.renameat2(-100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
    if sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        return lambda a, b: libc.renamex_np(a, b, 2)  # RENAME_SWAP
    return None


def _exchange(a: Path, b: Path) -> bool:
    swap = _exchanger()
    if swap is None:
        return False
    if swap(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def clean(out: Path, table: str, *, grace_s: float) -> None:
    """Remove generations retired (or, killed half-built, last written) ``grace_s`` ago or more,
    and a swap's leftovers. Hold :func:`locked` exclusive."""
    now, keep = time.time(), current(out, table)
    _remove(out / f".{table}.swap")
    root = generations(out, table)
    if not root.is_dir() or keep is None or keep.parent != root:
        return
    for entry in os.scandir(root):
        if entry.name != keep.name and now - entry.stat().st_mtime >= grace_s:
            _remove(Path(entry.path))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """A rename is on disk once its folder is flushed (power loss, not only a killed process)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def retrying(read: Callable[[], T], attempts: int = 20) -> T:
    """``read()`` again when a swap removed a file under it (a generation retired and cleaned
    between resolving the link and opening): it then resolves the new generation."""
    for attempt in range(attempts - 1):
        try:
            return read()
        except FileNotFoundError:
            time.sleep(0.01 * attempt)
    return read()

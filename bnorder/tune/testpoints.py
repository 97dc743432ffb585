"""Named instants in a sweep driver where tests stop it, set by environment variables.

``BNORDER_KILL_AT=<point>[:<n>]`` SIGKILLs the driver (with its process group when it leads one,
which holds its local Ray) the n-th time (default: first) it passes ``point``: what ``kill -9``
or a power cut does at that instant, without the races of killing from outside.
``BNORDER_PAUSE_AT=<point>:<file>`` waits at ``point`` until ``file`` exists.

Points: ``locked`` (the results folder is held, nothing started), ``asked`` (an Optuna trial
asked, before Ray has its trial), ``pruned`` (a pruning decision stored, before Ray stops the
trial), ``superseded`` (a running trial's older checkpoints emptied as a new one came, before
Ray's next experiment snapshot names the new one), ``recorded`` (a trial's row written, before
its study is told), ``emptied`` (a trial's rows written and its checkpoint folders emptied,
typically before Ray's next experiment snapshot), ``boundary`` (tuning done, before the
evaluate phase).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

__all__ = ["reached"]

_passes: Counter[str] = Counter()


def reached(point: str) -> None:
    """Mark that the driver is at ``point``; kills or pauses it when a test asked for that."""
    name, _, count = os.environ.get("BNORDER_KILL_AT", "").partition(":")
    if name == point:
        _passes[point] += 1
        if _passes[point] == int(count or 1):
            print(f"[testpoints] killed at {point}", flush=True)
            sys.stderr.flush()
            if os.getpgrp() == os.getpid():
                os.killpg(os.getpid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
    name, _, file = os.environ.get("BNORDER_PAUSE_AT", "").partition(":")
    if name == point and file:
        print(f"[testpoints] paused at {point}", flush=True)
        while not Path(file).exists():
            time.sleep(0.05)

"""Start-up time of the ``bnorder`` command: whole processes, as a shell runs them.

``bnorder --help``, ``bnorder sweep --help`` and a completion request (<TAB> after ``bnorder
train --ordering conv-bn-``), side by side in the same run with the imports they avoid:
``python -c "import torch"`` and ``python -c "import bnorder.train"`` (the training core, part
of what ``bnorder --help`` imported before issue 12). The commands take turns, one
repetition each per round, so a busy machine slows them alike; medians are reported. Target
(issue 12): ``bnorder --help`` and ``bnorder sweep --help`` at most 0.5 s.

Bytecode is cached, as for an installed package: PYTHONDONTWRITEBYTECODE is dropped for the
children, whose .pyc files go to a cache folder, and one untimed round writes them first.

    uv run python benchmarks/cli_startup.py            # 9 rounds
    uv run python benchmarks/cli_startup.py --quick    # 2 rounds: a check of this script
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

TARGET_S = 0.5
TAB_LINE = "bnorder train --ordering conv-bn-"  # a value completer, not only the command names


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    target_s: float | None = None


def _bnorder() -> tuple[list[str], str]:
    """The console script beside this interpreter (what a shell runs), else ``python -m``; and
    the argcomplete protocol number for it (words before the command's own)."""
    script = Path(sys.executable).with_name("bnorder")
    return ([str(script)], "1") if script.is_file() else ([sys.executable, "-m", "bnorder"], "3")


def commands(answer: Path) -> list[Command]:
    exe, protocol = _bnorder()
    comp_line = TAB_LINE if protocol == "1" else f"python -m {TAB_LINE}"
    tab = {
        "_ARGCOMPLETE": protocol,
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),  # a shell passes fd 8 instead
        "COMP_LINE": comp_line,
        "COMP_POINT": str(len(comp_line)),
    }
    py = sys.executable
    return [
        Command("python -c pass", [py, "-c", "pass"]),  # the interpreter alone: the floor
        Command("bnorder --help", [*exe, "--help"], target_s=TARGET_S),
        Command("bnorder sweep --help", [*exe, "sweep", "--help"], target_s=TARGET_S),
        Command(f"<TAB> {TAB_LINE}", exe, tab),
        Command('python -c "import torch"', [py, "-c", "import torch"]),
        Command('python -c "import bnorder.train"', [py, "-c", "import bnorder.train"]),
    ]


def run_once(cmd: Command, env: dict[str, str]) -> float:
    started = perf_counter()
    proc = subprocess.run(
        cmd.argv, env={**env, **cmd.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seconds = perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd.name}: exit {proc.returncode}\n{proc.stderr.decode()[-2000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=9, help="timed runs of each command (default 9)")
    p.add_argument("--quick", action="store_true", help="2 rounds: a check of this script")
    args = p.parse_args()
    rounds = 2 if args.quick else args.rounds

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "bnorder-bench-pycache")
    with tempfile.TemporaryDirectory(prefix="bnorder-cli-") as tmp:
        answer = Path(tmp) / "completions"
        cmds = commands(answer)
        for cmd in cmds:  # untimed: writes the bytecode, checks each command works
            run_once(cmd, env)
        offered = answer.read_text().split("\n")
        if "conv-bn-relu" not in offered:
            raise SystemExit(f"<TAB> {TAB_LINE}: offered {offered}, not conv-bn-relu")
        times: dict[str, list[float]] = {c.name: [] for c in cmds}
        for _ in range(rounds):
            for cmd in cmds:
                times[cmd.name].append(run_once(cmd, env))

    report(cmds, times)


def report(cmds: list[Command], times: dict[str, list[float]]) -> None:
    median = {name: statistics.median(t) for name, t in times.items()}
    torch_s = median['python -c "import torch"']
    before_s = median['python -c "import bnorder.train"']
    rounds = len(times[cmds[0].name])
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"bnorder start-up, whole processes: median of {rounds} ({os.cpu_count()} CPUs{load})")
    print(f"{'command':<44} {'median':>8} {'min':>8} {'max':>8} {'/ torch':>8}")
    for cmd in cmds:
        t, m = times[cmd.name], median[cmd.name]
        row = f"{cmd.name:<44} {m:>7.3f}s {min(t):>7.3f}s {max(t):>7.3f}s {m / torch_s:>7.2f}x"
        if cmd.target_s is not None:
            row += f"  target {cmd.target_s:g} s: {'ok' if m <= cmd.target_s else 'MISSED'}"
        print(row)
    for name in ("bnorder --help", "bnorder sweep --help", f"<TAB> {TAB_LINE}"):
        print(
            f"{name}: {torch_s / median[name]:.0f}x faster than importing torch, "
            f"{before_s / median[name]:.0f}x faster than importing bnorder.train"
        )


if __name__ == "__main__":
    main()

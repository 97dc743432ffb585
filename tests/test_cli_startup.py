"""The command line starts light: building the parser, parsing every subcommand's arguments,
--help, --version and argument errors import none of the heavy stack (torch, Ray, pandas, ...),
which costs seconds; commands import what they need when they run. A correctness check, in a
fresh interpreter: the time it saves is measured by benchmarks/cli_startup.py."""

from __future__ import annotations

import json
import subprocess
import sys

from bnorder.cli import build_parser

HEAVY = ("torch", "ray", "pandas", "pyarrow", "scipy", "matplotlib", "optuna")

# One valid command line per subcommand (parsed, not run).
ARGV: dict[str, list[str]] = {
    "orderings": ["orderings"],
    "describe": ["describe", "--arch", "mlp", "--ordering", "case2"],
    "train": ["train", "--dataset", "synthetic", "--depth", "2", "--augment", "--out", "r"],
    "sweep": ["sweep", "sweeps/quickstart.yaml", "--dry-run", "--out", "r"],
    "data": ["data", "fetch", "cifar10", "--data-root", "d"],
    "report": ["report", "r", "--baseline", "conv-bn-relu", "--alpha", "0.05"],
    "dashboard": ["dashboard", "r", "--port", "8081"],
    "completion": ["completion", "bash"],
}
# Through main, as the console script: each ends in SystemExit before any command runs.
EXITS: list[list[str]] = [
    ["--help"],
    ["--version"],
    ["sweep", "--help"],
    ["data", "list", "--help"],
    ["train", "--depth"],  # an argument error
    ["trian"],  # an unknown command, with a suggestion
]

_PROBE = """
import contextlib, io, json, sys

from bnorder.cli import build_parser, main

argvs, exits, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
parser = build_parser()
for argv in argvs:
    parser.parse_args(argv)
help_text = [parser.format_help(), *(p.format_help() for p in parser.subparsers.values())]
codes = []
for argv in exits:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            codes.append(exc.code)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(json.dumps({"codes": codes, "heavy": loaded}))
"""


def test_every_subcommand_is_covered() -> None:
    assert sorted(ARGV) == sorted(build_parser().subparsers)  # type: ignore[attr-defined]


def test_parsing_help_and_errors_import_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(json.dumps, (list(ARGV.values()), EXITS, HEAVY))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    assert probe["codes"] == [0, 0, 0, 0, 2, 2]
    assert probe["heavy"] == [], f"parsing imported {probe['heavy']}"

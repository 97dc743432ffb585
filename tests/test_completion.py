"""Tab completion: a real completion request (argcomplete's protocol, in a subprocess) completes
commands and values without importing torch, and the names it offers match the registries."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bnorder import completion
from bnorder.cli import build_parser, main

HEAVY = ("torch", "ray", "pandas", "pyarrow", "scipy", "matplotlib", "optuna")


def _complete(line: str, cwd: Path) -> tuple[set[str], list[str]]:
    """The completions a shell gets for ``line`` (cursor at its end), and the heavy modules the
    process imported. argcomplete ends the process with os._exit, so the imports are read from
    ``-X importtime`` (written by the interpreter itself) rather than from sys.modules."""
    answer = cwd / ".completions"
    comp_line = f"python -m {line}"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "3",  # `python -m bnorder ...`: the command's words start at the third
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),  # instead of fd 8, which the shell opens
        "COMP_LINE": comp_line,
        "COMP_POINT": str(len(comp_line)),
    }
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bnorder"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stderr, re.MULTILINE)
    assert "bnorder.cli" in imported, "no import log: the check below would pass vacuously"
    heavy = [m for m in imported if m.split(".")[0] in HEAVY]
    return {c.strip() for c in answer.read_text().split("\n") if c.strip()}, heavy


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("completion")
    (cwd / "grid.yaml").write_text("name: x\n")
    (cwd / "notes.txt").write_text("")
    (cwd / "results").mkdir()
    return cwd


# (what a shell sends, completions that must be offered, completions that must not)
REQUESTS: list[tuple[str, set[str], set[str]]] = [
    ("bnorder ", {"orderings", "train", "sweep", "report", "completion"}, {"--help"}),
    ("bnorder tr", {"train"}, set()),
    ("bnorder train --da", {"--dataset", "--data-root", "--data-seed"}, set()),
    ("bnorder train --dataset cifar1", {"cifar10", "cifar100"}, set()),
    ("bnorder describe --arch mlp", {"mlp", "mlp_seed"}, set()),
    ("bnorder train --ordering ca", {"case1", "case2", "case3"}, set()),
    # op by op, never a second norm after bn
    ("bnorder train --ordering conv-bn-", {"conv-bn-relu", "conv-bn-gelu"}, {"conv-bn-gn"}),
    ("bnorder data fetch ", set(completion.FETCHABLE), {"synthetic"}),
    ("bnorder sweep ", {"grid.yaml", "results/"}, {"notes.txt"}),
    ("bnorder report ", {"results/"}, {"grid.yaml", "notes.txt"}),
    ("bnorder completion ", set(completion.SHELLS), set()),
]


@pytest.mark.parametrize(
    ("line", "expected", "absent"),
    REQUESTS,
    ids=[repr(line.removeprefix("bnorder ")) for line, *_ in REQUESTS],
)
def test_completion_request(line: str, expected: set[str], absent: set[str], workdir: Path) -> None:
    got, heavy = _complete(line, workdir)
    assert expected <= got, f"{line!r} -> {sorted(got)}"
    assert not absent & got, f"{line!r} -> {sorted(got)}"
    assert heavy == [], f"completing {line!r} imported {heavy}"


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_completion_command_prints_the_shell_code(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    code = capsys.readouterr().out
    assert "_ARGCOMPLETE" in code
    registration = {
        "bash": "complete -o nospace -o default -o bashdefault -F _python_argcomplete bnorder",
        "zsh": "#compdef bnorder",
        "fish": "complete --command bnorder",
    }
    assert registration[shell] in code


def test_names_match_the_registries() -> None:
    """The completion's static names (no torch at <TAB>) against the registries they mirror."""
    from bnorder.data import DATASET_NAMES
    from bnorder.data.fetch import GENERATED
    from bnorder.layers import ACT_NAMES, NORM_NAMES
    from bnorder.models import ARCH_NAMES
    from bnorder.ordering import ALIASES, EXAMPLES, WEIGHT_OPS

    assert DATASET_NAMES == completion.DATASETS
    assert tuple(n for n in DATASET_NAMES if n not in GENERATED) == completion.FETCHABLE
    assert ARCH_NAMES == completion.ARCHS
    assert (tuple(set(WEIGHT_OPS.values())), NORM_NAMES, ACT_NAMES) == completion.OP_KINDS
    assert (*ALIASES, *EXAMPLES) == completion.ORDERINGS


def _spellings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag and positional name of ``parser`` and its subcommands."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _spellings(sub)
        else:
            found |= set(action.option_strings or [action.dest])
    return found


def test_every_completer_has_its_argument() -> None:
    """A renamed flag would silently lose its completion."""
    missing = set(completion.COMPLETERS) - _spellings(build_parser())
    assert not missing, f"completers for arguments the parser does not have: {sorted(missing)}"

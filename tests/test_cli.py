"""The ``bnorder`` command line, run for real in subprocesses.

Every user error must be one line on stderr naming the flag, the bad value, the valid choices and
the closest match, with exit code 2 (1 for a failure of the environment, such as a missing
dataset), no traceback and nothing written. A ``python -m bnorder``
process pays ~2.5 CPU-s of imports, so the commands that do not depend on each other run once per
module and the tests read their outcomes: ``info`` (help, version, orderings, describe) as
parallel ``python -m bnorder`` processes, ``battery`` (bad input) as forked children of one
process that imported the CLI (see ``_FORKED_CLI``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

# Small enough that a bad case which wrongly starts training still ends in seconds.
FAST = {"--dataset": "synthetic", "--depth": "1", "--width": "4", "--epochs": "1"}
OPS = ("conv", "bn", "gn", "ln", "relu", "lrelu", "gelu", "silu", "elu", "tanh")
SEED_ALIASES = {"case1": "conv-bn-relu", "case2": "conv-relu-bn", "case3": "conv-lrelu-bn"}
# The seed notebook's parameter counts on CIFAR-10 (checked against its own classes below).
SEED_CNN_PARAMS = 298_890  # 8 blocks of 64 channels, any of case1/2/3
SEED_MLP_PARAMS = 1_739_914  # 3072-512-256-128-10, BN in the first layer only
TIMEOUT_S = 300


# ---------------------------------------------------------------- running the CLI
@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ bnorder {' '.join(self.argv)}\nexit {self.code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def _workers() -> int:
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else 3


def _speedups(pycache: Path) -> dict[str, str]:
    """Bytecode cached, so that each subprocess does not recompile torch and pandas (the venv
    ships no .pyc files: ~10 s -> ~3 s a process); one torch thread, since OpenMP threads
    spinning on busy cores make tiny models ~20x slower (6.6 s -> 0.3 s an epoch here)."""
    return {"PYTHONPYCACHEPREFIX": str(pycache), "OMP_NUM_THREADS": "1"}


def _env(data_root: Path, pycache: Path) -> dict[str, str]:
    """The test environment: offline, a private data root, and the speedups."""
    env = {**os.environ, "BNORDER_OFFLINE": "1", "BNORDER_DATA_ROOT": str(data_root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env | _speedups(pycache)


def _run(
    argv: tuple[str, ...],
    *,
    env: Mapping[str, str],
    cwd: Path,
    exe: tuple[str, ...] = (sys.executable, "-m", "bnorder"),
) -> Run:
    proc = subprocess.run(
        [*exe, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=dict(env),
        cwd=cwd,
        check=False,
    )
    return Run(argv, proc.returncode, proc.stdout, proc.stderr)


# The bad-input battery is ~30 commands, and each `python -m bnorder` pays ~2.5 CPU-s importing
# torch and pandas. So the battery runs in one real Python process that imports the CLI once and
# forks a child per command: each child is its own process with its own cwd, stdout and stderr
# (fds 1 and 2) and exit status, and calls bnorder.cli.main as bnorder/__main__.py does
# (`sys.exit(main())`). test_forked_cli_is_python_m_bnorder checks that the two agree.
_FORKED_CLI = r"""
import json, os, sys, traceback

import bnorder.cli, bnorder.config, bnorder.results, bnorder.train  # imported once, then forked


def child(argv, cwd, stdout, stderr):
    os.chdir(cwd)
    for fd, path in ((1, stdout), (2, stderr)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    try:
        code = bnorder.cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


jobs, limit, running, codes = json.load(sys.stdin), len(os.sched_getaffinity(0)), {}, {}
for key, job in jobs.items():
    while len(running) >= limit:
        pid, status = os.wait()
        codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    pid = os.fork()
    if pid == 0:
        try:
            child(**job)
        finally:
            os._exit(70)
    running[pid] = key
while running:
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
json.dump(codes, sys.stdout)
"""


def _run_forked(
    jobs: Mapping[str, tuple[tuple[str, ...], Path]], *, env: Mapping[str, str], scratch: Path
) -> dict[str, Run]:
    """Each ``key: (argv, cwd)`` run by a child of one process that imported the CLI."""
    spec = {
        key: {
            "argv": list(argv),
            "cwd": str(cwd),
            "stdout": str(scratch / f"{key}.stdout"),
            "stderr": str(scratch / f"{key}.stderr"),
        }
        for key, (argv, cwd) in jobs.items()
    }
    proc = subprocess.run(
        [sys.executable, "-c", _FORKED_CLI],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=dict(env),
        cwd=scratch,
        check=False,
    )
    assert proc.returncode == 0, f"the forking runner failed:\n{proc.stderr}"
    codes = json.loads(proc.stdout)
    return {
        key: Run(
            argv,
            codes[key],
            Path(spec[key]["stdout"]).read_text(),
            Path(spec[key]["stderr"]).read_text(),
        )
        for key, (argv, _) in jobs.items()
    }


@pytest.fixture(scope="session")
def pycache(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(pytestconfig, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("bnorder-pycache"))
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture(autouse=True)
def _fast_subprocesses(monkeypatch: pytest.MonkeyPatch, pycache: Path) -> None:
    """The same speedups for the ``cli`` fixture's subprocesses."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    for name, value in _speedups(pycache).items():
        monkeypatch.setenv(name, value)


def _train_argv(changes: Mapping[str, str | None] | None = None) -> tuple[str, ...]:
    """``train`` with the FAST config, ``changes`` applied (None drops a flag), into {out}."""
    flags = {**FAST, **(changes or {}), "--out": "{out}"}
    return ("train", *(t for k, v in flags.items() if v is not None for t in (k, v)))


def _all_files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# ---------------------------------------------------------------- bad input
@dataclass(frozen=True)
class Bad:
    """One bad command line. ``{tmp}`` (the case's own folder, also its cwd), ``{out}`` and
    ``{empty}`` (an empty data root) are filled in when it runs."""

    id: str
    argv: tuple[str, ...]
    flag: str | None  # the field, as its flag, labelling the error ("--depth: ...")
    expect: tuple[str, ...]  # more substrings of the error line, e.g. the quoted bad value
    choices: tuple[str, ...] = ()  # valid values, listed after "valid"
    suggest: str | None = None  # the closest valid value, offered as "did you mean ..."
    skip: Callable[[], str | None] = field(default=lambda: None)  # a reason to skip, or None
    code: int = 2  # a usage error; 1 where the command was right but the environment was not


def _cuda_present() -> str | None:
    return "a CUDA GPU is visible here" if torch.cuda.is_available() else None


def _proc_writable() -> str | None:
    """/proc refuses new files even to root; skip the case on a system where it does not."""
    try:
        fd, probe = tempfile.mkstemp(dir="/proc")
    except OSError:
        return None
    os.close(fd)
    os.unlink(probe)
    return "/proc is writable here"


def _bad(
    case_id: str,
    changes: Mapping[str, str | None],
    flag: str | None,
    *expect: str,
    choices: tuple[str, ...] = (),
    suggest: str | None = None,
) -> Bad:
    """A bad ``train`` command: the FAST config with ``changes``."""
    return Bad(case_id, _train_argv(changes), flag, expect, choices, suggest)


BAD: tuple[Bad, ...] = (
    # ---- the ordering grammar
    _bad(
        "unknown-op",
        {"--ordering": "conv-bachnorm-relu"},
        "--ordering",
        "'bachnorm'",
        choices=OPS,
        suggest="bn",
    ),
    _bad("two-weight-ops", {"--ordering": "conv-fc-bn"}, "--ordering", "'conv-fc-bn'"),
    _bad("zero-weight-ops", {"--ordering": "bn-relu"}, "--ordering", "'bn-relu'"),
    _bad("two-norms", {"--ordering": "conv-bn-gn-relu"}, "--ordering", "'conv-bn-gn-relu'"),
    _bad("empty-op", {"--ordering": "conv--bn"}, "--ordering", "'conv--bn'"),
    # ---- numbers out of range, or not numbers
    _bad("depth-0", {"--depth": "0"}, "--depth", "'0'"),
    _bad("width-negative", {"--width": "-1"}, "--width", "'-1'"),
    _bad("epochs-0", {"--epochs": "0"}, "--epochs", "'0'"),
    _bad("batch-size-0", {"--batch-size": "0"}, "--batch-size", "'0'"),
    _bad("lr-0", {"--lr": "0"}, "--lr", "'0'"),
    _bad("lr-negative", {"--lr": "-0.1"}, "--lr", "'-0.1'"),
    _bad("lr-not-a-number", {"--lr": "fast"}, "--lr", "'fast'"),
    _bad("val-fraction-1", {"--val-fraction": "1.0"}, "--val-fraction", "'1.0'"),
    _bad(
        "mlp-seed-depth",
        {"--arch": "mlp_seed", "--depth": "3", "--width": None},
        "--depth",
        "'3'",
        "mlp_seed",
    ),
    # ---- names
    _bad(
        "unknown-dataset",
        {"--dataset": "cifar11"},
        "--dataset",
        "'cifar11'",
        choices=("cifar10", "cifar100", "fashion_mnist", "mnist", "synthetic"),
        suggest="cifar10",
    ),
    _bad(
        "unknown-arch",
        {"--arch": "cnnn"},
        "--arch",
        "'cnnn'",
        choices=("cnn", "mlp", "mlp_seed", "resnet"),
        suggest="cnn",
    ),
    _bad(
        "unknown-optimizer",
        {"--optimizer": "adma"},
        "--optimizer",
        "'adma'",
        choices=("adam", "adamw", "sgd"),
        suggest="adam",
    ),
    # Someone asking for "gpu" wants CUDA: offering "cpu", the nearest spelling, misleads.
    _bad(
        "unknown-device",
        {"--device": "gpu"},
        "--device",
        "'gpu'",
        choices=("auto", "cpu", "cuda", "mps"),
        suggest="cuda",
    ),
    _bad(
        "unknown-precision",
        {"--precision": "fp16"},
        "--precision",
        "'fp16'",
        choices=("fp32", "bf16"),
    ),
    _bad(
        "unknown-schedule",
        {"--schedule": "cosin"},
        "--schedule",
        "'cosin'",
        choices=("constant", "cosine"),
        suggest="cosine",
    ),
    # ---- the command line itself
    Bad(
        "unknown-command",
        ("trian", "--out", "{out}"),
        None,
        ("'trian'",),
        ("orderings", "describe", "train"),
        "train",
    ),
    Bad("unknown-flag", (*_train_argv(), "--widht", "4"), None, ("--widht",), suggest="--width"),
    # ---- the environment
    Bad(
        "cuda-without-gpu",
        _train_argv({"--device": "cuda"}),
        "--device",
        ("'cuda'",),
        skip=_cuda_present,
    ),
    Bad(
        "dataset-missing-offline",
        _train_argv({"--dataset": "cifar10", "--data-root": "{empty}"}),
        None,  # a DataError: the dataset, where it looked and how to fix it
        ("'cifar10'", "{empty}", "--data-root"),
        code=1,
    ),
    Bad(
        "out-under-a-file",
        (*_train_argv(), "--out", "{tmp}/file.txt/out"),
        "--out",
        ("{tmp}/file.txt/out",),
    ),
    Bad(
        "out-not-writable",
        (*_train_argv(), "--out", "/proc/bnorder-out"),
        "--out",
        ("/proc/bnorder-out",),
        skip=_proc_writable,
    ),
    # ---- describe shares the model flags and their checks
    Bad(
        "describe-unknown-op",
        ("describe", "--ordering", "conv-bn-rleu"),
        "--ordering",
        ("'rleu'",),
        OPS,
        "relu",
    ),
    Bad(
        "describe-mlp-seed-width",
        ("describe", "--arch", "mlp_seed", "--width", "8"),
        "--width",
        ("'8'", "mlp_seed"),
    ),
)


@dataclass(frozen=True)
class BadOutcome:
    run: Run | None  # None: skipped
    skipped: str | None
    tmp: Path
    out: Path
    empty: Path
    before: frozenset[Path]  # the case folder's files before the run


def _fill(text: str, tmp: Path, out: Path, empty: Path) -> str:
    return text.format(tmp=tmp, out=out, empty=empty)


@dataclass(frozen=True)
class Battery:
    outcomes: dict[str, BadOutcome]
    env: dict[str, str]


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory, pycache: Path) -> Battery:
    """Every BAD case, each in its own folder (its cwd: a stray relative write lands there and
    is caught)."""
    base = tmp_path_factory.mktemp("battery")
    env = _env(base / "data-root", pycache)
    outcomes: dict[str, BadOutcome] = {}
    jobs: dict[str, tuple[tuple[str, ...], Path]] = {}
    for case in BAD:
        tmp, empty = base / case.id, base / f"{case.id}-empty-data-root"
        tmp.mkdir()
        empty.mkdir()
        (tmp / "file.txt").write_text("")
        outcomes[case.id] = BadOutcome(
            None, case.skip(), tmp, tmp / "out", empty, frozenset(_all_files(tmp))
        )
        if outcomes[case.id].skipped is None:
            jobs[case.id] = (tuple(_fill(a, tmp, tmp / "out", empty) for a in case.argv), tmp)
    runs = _run_forked(jobs, env=env, scratch=tmp_path_factory.mktemp("forked"))
    for key, run in runs.items():
        outcomes[key] = replace(outcomes[key], run=run)
    return Battery(outcomes, env)


def _suggests(line: str, value: str) -> bool:
    return re.search(rf"did you mean \W?{re.escape(value)}(?![\w-])", line) is not None


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_is_one_line(case: Bad, battery: Battery) -> None:
    outcome = battery.outcomes[case.id]
    if outcome.run is None:
        pytest.skip(outcome.skipped or "")
    run, problems = outcome.run, []
    line = run.stderr.strip()
    if run.code != case.code:
        problems.append(f"exit code {run.code}, expected {case.code}")
    if "Traceback" in run.stderr or len(run.stderr.splitlines()) != 1:
        problems.append(f"stderr is {len(run.stderr.splitlines())} lines, expected 1")
    if case.flag is not None and not re.search(rf"(?<![\w-]){re.escape(case.flag)}:", line):
        problems.append(f"error is not labelled with its flag ({case.flag}: ...)")
    for text in case.expect:
        expected = _fill(text, outcome.tmp, outcome.out, outcome.empty)
        if expected not in line:
            problems.append(f"error does not name {expected!r}")
    if case.choices:
        listed = line[line.find("valid") :] if "valid" in line else ""
        missing = [c for c in case.choices if not re.search(rf"\b{re.escape(c)}\b", listed)]
        if missing:
            problems.append(f"error does not list the valid choices {missing}")
    if case.suggest is not None and not _suggests(line, case.suggest):
        problems.append(f"error does not suggest {case.suggest!r}")
    written = sorted(map(str, _all_files(outcome.tmp) - outcome.before))
    written += [str(p) for p in (outcome.out,) if p.exists()]
    written += sorted(map(str, _all_files(outcome.empty)))
    if written:
        problems.append(f"wrote {written}")
    assert not problems, "; ".join(problems) + f"\n{run}"


def test_forked_cli_is_python_m_bnorder(battery: Battery) -> None:
    """A config error, an argparse error and a store error: the same through `python -m`."""
    keys = ("depth-0", "unknown-flag", "out-under-a-file")
    forked = {key: battery.outcomes[key].run for key in keys}

    def real(key: str) -> Run:
        run = forked[key]
        assert run is not None
        return _run(run.argv, env=battery.env, cwd=battery.outcomes[key].tmp)

    with ThreadPoolExecutor(_workers()) as pool:
        runs = dict(zip(keys, pool.map(real, keys), strict=True))
    for key in keys:
        assert runs[key] == forked[key], f"python -m bnorder:\n{runs[key]}\nforked:\n{forked[key]}"


# ---------------------------------------------------------------- help, version, orderings
# Commands that succeed and write nothing: run in parallel with an empty, offline data root.
INFO: dict[str, tuple[str, ...]] = {
    "help": ("--help",),
    "help-orderings": ("orderings", "--help"),
    "help-describe": ("describe", "--help"),
    "help-train": ("train", "--help"),
    "version": ("--version",),
    "orderings": ("orderings",),
    **{
        f"describe-cnn-{case}": (
            "describe",
            *("--dataset", "cifar10", "--arch", "cnn", "--ordering", case),
            *("--depth", "8", "--width", "64"),
        )
        for case in SEED_ALIASES
    },
    "describe-mlp_seed-case1": (
        "describe",
        *("--dataset", "cifar10", "--arch", "mlp_seed", "--ordering", "case1"),
    ),
}
CONSOLE_SCRIPT = Path(sys.executable).with_name("bnorder")


@dataclass(frozen=True)
class Info:
    runs: dict[str, Run]
    data_root: Path
    cwd: Path


@pytest.fixture(scope="module")
def info(tmp_path_factory: pytest.TempPathFactory, pycache: Path) -> Info:
    cwd, data_root = tmp_path_factory.mktemp("info"), tmp_path_factory.mktemp("empty-data-root")
    env = _env(data_root, pycache)
    jobs: dict[str, Callable[[], Run]] = {
        key: (lambda argv=argv: _run(argv, env=env, cwd=cwd)) for key, argv in INFO.items()
    }
    if CONSOLE_SCRIPT.is_file():
        jobs["console-orderings"] = lambda: _run(
            ("orderings",), env=env, cwd=cwd, exe=(str(CONSOLE_SCRIPT),)
        )
    with ThreadPoolExecutor(_workers()) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return Info({key: f.result() for key, f in futures.items()}, data_root, cwd)


def _ok(info: Info, key: str) -> Run:
    run = info.runs[key]
    assert run.code == 0, str(run)
    assert "Traceback" not in run.stderr, str(run)
    return run


HELP_FLAGS: dict[str, tuple[str, ...]] = {
    "help": ("usage: bnorder", "--version", "orderings", "describe", "train"),
    "help-orderings": ("usage: bnorder orderings",),
    "help-describe": (
        *("usage: bnorder describe", "--dataset", "--arch", "--ordering"),
        *("--depth", "--width"),
    ),
    "help-train": (
        *("usage: bnorder train", "--dataset", "--arch", "--ordering", "--depth", "--width"),
        *("--optimizer", "--lr", "--batch-size", "--epochs", "--seed", "--device"),
        *("--precision", "--data-root", "--out"),
    ),
}


@pytest.mark.parametrize("key", HELP_FLAGS)
def test_help(key: str, info: Info) -> None:
    run = _ok(info, key)
    missing = [flag for flag in HELP_FLAGS[key] if flag not in run.stdout]
    assert not missing, f"--help does not mention {missing}\n{run}"


def test_version(info: Info) -> None:
    assert _ok(info, "version").stdout == f"bnorder {metadata.version('bnorder')}\n"


def test_python_m_bnorder_is_the_console_script(info: Info) -> None:
    if "console-orderings" not in info.runs:
        pytest.skip(f"no console script at {CONSOLE_SCRIPT}")
    assert _ok(info, "console-orderings").stdout == _ok(info, "orderings").stdout


def test_orderings_lists_ops_and_seed_aliases(info: Info) -> None:
    out = _ok(info, "orderings").stdout
    # a name on its own, not inside an ordering such as conv-bn-relu
    missing = [op for op in OPS if not re.search(rf"(?<![\w-]){op}(?![\w-])", out)]
    assert not missing, f"ops not listed: {missing}\n{out}"
    for alias, expansion in SEED_ALIASES.items():
        assert re.search(rf"\b{alias}\b.*(?<![\w-]){expansion}(?![\w-])", out), (alias, out)


# ---------------------------------------------------------------- describe vs the seed notebook
# The seed notebook's networks (../shared/seeds/003_e227705c756e3ce1.txt), transcribed without
# their forward passes: only their parameters are counted.
class Case1Block(nn.Module):
    """Conv -> BatchNorm -> ReLU"""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()


class Case2Block(nn.Module):
    """Conv -> ReLU -> BatchNorm"""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(out_channels)


class Case3Block(nn.Module):
    """Conv -> LeakyReLU -> BatchNorm"""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.act = nn.LeakyReLU()
        self.bn = nn.BatchNorm2d(out_channels)


class CNNNetwork(nn.Module):
    def __init__(self, block_type: str = "case1", num_blocks: int = 8) -> None:
        super().__init__()
        block = {"case1": Case1Block, "case2": Case2Block}.get(block_type, Case3Block)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.blocks = nn.Sequential(*[block(64, 64) for _ in range(num_blocks)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, 10)


class MLPNetwork(nn.Module):
    def __init__(self, block_type: str) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        if block_type == "case1":
            act1 = nn.Sequential(nn.Linear(3 * 32 * 32, 512), nn.BatchNorm1d(512), nn.ReLU())
        elif block_type == "case2":
            act1 = nn.Sequential(nn.Linear(3 * 32 * 32, 512), nn.ReLU(), nn.BatchNorm1d(512))
        else:
            act1 = nn.Sequential(nn.Linear(3 * 32 * 32, 512), nn.LeakyReLU(), nn.BatchNorm1d(512))
        self.mlp = nn.Sequential(
            act1, nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _described_params(run: Run) -> int:
    match = re.search(r"^parameters: (\d+)$", run.stdout, re.MULTILINE)
    assert match, f"no 'parameters: N' line\n{run}"
    return int(match.group(1))


@pytest.mark.parametrize("case", SEED_ALIASES)
def test_seed_counts(case: str) -> None:
    assert _n_params(CNNNetwork(case, 8)) == SEED_CNN_PARAMS
    assert _n_params(MLPNetwork(case)) == SEED_MLP_PARAMS


@pytest.mark.parametrize("case", SEED_ALIASES)
def test_describe_cnn_matches_the_seed(case: str, info: Info) -> None:
    run = _ok(info, f"describe-cnn-{case}")
    assert _described_params(run) == _n_params(CNNNetwork(case, 8)), str(run)
    assert f"ordering: {SEED_ALIASES[case]}" in run.stdout, str(run)


def test_describe_mlp_seed_matches_the_seed(info: Info) -> None:
    run = _ok(info, "describe-mlp_seed-case1")
    assert _described_params(run) == _n_params(MLPNetwork("case1")), str(run)


def test_describe_loads_no_data(info: Info) -> None:
    """cifar10 is described offline with an empty data root, and nothing is fetched or written."""
    _ok(info, "describe-cnn-case1")
    assert not _all_files(info.data_root)
    assert not _all_files(info.cwd)


# ---------------------------------------------------------------- real training
SYNTHETIC_RUN = (
    *("train", "--dataset", "synthetic", "--arch", "cnn", "--ordering", "case2"),
    *("--depth", "2", "--width", "8", "--epochs", "2"),
)


@pytest.fixture
def cli_ok(cli: Callable[..., tuple[int, str, str]]) -> Callable[..., str]:
    """``cli`` that asserts exit 0 and returns stdout."""

    def run(*args: str) -> str:
        code, out, err = cli(*args)
        assert code == 0, str(Run(args, code, out, err))
        return out

    return run


def test_train_synthetic_writes_and_appends(tmp_path: Path, cli_ok: Callable[..., str]) -> None:
    out = tmp_path / "results"
    stdout = cli_ok(*SYNTHETIC_RUN, "--out", str(out))
    epoch_lines = [line for line in stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2, stdout
    assert epoch_lines[0].startswith("epoch   1/2"), stdout
    assert epoch_lines[1].startswith("epoch   2/2"), stdout

    trials = pd.read_parquet(out / "trials.parquet")
    epochs = pd.read_parquet(out / "epochs.parquet")
    assert len(trials) == 1
    first = trials.iloc[0]
    assert (first.status, first.ordering, first.arch) == ("ok", "conv-relu-bn", "cnn")
    assert sorted(epochs.epoch) == [1, 2]
    assert set(epochs.trial_id) == {first.trial_id}

    cli_ok(*SYNTHETIC_RUN, "--out", str(out))
    trials2 = pd.read_parquet(out / "trials.parquet")
    assert len(trials2) == 2
    assert len(pd.read_parquet(out / "epochs.parquet")) == 4
    again = trials2.set_index("trial_id").loc[first.trial_id]
    for column in ("status", "ordering", "config_hash", "final_test_acc", "finished_at"):
        assert again[column] == first[column], column


@pytest.mark.slow
def test_train_fashion_mnist_learns(
    tmp_path: Path, fashion_mnist_files: Path, cli_ok: Callable[..., str]
) -> None:
    out = tmp_path / "results"
    cli_ok(
        *("train", "--dataset", "fashion_mnist", "--arch", "mlp", "--ordering", "case1"),
        *("--depth", "2", "--width", "32", "--subset", "2000", "--test-subset", "500"),
        *("--epochs", "1", "--out", str(out)),
    )
    trial = pd.read_parquet(out / "trials.parquet").iloc[0]
    assert trial.status == "ok"
    assert trial.final_test_acc > 0.5, trial.final_test_acc  # chance is 0.1

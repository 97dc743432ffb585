"""Tab completion for the ``bnorder`` command (argcomplete), answered without importing torch.

A shell asks for completions by running ``bnorder`` with ``_ARGCOMPLETE`` set: the parser is
built, this module answers, and the process exits before any command runs. So the names offered
are plain tuples here rather than read from the registries (which import torch: seconds per
<TAB>); ``tests/test_completion.py`` checks that they match the registries.

    eval "$(bnorder completion bash)"   # or zsh; fish: bnorder completion fish | source
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SHELLS", "attach", "autocomplete", "shellcode"]

SHELLS = ("bash", "zsh", "fish")

# Canonical names of bnorder.data.DATASET_NAMES, bnorder.models.ARCH_NAMES, the ops of
# bnorder.ordering (weight op, NORM_NAMES, ACT_NAMES) and its ALIASES and EXAMPLES.
DATASETS = ("cifar10", "cifar100", "fashion_mnist", "mnist", "synthetic", "cifar_shaped")
FETCHABLE = ("cifar10", "cifar100", "fashion_mnist", "mnist")  # the others are generated
ARCHS = ("cnn", "mlp", "mlp_seed", "resnet")
OP_KINDS = (("conv",), ("bn", "gn", "ln"), ("relu", "lrelu", "gelu", "silu", "elu", "tanh"))
ORDERINGS = (
    *("case1", "case2", "case3", "preact"),
    *("conv-bn-relu", "conv-relu-bn", "conv-lrelu-bn", "bn-relu-conv", "conv-bn", "conv-relu"),
    "conv-gn-gelu",
)

Completer = Callable[..., Iterable[str]]


def _names(names: tuple[str, ...]) -> Completer:
    def complete(prefix: str, **_: Any) -> list[str]:
        return [n for n in names if n.startswith(prefix)]

    return complete


def _ordering(prefix: str, **_: Any) -> list[str]:
    """Named orderings, and op by op: ``conv-b`` -> ``conv-bn``, never a second op of a kind
    (one weight op, at most one norm and one activation)."""
    head, dash, _tail = prefix.rpartition("-")
    used = set(head.split("-")) if dash else set()
    ops = [op for kind in OP_KINDS if not used & set(kind) for op in kind]
    candidates = [*ORDERINGS, *(head + dash + op for op in ops)]
    return [c for c in dict.fromkeys(candidates) if c.startswith(prefix)]


def _yaml_files(prefix: str, **kwargs: Any) -> Iterable[str]:
    from argcomplete.completers import FilesCompleter

    return FilesCompleter(("yaml", "yml"))(prefix, **kwargs)  # folders too, to walk into


def _directories(prefix: str, **kwargs: Any) -> Iterable[str]:
    from argcomplete.completers import DirectoriesCompleter

    return DirectoriesCompleter()(prefix, **kwargs)


# Keyed by how the argument is written: an option's flag, a positional's name. Arguments not
# listed get argcomplete's defaults (their choices, else file names).
COMPLETERS: dict[str, Completer] = {
    "--dataset": _names(DATASETS),
    "dataset": _names(FETCHABLE),  # `bnorder data fetch DATASET`
    "--arch": _names(ARCHS),
    "--ordering": _ordering,
    "--baseline": _ordering,
    "file": _yaml_files,  # `bnorder sweep FILE`
    "results": _directories,
    "--out": _directories,
    "--data-root": _directories,
    "--storage": _directories,
}


def attach(parser: argparse.ArgumentParser) -> None:
    """Give every argument of ``parser`` and its subcommands its completer from COMPLETERS."""
    for action in parser._actions:  # argparse has no public API for this; argcomplete uses it
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                attach(sub)
            continue
        keys = action.option_strings or [action.dest]
        completer = next((COMPLETERS[k] for k in keys if k in COMPLETERS), None)
        if completer is not None:
            action.completer = completer  # type: ignore[attr-defined]


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's completion request and exit, when this process is one (argcomplete's
    protocol: ``_ARGCOMPLETE`` set); otherwise return at once, importing nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    # flags only once a '-' is typed: a bare <TAB> lists commands, not --help and --version
    argcomplete.autocomplete(parser, always_complete_options=False)


def shellcode(shell: str) -> str:
    """The script that registers ``bnorder``'s completion with ``shell`` (bash, zsh or fish)."""
    import argcomplete

    return argcomplete.shellcode(["bnorder"], shell=shell)

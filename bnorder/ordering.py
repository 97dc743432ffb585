"""The block-ordering grammar: ``"conv-bn-relu"`` parsed once into an immutable :class:`Ordering`.

A block is ops joined by ``-``: exactly one weight op (``conv``; ``fc`` and ``linear`` are
synonyms, since the same block is a convolution in a CNN and a linear layer in an MLP), at most
one norm and at most one activation, in any order. The canonical string (lower case, synonyms
folded) is the ID used in trial names, study names and Parquet rows, so CNN and MLP results join.

>>> parse_ordering("Conv-ReLU-BN").canonical
'conv-relu-bn'
>>> parse_ordering("case3").canonical
'conv-lrelu-bn'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from bnorder.errors import ConfigError
from bnorder.layers import ACT_NAMES, ACTIVATIONS, NORM_NAMES, NORMS
from bnorder.registry import aliases_of, normalise

__all__ = ["ALIASES", "EXAMPLES", "WEIGHT_OPS", "Op", "Ordering", "parse_ordering"]

OpKind = Literal["weight", "norm", "act"]

WEIGHT_OPS: dict[str, str] = {"conv": "conv", "fc": "conv", "linear": "conv"}

# The seed notebook's three blocks (../shared/seeds): case1 is the convention.
ALIASES: dict[str, str] = {
    "case1": "conv-bn-relu",
    "case2": "conv-relu-bn",
    "case3": "conv-lrelu-bn",
    "preact": "bn-relu-conv",
}

EXAMPLES: dict[str, str] = {
    "conv-bn-relu": "the convention (seed case1)",
    "conv-relu-bn": "BN after the activation (seed case2)",
    "conv-lrelu-bn": "LeakyReLU, then BN (seed case3)",
    "bn-relu-conv": "pre-activation, as in pre-activation ResNets",
    "conv-bn": "no activation",
    "conv-relu": "no norm",
    "conv-gn-gelu": "GroupNorm and GELU",
}

_SEPARATORS = re.compile(r"\s*(?:-|>|→|,)\s*")


@dataclass(frozen=True)
class Op:
    kind: OpKind
    name: str


@dataclass(frozen=True)
class Ordering:
    """An immutable, validated block ordering; build it with :func:`parse_ordering`."""

    ops: tuple[Op, ...]

    @property
    def canonical(self) -> str:
        return "-".join(op.name for op in self.ops)

    @property
    def weight_index(self) -> int:
        return next(i for i, op in enumerate(self.ops) if op.kind == "weight")

    @property
    def before_weight(self) -> tuple[Op, ...]:
        """Ops applied to the block's input (pre-activation style), at the input width."""
        return self.ops[: self.weight_index]

    @property
    def after_weight(self) -> tuple[Op, ...]:
        """Ops applied to the weight op's output, at the output width."""
        return self.ops[self.weight_index + 1 :]

    @property
    def norm(self) -> str | None:
        return next((op.name for op in self.ops if op.kind == "norm"), None)

    @property
    def act(self) -> str | None:
        return next((op.name for op in self.ops if op.kind == "act"), None)

    def __str__(self) -> str:
        return self.canonical


def _classify(token: str, text: str, field: str) -> Op:
    key = normalise(token)
    if key in WEIGHT_OPS:
        return Op("weight", WEIGHT_OPS[key])
    if key in NORMS:
        return Op("norm", NORMS[key].name)
    if key in ACTIVATIONS:
        return Op("act", ACTIVATIONS[key].name)
    valid = ("conv", *NORM_NAMES, *ACT_NAMES)
    aliases = WEIGHT_OPS | aliases_of(NORMS, NORM_NAMES) | aliases_of(ACTIVATIONS, ACT_NAMES)
    raise ConfigError(
        field, token, f"unknown op {{value}} in {text!r}", choices=valid, aliases=aliases
    )


@lru_cache(maxsize=256)
def parse_ordering(text: str, *, field: str = "ordering") -> Ordering:
    """Parse an ordering string or alias into an :class:`Ordering`.

    Args:
        text: e.g. ``"conv-bn-relu"``, ``"Conv → ReLU → BN"``, ``"fc-bn-relu"`` or ``"case2"``.
        field: the name used in error messages (a CLI flag, a YAML key path).

    Returns:
        The parsed ordering; ``.canonical`` is its ID.

    Raises:
        ConfigError: an unknown op (with the closest valid one), a block without exactly one
            weight op, or a second norm or activation.
    """
    raw = str(text).strip()
    alias = ALIASES.get(normalise(raw))
    tokens = _SEPARATORS.split(alias or raw)
    if not raw or any(not t for t in tokens):
        raise ConfigError(
            field, text, "empty op in ordering", hint="write ops joined by '-', e.g. 'conv-bn-relu'"
        )
    ops = tuple(_classify(t, raw, field) for t in tokens)
    counts = {kind: sum(op.kind == kind for op in ops) for kind in ("weight", "norm", "act")}
    if counts["weight"] != 1:
        raise ConfigError(
            field,
            text,
            f"a block needs exactly one weight op 'conv' (found {counts['weight']}) in",
            hint="e.g. 'conv-bn-relu' or pre-activation 'bn-relu-conv'",
        )
    for kind, label in (("norm", "norm"), ("act", "activation")):
        if counts[kind] > 1:
            names = [op.name for op in ops if op.kind == kind]
            raise ConfigError(
                field,
                text,
                f"a block has at most one {label} (found {', '.join(names)}) in",
                hint=f"drop the extra {label}",
            )
    return Ordering(ops)

from __future__ import annotations

import dataclasses

import pytest

from bnorder.errors import ConfigError
from bnorder.layers import ACT_NAMES, NORM_NAMES
from bnorder.ordering import ALIASES, EXAMPLES, parse_ordering


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("conv-bn-relu", "conv-bn-relu"),
        ("Conv-BN-ReLU", "conv-bn-relu"),
        ("fc-bn-relu", "conv-bn-relu"),
        ("linear-relu-bn", "conv-relu-bn"),
        ("conv → leaky_relu → batchnorm", "conv-lrelu-bn"),
        ("conv > relu > bn", "conv-relu-bn"),
        ("case1", "conv-bn-relu"),
        ("CASE2", "conv-relu-bn"),
        ("case3", "conv-lrelu-bn"),
        ("preact", "bn-relu-conv"),
        ("bn-relu-conv", "bn-relu-conv"),
        ("conv-bn", "conv-bn"),
        ("conv-relu", "conv-relu"),
        ("conv", "conv"),
        ("conv-groupnorm-swish", "conv-gn-silu"),
    ],
)
def test_parse_canonical(text: str, canonical: str) -> None:
    assert parse_ordering(text).canonical == canonical
    assert str(parse_ordering(text)) == canonical
    # the canonical string parses to itself: it is a stable ID
    assert parse_ordering(canonical).canonical == canonical


def test_seed_cases_are_the_notebooks_blocks() -> None:
    assert ALIASES["case1"] == "conv-bn-relu"
    assert ALIASES["case2"] == "conv-relu-bn"
    assert ALIASES["case3"] == "conv-lrelu-bn"


@pytest.mark.parametrize("text", list(EXAMPLES))
def test_examples_parse(text: str) -> None:
    assert parse_ordering(text).canonical == text


@pytest.mark.parametrize("norm", NORM_NAMES)
@pytest.mark.parametrize("act", ACT_NAMES)
def test_every_norm_and_act_combines(norm: str, act: str) -> None:
    o = parse_ordering(f"{act}-conv-{norm}")
    assert o.norm == norm
    assert o.act == act
    assert [op.kind for op in o.before_weight] == ["act"]
    assert [op.kind for op in o.after_weight] == ["norm"]


def test_ordering_is_immutable_and_hashable() -> None:
    o = parse_ordering("conv-bn-relu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.ops = ()  # type: ignore[misc]
    assert {o, parse_ordering("case1")} == {o}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "conv-bachnorm-relu",
            r"unknown op 'bachnorm' in 'conv-bachnorm-relu'; did you mean 'bn'\?",
        ),
        ("conv-bn-rleu", r"did you mean 'relu'\?.*valid: conv, bn, gn, ln, relu"),
        ("conv-bn-leaky", r"did you mean 'lrelu'"),
        ("conv-fc-bn", r"exactly one weight op 'conv' \(found 2\)"),
        ("bn-relu", r"exactly one weight op 'conv' \(found 0\)"),
        ("bn-conv-bn", r"at most one norm \(found bn, bn\)"),
        ("relu-conv-gelu", r"at most one activation \(found relu, gelu\)"),
        ("conv--bn", r"empty op"),
        ("", r"empty op"),
    ],
)
def test_bad_orderings_name_the_token(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_ordering(text, field="sweeps/grid.yaml: orderings[2]")
    assert str(info.value).startswith("sweeps/grid.yaml: orderings[2]: ")
    assert "\n" not in str(info.value)

"""Sweep files are validated strictly before anything starts; every shipped file plans."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bnorder.errors import ConfigError
from bnorder.sweep.plan import make_plan
from bnorder.sweep.spec import load_sweep

SWEEPS = sorted((Path(__file__).parents[2] / "sweeps").glob("*.yaml"))
VALID = """
name: t
mode: grid
datasets: [synthetic]
archs: [cnn]
orderings: [case1]
"""


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_shipped_sweep_loads_and_plans(path: Path) -> None:
    spec, text = load_sweep(path)
    plan = make_plan(spec, str(path))
    assert text == path.read_text()
    assert all(plan.trial_count(p) > 0 for p in plan.phases)


def test_shipped_plans_have_the_sizes_the_issue_asks_for() -> None:
    plans = {p.stem: make_plan(load_sweep(p)[0]) for p in SWEEPS}
    seed = plans["seed_replication"]
    assert seed.trial_count("grid") == 2 * 3 * 5
    cfgs = [cfg for _, cfg in seed.grid_trials]
    assert {c.arch for c in cfgs} == {"cnn", "mlp_seed"}
    assert {(c.lr, c.batch_size, c.epochs, c.val_fraction, c.normalization) for c in cfgs} == {
        (1e-3, 128, 10, 0.0, "half")
    }
    assert plans["lr_depth_grid"].trial_count("grid") == 5 * 5 * 4 * 3
    tuned = plans["tuned"]
    assert tuned.trial_count("evaluate") >= 5 * len(tuned.arms)
    assert tuned.trial_count("tune") == tuned.tune.trials_per_arm * len(tuned.arms)
    quick = plans["quickstart"]
    assert {c.dataset for _, c in quick.grid_trials} == {"fashion_mnist"}


def test_grid_plan_is_the_full_product(sweep_file: Callable[..., Path]) -> None:
    path = sweep_file(
        VALID
        + "archs: [cnn, mlp_seed]\ngrid: {lr: [0.1, 0.01], depth: [1, 2]}\nseeds: 3\n".replace(
            "archs: [cnn]\n", ""
        )
    )
    plan = make_plan(load_sweep(path)[0])
    # cnn: 2 lr × 2 depth × 3 seeds; mlp_seed has no depth axis: 2 lr × 3 seeds
    assert plan.trial_count("grid") == 12 + 6
    assert len({cfg.config_hash for _, cfg in plan.grid_trials}) == 18
    assert {a.arm_id for a in plan.arms} == {
        "synthetic/cnn/d1/conv-bn-relu",
        "synthetic/cnn/d2/conv-bn-relu",
        "synthetic/mlp_seed/d1/conv-bn-relu",
    }


def test_tuned_plan_arms_and_eval_seeds(sweep_file: Callable[..., Path]) -> None:
    text = VALID.replace("mode: grid", "mode: tuned") + (
        "grid: {depth: [1, 2]}\n"
        "tune: {trials_per_arm: 4, eval_seeds: 3, tune_seed: 1,"
        " space: {lr: {log_uniform: [0.0001, 0.1]}}}\n"
    )
    plan = make_plan(load_sweep(sweep_file(text))[0])
    assert len(plan.arms) == 2
    assert plan.trial_count("tune") == 8
    assert plan.trial_count("evaluate") == 6
    assert plan.eval_seeds == [0, 2, 3]  # fresh: never the tuning seed


BAD = [
    ("name: t\nmode: grid\n", r"sweep.yaml: datasets: must be a valid list|datasets"),
    (VALID + "colour: red\n", r"sweep.yaml: unknown key 'colour'; valid: name, mode"),
    (
        VALID + "resources: {cpus: 2}\n",
        r"sweep.yaml: resources: unknown key 'cpus'; did you mean 'cpu'\?",
    ),
    (VALID + "resources: {gpu: 0.3}\n", r"sweep.yaml: resources.gpu: fractions must be 1/k"),
    (
        VALID.replace("[case1]", "[case1, conv-bachnorm-relu]"),
        r"sweep.yaml: orderings\[1\]: unknown op 'bachnorm'.*did you mean 'bn'",
    ),
    (
        VALID.replace("[cnn]", "[cnn, resnt]"),
        r"sweep.yaml: archs\[1\]: unknown arch 'resnt'; did you mean 'resnet'",
    ),
    (
        VALID.replace("[synthetic]", "[cifar11]"),
        r"sweep.yaml: datasets\[0\]: unknown dataset 'cifar11'",
    ),
    (
        VALID + "fixed: {lrr: 0.1}\n",
        r"sweep.yaml: fixed: unknown trial field 'lrr'; did you mean 'lr'\?",
    ),
    (VALID + "fixed: {ordering: case2}\n", r"sweep.yaml: fixed.ordering: is set by its own key"),
    (VALID + "fixed: {depth: 0}\n", r"sweep.yaml: fixed.depth: must be greater than 0, got 0"),
    (
        VALID + "grid: {lr: [0.1, -1]}\n",
        r"sweep.yaml: grid.lr\[1\]: must be greater than 0, got -1",
    ),
    (VALID + "grid: {lr: []}\n", r"sweep.yaml: grid.lr: needs at least one value"),
    (VALID + "mode: tuned\n", r"duplicate|mode"),
    (VALID.replace("grid", "tuned"), r"sweep.yaml: tune: is required when mode is 'tuned'"),
    (
        VALID + "tune: {trials_per_arm: 2, space: {}}\n",
        r"sweep.yaml: tune: only applies to mode 'tuned'",
    ),
    (
        VALID.replace("grid", "tuned")
        + "fixed: {lr: 0.1}\ntune: {trials_per_arm: 2, space: {lr: {uniform: [0.1, 0.2]}}}\n",
        r"tune.space.lr: is also in fixed/grid",
    ),
    (
        VALID.replace("grid", "tuned")
        + "tune: {trials_per_arm: 2, space: {lr: {uniform: [0.2, 0.1]}}}\n",
        r"uniform: needs low < high",
    ),
    (
        VALID.replace("grid", "tuned") + "tune: {trials_per_arm: 0, space: {}}\n",
        r"sweep.yaml: tune.trials_per_arm: must be greater than 0",
    ),
    (VALID.replace("name: t", "name: my sweep"), r"sweep.yaml: name: must be letters"),
    (VALID + "seeds: -1\n", r"seeds"),
    (VALID + "grid: {ordering: [case1]}\n", r"grid.ordering: is set by its own key"),
    (VALID + "fixed: {ordering_x: 1\n", r"is not valid YAML"),
    ("- just\n- a list\n", r"must be a mapping of keys, not 'list'"),
    (
        VALID
        + "fixed: {width: 12}\ngrid: {ordering_: [1]}\n".replace("grid: {ordering_: [1]}\n", "")
        + "orderings: [conv-gn-relu]\n",
        r"duplicate|gn_groups",
    ),
]


@pytest.mark.parametrize(("text", "match"), BAD)
def test_bad_sweep_files(sweep_file: Callable[..., Path], text: str, match: str) -> None:
    path = sweep_file(text)

    def load_and_plan() -> None:
        make_plan(load_sweep(path)[0], str(path))

    with pytest.raises(ConfigError, match=match) as info:
        load_and_plan()
    assert "\n" not in str(info.value)


def test_combination_errors_name_the_combination(sweep_file: Callable[..., Path]) -> None:
    path = sweep_file(VALID.replace("[case1]", "[conv-gn-relu]") + "grid: {width: [16, 12]}\n")
    spec, _ = load_sweep(path)
    with pytest.raises(
        ConfigError, match=r"synthetic/cnn/conv-gn-relu width=12: gn_groups: must divide width 12"
    ):
        make_plan(spec, str(path))


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"sweep file: cannot be read .* 'nope.yaml'"):
        load_sweep("nope.yaml")

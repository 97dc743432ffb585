"""The ``trackers:`` key and the ``--tracker`` flags: forms, defaults, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bnorder.errors import ConfigError
from bnorder.sweep.spec import load_sweep
from bnorder.sweep.trackers import Trackers, with_tracker_flags

BASE = "name: t\nmode: grid\ndatasets: [synthetic]\narchs: [cnn]\norderings: [case1]\n"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ()),
        ("trackers: []\n", ()),
        ("trackers: [mlflow, tensorboard]\n", ("mlflow", "tensorboard")),
        ("trackers: wandb\n", ("wandb",)),
        ("trackers:\n  mlflow:\n  wandb: {mode: offline}\n", ("mlflow", "wandb")),
    ],
)
def test_forms(sweep_file: Callable[..., Path], text: str, names: tuple[str, ...]) -> None:
    spec, _ = load_sweep(sweep_file(BASE + text))
    assert spec.trackers.names == names


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("trackers: [mlfow]", r"trackers: unknown tracker 'mlfow'; did you mean 'mlflow'\? valid"),
        ("trackers: {comet: {}}", r"trackers: unknown tracker 'comet'; valid: mlflow, wandb"),
        (
            "trackers: {mlflow: {trackin_uri: x}}",
            r"trackers.mlflow: unknown key 'trackin_uri'; did you mean 'tracking_uri'\?",
        ),
        (
            "trackers: {wandb: {mode: ofline}}",
            r"trackers.wandb.mode: unknown W&B mode 'ofline'; did you mean 'offline'\?",
        ),
        ("trackers: 3", r"trackers: must be a list of tracker names or a mapping"),
    ],
)
def test_errors_name_the_key(sweep_file: Callable[..., Path], text: str, match: str) -> None:
    path = sweep_file(BASE + text + "\n")
    with pytest.raises(ConfigError, match=rf"^{path}: {match}") as err:
        load_sweep(path)
    assert "\n" not in str(err.value)


def test_flags_add_to_and_override_the_file() -> None:
    file = Trackers.model_validate({"mlflow": {"experiment": "e"}, "tensorboard": {}})
    merged = with_tracker_flags(file, ["wandb"], "http://h:5000")
    assert merged.names == ("mlflow", "wandb", "tensorboard")
    assert merged.mlflow is not None
    assert (merged.mlflow.tracking_uri, merged.mlflow.experiment) == ("http://h:5000", "e")
    assert with_tracker_flags(file, ["none"], None).names == ()
    assert with_tracker_flags(Trackers(), ["mlflow"], None).names == ("mlflow",)


@pytest.mark.parametrize(
    ("names", "uri", "match"),
    [
        (["none", "wandb"], None, r"--tracker: 'none' drops every tracker"),
        (["wandb"], "http://h", r"--tracker-uri: .*mlflow tracker is off.*add --tracker mlflow"),
    ],
)
def test_flag_errors(names: list[str], uri: str | None, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        with_tracker_flags(Trackers(), names, uri)

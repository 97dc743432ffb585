"""The ``trackers:`` key of a sweep file: which experiment trackers see the sweep, and how.

A list of names (``trackers: [mlflow, tensorboard]``) or a mapping of names to options
(``trackers: {mlflow: {tracking_uri: http://host:5000}, wandb: {mode: offline}}``). The command
line adds to it (``--tracker wandb``, ``--tracker-uri URI``) or drops it (``--tracker none``).
Plain data: the trackers themselves (bnorder.tune.trackers) are built when a sweep runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from bnorder.errors import ConfigError

__all__ = [
    "TRACKER_NAMES",
    "MlflowOptions",
    "TensorboardOptions",
    "Trackers",
    "WandbOptions",
    "with_tracker_flags",
]

TRACKER_NAMES = ("mlflow", "wandb", "tensorboard")
WANDB_MODES = ("online", "offline", "disabled")


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MlflowOptions(_Options):
    # None: $MLFLOW_TRACKING_URI, else a SQLite file in the results folder (OUT/mlflow.db)
    tracking_uri: str | None = None
    experiment: str | None = None  # None: the sweep's name (one experiment per sweep)


class WandbOptions(_Options):
    project: str | None = None  # None: $WANDB_PROJECT, else the sweep's name
    entity: str | None = None  # None: $WANDB_ENTITY, else your default entity
    group: str | None = None  # None: the sweep's name (one group per sweep)
    # None: $WANDB_MODE, else online; offline writes runs to sync later (`wandb sync`)
    mode: Literal["online", "offline", "disabled"] | None = None
    dir: str | None = None  # where W&B keeps its local files; None: $WANDB_DIR, else OUT

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        if v is not None and v not in WANDB_MODES:
            raise ConfigError("mode", v, "unknown W&B mode", choices=WANDB_MODES)
        return v


class TensorboardOptions(_Options):
    logdir: str | None = None  # None: OUT/tensorboard


class Trackers(_Options):
    """The trackers a sweep logs to; all off by default."""

    mlflow: MlflowOptions | None = None
    wandb: WandbOptions | None = None
    tensorboard: TensorboardOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """``[mlflow]`` or ``mlflow`` -> ``{mlflow: {}}``; ``mlflow:`` with no options -> ``{}``."""
        if value is None:
            return {}
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            for name in value:
                _check_name(name)
            return {name: {} for name in value}
        if isinstance(value, dict):
            for name in value:
                _check_name(name)
            return {k: {} if v is None else v for k, v in value.items()}
        if isinstance(value, BaseModel):
            return value
        raise ConfigError(
            "trackers",
            value,
            "must be a list of tracker names or a mapping of them to options, not",
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in TRACKER_NAMES if getattr(self, n) is not None)

    def describe(self, out: Path) -> str:
        """``mlflow (sqlite:///.../mlflow.db), tensorboard (OUT/tensorboard)``: for the plan."""
        where = {
            "mlflow": (self.mlflow and self.mlflow.tracking_uri)
            or f"$MLFLOW_TRACKING_URI or sqlite:///{out / 'mlflow.db'}",
            "wandb": f"mode {(self.wandb and self.wandb.mode) or '$WANDB_MODE or online'}",
            "tensorboard": (self.tensorboard and self.tensorboard.logdir)
            or str(out / "tensorboard"),
        }
        return ", ".join(f"{n} ({where[n]})" for n in self.names)


def _check_name(name: Any) -> None:
    if name not in TRACKER_NAMES:
        raise ConfigError("trackers", name, "unknown tracker", choices=TRACKER_NAMES)


def with_tracker_flags(trackers: Trackers, names: list[str] | None, uri: str | None) -> Trackers:
    """The sweep file's trackers with the command line's: ``--tracker NAME`` (repeatable) adds
    one with its default options unless the file configures it; ``--tracker none`` drops the
    file's; ``--tracker-uri`` sets MLflow's tracking URI.

    Raises:
        ConfigError: ``none`` with other names, or ``--tracker-uri`` without the mlflow tracker.
    """
    names = list(names or [])
    if "none" in names:
        if len(set(names)) > 1:
            raise ConfigError(
                "--tracker",
                "none",
                "{value} drops every tracker; it cannot be combined with others",
            )
        trackers = Trackers()
    given = {n: getattr(trackers, n) or {} for n in trackers.names}
    for name in names:
        if name != "none":
            _check_name(name)
            given.setdefault(name, {})
    if uri is not None:
        if "mlflow" not in given:
            raise ConfigError(
                "--tracker-uri",
                uri,
                "sets the MLflow tracking URI, but the mlflow tracker is off:",
                hint="add --tracker mlflow",
            )
        mlflow = given["mlflow"]
        options = mlflow.model_dump() if isinstance(mlflow, MlflowOptions) else dict(mlflow)
        given["mlflow"] = {**options, "tracking_uri": uri}
    return Trackers.model_validate(given)

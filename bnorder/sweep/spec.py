"""Sweep files: YAML data (never code), validated strictly before anything starts.

Every error names the file and the key path: ``sweeps/grid.yaml: orderings[2]: unknown op
'bachnorm' ...; did you mean 'bn'?``. Unknown keys are errors with a suggestion.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bnorder.config import TrialConfig, config_error_from
from bnorder.errors import ConfigError
from bnorder.sweep.trackers import Trackers

__all__ = [
    "AdaptiveSeeds",
    "Distribution",
    "Precision",
    "PruningSpec",
    "Resources",
    "SweepSpec",
    "TuneSpec",
    "load_sweep",
]

# Set by their own keys (datasets, archs, orderings, seeds), not through `fixed` or `grid`.
OWN_KEYS = ("dataset", "arch", "ordering", "seed")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(_Strict):
    """Per trial. Ray does not enforce GPU memory: with gpu 0.25 each trial must fit a quarter,
    and bnorder caps each trial's CUDA allocator at its share (see tune/trainable.share_gpu)."""

    cpu: float = Field(1.0, gt=0)  # torch threads follow it
    gpu: float = Field(0.0, ge=0)  # a whole number, or 1/k so k trials share one GPU

    @field_validator("gpu")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if 0 < v < 1 and not math.isclose(1 / v, round(1 / v), abs_tol=1e-6):
            raise ConfigError(
                "gpu",
                v,
                "fractions must be 1/k (0.5, 0.25, ...), not",
                hint="other fractions fail to pack across nodes",
            )
        if v > 1 and v != int(v):
            raise ConfigError("gpu", v, "more than one GPU must be a whole number, not")
        return v


class Distribution(_Strict):
    """Exactly one of ``log_uniform: [lo, hi]``, ``uniform: [lo, hi]``, ``int: [lo, hi]`` or
    ``choice: [a, b, ...]``."""

    log_uniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    int: tuple[int, int] | None = None
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Distribution:
        given = [
            k for k in ("log_uniform", "uniform", "int", "choice") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ConfigError(
                "kind",
                given or "nothing",
                "needs exactly one kind, got",
                choices=("log_uniform", "uniform", "int", "choice"),
            )
        bounds = self.log_uniform or self.uniform or self.int
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ConfigError(given[0], list(bounds), "needs low < high, got")
        if self.log_uniform is not None and self.log_uniform[0] <= 0:
            raise ConfigError("log_uniform", list(self.log_uniform), "needs positive bounds, got")
        if self.choice is not None and not self.choice:
            raise ConfigError("choice", [], "needs at least one value, got")
        return self


class PruningSpec(_Strict):
    """Successive halving inside each arm's study (Optuna's pruner): every arm gets the same rule,
    and trials stopped by it are told to Optuna as pruned."""

    min_epochs: int = Field(1, gt=0)  # epochs every trial gets before it can be stopped
    reduction_factor: int = Field(3, ge=2)  # keep the best 1/factor at each rung


class Precision(_Strict):
    ci_halfwidth: float = Field(gt=0, lt=1)  # target half-width of each difference's interval


class AdaptiveSeeds(_Strict):
    """``seeds: {min: 3, max: 9, step: 2, until: verdict}``: seeds go where the answer is open.

    Every ordering of a point starts with ``min`` seeds. When a point's batch has finished,
    each contender is compared with the baseline by the stopping rule
    (:class:`bnorder.analysis.sequential.StoppingRule`); the orderings of comparisons still
    open get ``step`` more seeds, up to ``max``. Seeds are 0, 1, 2, ... in order.
    """

    min: int = Field(ge=2)  # a difference needs 2 runs per ordering to have a spread
    max: int = Field(ge=2)
    step: int = Field(1, ge=1)
    # verdict: significant or equivalent (group-sequential, alpha spent over the looks);
    # {ci_halfwidth: h}: precise enough, whatever the difference (looks at the spread only)
    until: Literal["verdict"] | Precision = "verdict"
    alpha: float = Field(0.05, gt=0, lt=0.5)  # family-wise, over the sweep's comparisons
    margin: float = Field(0.01, gt=0, lt=1)  # equivalence margin: one accuracy point
    baseline: str | None = None  # the reference ordering; default conv-bn-relu if present

    @model_validator(mode="after")
    def _range(self) -> AdaptiveSeeds:
        if self.max < self.min:
            raise ConfigError("max", self.max, f"must be at least min ({self.min}), got")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.max))


def _adaptive(value: Any) -> Any:
    """A mapping as :class:`AdaptiveSeeds`, its errors naming its own keys (pydantic would
    report the union's first member, ``int``, or ``until``'s literal, instead)."""
    if not isinstance(value, dict):
        return value
    until = value.get("until")
    if isinstance(until, dict):
        value = {**value, "until": _validated(Precision, until, "until")}
    return _validated(AdaptiveSeeds, value, "")


def _validated(model: type[BaseModel], value: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        # a misspelt key also leaves its field missing: name the misspelling
        extra = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
        if extra:
            err = extra[0]
            loc = [where, *(str(p) for p in err["loc"])]
            raise ConfigError(
                ".".join(p for p in loc[:-1] if p) or "seeds",
                loc[-1],
                "unknown key",
                choices=(*model.model_fields, *(("verdict",) if model is Precision else ())),
            ) from None
        error = config_error_from(exc)
        raise (error.at(f"{where}.{error.field}") if where else error) from None


class TuneSpec(_Strict):
    trials_per_arm: int = Field(gt=0)  # the same budget for every arm
    space: dict[str, Distribution]
    # fresh seeds the best config of each arm is retrained with: a count, or adaptive
    eval_seeds: int | AdaptiveSeeds = Field(5)
    tune_seed: int = Field(0, ge=0)  # training seed of tuning trials (evaluation seeds differ)
    sampler_seed: int = Field(0, ge=0)  # TPE's seed, so a sweep's suggestions are reproducible
    metric: Literal["best_val_acc", "final_val_acc"] = "best_val_acc"  # validation only
    pruning: PruningSpec | None = None

    _adaptive_eval = field_validator("eval_seeds", mode="before")(_adaptive)

    @field_validator("eval_seeds")
    @classmethod
    def _eval_seeds(cls, v: int | AdaptiveSeeds) -> int | AdaptiveSeeds:
        if isinstance(v, int) and v < 1:
            raise ConfigError("eval_seeds", v, "needs a count of at least 1, got")
        return v

    @property
    def adaptive(self) -> AdaptiveSeeds | None:
        """The evaluate phase's adaptive seeds, or None for a fixed count."""
        return self.eval_seeds if isinstance(self.eval_seeds, AdaptiveSeeds) else None

    @property
    def eval_count(self) -> int:
        """Evaluation seeds per arm at most."""
        return (
            self.eval_seeds.max if isinstance(self.eval_seeds, AdaptiveSeeds) else self.eval_seeds
        )


class SweepSpec(_Strict):
    """A whole study: what to train, over which axes, with which resources, where to write."""

    name: str
    mode: Literal["grid", "tuned"]
    datasets: list[str] = Field(min_length=1)
    archs: list[str] = Field(min_length=1)
    orderings: list[str] = Field(min_length=1)
    fixed: dict[str, Any] = {}  # TrialConfig fields shared by every trial
    grid: dict[str, list[Any]] = {}  # TrialConfig fields -> values (arm axes in tuned mode)
    seeds: int | list[int] | AdaptiveSeeds = 1  # a count (0..n-1), the list, or adaptive
    resources: Resources = Resources()
    max_concurrent: int | None = Field(None, gt=0)  # None: as many as resources allow
    # Up to this many seed replicates of one point train as one fused array (one Ray trial,
    # one resources bundle) in grid and evaluate phases; 1 trains every trial on its own.
    fuse: int = Field(1, ge=1)
    max_failures: int = Field(2, ge=0)  # retries of a trial that raised before it is 'failed'
    output: str | None = None  # default results/<name>
    storage: str | None = (
        None  # Ray storage_path: a path, NFS mount, s3:// or gs://; default <output>/ray
    )
    tune: TuneSpec | None = None
    # what stays of a trial once its rows are written: its checkpoints are deleted; "trial"
    # keeps every trial's final weights, "arm_best" the best trial's per arm and phase
    # (<output>/weights/, bnorder.tune.checkpoints)
    keep_weights: Literal["none", "trial", "arm_best"] = "none"
    # experiment trackers every trial is also logged to (bnorder.sweep.trackers; README)
    trackers: Trackers = Trackers()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ConfigError("name", v, "must be letters, digits, '.', '_' or '-', not")
        return v

    _adaptive_seeds = field_validator("seeds", mode="before")(_adaptive)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int] | AdaptiveSeeds) -> int | list[int] | AdaptiveSeeds:
        if isinstance(v, int) and v < 1:
            raise ConfigError("seeds", v, "needs a count of at least 1 or a list of seeds, got")
        if isinstance(v, list) and (not v or min(v) < 0 or len(set(v)) != len(v)):
            raise ConfigError("seeds", v, "needs distinct non-negative seeds, got")
        return v

    @property
    def seed_list(self) -> list[int]:
        """Every seed a point may get (adaptive: up to ``max``)."""
        if isinstance(self.seeds, AdaptiveSeeds):
            return self.seeds.seed_list
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def adaptive(self) -> AdaptiveSeeds | None:
        """The grid phase's adaptive seeds, or None for a fixed list."""
        return self.seeds if isinstance(self.seeds, AdaptiveSeeds) else None

    @property
    def output_dir(self) -> Path:
        return Path(self.output or f"results/{self.name}")


def _check_fields(keys: list[str], where: str) -> None:
    fields = tuple(TrialConfig.model_fields)
    for key in keys:
        if key in OWN_KEYS:
            raise ConfigError(
                f"{where}.{key}",
                key,
                "is set by its own key, not here:",
                hint=f"use '{key}s' at the top level",
            )
        if key not in fields:
            raise ConfigError(f"{where}", key, "unknown trial field", choices=fields)


def _validate_values(spec: SweepSpec, src: str) -> None:
    """Each value on its own first, so an error points at the exact element."""
    from bnorder.data import get_dataset
    from bnorder.models import get_arch
    from bnorder.ordering import parse_ordering

    for i, name in enumerate(spec.datasets):
        get_dataset(name, field=f"{src}: datasets[{i}]")
    for i, name in enumerate(spec.archs):
        get_arch(name, field=f"{src}: archs[{i}]")
    for i, text in enumerate(spec.orderings):
        parse_ordering(text, field=f"{src}: orderings[{i}]")
    _check_fields(list(spec.fixed), f"{src}: fixed")
    _check_fields(list(spec.grid), f"{src}: grid")
    for key, value in spec.fixed.items():
        _one_field(key, value, f"{src}: fixed.{key}")
    for key, values in spec.grid.items():
        if not values:
            raise ConfigError(f"{src}: grid.{key}", values, "needs at least one value, got")
        for i, value in enumerate(values):
            _one_field(key, value, f"{src}: grid.{key}[{i}]")
    devices = [spec.fixed.get("device", "auto"), *spec.grid.get("device", [])]
    if spec.resources.gpu == 0 and any(str(d).startswith("cuda") for d in devices):
        raise ConfigError(
            f"{src}: resources.gpu",
            0,
            "grants no GPU while the trials' device asks for cuda; got",
            hint="set resources.gpu (1, or 1/k to share one), or use device: auto",
        )
    if spec.mode == "tuned":
        if spec.tune is None:
            raise ConfigError(f"{src}: tune", None, "is required when mode is 'tuned', got")
        _check_fields(list(spec.tune.space), f"{src}: tune.space")
        for key in spec.tune.space:
            if key in spec.fixed or key in spec.grid:
                raise ConfigError(
                    f"{src}: tune.space.{key}",
                    key,
                    "is also in fixed/grid:",
                    hint="a tuned field cannot be fixed too",
                )
        if spec.adaptive is not None:
            raise ConfigError(
                f"{src}: seeds",
                "adaptive",
                "applies to grid sweeps only; got",
                hint="a tuned sweep takes adaptive seeds in tune.eval_seeds",
            )
    elif spec.tune is not None:
        raise ConfigError(f"{src}: tune", "tune", "only applies to mode 'tuned'; remove", hint=None)
    for where, rule in (
        (f"{src}: seeds", spec.adaptive),
        (f"{src}: tune.eval_seeds", (spec.tune.adaptive if spec.tune else None)),
    ):
        if rule is not None and rule.baseline is not None:
            _check_baseline(rule.baseline, spec.orderings, f"{where}.baseline")


def _check_baseline(text: str, orderings: list[str], where: str) -> None:
    from bnorder.ordering import parse_ordering

    listed = [parse_ordering(o).canonical for o in orderings]
    if parse_ordering(text, field=where).canonical not in listed:
        raise ConfigError(where, text, "is not one of the sweep's orderings", choices=orderings)


def _one_field(key: str, value: Any, where: str) -> None:
    try:
        TrialConfig(**{key: value})
    except ConfigError as exc:
        if exc.field == key:  # errors of other fields come from combinations, checked by the plan
            raise exc.at(where) from None


def load_sweep(path: str | Path) -> tuple[SweepSpec, str]:
    """Read and validate a sweep file; returns the spec and the file's text (kept as provenance).

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key or a bad value; the message names
            the file and the key path.
    """
    path = Path(path)
    src = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("sweep file", src, f"cannot be read ({exc.strerror}):") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(
            src, getattr(exc, "problem", "invalid YAML"), f"is not valid YAML{line}:"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(src, type(data).__name__, "must be a mapping of keys, not")
    try:
        spec = SweepSpec(**data)
    except ValidationError as exc:
        raise _sweep_error(exc, src) from None
    _validate_values(spec, src)
    return spec, text


def _sweep_error(exc: ValidationError, src: str) -> ConfigError:
    err = exc.errors()[0]
    if err["type"] == "extra_forbidden":
        loc = tuple(err["loc"])
        model: type[BaseModel] = SweepSpec
        for part in loc[:-1]:
            field = model.model_fields.get(str(part))
            inner = field.annotation if field else None
            for candidate in (inner, *getattr(inner, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    model = candidate
                    break
        where = ".".join(str(p) for p in loc[:-1])
        return ConfigError(
            f"{src}: {where}" if where else src,
            loc[-1],
            "unknown key",
            choices=tuple(model.model_fields),
        )
    return config_error_from(exc, prefix=f"{src}:")

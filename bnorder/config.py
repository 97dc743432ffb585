"""``TrialConfig``: the one frozen, validated object that training receives.

Every default says why it is what it is; the seed notebook's choices are the defaults wherever
they are not a weakness (its single fixed lr is fixed by sweeps, not here). Bad values raise a
:class:`~bnorder.errors.ConfigError` naming the field, the value and the valid choices.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bnorder.data import get_dataset
from bnorder.errors import ConfigError
from bnorder.layers import LayerParams
from bnorder.models import get_arch
from bnorder.optim import OPTIMIZERS, SCHEDULES
from bnorder.ordering import Ordering, parse_ordering
from bnorder.registry import lookup

__all__ = ["CHOICES", "NON_RESULT_FIELDS", "SEED_FIELDS", "TrialConfig", "config_error_from"]

# Named choices of the string fields (registries of their own live with the code they name).
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": tuple(OPTIMIZERS),
    "schedule": tuple(SCHEDULES),
    "precision": ("fp32", "bf16"),
    "normalization": ("dataset", "half"),
    "init": ("default", "kaiming"),
}
SEED_FIELDS = ("seed", "init_seed", "data_seed", "split_seed")
# Fields that do not change what a trial computes: left out of its hashes.
NON_RESULT_FIELDS = ("device", "probes", "probe_size")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class TrialConfig(BaseModel):
    """Everything one training run depends on. Build with keywords; unknown keys are errors.

    Example:
        >>> cfg = TrialConfig(dataset="synthetic", arch="cnn", ordering="case2", depth=2, width=16)
        >>> cfg.ordering
        'conv-relu-bn'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    # ---- what is trained
    dataset: str = "cifar10"  # the seed's dataset
    arch: str = "cnn"  # the seed's main architecture
    ordering: str = "conv-bn-relu"  # the convention (seed case1); stored in canonical form
    depth: int = Field(8, gt=0)  # the seed's 8 blocks
    width: int = Field(64, gt=0)  # the seed's 64 channels
    lrelu_slope: float = Field(0.01, ge=0)  # PyTorch's LeakyReLU default, as in the seed's case3
    gn_groups: int = Field(8, gt=0)  # GroupNorm groups; must divide the width
    init: str = "default"  # PyTorch's default init, as the seed; "kaiming" for He-normal

    # ---- how it is trained
    optimizer: str = "adam"  # the seed's
    lr: float = Field(1e-3, gt=0)  # the seed's; sweeps tune it per ordering
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD only; the common choice
    weight_decay: float = Field(0.0, ge=0)  # the seed used none
    batch_size: int = Field(128, gt=0)  # the seed's DataLoader batch
    epochs: int = Field(10, gt=0)  # the seed's
    schedule: str = "constant"  # the seed's (no schedule)
    augment: bool = False  # random crop + flip; the seed used none

    # ---- data
    subset: int | None = Field(None, ge=2)  # first N training examples, for quick runs
    test_subset: int | None = Field(None, gt=0)  # first N test examples, for quick runs
    val_fraction: float = Field(0.1, ge=0, lt=1)  # carved from train; 0 replicates the seed
    normalization: str = "dataset"  # train-split mean/std; "half" is the seed's (x-0.5)/0.5

    # ---- seeds: each source of variance has its own (Bouthillier et al. 2021)
    seed: int = Field(0, ge=0)  # replicate index; init and data order follow it unless set
    init_seed: int | None = Field(None, ge=0)  # weight initialisation; defaults to seed
    data_seed: int | None = Field(None, ge=0)  # batch order and augmentation; defaults to seed
    split_seed: int = Field(0, ge=0)  # train/val split; fixed so all replicates share one val set

    # ---- where and how fast
    device: str = "auto"  # cuda, then mps, then cpu
    precision: str = "fp32"  # the seed's; "bf16" autocasts matmuls/convs, BN stays fp32
    # Speed only, yet kept in the hashes like precision: rows of different execution modes are
    # different cells unless an analysis pools them on purpose (equivalence is tested, not assumed).
    channels_last: bool = False  # NHWC activations: faster convolutions on tensor-core GPUs
    compile: bool = False  # torch.compile the network (compiled graphs are cached on disk)
    probes: bool = False  # per-block statistics each epoch (costs one extra batch pass)
    probe_size: int = Field(256, ge=2)  # examples in the fixed probe batch

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error_from(exc) from None

    # ---- validation
    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return get_dataset(v).name

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        return get_arch(v).name

    @field_validator("ordering")
    @classmethod
    def _ordering(cls, v: str) -> str:
        return parse_ordering(v).canonical

    @field_validator(*CHOICES)
    @classmethod
    def _choice(cls, v: str, info: Any) -> str:
        choices = CHOICES[info.field_name]
        return lookup(
            {c: c for c in choices}, v, field=info.field_name, kind=info.field_name, choices=choices
        )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE.match(str(v).strip().lower()):
            raise ConfigError(
                "device",
                v,
                "unknown device",
                choices=("auto", "cpu", "cuda", "cuda:N", "mps"),
                aliases={"gpu": "cuda", "nvidia": "cuda", "apple": "mps"},
            )
        return str(v).strip().lower()

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("init_seed", "data_seed"):
            if data.get(name) is None:
                data[name] = data.get("seed", 0)
        arch = data.get("arch")
        if isinstance(arch, str):
            for key, value in get_arch(arch).fixed.items():
                if str(data.get(key, value)).strip() != str(value):
                    raise ConfigError(
                        key,
                        data[key],
                        f"arch {arch!r} has a fixed {key} of {value}, not",
                        hint=f"leave {key} out for {arch}",
                    )
                data[key] = value
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TrialConfig:
        if self.parsed_ordering.norm == "gn" and self.width % self.gn_groups:
            raise ConfigError(
                "gn_groups",
                self.gn_groups,
                f"must divide width {self.width}, not",
                hint="pick a divisor of the width",
            )
        return self

    # ---- derived values
    @cached_property
    def parsed_ordering(self) -> Ordering:
        return parse_ordering(self.ordering)

    @property
    def layer_params(self) -> LayerParams:
        return LayerParams(lrelu_slope=self.lrelu_slope, gn_groups=self.gn_groups)

    def _hash(self, exclude: tuple[str, ...]) -> str:
        fields = {k: v for k, v in self.model_dump().items() if k not in exclude}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def config_hash(self) -> str:
        """Identifies what this trial computes, seeds included: equal hash, same experiment cell."""
        return self._hash(NON_RESULT_FIELDS)

    @property
    def group_hash(self) -> str:
        """Shared by the replicates of one point: everything but device, probes and seeds."""
        return self._hash(NON_RESULT_FIELDS + SEED_FIELDS)

    def replace(self, **changes: Any) -> TrialConfig:
        """A copy with ``changes`` applied and validated (derived seeds re-derived)."""
        data = self.model_dump()
        if "seed" in changes:
            data.update(init_seed=None, data_seed=None)
        arch = changes.get("arch")
        if arch is not None and get_arch(arch).name != self.arch:
            for key in get_arch(self.arch).fixed:
                data.pop(key)
        return TrialConfig(**{**data, **changes})


def _path(loc: tuple[Any, ...], prefix: str) -> str:
    """``("fixed", "depth")`` -> ``fixed.depth``; a prefix ending in ':' (a file) is spaced."""
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc]
    text = "".join(parts).lstrip(".")
    if not prefix:
        return text or "config"
    sep = " " if prefix.endswith(":") else "."
    return f"{prefix}{sep}{text}" if text else prefix.rstrip(":")


def config_error_from(exc: ValidationError, prefix: str = "") -> ConfigError:
    """The first error of a pydantic ValidationError as one-line ConfigError."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError):
        if not prefix:
            return inner
        if not loc or loc[-1] != inner.field:  # a nested model's own field: keep it in the path
            loc = (*loc, inner.field)
        return inner.at(_path(loc, prefix))
    if err["type"] == "extra_forbidden":
        return ConfigError(
            _path(loc[:-1], prefix), loc[-1], "unknown key", choices=tuple(TrialConfig.model_fields)
        )
    msg = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    return ConfigError(_path(loc, prefix), err.get("input"), f"{msg}, got")

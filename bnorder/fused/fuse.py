"""``fuse_models``: K seed replicates of one network trained as one (HFTA, Wang et al. 2021).

Data flow of a :class:`FusedArray` with K members::

    x [B, K, C, H, W]            member k's batch is x[:, k]
      -> flatten(1, 2)           [B, K·C, H, W], member-major channels
      -> member 0's module tree, each leaf swapped for its fused leaf (bnorder.fused.layers);
         the containers' own forward code (CNN, MLP, ResNet, OrderedBlock, ...) runs unchanged,
         as it only adds, pools and flattens from dim 1, which keep the member-major layout
      -> [B, K·classes] -> view   logits [B, K, classes]

Training all K at once is exactly training each alone when the loss is the *sum* of the
members' mean losses (:func:`fused_cross_entropy`): member k's gradient then only depends on
member k, and element-wise optimisers (SGD with momentum and weight decay, Adam, AdamW) update
each member's slice as they would update that member. This needs every member to share the
optimiser's hyperparameters (lr, weight decay, momentum, schedule): per-member values are out of
scope. Anything that couples parameters across the whole model, such as clipping by the global
gradient norm, would couple the members and is not equivalent either.

"Exactly" means up to floating-point rounding: a grouped convolution sums in another order than
K dense ones (differences ~1e-7). SGD keeps such differences that small; Adam turns an element
whose gradient is zero up to rounding (a conv bias right before a train-mode BatchNorm) into a
±lr step of rounding-chosen sign, so Adam runs drift apart by a few lr, as two separate runs on
different hardware would. Per-step losses agree to ~1e-6 either way.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bnorder.errors import ConfigError
from bnorder.fused.layers import FUSERS, fuse_leaf
from bnorder.models import OrderedBlock
from bnorder.models.cnn import CNN
from bnorder.models.mlp import MLP, SeedMLP
from bnorder.models.resnet import ResidualBlock, ResNet

__all__ = ["CONTAINERS", "FusedArray", "fuse_models", "fused_cross_entropy"]

# Containers whose forward is known to keep the member-major layout (it only applies children,
# adds and flattens from dim 1). Exact types: any other forward could mix the members.
CONTAINERS: tuple[type[nn.Module], ...] = (
    nn.Sequential,
    OrderedBlock,
    CNN,
    MLP,
    SeedMLP,
    ResNet,
    ResidualBlock,
)
_SUPPORTED = tuple(sorted({t.__name__ for t in (*CONTAINERS, *FUSERS)}))


class FusedArray(nn.Module):
    """K networks of identical structure computed as one; build it with :func:`fuse_models`.

    ``net`` is the fused module tree: its state-dict keys are the members' keys and every
    tensor is the members' tensors concatenated along dim 0 (scalars, i.e. BatchNorm's
    ``num_batches_tracked``, are shared: the members always take the same steps).
    """

    def __init__(self, net: nn.Module, k: int) -> None:
        super().__init__()
        self.net = net
        self.k = k
        # the layout image inputs are handed to the network in once flattened to [B, K·C, H,
        # W]: channels_last for an array whose weights are, else the first conv converts them
        self.input_layout = torch.contiguous_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, K, *member_input] -> [B, K, num_classes]``."""
        if x.dim() < 3 or x.shape[1] != self.k:
            raise ValueError(
                f"FusedArray of {self.k} members expects [batch, {self.k}, ...] inputs, "
                f"got {tuple(x.shape)}"
            )
        flat = x.flatten(1, 2)
        if flat.dim() == 4:
            flat = flat.contiguous(memory_format=self.input_layout)
        return self.net(flat).view(x.shape[0], self.k, -1)

    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s state dict, with the keys and shapes of the original model.

        The tensors are copies (a view would make ``torch.save`` write all K members).
        """
        if not 0 <= k < self.k:
            raise IndexError(f"member {k} out of range for a FusedArray of {self.k} members")
        return {
            name: t.clone() if t.dim() == 0 else t.chunk(self.k)[k].clone()
            for name, t in self.net.state_dict().items()
        }

    def load_member_state_dicts(self, state_dicts: Sequence[dict[str, torch.Tensor]]) -> None:
        """Load one state dict per member (the inverse of :meth:`member_state_dict`).

        Raises:
            ConfigError: not one per member, keys that differ from the network's, or scalars
                (``num_batches_tracked``) that differ between members.
        """
        if len(state_dicts) != self.k:
            raise ConfigError(
                "state_dicts", len(state_dicts), f"need one per member ({self.k}), got"
            )
        own = self.net.state_dict()
        stacked: dict[str, torch.Tensor] = {}
        for i, sd in enumerate(state_dicts):
            if set(sd) != set(own):
                diff = sorted(set(sd) ^ set(own))
                raise ConfigError(f"state_dicts[{i}]", diff[:5], "keys differ from the model's:")
        for name, t in own.items():
            parts = [sd[name] for sd in state_dicts]
            if t.dim() == 0:
                for i, p in enumerate(parts):
                    if not torch.equal(p, parts[0]):
                        raise ConfigError(
                            f"state_dicts[{i}].{name}",
                            p.item(),
                            f"must equal member 0's {parts[0].item()} (one is kept for all), not",
                        )
                stacked[name] = parts[0]
            else:
                stacked[name] = torch.cat(parts)
        self.net.load_state_dict(stacked)


def _path(i: int, name: str) -> str:
    return f"models[{i}].{name}" if name else f"models[{i}]"


def _check_alike(models: Sequence[nn.Module]) -> None:
    """Same module tree, leaf settings and tensor shapes/dtypes/devices as member 0."""
    ref = list(models[0].named_modules())
    ref_state = models[0].state_dict()
    for i, model in enumerate(models[1:], start=1):
        mods = list(model.named_modules())
        for (name0, m0), (name, m) in itertools.zip_longest(ref, mods, fillvalue=(None, None)):
            if name != name0 or type(m) is not type(m0):
                raise ConfigError(
                    f"models[{i}]",
                    _label(name, m),
                    f"module tree differs from models[0]'s: {{value}} where it has "
                    f"{_label(name0, m0)!r}",
                    hint="fuse only models that differ in seeds alone",
                )
            if type(m) in FUSERS and m.extra_repr() != m0.extra_repr():
                raise ConfigError(
                    _path(i, name),
                    repr(m),
                    f"{{value}} differs from models[0]'s {m0!r}",
                    hint="fuse only models of the same arch, ordering, depth, width and params",
                )
        for (name, t), t0 in zip(model.state_dict().items(), ref_state.values(), strict=True):
            got, want = (t.shape, t.dtype, t.device), (t0.shape, t0.dtype, t0.device)
            if got != want:
                raise ConfigError(_path(i, name), got, f"must match models[0]'s {want}, got")
        for (name, p), p0 in zip(model.named_parameters(), models[0].parameters(), strict=True):
            if p.requires_grad != p0.requires_grad:
                raise ConfigError(
                    _path(i, name), p.requires_grad, "requires_grad differs from models[0]:"
                )


def _label(name: str | None, m: nn.Module | None) -> str:
    """``blocks.2: OrderedBlock``, for messages about the module tree."""
    if m is None:
        return "no module"
    return f"{name or '<root>'}: {type(m).__name__}"


def fuse_models(models: Sequence[nn.Module]) -> FusedArray:
    """Fuse K ≥ 1 networks that differ only in their values (seeds) into one array.

    Weights and buffers (BatchNorm running statistics included) are copied, so the array starts
    exactly where the members are; the members are not modified and share nothing with it.
    The array is in member 0's train/eval mode.

    Args:
        models: networks from :func:`bnorder.models.create_model` (or any tree of the
            supported types) with the same arch, ordering, depth, width and layer params.

    Returns:
        A :class:`FusedArray`; ``array(x)`` with ``x`` ``[B, K, C, H, W]`` gives
        ``[B, K, num_classes]``, ``array.member_state_dict(k)`` loads into member k's model.

    Raises:
        ConfigError: no models; members that differ in structure, settings or shapes (the
            message names the first differing module); a module type that cannot be fused.

    Example:
        >>> models = [build_model(cfg.replace(seed=s)) for s in range(4)]  # doctest: +SKIP
        >>> array = fuse_models(models)  # doctest: +SKIP
        >>> total, per_member = fused_cross_entropy(array(x), y)  # doctest: +SKIP
    """
    models = list(models)
    if not models:
        raise ConfigError("models", 0, "need at least one model to fuse, got")
    _check_alike(models)
    net = copy.deepcopy(models[0])  # containers and stateless leaves kept; stateful ones swapped
    for name, module in models[0].named_modules():
        if type(module) in CONTAINERS:
            continue
        if type(module) not in FUSERS:
            raise ConfigError(
                _path(0, name),
                type(module).__name__,
                "cannot fuse module type",
                choices=_SUPPORTED,
                hint="a fused array runs only the types whose fused form keeps members apart",
            )
        try:
            fused = fuse_leaf([m.get_submodule(name) for m in models])
        except ConfigError as exc:
            raise exc.at(_path(0, name)) from None
        if name:
            net.set_submodule(name, fused)
        else:
            net = fused  # the whole model is one leaf
    array = FusedArray(net, len(models))
    array.load_member_state_dicts([m.state_dict() for m in models])
    return array.train(models[0].training)


def fused_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of every member on its own batch.

    Args:
        logits: ``[B, K, num_classes]``, a :class:`FusedArray`'s output.
        targets: ``[B, K]`` class indices; member k's labels are ``targets[:, k]``.

    Returns:
        ``(total, per_member)``: ``per_member[k]`` is member k's mean loss over its batch,
        ``total`` their sum, whose gradient for member k is exactly member k's own gradient
        (a mean over members would scale every member's gradient by 1/K).
    """
    b, k, n = logits.shape
    if targets.shape != (b, k):
        raise ValueError(f"targets must be [batch, members] = {(b, k)}, got {tuple(targets.shape)}")
    losses = F.cross_entropy(logits.reshape(b * k, n), targets.reshape(b * k), reduction="none")
    per_member = losses.view(b, k).mean(0)
    return per_member.sum(), per_member

"""Fused leaves: one layer that computes K members' layers side by side on a stacked layout.

A fused array keeps every feature tensor with the K members stacked along the channel
dimension, member-major: conv features are ``[B, K·C, H, W]`` (channels ``k·C … k·C+C-1``
belong to member k) and linear features ``[B, K·F]``. Each fused leaf maps that layout to
itself while touching only its own member's slice:

- ``Conv2d`` becomes one grouped convolution (``groups = K·groups``), so member k's output
  channels see only member k's input channels;
- ``Linear`` becomes :class:`FusedLinear`, a batched matmul over the K members;
- ``BatchNorm`` over ``K·C`` channels keeps per-member statistics, as BN's are per channel;
- ``GroupNorm(G, C)`` becomes ``GroupNorm(K·G, K·C)`` (no group straddles two members), and
  ``LayerNorm(F)`` on linear features becomes ``GroupNorm(K, K·F)``, the same maths;
- element-wise activations, pools and ``Flatten(1)`` act per channel and are reused as they are.

Every stateful leaf's tensors are the K members' tensors concatenated along dim 0, so one rule
splits any of them back (see :meth:`bnorder.fused.FusedArray.member_state_dict`). Fused leaves
are built without initialising (``skip_init``): their values are loaded from the members, and
fusing leaves the global RNG alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import skip_init

from bnorder.errors import ConfigError

__all__ = ["FUSERS", "FusedLinear", "fuse_leaf"]

Fuser = Callable[[Sequence[nn.Module]], nn.Module]


class FusedLinear(nn.Module):
    """K ``Linear(in_features, out_features)`` layers as one ``[B, K·in] -> [B, K·out]`` map.

    ``weight`` is the members' weights stacked, ``[K·out, in]``, ``bias`` ``[K·out]``, so both
    split back like every other fused tensor. A batched matmul (``baddbmm``) beat a grouped
    1×1 convolution 2–4× on CPU (forward+backward, B=128, K=3–8, 16–768 features) and an
    einsum by 1.2–1.6×, so that is what runs.
    """

    def __init__(
        self,
        k: int,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.k, self.in_features, self.out_features = k, in_features, out_features
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        # empty: the values are always loaded from the members
        self.weight = nn.Parameter(torch.empty(k * out_features, in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(k * out_features, **factory))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n_in, n_out = self.k, self.in_features, self.out_features
        if x.dim() != 2 or x.shape[1] != k * n_in:
            raise ValueError(
                f"FusedLinear expects [batch, {k}·{n_in}] stacked features, got {tuple(x.shape)}"
            )
        xs = x.reshape(-1, k, n_in).transpose(0, 1)  # [K, B, in]
        w = self.weight.view(k, n_out, n_in).transpose(1, 2)  # [K, in, out], no copy
        if self.bias is None:
            y = torch.bmm(xs, w)
        else:
            y = torch.baddbmm(self.bias.view(k, 1, n_out), xs, w)
        return y.transpose(0, 1).reshape(x.shape[0], k * n_out)  # back to member-major

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def _factory(m: nn.Module) -> dict[str, Any]:
    """Device and dtype of ``m``'s first floating tensor (none: PyTorch's defaults)."""
    for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
        if t.is_floating_point():
            return {"device": t.device, "dtype": t.dtype}
    return {}


def _conv(ms: Sequence[nn.Module]) -> nn.Module:
    m, k = ms[0], len(ms)
    return skip_init(
        type(m),
        k * m.in_channels,
        k * m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=k * m.groups,  # member k's channels only ever meet member k's filters
        bias=m.bias is not None,
        padding_mode=m.padding_mode,
        **_factory(m),
    )


def _linear(ms: Sequence[nn.Module]) -> nn.Module:
    m = ms[0]
    return FusedLinear(len(ms), m.in_features, m.out_features, m.bias is not None, **_factory(m))


def _batch_norm(ms: Sequence[nn.Module]) -> nn.Module:
    m = ms[0]
    return skip_init(
        type(m),
        len(ms) * m.num_features,
        eps=m.eps,
        momentum=m.momentum,
        affine=m.affine,
        track_running_stats=m.track_running_stats,
        **_factory(m),
    )


def _group_norm(ms: Sequence[nn.Module]) -> nn.Module:
    m, k = ms[0], len(ms)
    return skip_init(
        nn.GroupNorm,
        k * m.num_groups,
        k * m.num_channels,
        eps=m.eps,
        affine=m.affine,
        **_factory(m),
    )


def _layer_norm(ms: Sequence[nn.Module]) -> nn.Module:
    m, k = ms[0], len(ms)
    if len(m.normalized_shape) != 1:
        raise ConfigError(
            "module",
            m,
            "LayerNorm over more than the last dimension cannot be fused:",
            hint="fused arrays support LayerNorm(features) on [batch, features] only",
        )
    if m.elementwise_affine and m.bias is None:
        raise ConfigError("module", m, "LayerNorm without bias cannot be fused:")
    # Statistics over one member's F features per sample: GroupNorm with one group per member.
    # This assumes linear features [B, F], the only place bnorder's models put a LayerNorm.
    return skip_init(
        nn.GroupNorm,
        k,
        k * m.normalized_shape[0],
        eps=m.eps,
        affine=m.elementwise_affine,
        **_factory(m),
    )


def _flatten(ms: Sequence[nn.Module]) -> nn.Module:
    m = ms[0]
    if (m.start_dim, m.end_dim) != (1, -1):
        raise ConfigError(
            "module",
            m,
            "only Flatten(1, -1) keeps the member-major layout, not",
        )
    return copy.deepcopy(m)


def _reuse(ms: Sequence[nn.Module]) -> nn.Module:
    """Per-channel ops without state: the members' (checked equal) op, unchanged."""
    return copy.deepcopy(ms[0])


# Per-channel ops without state: the fused layout changes nothing for them.
_PER_CHANNEL: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Tanh,
    nn.Identity,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AvgPool2d,
    nn.MaxPool2d,
)

# Keyed by exact type: a subclass may change forward in ways the fused layout would not survive.
FUSERS: dict[type[nn.Module], Fuser] = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.GroupNorm: _group_norm,
    nn.LayerNorm: _layer_norm,
    nn.Flatten: _flatten,
    **dict.fromkeys(_PER_CHANNEL, _reuse),
}


def fuse_leaf(modules: Sequence[nn.Module]) -> nn.Module:
    """One fused leaf from the K members' corresponding leaves (same type and settings).

    Raises:
        ConfigError: the type is not in :data:`FUSERS`, or its settings cannot be fused.
    """
    fuser = FUSERS.get(type(modules[0]))
    if fuser is None:
        raise ConfigError(
            "module",
            type(modules[0]).__name__,
            "cannot fuse module type",
            choices=sorted(t.__name__ for t in FUSERS),
        )
    return fuser(modules)

"""Fused seed arrays: K replicates that differ only in seeds, trained as one network.

After HFTA (Wang et al., "Horizontally Fused Training Array", MLSys 2021): the members' weights
are stacked along the channel dimension, convolutions run as one grouped convolution and
BatchNorm over K·C channels keeps each member's statistics, so K small models fill the hardware
like one larger one while computing exactly what K separate runs would.

>>> array = fuse_models([build_model(cfg.replace(seed=s)) for s in range(4)])  # doctest: +SKIP
>>> total, per_member = fused_cross_entropy(array(x), y)  # doctest: +SKIP
>>> build_model(cfg.replace(seed=2)).load_state_dict(array.member_state_dict(2))  # doctest: +SKIP
"""

from __future__ import annotations

from bnorder.fused.fuse import CONTAINERS, FusedArray, fuse_models, fused_cross_entropy
from bnorder.fused.layers import FUSERS, FusedLinear, fuse_leaf

__all__ = [
    "CONTAINERS",
    "FUSERS",
    "FusedArray",
    "FusedLinear",
    "fuse_leaf",
    "fuse_models",
    "fused_cross_entropy",
]

"""Device selection: ``auto`` is CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from bnorder.errors import ConfigError

__all__ = ["device_name", "granted_device", "peak_flops", "resolve_device"]

# Dense (no sparsity) peak FLOP/s by GPU name fragment: (bf16, tf32). fp32 convolutions and
# matmuls run as TF32 on these by default (cuDNN), so TF32 is the fp32 modes' ceiling.
# Form factors differ (NVIDIA's datasheets, dense = half the "with sparsity" figure): the more
# specific name fragments come first, and a plain H100/H200 is the SXM part.
PEAK_FLOPS = {
    "H100 PCIe": (756e12, 378e12),
    "H100 NVL": (835e12, 418e12),
    "H200 NVL": (835e12, 418e12),
    "H200": (989e12, 494e12),
    "H100": (989e12, 494e12),
    "A100": (312e12, 156e12),
}


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> the best available device; an unavailable one is a ConfigError."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device",
            name,
            "unavailable device",
            hint="no CUDA GPU is visible; use --device cpu or auto",
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            "device",
            name,
            f"unavailable device (this machine has {torch.cuda.device_count()} GPUs)",
        )
    if device.type == "mps" and not has_mps:
        raise ConfigError(
            "device",
            name,
            "unavailable device",
            hint="MPS needs Apple silicon; use --device cpu or auto",
        )
    return device


def granted_device(name: str, gpus: float) -> str:
    """The device a trial granted ``gpus`` by its scheduler may use: ``auto`` becomes ``cpu``
    when no GPU was granted, even if one is visible (Ray 2.60 no longer hides the GPUs from
    zero-GPU trials, so they would pile onto cuda:0 uncounted).

    Raises:
        ConfigError: a CUDA device asked for by a trial granted no GPU.
    """
    if gpus > 0:
        return name
    if name.startswith("cuda"):
        raise ConfigError(
            "device",
            name,
            "needs a GPU, but the trial was granted none; got",
            hint="set resources.gpu > 0, or device: auto",
        )
    if name == "auto" and resolve_device("auto").type == "cuda":
        return "cpu"
    return name  # cpu, or Apple's MPS, which no scheduler hands out


def device_name(device: torch.device) -> str:
    """A human-readable name, recorded with every result row."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_flops(name: str, *, bf16: bool) -> float | None:
    """The dense peak of the GPU called ``name`` for the precision, for MFU; None if unknown."""
    for fragment, (half, tf32) in PEAK_FLOPS.items():
        if fragment in name:
            return half if bf16 else tf32
    return None

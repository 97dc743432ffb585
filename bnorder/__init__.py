"""bnorder: does the order of normalisation and activation in a block matter, once each variant
is tuned fairly? Orderings parsed from strings, models, data, one trial, Parquet results.

Example:
    >>> from bnorder import TrialConfig, train_trial
    >>> result = train_trial(TrialConfig(dataset="synthetic", ordering="case2", depth=2,
    ...                                  width=16, epochs=1))  # doctest: +SKIP

The names below are imported on first use, not with the package: ``bnorder --help`` and shell
completion must not pay for torch and pandas (seconds) to print a few lines.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bnorder.config import TrialConfig
    from bnorder.data import DATASETS, load_dataset
    from bnorder.errors import BnorderError, ConfigError, DataError
    from bnorder.layers import ACTIVATIONS, NORMS, create_act, create_norm
    from bnorder.models import ARCHS, count_parameters, create_model
    from bnorder.ordering import Ordering, parse_ordering
    from bnorder.results import Results, load, write_result
    from bnorder.train import EpochReport, TrialResult, build_model, train_trial

    __version__: str

# public name -> the module that defines it (the same names as the imports above)
_EXPORTS: dict[str, str] = {
    "TrialConfig": "bnorder.config",
    **dict.fromkeys(("DATASETS", "load_dataset"), "bnorder.data"),
    **dict.fromkeys(("BnorderError", "ConfigError", "DataError"), "bnorder.errors"),
    **dict.fromkeys(("ACTIVATIONS", "NORMS", "create_act", "create_norm"), "bnorder.layers"),
    **dict.fromkeys(("ARCHS", "count_parameters", "create_model"), "bnorder.models"),
    **dict.fromkeys(("Ordering", "parse_ordering"), "bnorder.ordering"),
    **dict.fromkeys(("Results", "load", "write_result"), "bnorder.results"),
    **dict.fromkeys(("EpochReport", "TrialResult", "build_model", "train_trial"), "bnorder.train"),
}


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("bnorder")
    except metadata.PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        # also how `from bnorder import train` falls back to importing the submodule
        raise AttributeError(f"module 'bnorder' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ACTIVATIONS",
    "ARCHS",
    "DATASETS",
    "NORMS",
    "BnorderError",
    "ConfigError",
    "DataError",
    "EpochReport",
    "Ordering",
    "Results",
    "TrialConfig",
    "TrialResult",
    "__version__",
    "build_model",
    "count_parameters",
    "create_act",
    "create_model",
    "create_norm",
    "load",
    "load_dataset",
    "parse_ordering",
    "train_trial",
    "write_result",
]

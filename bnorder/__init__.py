"""bnorder: does the order of normalisation and activation in a block matter, once each variant
is tuned fairly? Orderings parsed from strings, models, data, one trial, Parquet results.

Example:
    >>> from bnorder import TrialConfig, train_trial
    >>> result = train_trial(TrialConfig(dataset="synthetic", ordering="case2", depth=2,
    ...                                  width=16, epochs=1))  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata

from bnorder.config import TrialConfig
from bnorder.data import DATASETS, load_dataset
from bnorder.errors import BnorderError, ConfigError, DataError
from bnorder.layers import ACTIVATIONS, NORMS, create_act, create_norm
from bnorder.models import ARCHS, count_parameters, create_model
from bnorder.ordering import Ordering, parse_ordering
from bnorder.results import Results, load, write_result
from bnorder.train import EpochReport, TrialResult, build_model, train_trial

try:
    __version__ = metadata.version("bnorder")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

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

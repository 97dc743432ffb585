"""Results in Parquet: the schema, atomic appends, compaction and loading into pandas.

The names below are imported on first use: ``bnorder.results.compaction`` (and a process that only
compacts) must not pay for torch, which the rows' provenance needs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bnorder.results.compaction import compact
    from bnorder.results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
    from bnorder.results.store import (
        Results,
        check_writable,
        is_recorded,
        load,
        recorded_ids,
        write_result,
    )

_EXPORTS: dict[str, str] = {
    "compact": "bnorder.results.compaction",
    **dict.fromkeys(("EPOCH_SCHEMA", "TRIAL_SCHEMA"), "bnorder.results.schema"),
    **dict.fromkeys(
        ("Results", "check_writable", "is_recorded", "load", "recorded_ids", "write_result"),
        "bnorder.results.store",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bnorder.results' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "EPOCH_SCHEMA",
    "TRIAL_SCHEMA",
    "Results",
    "check_writable",
    "compact",
    "is_recorded",
    "load",
    "recorded_ids",
    "write_result",
]

"""Results in Parquet: the schema, atomic appends and loading into pandas."""

from bnorder.results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from bnorder.results.store import Results, check_writable, load, write_result

__all__ = ["EPOCH_SCHEMA", "TRIAL_SCHEMA", "Results", "check_writable", "load", "write_result"]

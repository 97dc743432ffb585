"""Runnable examples: ``uv run python -m bnorder.examples.pandas_analysis results/quickstart``."""

"""``bnorder dashboard OUT``: optuna-dashboard on a tuned sweep's studies (``OUT/optuna.db``).

The studies are the ones ``ArmSearcher`` writes: one per arm, named ``<sweep>/<arm_id>``, whose
metric is the validation objective and whose trials carry the Parquet row's ``trial_id``.
"""

from __future__ import annotations

from pathlib import Path

from bnorder.errors import BnorderError, ConfigError

__all__ = ["serve", "studies_of"]

OPTUNA_FILE = "optuna.db"  # runner.OPTUNA_FILE, kept here so the CLI need not import Ray


def studies_of(out: Path) -> tuple[str, list[str]]:
    """The Optuna storage URL of a sweep's results folder and its study names.

    Raises:
        ConfigError: ``out`` is not a results folder, or holds no studies (grid sweeps tune
            nothing).
    """
    import optuna

    db = out / OPTUNA_FILE
    if not db.is_file():
        what = "holds no Optuna studies" if out.is_dir() else "is not a results folder"
        raise ConfigError(
            "OUT",
            str(out),
            f"{what} ({OPTUNA_FILE}; only tuned sweeps have one):",
            hint="give the --out of a `mode: tuned` sweep",
        )
    url = f"sqlite:///{db.resolve()}"
    return url, sorted(s.study_name for s in optuna.get_all_study_summaries(url))


def serve(out: Path, *, host: str, port: int) -> None:
    """Serve optuna-dashboard on ``host:port`` until interrupted.

    Raises:
        ConfigError: no studies in ``out``, or the port is taken.
        BnorderError: optuna-dashboard is not installed (the ``dashboard`` extra).
    """
    url, names = studies_of(out)
    try:
        from optuna_dashboard import run_server
    except ImportError:  # the command is right, the environment lacks the extra: exit 1
        raise BnorderError(
            "optuna-dashboard is not installed: pip install 'bnorder[dashboard]'"
            " (or `uv sync --extra dashboard`)"
        ) from None
    print(f"{len(names)} studies in {out / OPTUNA_FILE}: {', '.join(names) or 'none yet'}")
    print(f"optuna-dashboard on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        run_server(url, host=host, port=port)
    except OSError as exc:  # the port is taken, or the host is not this machine's
        raise ConfigError(
            "--port", port, f"cannot be served on {host}: {exc.strerror}:", hint="pick another"
        ) from None

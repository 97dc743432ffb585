"""``bnorder dashboard``: the real optuna-dashboard server on studies written by ArmSearcher."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bnorder.sweep.spec import Distribution
from bnorder.tune.dashboard import OPTUNA_FILE
from bnorder.tune.runner import OPTUNA_FILE as RUNNER_OPTUNA_FILE
from bnorder.tune.searcher import ArmSearcher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _studies(out: Path) -> None:
    """Two arms' studies, one trial each (told from its row once the recorder writes it)."""
    base = {"dataset": "synthetic", "arch": "mlp", "depth": 1, "width": 4, "epochs": 1}
    arms = {
        f"synthetic/mlp/{o}": ({**base, "ordering": o}, {"phase": "tune"})
        for o in ("conv-bn-relu", "conv-relu-bn")
    }
    searcher = ArmSearcher(
        arms=arms,
        space={"lr": Distribution(log_uniform=(1e-4, 1e-1))},
        trials_per_arm=1,
        storage=f"sqlite:///{out / OPTUNA_FILE}",
        sweep="dash",
        metric="best_val_acc",
        sampler_seed=0,
        pruning=None,
        out=out,
    )
    for k in range(2):
        searcher.suggest(f"ray{k}")
        searcher.on_trial_result(f"ray{k}", {"val_acc": 0.5 + k / 10, "epoch": 1})
        searcher.on_trial_complete(f"ray{k}", {"status": "ok", "epoch": 1})


def test_dashboard_serves_named_studies(tmp_path: Path) -> None:
    assert OPTUNA_FILE == RUNNER_OPTUNA_FILE
    _studies(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bnorder", "dashboard", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
                time.sleep(0.3)
        assert sorted(s["study_name"] for s in studies) == [
            "dash/synthetic/mlp/conv-bn-relu",
            "dash/synthetic/mlp/conv-relu-bn",
        ]
        for s in studies:
            detail = _get(f"http://127.0.0.1:{port}/api/studies/{s['study_id']}")
            assert detail["objective_names"] == ["best_val_acc"]  # not "Objective 0"
            attrs = {a["key"]: a["value"] for a in detail["trials"][0]["user_attrs"]}
            assert attrs["trial_id"].startswith("dash-ray")
            assert attrs["phase"] == "tune"
    finally:
        proc.terminate()
        out, _err = proc.communicate(timeout=30)
    assert "2 studies in" in out


def test_dashboard_without_studies_is_one_line_exit_2(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, _out, err = cli("dashboard", str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1
    assert "holds no Optuna studies" in err
    assert "mode: tuned" in err

"""A trained workspace for the dashboard tests: a synthetic CSV dataset, a tiny forecaster trained on it
by the training pipeline (local checkpoint + results.json), registered in a temporary MLflow store.

Built once per test process and shared by tests/test_dashboard*.py (training costs ~10-20 s here)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from forecast_fixtures import TINY_MODEL, synthetic_frame

from lruts.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
ROWS, LOOKBACK, HORIZON = 1500, 48, 12
START = ROWS - int(0.2 * ROWS)  # the ratio split's test part (held out, replayed live) starts here


@dataclass
class Workspace:
    root: Path
    csv: Path
    frame: pd.DataFrame  # the dataset as written to the CSV
    runs: Path
    checkpoint: Path  # runs/<dataset>/L48-H12/forecaster.lruts
    results: dict
    env: dict[str, str]  # MLFLOW_TRACKING_URI, LRUTS_MLFLOW_ARTIFACTS, LRUTS_RUNS_DIR
    registered: str  # the registered model's name (version 1 has the alias "champion")


_WORKSPACE: Workspace | None = None


def trained_workspace(root: Path) -> Workspace:
    """Train and register once per process (root: a session temp dir)."""
    global _WORKSPACE
    if _WORKSPACE is None:
        _WORKSPACE = _build(root)
    return _WORKSPACE


def _build(root: Path) -> Workspace:
    import mlflow
    from mlflow import MlflowClient

    from lruts.forecasting.experiment import ExperimentConfig, run_experiment
    from lruts.forecasting.net import ForecastNetConfig

    csv = root / "toy.csv"
    frame = synthetic_frame(ROWS)
    frame.to_csv(csv, index=False)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "LRUTS_MLFLOW_ARTIFACTS": (root / "artifacts").as_uri(),
        "LRUTS_RUNS_DIR": str(root / "runs"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = ExperimentConfig(
            dataset=str(csv),
            lookback=LOOKBACK,
            horizons=[HORIZON],
            quantiles=[0.1, 0.9],
            model=ForecastNetConfig().with_options(TINY_MODEL),
            train=TrainConfig(epochs=1, max_steps_per_epoch=10, batch_size=32, lr=3e-3, progress=False),
            out_dir=str(root / "runs"),
        )
        [result] = run_experiment(cfg)
        [registered] = MlflowClient().search_registered_models()
    finally:
        mlflow.set_tracking_uri(None)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = Path(result.out_dir)
    results = json.loads((out / "results.json").read_text())
    return Workspace(root, csv, frame, root / "runs", out / "forecaster.lruts", results, env, registered.name)


def recomputed_forecast(ws: Workspace, n_rows: int) -> pd.DataFrame:
    """The forecast recomputed (parallel mode) from the dataset's first n_rows, by a freshly loaded model."""
    from lruts import LRUForecaster

    return LRUForecaster.load(ws.checkpoint).set_history(ws.frame.iloc[:n_rows])


def plotly_traces(spec: str | dict, meta: str) -> list[dict]:
    """The traces of a plotly figure JSON whose meta is `meta`, with x/y decoded to plain lists."""
    fig = json.loads(spec) if isinstance(spec, str) else spec
    return [{**t, "x": _decode(t["x"]), "y": _decode(t["y"])} for t in fig["data"] if t.get("meta") == meta]


def _decode(values):
    """plotly ≥ 6 writes numpy arrays as {"dtype", "bdata"} (base64); lists stay lists."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return list(values)

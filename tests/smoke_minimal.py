"""The base install works: fit -> predict -> update -> save -> load with no extras (no mlflow, optuna or
streamlit). A script, not a pytest module: `.ci/run` runs it in a venv made by `pip install -e .`.

    python tests/smoke_minimal.py
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lruts import LRUForecaster
from lruts.training import TrainConfig

EXTRAS = ("mlflow", "optuna", "streamlit")


def series(n: int) -> pd.DataFrame:
    """Two noisy daily cycles, hourly."""
    t = np.arange(n)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="h"),
            "a": np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n),
            "b": np.cos(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n),
        }
    )


def main() -> None:
    torch.set_num_threads(1)
    frame = series(404)
    history, new_rows = frame.iloc[:400], frame.iloc[400:].reset_index(drop=True)
    train = TrainConfig(epochs=2, batch_size=16, max_steps_per_epoch=5, progress=False)
    fc = LRUForecaster(lookback=48, horizon=12, train=train, d_model=16, d_state=16, n_layers=1)
    fc.fit(history, time_col="date")

    first = fc.predict()
    assert first.shape == (12, 3) and np.isfinite(first[["a", "b"]].to_numpy()).all(), first
    after = fc.update(new_rows)
    assert after["date"].iloc[0] == new_rows["date"].iloc[-1] + pd.Timedelta(hours=1), after

    with tempfile.TemporaryDirectory() as tmp:
        path = fc.save(Path(tmp) / "forecaster.lruts")
        loaded = LRUForecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(), after)

    used = [name for name in EXTRAS if name in sys.modules]
    assert not used, f"the base install's path imported {used}"
    print("base install smoke: fit, predict, update, save, load ok")


if __name__ == "__main__":
    main()

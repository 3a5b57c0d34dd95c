"""Small synthetic series and settings shared by the forecasting tests."""

import numpy as np
import pandas as pd

from lruts.forecasting.experiment import ExperimentConfig
from lruts.forecasting.net import ForecastNetConfig
from lruts.training import TrainConfig


def synthetic_frame(rows: int = 1500, n_series: int = 3, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """Hourly series: a daily cycle with a different phase per series, a slow trend, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    data = {"date": pd.date_range(start, periods=rows, freq="h")}
    for j in range(n_series):
        data[f"s{j}"] = (
            np.sin(2 * np.pi * (t / 24 + j / n_series)) * (1 + j) + 0.002 * t + 0.1 * rng.standard_normal(rows)
        )
    return pd.DataFrame(data)


TINY_MODEL = dict(d_model=16, d_state=16, n_layers=2, segment=8, dropout=0.0)


def tiny_train(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=32, lr=3e-3, patience=0, progress=False, max_steps_per_epoch=15)
    base.update(kw)
    return TrainConfig(**base)


def tiny_experiment(csv, out, **kw) -> ExperimentConfig:
    """A protocol experiment on a small CSV with the tiny model: lookback 48, horizon 12, output under out;
    kw overrides any ExperimentConfig field."""
    settings = dict(
        dataset=str(csv),
        lookback=48,
        horizons=[12],
        model=ForecastNetConfig().with_options(TINY_MODEL),
        train=tiny_train(),
        out_dir=str(out),
    )
    return ExperimentConfig(**{**settings, **kw})


def shared_file(relative: str) -> str:
    """A file of the shared datasets (../shared/datasets, or $LRUTS_DATA_DIRS), wherever the checkout is."""
    from lruts.data import data_file

    return str(data_file(relative))

"""The MLflow pyfunc of a long-fitted forecaster: long rows with covariates stream in through update(), and a
series' rows after its last target give the future covariates the forecast reads (as in fit's table)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.forecasting.panel_front import split_future
from lruts.forecasting.pyfunc import ForecasterModel
from lruts.training import TrainConfig

H, L = 4, 16


def panel(n: int = 90) -> pd.DataFrame:
    """Two hourly series driven by a known-future covariate x."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(2):
        x = rng.standard_normal(n)
        ts = pd.date_range("2022-01-01", periods=n, freq="h")
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ts, "y": 5 * k + 2 * x, "x": x}))
    return pd.concat(frames, ignore_index=True)


def served(fitted_on: pd.DataFrame) -> ForecasterModel:
    fc = LRUForecaster(L, H, d_model=8, d_state=8, n_layers=1, segment=4,
                       train=TrainConfig(epochs=1, max_steps_per_epoch=2, patience=0, progress=False))  # fmt: skip
    fc.fit(fitted_on, id_col="unique_id", future_covariates=["x"])
    model = ForecasterModel()
    model.forecaster = fc
    return model


def test_rows_after_a_series_last_target_are_its_future_covariates():
    df = panel()
    rows = df[df["ds"] >= df["ds"].iloc[80]].copy()
    rows.loc[rows["ds"] > df["ds"].iloc[82], "y"] = np.nan  # s0, s1: 3 readings, then the horizon's covariates
    rows.loc[(rows["unique_id"] == "s1") & (rows["ds"] == df["ds"].iloc[81]), "y"] = np.nan  # a missing reading
    observed, future = split_future(rows, served(df).forecaster.panel)
    assert len(observed) == 6 and observed["ds"].max() == df["ds"].iloc[82]  # the missing reading stays in
    assert len(future) == len(rows) - 6 and future["y"].isna().all()


def test_the_pyfunc_streams_long_rows_and_reads_the_horizon_covariates_they_carry():
    df = panel()
    history = df.groupby("unique_id").head(80)
    model = served(history)
    new = df.groupby("unique_id").nth(list(range(80, 83)))  # 3 new readings per series
    horizon = df.groupby("unique_id").nth(list(range(83, 83 + H))).assign(y=np.nan)  # the next H steps' x
    ahead = df.groupby("unique_id").nth(list(range(80, 80 + H))).assign(y=np.nan)  # x after the history
    before = model.predict(None, ahead)  # only future covariates: the forecast after the stored history
    served_forecast = model.predict(None, pd.concat([new, horizon], ignore_index=True))

    direct = LRUForecaster.load_from(model.forecaster)
    expected = direct.update(new, future=horizon.drop(columns="y"))
    pd.testing.assert_frame_equal(served_forecast.reset_index(drop=True), expected.reset_index(drop=True))
    assert served_forecast["forecast"].notna().all() and len(served_forecast) == 2 * H
    # the served model's own state did not move: the same request gives the same forecast
    pd.testing.assert_frame_equal(model.predict(None, ahead), before)
    assert before["ds"].min() == history["ds"].max() + pd.Timedelta(hours=1)

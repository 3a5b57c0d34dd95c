"""LRUForecaster on long tables: one global network over a panel of series with their own spans and
covariates; predict(future=...) reads the horizon's covariates; update() streams rows with gaps, NaN,
re-sent rows and outliers, and equals a recompute over the same history; save/load keeps it all; a
stock panel on business days streams a Monday after a Friday."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from forecast_fixtures import shared_file

from lruts import DataError, LRUForecaster
from lruts.forecasting.panel_front import (
    CELLWISE_ROWS,
    MISSING,
    OBSERVED,
    PanelFront,
    Recent,
    calendar_features,
    read_long_rows,
)
from lruts.training import TrainConfig

H = 6
LOOKBACK = 24
SMALL = dict(d_model=16, d_state=16, n_layers=1, segment=4, dropout=0.0)
GAFA = shared_file("finance/gafa_stock.csv")


def train_config(**kw) -> TrainConfig:
    return TrainConfig(
        **{**dict(epochs=10, batch_size=32, lr=2e-2, patience=0, progress=False, max_steps_per_epoch=30), **kw}
    )


def driven_panel(seed: int = 0) -> pd.DataFrame:
    """Three hourly series of unequal spans (and starts), each 3·x + its level + small noise, where x is a
    future covariate (white noise: known ahead, unpredictable from the past); p: a past covariate (noise).
    Every series has 2·H rows more than its history: H to stream, H for the covariates after them."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, n in enumerate([260, 300, 340]):
        x = rng.standard_normal(n + 2 * H)
        y = 10 * (k + 1) + 3 * x + 0.1 * rng.standard_normal(n + 2 * H)
        ts = pd.date_range(pd.Timestamp("2021-01-01") + pd.Timedelta(hours=7 * k), periods=n + 2 * H, freq="h")
        p = rng.standard_normal(n + 2 * H)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ts, "y": y, "x": x, "p": p}))
    return pd.concat(frames, ignore_index=True)


def split(df: pd.DataFrame, tail: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(all but the last `tail` rows of each series, those rows)."""
    last = df.groupby("unique_id").tail(tail)
    return df.drop(last.index).reset_index(drop=True), last.reset_index(drop=True)


@pytest.fixture(scope="module")
def panel():
    df = driven_panel()
    history, ahead = split(df, 2 * H)
    stream, future = split(ahead, H)
    return history, stream, future


@pytest.fixture(scope="module")
def fitted(panel):
    history, _, _ = panel
    fc = LRUForecaster(LOOKBACK, H, quantiles=[0.1, 0.9], train=train_config(), **SMALL)
    static = pd.DataFrame({"unique_id": ["s0", "s1", "s2"], "size": [1.0, 2.0, 3.0]})
    fc.fit(
        history, id_col="unique_id", future_covariates=["x"], past_covariates=["p"], static_covariates=static,
        calendar=True,
    )  # fmt: skip
    assert (fc.net.net.cfg.n_future, fc.net.net.cfg.n_past, fc.net.net.cfg.n_static) == (1 + 4, 1, 1)  # 4: calendar
    return fc


def mae(forecast: pd.DataFrame, truth: pd.DataFrame) -> float:
    both = forecast.merge(truth, on=["unique_id", "ds"], validate="one_to_one")
    assert len(both) == len(truth)
    return float((both["forecast"] - both["y"]).abs().mean())


def test_future_covariate_beats_the_same_forecaster_without_it_and_seasonal_naive(panel, fitted):
    history, stream, _ = panel
    fc = LRUForecaster.load_from(fitted)
    out = fc.predict(future=stream.drop(columns=["y", "p"]))
    assert list(out.columns) == [
        "unique_id", "ds", "forecast", "forecast_q0.1", "forecast_q0.9", "missing_inputs", "outlier_inputs"
    ]  # fmt: skip
    # each series' horizon starts after its own last observation (unequal spans and starts)
    for sid, rows in out.groupby("unique_id"):
        last = history.loc[history["unique_id"] == sid, "ds"].max()
        assert list(rows["ds"]) == list(pd.date_range(last + pd.Timedelta(hours=1), periods=H, freq="h"))
    without = LRUForecaster(LOOKBACK, H, train=train_config(), **SMALL).fit(history, id_col="unique_id")
    season = history.groupby("unique_id").tail(24).groupby("unique_id").head(H)  # 24 h before each step
    naive = stream[["unique_id", "ds"]].assign(forecast=season["y"].to_numpy())
    with_cov, without_cov, seasonal = mae(out, stream), mae(without.predict(), stream), mae(naive, stream)
    # x moves y by 3·x (σ 3) and nothing in the past tells x: without it the forecast misses by ≈ 2.4 (the
    # mean absolute value of 3·x), seasonal naive by ≈ 3.4; with it, by a fraction of that
    assert with_cov < without_cov / 4, (with_cov, without_cov)
    assert with_cov < seasonal / 4, (with_cov, seasonal)
    assert (out["forecast_q0.1"] <= out["forecast_q0.9"]).all()


def test_predict_needs_the_horizons_future_covariates(panel, fitted):
    _, stream, _ = panel
    fc = LRUForecaster.load_from(fitted)
    with pytest.raises(DataError, match=r"do not cover the horizon of series 's0': \['x'\] missing at \['2021-01-11"):
        fc.predict()
    short = stream.drop(columns=["y", "p"]).groupby("unique_id").head(H - 1)
    with pytest.raises(DataError, match=r"series 's0'.*\(1 of 6 steps\)"):
        fc.predict(future=short)
    with pytest.raises(DataError, match=r"lack column\(s\) \['x'\]"):
        fc.predict(future=stream.drop(columns=["x"]))
    with pytest.raises(DataError, match=r"unknown series \['nope'\]"):
        fc.predict(future=stream.assign(unique_id="nope"))


def test_update_rejects_bad_rows_and_applies_nothing(panel, fitted):
    _, stream, future = panel
    fc = LRUForecaster.load_from(fitted)
    before = fc.predict(future=stream.drop(columns=["y", "p"]))
    bad = {
        r"lack column\(s\) \['p'\]": stream.drop(columns=["p"]),
        # a series it was not fitted on joins from its rows, except where static covariates are read
        r"not fitted on \['s9'\]; it reads static covariates": pd.concat(
            [stream, stream.head(1).assign(unique_id="s9")]
        ),
        "off its 1h grid": stream.assign(ds=stream["ds"] + pd.Timedelta(minutes=10)),
        "already received with the value": pd.concat([stream, stream.head(1).assign(y=0.0)]),
        # text that is no number streamed in as a missing reading, a real reading lost without a word
        r"column 'y' holds 'n\.a\.' \(row 2 of the new rows\), not a number": stream.astype({"y": object}).assign(
            y=lambda d: d["y"].where(np.arange(len(d)) != 2, "n.a.")
        ),
    }
    for match, rows in bad.items():
        with pytest.raises(DataError, match=match):
            fc.update(rows, future=future)
    pd.testing.assert_frame_equal(fc.predict(), before)


def gappy(stream: pd.DataFrame) -> pd.DataFrame:
    """The stream with a skipped step in s0, a NaN target in s1 (its covariates given), rows shuffled."""
    rows = stream.drop(skipped(stream))
    rows.loc[rows.index[(rows["unique_id"] == "s1")][3], "y"] = np.nan
    return rows.sample(frac=1.0, random_state=0)


def skipped(stream: pd.DataFrame):
    return stream.index[(stream["unique_id"] == "s0")][2:3]


def test_update_with_gaps_and_covariates_equals_a_recompute_over_the_same_history(panel, fitted):
    history, stream, future = panel
    rows = gappy(stream)
    # the future covariates of every step, the skipped one's too: they are known ahead
    futr = pd.concat([stream, future])[["unique_id", "ds", "x"]]
    streamed = LRUForecaster.load_from(fitted)
    burst = streamed.update(rows, future=futr)
    recomputed = LRUForecaster.load_from(fitted)
    no_target = stream.loc[skipped(stream)].assign(y=np.nan, p=np.nan)  # the gap, with its known covariate
    again = recomputed.set_history(pd.concat([history, rows, no_target]), future=futr)
    # a recompute restarts the quantile tracker (lruts/forecasting/blend.py): the rest is the history's
    tracked = ["forecast_q0.1", "forecast_q0.9"]
    pd.testing.assert_frame_equal(burst.drop(columns=tracked), again.drop(columns=tracked), rtol=1e-4, atol=1e-4)
    assert dict(zip(burst["unique_id"], burst["missing_inputs"], strict=False)) == {"s0": 1, "s1": 1, "s2": 0}
    # one row at a time (in time order: a later row first makes the gap before it final) gives the same
    one_by_one = LRUForecaster.load_from(fitted)
    in_order = rows.sort_values("ds")
    for k in range(len(in_order)):
        one_by_one.update(in_order.iloc[k : k + 1], future=futr)
    pd.testing.assert_frame_equal(one_by_one.predict(), burst, rtol=1e-5, atol=1e-5)
    # the forecast after new rows needs the covariates of the steps after them: refused before applying
    with pytest.raises(DataError, match=r"do not cover the horizon of series 's0'"):
        LRUForecaster.load_from(fitted).update(stream.tail(1))


def test_a_forecast_between_updates_leaves_the_stream_exactly_as_without_it(panel, fitted):
    # a forecast keeps the state after the last observation, which the next update starts from instead of
    # running that step again: the numbers must be the very ones of a stream that never forecast in between
    _, stream, future = panel
    futr = pd.concat([stream, future])[["unique_id", "ds", "x"]]
    in_order = gappy(stream).sort_values("ds")
    one_call = LRUForecaster.load_from(fitted)
    one_call.update(in_order.iloc[:-1], future=futr)
    one_call.update(in_order.iloc[-1:])
    one_by_one = LRUForecaster.load_from(fitted)
    for k in range(len(in_order)):
        one_by_one.update(in_order.iloc[k : k + 1], future=futr)
    for a, b in zip(one_call.panel.tracks, one_by_one.panel.tracks, strict=True):
        torch.testing.assert_close(a.state.to_dict(), b.state.to_dict(), rtol=0, atol=0)
    pd.testing.assert_frame_equal(one_by_one.predict(), one_call.predict(), check_exact=True)


def test_resent_rows_are_ignored_and_outliers_enter_as_missing(panel, fitted):
    _, stream, future = panel
    futr = future.drop(columns=["y", "p"])
    fc = LRUForecaster.load_from(fitted)
    first = fc.update(stream, future=futr)
    again = fc.update(stream.iloc[::-1], future=futr)  # every row re-sent, identical: nothing changes
    pd.testing.assert_frame_equal(again, first)

    spike = stream.index[stream["unique_id"] == "s2"][1]
    as_nan = LRUForecaster.load_from(fitted).update(stream.assign(y=stream["y"].where(stream.index != spike)), futr)
    fc = LRUForecaster.load_from(fitted)
    spiked = stream.assign(y=stream["y"].where(stream.index != spike, 1e30))
    flagged = fc.update(spiked, future=futr)
    pd.testing.assert_frame_equal(fc.update(spiked.loc[[spike]]), flagged)  # the spike re-sent: ignored too
    assert [(o["id"], o["value"]) for o in fc.outliers] == [("s2", 1e30)] and fc.outliers[0]["z"] > 10
    s2 = flagged["unique_id"] == "s2"
    assert (flagged.loc[s2, "outlier_inputs"] == 1).all() and (flagged.loc[s2, "missing_inputs"] == 1).all()
    np.testing.assert_allclose(flagged["forecast"], as_nan["forecast"], rtol=1e-5)  # the state is not poisoned


def test_save_load_roundtrip_keeps_covariates_and_streams(tmp_path, panel, fitted):
    _, stream, future = panel
    futr = pd.concat([stream, future])[["unique_id", "ds", "x"]]
    rows = gappy(stream).sort_values("ds")
    fc = LRUForecaster.load_from(fitted)
    fc.update(rows.head(7), future=futr)
    loaded = LRUForecaster.load(fc.save(tmp_path / "panel.lruts"))
    pd.testing.assert_frame_equal(loaded.predict(), fc.predict())
    rest = rows.iloc[7:]
    pd.testing.assert_frame_equal(loaded.update(rest), fc.update(rest))


def test_wide_update_takes_nan_gaps_and_flags_outliers():
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    df = synthetic_frame(800)
    fc = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(df.iloc[:700], time_col="date")
    rows = df.iloc[700:706].drop(index=702).copy()  # a skipped hour
    rows.loc[703, "s1"] = np.nan
    nan_row = LRUForecaster.load_from(fc)
    nan_row.update(rows)
    assert nan_row.missing_inputs() == {"s0": (1, 0), "s1": (2, 0), "s2": (1, 0)}
    assert nan_row.last_time == df["date"].iloc[705]
    pd.testing.assert_frame_equal(nan_row.update(rows.iloc[::-1]), nan_row.predict())  # re-sent: ignored
    rows.loc[703, "s1"] = -1e30
    out = fc.update(rows)
    assert [(o["series"], o["value"]) for o in fc.outliers] == [("s1", -1e30)]
    assert fc.missing_inputs()["s1"] == (2, 1)
    pd.testing.assert_frame_equal(out, nan_row.predict(), rtol=1e-5)


def test_dates_beside_times_of_day_fit_and_stream_as_one_timestamp(tmp_path):
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    df = synthetic_frame(800)
    split = df.assign(day=df["date"].dt.strftime("%d/%m/%Y"), clock=df["date"].dt.strftime("%H:%M"))
    split = split.drop(columns="date")[["day", "clock", "s0", "s1", "s2"]]
    fc = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(split.iloc[:700])
    whole = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(df.iloc[:700], time_col="date")
    assert fc.last_time == whole.last_time and fc.time_of_day == "clock"
    out = fc.update(split.iloc[700:710])  # new rows as the logger writes them, dates and times apart
    pd.testing.assert_frame_equal(out.drop(columns="day"), whole.update(df.iloc[700:710]).drop(columns="date"))
    loaded = LRUForecaster.load(fc.save(tmp_path / "split.lruts"))
    assert loaded.update(split.iloc[710:712])["day"].iloc[0] == df["date"].iloc[712]
    with pytest.raises(DataError, match=r"lack column\(s\) \['clock'\]"):
        loaded.update(split.iloc[712:713].drop(columns="clock"))


def test_a_spreadsheets_serial_dates_fit_and_stream_as_dates():
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    # a sheet read without its date format (pandas.read_excel of a formula column, an export of the raw cells):
    # 44197 was step number 44197, the forecasts numbered on
    df = synthetic_frame(800).iloc[:, :2]
    serial = df.assign(date=(df["date"] - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)).rename(
        columns={"date": "Date"}
    )
    fc = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(serial.iloc[:700])
    assert fc.last_time == df["date"].iloc[699] and fc.clock is None
    out = fc.update(serial.iloc[700:703])
    assert out["Date"].iloc[0] == df["date"].iloc[703]
    from lruts.data import load_series

    days = pd.DataFrame({"t": np.arange(44197, 44297), "y": np.arange(100.0)})  # not named for a date: step numbers
    assert load_series(days).report.clock["kind"] == "steps"
    assert load_series(days.rename(columns={"t": "Date"})).freq == "1d"


def test_a_series_that_jumps_to_a_new_level_and_stays_has_one_outlier():
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    df = synthetic_frame(800)
    fc = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(df.iloc[:700], time_col="date")
    rows = df.iloc[700:720].copy()
    rows.loc[rows.index[5:], "s1"] += 1e4  # a new meter's units, say: far from every training level and change
    fc.update(rows)
    assert [(o["series"], o["time"]) for o in fc.outliers] == [("s1", rows["date"].iloc[5])]
    assert fc.missing_inputs()["s1"] == (1, 1)  # the 14 readings after it are observed


def test_a_run_of_missing_data_codes_in_new_rows_is_missing_not_a_new_level():
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    df = synthetic_frame(800)
    fc = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(df.iloc[:700], time_col="date")
    rows = df.iloc[700:720].copy()
    gone = LRUForecaster.load_from(fc)
    rows.loc[rows.index[5:15], "s1"] = np.nan  # a logger's outage, as missing cells
    gone.update(rows)
    rows.loc[rows.index[5:15], "s1"] = -9999  # the same outage as its logger writes it
    out = fc.update(rows)
    assert [o["value"] for o in fc.outliers] == [-9999] * 10 and fc.missing_inputs()["s1"] == (10, 10)
    pd.testing.assert_frame_equal(out, gone.predict(), rtol=1e-5)


def test_readings_as_far_out_as_the_training_ones_are_not_outliers():
    from lruts.forecasting.panel_front import OutlierRule, Recent

    # a heavy-tailed series: a level near 12 with hourly jumps of up to 60 (an electricity client's busy
    # hours); by the MAD alone its peaks score far above z = 10
    rng = np.random.default_rng(0)
    train = 12 + rng.normal(0, 1, 5000)
    train[rng.choice(5000, 50, replace=False)] += rng.uniform(30, 60, 50)
    rule = OutlierRule.fit([train], 10.0)
    assert (rule.scores(train[1:, None], train[:-1, None]) <= 5).all()  # none of its own readings above z / 2
    calm = Recent.start(np.full((48, 1), 12.0), np.full((48, 1), OBSERVED, np.int8), k=48)
    assert not rule.flags(np.array([80.0]), calm).any()  # a peak a third above the training's highest
    assert rule.flags(np.array([1e30]), calm).all() and rule.flags(np.array([300.0]), calm).all()
    assert not OutlierRule.fit([train], None).flags(np.array([1e30]), calm).any()


def test_a_series_that_moves_more_than_in_training_is_not_flagged_for_it():
    from lruts.forecasting.panel_front import OutlierRule, Recent

    # a price that rose tenfold since training: its daily moves are ten times the training's
    rng = np.random.default_rng(0)
    rule = OutlierRule.fit([10 + np.cumsum(rng.normal(0, 0.1, 2000))], 10.0)
    recent = 200 + np.cumsum(rng.normal(0, 1.0, 96))
    record = Recent.start(recent[:, None], np.full((96, 1), OBSERVED, np.int8), k=96)
    move = 1.5 * np.abs(np.diff(recent)).max()  # beyond every training move, within the recent ones × 2
    assert rule.scores(np.array([recent[-1] + move]), record.last_reading)[0] > 10  # the training scales alone
    assert not rule.flags(np.array([recent[-1] + move]), record).any()
    assert rule.flags(np.array([1e30]), record).all()


@pytest.mark.parametrize("kind", ["long", "wide"])
def test_a_stock_panel_on_business_days_streams_a_monday_after_a_friday(kind):
    stocks = pd.read_csv(GAFA, usecols=["Symbol", "Date", "Close", "Volume"])
    stocks = stocks[stocks["Date"] >= "2017-06-01"]
    monday = stocks[stocks["Date"] == "2018-12-31"]
    history = stocks[stocks["Date"] < "2018-12-31"]  # ends on Friday 2018-12-28
    fc = LRUForecaster(20, 5, train=train_config(epochs=1, max_steps_per_epoch=10), **SMALL)
    if kind == "long":
        fc.fit(pl.from_pandas(history), id_col="Symbol", time_col="Date", target_col="Close")
        out = fc.update(pl.from_pandas(monday)).to_pandas()
        assert sorted(out["Symbol"].unique()) == ["AAPL", "AMZN", "FB", "GOOG"]
    else:
        wide = history.pivot(index="Date", columns="Symbol", values="Close").reset_index()
        fc.fit(wide, time_col="Date")
        out = fc.update(monday.pivot(index="Date", columns="Symbol", values="Close").reset_index())
    assert fc.freq == "1b"
    days = pd.to_datetime(out["Date"]).drop_duplicates()
    assert list(days.dt.strftime("%Y-%m-%d")) == ["2019-01-01", "2019-01-02", "2019-01-03", "2019-01-04", "2019-01-07"]
    assert np.isfinite(out.select_dtypes("number").to_numpy()).all()


def opening_hours(weeks: int = 4, seed: int = 0) -> pd.DataFrame:
    """Hourly calls 09:00-17:00 (9 slots a day) on the weekdays of `weeks` weeks from Monday 2021-03-01,
    a daily profile plus noise: columns id, ds, y."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2021-03-01", periods=5 * weeks)
    ds = (days.values[:, None] + pd.timedelta_range("9h", "17h", freq="h").values[None, :]).reshape(-1)
    y = 50 + 30 * np.sin(np.arange(len(ds)) % 9 / 9 * np.pi) + rng.normal(0, 2, len(ds))
    return pd.DataFrame({"id": "calls", "ds": ds, "y": y})


@pytest.mark.parametrize("kind", ["long", "wide"])
def test_a_forecast_after_fridays_close_is_dated_from_mondays_opening_and_a_night_is_no_missing_input(kind):
    calls = opening_hours()
    friday = calls["ds"] < "2021-03-20"  # history ends Friday 2021-03-19 17:00 (two weeks: a session is inferred)
    monday, tuesday = calls[~friday].iloc[:9], calls[~friday].iloc[9:10]
    fc = LRUForecaster(18, 9, train=train_config(epochs=1, max_steps_per_epoch=5), **SMALL)
    if kind == "long":
        fc.fit(calls[friday], id_col="id", time_col="ds", target_col="y")
    else:
        fc.fit(calls[friday][["ds", "y"]], time_col="ds")
    assert fc.freq == "1h@09:00-17:00"
    out = fc.predict()
    assert list(out["ds"]) == list(monday["ds"])  # 09:00 to 17:00, none of the night or the weekend
    if kind == "long":
        assert (out["missing_inputs"] == 0).all()
    rows = pd.concat([monday, tuesday])  # across Monday night
    out = fc.update(rows if kind == "long" else rows[["ds", "y"]])
    assert out["ds"].iloc[0] == pd.Timestamp("2021-03-23 10:00") and len(out) == 9
    assert np.isfinite(out["forecast" if kind == "long" else "y"]).all()
    if kind == "long":
        assert (out["missing_inputs"] == 0).all()
        wednesday = calls[~friday].iloc[18:19]  # Tuesday's other slots never came: missing, not a gap error
        assert fc.update(wednesday)["missing_inputs"].iloc[0] == 8


def test_session_calendar_features_read_the_time_within_the_session():
    features, names = calendar_features(np.array(["2021-03-01T09:00", "2021-03-01T13:00"], "datetime64[ns]"),
                                        "1h@09:00-16:00")  # fmt: skip
    assert names == [f"calendar_{c}_{f}" for c in ("time_of_day", "day_of_week") for f in ("sin", "cos")]
    np.testing.assert_allclose(features[:, :2], [[0.0, 1.0], [0.0, -1.0]], atol=1e-12)  # opening; half-way


def test_calendar_features_follow_the_frequency_and_reach_the_horizon():
    monday_noon = np.array(["2024-01-01T12:00"], dtype="datetime64[ns]")
    hourly, names = calendar_features(monday_noon, "1h")
    assert names == [f"calendar_{c}_{f}" for c in ("time_of_day", "day_of_week") for f in ("sin", "cos")]
    np.testing.assert_allclose(hourly[0], [0.0, -1.0, 0.0, 1.0], atol=1e-12)  # noon; Monday is phase 0
    assert calendar_features(monday_noon, "1b")[1][0::2] == ["calendar_day_of_week_sin", "calendar_day_of_year_sin"]
    assert calendar_features(monday_noon, "1mo")[1] == ["calendar_month_of_year_sin", "calendar_month_of_year_cos"]
    history, _ = split(driven_panel(1), H)
    fc = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1, max_steps_per_epoch=5), **SMALL)
    out = fc.fit(history[["unique_id", "ds", "y"]], id_col="unique_id", calendar=True).predict()  # no future= needed
    assert len(out) == 3 * H and np.isfinite(out["forecast"]).all()


def test_covariates_need_a_long_table():
    with pytest.raises(DataError, match="pass id_col="):
        LRUForecaster(LOOKBACK, H).fit(driven_panel(), time_col="ds", future_covariates=["x"])


def test_fit_names_the_covariate_or_series_at_fault(panel):
    history, _, _ = panel
    fc = LRUForecaster(LOOKBACK, H, train=train_config(), **SMALL)
    with pytest.raises(DataError, match=r"future covariate \['x'\] is not numeric"):
        fc.fit(history.assign(x="high"), id_col="unique_id", future_covariates=["x"])
    with pytest.raises(DataError, match=r"past covariates \['volume'\] are not columns"):
        fc.fit(history, id_col="unique_id", past_covariates=["volume"])
    twice = pd.DataFrame({"unique_id": ["s0", "s0", "s1", "s2"], "size": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(DataError, match="repeats ids"):
        fc.fit(history, id_col="unique_id", static_covariates=twice)


def test_a_resent_row_of_the_fitted_history_is_ignored_though_the_history_was_kept_in_float32(panel, fitted):
    history, stream, _ = panel
    fc = LRUForecaster.load_from(fitted)
    last = history.groupby("unique_id").tail(1)  # float64 values, as the user's own table holds them
    future = stream[["unique_id", "ds", "x"]]
    before = fc.predict(future=future)
    pd.testing.assert_frame_equal(fc.update(last, future=future), before)
    with pytest.raises(DataError, match="already received"):
        fc.update(last.assign(y=last["y"] + 1e-3))


@pytest.mark.parametrize(
    "rows",
    [
        {
            "id": ["a", "b"],
            "ds": pd.to_datetime(["2021-01-01 00:00", "2021-01-01 01:00"]),
            "y": [1.5, np.nan],
            "x": [2, 3],
        },
        {"id": [7], "ds": ["2021-01-01 02:00"], "y": ["n/a"], "x": [np.int8(4)]},  # text time and value
        {"id": ["a"], "ds": pd.to_datetime(["2021-01-01 02:00"]).tz_localize("UTC"), "y": [1.0], "x": [True]},
    ],
)
def test_a_few_rows_read_cell_by_cell_give_what_the_column_reader_gives(rows):
    # a live feed's row or two is read cell by cell (faster); the numbers must be the column reader's
    few = pd.DataFrame(rows)
    many = pd.concat([few] * (CELLWISE_ROWS // len(few) + 1), ignore_index=True)
    assert len(many) > CELLWISE_ROWS
    small, large = read_long_rows(few, "id", "ds", ["y", "x"]), read_long_rows(many, "id", "ds", ["y", "x"])
    assert small.ids == large.ids[: len(few)] and all(isinstance(i, str) for i in small.ids)
    np.testing.assert_array_equal(small.times, large.times[: len(few)])
    np.testing.assert_array_equal(small.values, large.values[: len(few)])
    assert small.times.dtype == np.dtype("datetime64[ns]") and small.values.dtype == np.float64


@pytest.mark.parametrize("length", [3, 40])
def test_a_streams_record_starts_from_a_history_shorter_or_longer_than_it_keeps(length):
    # the last reading (what an outlier's change is measured from) is the history's, however far back
    history = np.arange(length, dtype=np.float64)[:, None] + 100
    status = np.full((length, 1), OBSERVED, np.int8)
    status[-2:] = MISSING
    record = Recent.start(history, status, k=10)
    assert record.last_reading[0] == history[-3, 0] and record.pos == length - 1
    assert record.values.shape == (10, 1) and (record.status[-2:] == MISSING).all()
    kept = min(length, 10)
    np.testing.assert_array_equal(record.values[-kept:], history[-kept:])
    assert np.isnan(record.values[: 10 - kept]).all() and (record.status[: 10 - kept] == MISSING).all()


def test_a_panel_forecast_steps_only_the_series_whose_inputs_changed(tmp_path, panel, fitted, monkeypatch):
    # one new row costs one step of its series, not one per series of the panel; the others' forecasts are
    # the ones issued before, which are what a stream loaded from disk (keeping none) computes again
    _, stream, future = panel
    fc = LRUForecaster.load_from(fitted)
    before = fc.update(stream, future=future.drop(columns=["y", "p"]))
    stepped = []
    step = PanelFront._run_last
    monkeypatch.setattr(
        PanelFront, "_run_last", lambda self, net, i, *a: stepped.append(self.ids[i]) or step(self, net, i, *a)
    )
    s1 = future[future["unique_id"] == "s1"]
    beyond = pd.DataFrame({"unique_id": ["s1"], "ds": [s1["ds"].max() + pd.Timedelta(hours=1)], "x": [0.5]})
    after = fc.update(s1.head(1), future=beyond)  # the covariate of the step its horizon now reaches
    assert stepped == ["s1"]
    pd.testing.assert_frame_equal(
        after[after["unique_id"] != "s1"], before[before["unique_id"] != "s1"], check_exact=True
    )
    stepped.clear()
    pd.testing.assert_frame_equal(fc.predict(), after, check_exact=True)
    assert stepped == []
    loaded = LRUForecaster.load(fc.save(tmp_path / "panel.lruts"))
    pd.testing.assert_frame_equal(loaded.predict(), after, check_exact=True)
    assert sorted(stepped) == ["s0", "s1", "s2"]


def test_integer_ids_come_back_as_integers_through_predict_update_and_a_saved_file(panel, tmp_path):
    # a user's store numbers: the forecast merges back onto their table (it gave the ids as text, and a merge
    # of int64 with object ids raises)
    as_int = {"s0": 7, "s1": 42, "s2": 100}
    history, stream = (d.drop(columns=["x", "p"]).assign(unique_id=d["unique_id"].map(as_int)) for d in panel[:2])
    fc = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(history, id_col="unique_id")
    out = fc.predict()
    assert out["unique_id"].dtype == np.int64 and set(out["unique_id"]) == {7, 42, 100}
    assert len(history[["unique_id"]].drop_duplicates().merge(out, on="unique_id")) == 3 * H
    assert fc.update(stream)["unique_id"].dtype == np.int64
    fc.save(tmp_path / "ints.lruts")
    assert LRUForecaster.load(tmp_path / "ints.lruts").predict()["unique_id"].dtype == np.int64


def test_a_panel_of_dates_with_a_zone_forecasts_and_streams_as_those_dates(panel, tmp_path):
    # each series' days as local midnights with their zone (a database's timestamptz): read as dates, and new
    # rows with the zone streamed as the same days, through a saved file too
    def as_days(d: pd.DataFrame, zone: str | None) -> pd.DataFrame:
        days = pd.Timestamp("2021-03-01") + pd.to_timedelta(
            (d["ds"] - pd.Timestamp("2021-01-01")) // pd.Timedelta(hours=1), "D"
        )
        return d.drop(columns=["x", "p"]).assign(ds=days.dt.tz_localize(zone) if zone else days)

    (plain, plain_rows), (zoned, zoned_rows) = (
        (as_days(panel[0], z), as_days(panel[1], z)) for z in (None, "Europe/Berlin")
    )
    fits = [
        LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(d, id_col="unique_id")
        for d in (plain, zoned)
    ]

    def in_zone(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(ds=frame["ds"].dt.tz_localize("Europe/Berlin"))

    pd.testing.assert_frame_equal(fits[1].predict(), in_zone(fits[0].predict()))  # dated in the table's zone
    assert (fits[1].predict()["ds"].dt.hour == 0).all()
    expected = in_zone(LRUForecaster.load_from(fits[0]).update(plain_rows))
    pd.testing.assert_frame_equal(LRUForecaster.load_from(fits[1]).update(zoned_rows), expected)
    loaded = LRUForecaster.load(fits[1].save(tmp_path / "zoned.lruts"))
    pd.testing.assert_frame_equal(loaded.update(zoned_rows), expected)


def test_a_series_row_far_after_its_last_observation_streams_and_is_named(panel, caplog):
    history = panel[0].drop(columns=["x", "p"])
    fc = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(history, id_col="unique_id")
    last = history[history["unique_id"] == "s1"]["ds"].max()
    row = pd.DataFrame({"unique_id": ["s1"], "ds": [last + pd.Timedelta(hours=50)], "y": [20.0]})
    with caplog.at_level("WARNING", logger="lruts"):
        out = fc.update(row)
    assert len(caplog.records) == 1 and "series 's1'" in caplog.text and "50 steps after" in caplog.text
    assert out[out["unique_id"] == "s1"]["ds"].iloc[0] == row["ds"].iloc[0] + pd.Timedelta(hours=1)


def test_one_series_with_covariates_needs_no_id_column(tmp_path):
    # the commonest covariate case: one series and its own columns (sales and a promotion calendar); it fits,
    # forecasts and streams without an id column, as the same table with one does
    rng = np.random.default_rng(0)
    n = 300
    promo = (rng.random(n + H) < 0.2).astype(float)
    days = pd.date_range("2021-01-01", periods=n + H, freq="D")
    table = pd.DataFrame({"date": days, "promo": promo, "sales": 50 + 20 * promo + rng.normal(0, 2, n + H)})
    fit_rows, new_rows, ahead = table.iloc[: n - H], table.iloc[n - H : n], table.iloc[n:][["date", "promo"]]

    def fitted(frame: pd.DataFrame, **how) -> LRUForecaster:
        fc = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL)
        return fc.fit(frame, future_covariates=["promo"], **how)

    plain = fitted(fit_rows, target_cols=["sales"])
    with_id = fitted(fit_rows.assign(unique_id="sales"), id_col="unique_id", time_col="date", target_col="sales")
    pd.testing.assert_frame_equal(
        plain.predict(new_rows[["date", "promo"]]), with_id.predict(new_rows.assign(unique_id="sales"))
    )
    expected = with_id.update(new_rows.assign(unique_id="sales"), future=ahead.assign(unique_id="sales"))
    pd.testing.assert_frame_equal(plain.update(new_rows, future=ahead), expected)
    loaded = LRUForecaster.load(plain.save(tmp_path / "one.lruts"))
    pd.testing.assert_frame_equal(loaded.predict(), expected)
    as_polars = fitted(pl.from_pandas(fit_rows), target_col="sales")
    assert as_polars.predict(pl.from_pandas(new_rows[["date", "promo"]])).shape == (H, 5)
    with pytest.raises(DataError, match="several target columns"):
        fitted(fit_rows.assign(other=1.0), target_cols=["sales", "other"])
    with pytest.raises(DataError, match="read one series: name it with target_col="):
        fitted(fit_rows.rename(columns={"sales": "a"}).assign(b=1.0))  # two series, neither named
    with pytest.raises(DataError, match="pass id_col='unique_id'"):
        fitted(fit_rows.assign(unique_id="a"), target_col="sales")


def test_a_panel_of_step_numbers_is_forecast_in_step_numbers(panel):
    history = panel[0].drop(columns=["x", "p"])
    steps = history.assign(ds=((history["ds"] - pd.Timestamp("2021-01-01")) // pd.Timedelta(hours=1)).astype(int))
    fc = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(steps, id_col="unique_id")
    out = fc.predict()
    last = steps.groupby("unique_id")["ds"].max()
    for sid, rows in out.groupby("unique_id"):
        assert rows["ds"].tolist() == list(range(last[sid] + 1, last[sid] + 1 + H))
    new = pd.DataFrame({"unique_id": ["s0"], "ds": [last["s0"] + 1], "y": [10.0]})
    assert fc.update(new).query("unique_id == 's0'")["ds"].iloc[0] == last["s0"] + 2


def test_a_panel_of_jittered_loggers_is_read_and_streamed_on_its_grid(panel):
    # each series' readings a few seconds off the hour: refused before ("off its 1h grid"); now moved to it,
    # reported, and new rows alike: the forecasts are those of the exact table
    from lruts.data import load_panel

    history, stream = (d.drop(columns=["x", "p"]) for d in panel[:2])
    rng = np.random.default_rng(0)

    def jittered(d: pd.DataFrame) -> pd.DataFrame:
        return d.assign(ds=d["ds"] + pd.to_timedelta(rng.integers(-5, 6, len(d)), "s"))

    fits = [LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(d, id_col="unique_id")
            for d in (history, jittered(history))]  # fmt: skip
    pd.testing.assert_frame_equal(fits[1].predict(), fits[0].predict())
    pd.testing.assert_frame_equal(fits[1].update(jittered(stream)), fits[0].update(stream))
    assert any("moved to their nearest 1h step" in line for line in load_panel(jittered(history)).report.repairs())


def test_a_long_table_indexed_by_id_and_time_fits_and_streams(panel):
    # pandas' natural form of a long table, df.set_index(["unique_id", "ds"]): its levels were dropped as row
    # numbers ("time column 'ds' not found; columns are: ['y']")
    history, stream = (d.drop(columns=["x", "p"]) for d in panel[:2])
    indexed = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL)
    indexed.fit(history.set_index(["unique_id", "ds"]), id_col="unique_id")
    plain = LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(history, id_col="unique_id")
    pd.testing.assert_frame_equal(indexed.predict(), plain.predict())
    pd.testing.assert_frame_equal(indexed.update(stream.set_index(["unique_id", "ds"])), plain.update(stream))


def test_a_series_the_forecaster_never_saw_joins_from_its_rows_without_a_refit(tmp_path, panel, fitted):
    # a store that opened after the fit: its rows named an unknown series and were refused; the network and the
    # blend are global, so it joins from its own rows (history, then the horizon's covariates with no target)
    history, stream, _ = panel
    fc = LRUForecaster(LOOKBACK, H, quantiles=[0.1, 0.9], train=train_config(), **SMALL)
    fc.fit(history[history["unique_id"] != "s2"], id_col="unique_id", future_covariates=["x"], past_covariates=["p"])
    new = pd.concat([history[history["unique_id"] == "s2"], stream[stream["unique_id"] == "s2"].assign(y=np.nan)])
    ahead = stream[stream["unique_id"] != "s2"].drop(columns=["y", "p"])  # the fitted series' horizon covariates
    out = LRUForecaster.load_from(fc).update(new, future=ahead)
    assert sorted(out["unique_id"].unique()) == ["s0", "s1", "s2"]
    # its level (30) is one no fitted series had (10, 20): read by its own scale, it is forecast as they are
    fitted_mae = mae(out[out["unique_id"] != "s2"], stream[stream["unique_id"] != "s2"])
    assert mae(out[out["unique_id"] == "s2"], stream[stream["unique_id"] == "s2"]) < 2 * fitted_mae + 0.2
    joined = LRUForecaster.load_from(fc)
    joined.update(new, future=ahead)
    loaded = LRUForecaster.load(joined.save(tmp_path / "joined.lruts"))
    pd.testing.assert_frame_equal(loaded.predict(), joined.predict())
    with pytest.raises(DataError, match=r"'s2' \(10\).*at least lookback = 24"):  # too little history to scale
        fc.update(history[history["unique_id"] == "s2"].tail(10), future=ahead)
    resent = history[history["unique_id"] == "s0"].tail(1).assign(y=-1.0)  # a conflicting re-sent row
    with pytest.raises(DataError, match="s0"):
        fc.update(pd.concat([new, resent]), future=ahead)
    assert fc.panel.ids == ["s0", "s1"] and len(fc.panel.tracks) == 2  # refused as a whole: nobody joined
    # where static covariates are read, a new series brings its own (as fit's: a frame with one row per series)
    s2_again = pd.concat([history, stream.assign(y=np.nan)]).query("unique_id == 's2'").assign(unique_id="s9")
    with pytest.raises(DataError, match=r"reads static covariates \['size'\]: give theirs"):
        LRUForecaster.load_from(fitted).update(s2_again)
    out = LRUForecaster.load_from(fitted).update(
        s2_again, future=stream.drop(columns=["y", "p"]), static=pd.DataFrame({"unique_id": ["s9"], "size": [3.0]})
    )
    twin = out[out["unique_id"] == "s9"]["forecast"].to_numpy() - out[out["unique_id"] == "s2"]["forecast"].to_numpy()
    assert np.abs(twin).max() < 0.15  # s2's rows and static under another id: its forecast (scaled by all its rows)


def test_a_series_too_short_to_train_on_is_forecast_as_one_that_joins_after_the_fit(panel):
    # aus_retail's 152 series: two of 32 months, too few for lookback 24 + horizon 12 and validation rows, and
    # fit() refused the whole table. They have no windows to train or validate on, so they are left out of
    # those and forecast as a series that joins after the fit is: from their own rows, by their own scale
    history = panel[0]
    history = history.drop(columns=["x", "p"])
    short = history[history["unique_id"] == "s2"].tail(LOOKBACK + H).assign(unique_id="s9")
    fit = LRUForecaster(LOOKBACK, H, quantiles=[0.1, 0.9], train=train_config(epochs=2), **SMALL)
    fit.fit(pd.concat([history, short]), id_col="unique_id")
    joined = LRUForecaster(LOOKBACK, H, quantiles=[0.1, 0.9], train=train_config(epochs=2), **SMALL)
    joined.fit(history, id_col="unique_id").update(short)
    assert fit.panel.ids == joined.panel.ids == ["s0", "s1", "s2", "s9"]
    pd.testing.assert_frame_equal(fit.predict(), joined.predict())
    shown = fit.predict().query("unique_id == 's9'")["forecast"]
    assert abs(shown.mean() - short["y"].mean()) < 3 * short["y"].std()  # at its own level (30), not at 0
    with pytest.raises(DataError, match=r"series 's9' \(10\) have fewer observed targets than lookback = 24"):
        LRUForecaster(LOOKBACK, H, train=train_config(epochs=1), **SMALL).fit(
            pd.concat([history, short.tail(10)]), id_col="unique_id"
        )


def test_text_times_in_new_rows_stream_as_timestamps_do_and_an_impossible_date_is_refused():
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    df = synthetic_frame(800)
    fc = LRUForecaster(48, 6, train=tiny_train(), **TINY_MODEL).fit(df.iloc[:700], time_col="date")
    text = df.assign(date=df["date"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    as_text, as_times = LRUForecaster.load_from(fc), LRUForecaster.load_from(fc)
    for k in range(700, 705):  # a feed's one row at a time, its time as JSON would carry it
        pd.testing.assert_frame_equal(as_text.update(text.iloc[k : k + 1]), as_times.update(df.iloc[k : k + 1]))
    with pytest.raises(DataError, match=r"could not read the timestamps \(examples: \['2020-02-30 00:00:00'\]"):
        as_text.update(text.iloc[705:706].assign(date="2020-02-30 00:00:00"))


def test_a_grid_operators_settlement_periods_fit_and_stream_as_half_hours(tmp_path):
    from forecast_fixtures import TINY_MODEL, tiny_train

    # a national-demand export: SETTLEMENT_DATE beside SETTLEMENT_PERIOD 1..48 (46 and 50 on the clock-change
    # days); read alone, each date repeated 48 times (refused, or 47 of 48 rows dropped before that)
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-03-01", periods=40, freq="D")
    table = pd.DataFrame(
        [(d.strftime("%d-%b-%Y").upper(), p) for d in days for p in range(1, 49)], columns=["DATE", "PERIOD"]
    )
    table["ND"] = 25_000 + 3_000 * np.sin(2 * np.pi * (table["PERIOD"] - 1) / 48) + rng.normal(0, 50, len(table))
    fc = LRUForecaster(96, 12, train=tiny_train(), **TINY_MODEL).fit(table.iloc[: 48 * 30])
    assert fc.freq == "30m" and fc.last_time == np.datetime64("2023-03-30T23:30")
    out = fc.update(table.iloc[48 * 30 : 48 * 30 + 3])  # new rows as the operator publishes them
    assert out["DATE"].iloc[0] == pd.Timestamp("2023-03-31 01:30") and len(out) == 12
    loaded = LRUForecaster.load(fc.save(tmp_path / "demand.lruts"))
    assert loaded.update(table.iloc[48 * 30 + 3 : 48 * 30 + 4])["DATE"].iloc[0] == pd.Timestamp("2023-03-31 02:00")


def test_a_panel_of_regions_with_settlement_periods_fits_streams_and_joins(tmp_path):
    from forecast_fixtures import TINY_MODEL, tiny_train

    # demand by region as an operator publishes it: region, date, period 1..48. A long table's dates repeat for
    # every series and period: refused before as "two rows at <date> with different values"
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-03-01", periods=36, freq="D")
    table = pd.DataFrame(
        [(r, d.strftime("%Y-%m-%d"), p) for r in ("north", "south", "east") for d in days for p in range(1, 49)],
        columns=["REGION", "DATE", "PERIOD"],
    )
    level = table["REGION"].map({"north": 9_000.0, "south": 12_000.0, "east": 7_000.0})
    table["ND"] = level + 900 * np.sin(2 * np.pi * (table["PERIOD"] - 1) / 48) + rng.normal(0, 30, len(table))
    fit_rows = table[(table["REGION"] != "east") & (table["DATE"] < "2023-03-31")]
    fc = LRUForecaster(96, 12, train=tiny_train(), **TINY_MODEL)
    fc.fit(fit_rows, id_col="REGION", time_col="DATE", target_col="ND")
    assert fc.freq == "30m"
    out = fc.predict()
    assert out.groupby("REGION")["DATE"].min().tolist() == [pd.Timestamp("2023-03-31 00:00")] * 2
    new = table[(table["REGION"] != "east") & (table["DATE"] == "2023-03-31")].groupby("REGION").head(3)
    # the same rows with whole timestamps stream the same
    whole = new.assign(DATE=pd.to_datetime(new["DATE"]) + pd.to_timedelta((new["PERIOD"] - 1) * 30, "min")).drop(
        columns="PERIOD"
    )
    twin = LRUForecaster.load_from(fc)
    pd.testing.assert_frame_equal(fc.update(new), twin.update(whole))
    assert fc.predict().groupby("REGION")["DATE"].min().tolist() == [pd.Timestamp("2023-03-31 01:30")] * 2
    # a region the forecaster was not fitted on joins from its rows in the same shape; saved and loaded alike
    east = table[(table["REGION"] == "east") & (table["DATE"] < "2023-03-31")]
    joined = fc.update(east)
    assert joined.groupby("REGION")["DATE"].min()["east"] == pd.Timestamp("2023-03-31 00:00")
    loaded = LRUForecaster.load(fc.save(tmp_path / "regions.lruts"))
    step = table[table["DATE"] == "2023-03-31"].groupby("REGION").nth(3)  # the next period of all three
    pd.testing.assert_frame_equal(loaded.update(step), fc.update(step))

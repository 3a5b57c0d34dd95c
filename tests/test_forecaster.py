"""LRUForecaster: fit/predict on pandas and polars, O(1) update() equal to a full recompute, safe
save/load, clear errors on bad new rows."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

from lruts import DataError, LRUForecaster


@pytest.fixture(scope="module")
def fitted():
    df = synthetic_frame(1300)
    fc = LRUForecaster(48, 12, quantiles=[0.1, 0.9], train=tiny_train(), **TINY_MODEL)
    fc.fit(df.iloc[:1200], time_col="date")
    return fc, df


def test_predict_returns_future_timestamps_series_and_quantile_columns(fitted):
    fc, df = fitted
    out = fc.predict()
    assert list(out.columns) == [
        "date",
        "s0",
        "s0_q0.1",
        "s0_q0.9",
        "s1",
        "s1_q0.1",
        "s1_q0.9",
        "s2",
        "s2_q0.1",
        "s2_q0.9",
    ]
    expected = pd.date_range(df["date"].iloc[1199] + pd.Timedelta(hours=1), periods=12, freq="h")
    assert (pd.DatetimeIndex(out["date"]) == expected).all()
    assert np.isfinite(out.drop(columns="date").to_numpy()).all()
    # forecasts are on the original scale: near the level of the last observations, not near 0
    assert abs(out["s2"].mean() - df["s2"].iloc[1100:1200].mean()) < 3 * df["s2"].std()


def test_update_after_k_rows_equals_recompute_from_whole_history(fitted):
    fc, df = fitted
    before = fc.predict()
    streamed = fc.update(df.iloc[1200:1237])  # 37 rows: crosses several patch boundaries (P = 8)
    assert not streamed["s0"].equals(before["s0"])
    recomputed = LRUForecaster.load_from(fc).set_history(df.iloc[:1237])
    # the forecasts are the history's; the intervals also what the stream has seen since it started (its
    # quantile tracker, lruts/forecasting/blend.py), which a recompute restarts
    points = ["date", "s0", "s1", "s2"]
    pd.testing.assert_frame_equal(streamed[points], recomputed[points], rtol=1e-4, atol=1e-4)
    # one row at a time gives the same as a burst
    one_by_one = LRUForecaster.load_from(fc)
    one_by_one.set_history(df.iloc[:1200])
    for i in range(1200, 1237):
        out = one_by_one.update(df.iloc[i : i + 1])
    pd.testing.assert_frame_equal(out, streamed, rtol=1e-5, atol=1e-5)


def test_advance_with_arrays_equals_update_with_rows_and_checks_them(fitted):
    fc, df = fitted
    base = LRUForecaster.load_from(fc)
    base.set_history(df.iloc[:1200])
    by_rows = LRUForecaster.load_from(base)
    by_rows.update(df.iloc[1200:1220])
    by_arrays = LRUForecaster.load_from(base)
    times, values = df["date"].to_numpy(), df[["s0", "s1", "s2"]].to_numpy()
    for i in range(1200, 1220):
        by_arrays.advance(times[i : i + 1], values[i : i + 1])
    np.testing.assert_allclose(by_arrays.forecast_array(), by_rows.forecast_array(), rtol=1e-5, atol=1e-5)
    assert by_arrays.last_time == by_rows.last_time
    before = by_arrays.forecast_array()
    with pytest.raises(DataError, match=r"expected values of shape \(1, 3\)"):
        by_arrays.advance(times[1220:1221], values[1220:1221, :2])
    with pytest.raises(DataError, match="not a 1h step after the last observation"):
        by_arrays.advance(times[1220:1221] + np.timedelta64(30, "m"), values[1220:1221])
    with pytest.raises(DataError, match="already received with the value"):
        by_arrays.advance(times[1219:1220], values[1219:1220] + 1.0)  # a re-sent row that conflicts
    np.testing.assert_array_equal(by_arrays.forecast_array(), before)  # nothing applied


def test_polars_in_polars_out():
    df = pl.from_pandas(synthetic_frame(700))
    fc = LRUForecaster(48, 6, train=tiny_train(epochs=1), **TINY_MODEL).fit(df, time_col="date")
    out = fc.predict()
    assert isinstance(out, pl.DataFrame) and out.shape == (6, 4)
    assert isinstance(fc.update(df.tail(0)), pl.DataFrame)


def test_save_load_roundtrip_keeps_the_stream(tmp_path, fitted):
    fc, df = fitted
    path = fc.save(tmp_path / "model.lruts")
    loaded = LRUForecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(), fc.predict())
    nxt = df.iloc[1237:1240]
    pd.testing.assert_frame_equal(loaded.update(nxt), LRUForecaster.load(path).update(nxt))
    blob = torch.load(path, weights_only=True)  # loadable without unpickling arbitrary objects
    assert blob["format"] == "lruts-forecaster"


# the network's settings as format-1 and format-2 files hold them: flat, beside the forecaster's own
OLD_NET_CONFIG = dict(
    lookback=48,
    horizon=12,
    n_channels=3,
    normalization="anchor",
    anchor="last",
    channel_independent=True,
    segment=8,
    d_model=16,
    d_state=16,
    n_layers=2,
    r_min=0.0,
    r_max=0.99,
    max_phase=2 * np.pi,
    norm="layer",
    dropout=0.0,
    linear_skip=True,
    loss="mse",
    quantiles=[0.1, 0.9],
)


def test_load_reads_format_1_with_a_flat_network_config(tmp_path, fitted):
    _, df = fitted
    # format 1 held one network, never a blend
    fc = LRUForecaster(48, 12, quantiles=[0.1, 0.9], blend=False, train=tiny_train(), **TINY_MODEL)
    fc.fit(df.iloc[:1200], time_col="date")
    blob = torch.load(fc.save(tmp_path / "new.lruts"), weights_only=True)
    assert blob["members"][0]["network"]["d_model"] == 16  # written nested
    del blob["members"], blob["ensemble"]
    blob.update(version=1, net_config=OLD_NET_CONFIG)
    torch.save(blob, tmp_path / "old.lruts")
    loaded = LRUForecaster.load(tmp_path / "old.lruts")
    assert loaded.net.cfg.network == fc.net.cfg.network and loaded.net.cfg.segment == 8
    pd.testing.assert_frame_equal(loaded.predict(), fc.predict())
    nxt = df[df["date"] > pd.Timestamp(fc.last_time)].iloc[:3]
    pd.testing.assert_frame_equal(loaded.update(nxt), LRUForecaster.load_from(fc).update(nxt), rtol=1e-5)


def test_load_refuses_foreign_files(tmp_path, fitted):
    bad = tmp_path / "x.lruts"
    torch.save({"hello": 1}, bad)
    with pytest.raises(DataError, match="not an lruts forecaster"):
        LRUForecaster.load(bad)
    # an lruts file whose weights no version wrote (damaged, or edited): one clear error, not torch's
    blob = torch.load(fitted[0].save(tmp_path / "good.lruts"), weights_only=True)
    blob["state_dict"] = {f"renamed.{k}": v for k, v in blob["state_dict"].items()}
    torch.save(blob, bad)
    with pytest.raises(DataError, match=r"holds weights this lruts cannot read .*fit it again"):
        LRUForecaster.load(bad)
    (tmp_path / "junk.lruts").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        LRUForecaster.load(tmp_path / "junk.lruts")
    with pytest.raises(DataError, match="no forecaster file"):
        LRUForecaster.load(tmp_path / "missing.lruts")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.drop(columns="s1"), r"lack column\(s\) \['s1'\]"),
        (lambda d: d.assign(date=d["date"] + pd.Timedelta(minutes=5)), "not a 1h step"),
        (lambda d: d.assign(date=d["date"] - pd.Timedelta(days=30)), "older than the last 48 steps"),
        (lambda d: pd.concat([d, d.assign(s1=d["s1"] + 1)]), "already received with the value"),
        (lambda d: d.astype({"s1": object}).assign(s1=["oops", 1.0]), r"column 's1' holds 'oops' \(row 0"),
        (lambda d: d.assign(date=[d["date"][0], pd.NaT]), r"1 row\(s\) have no time in 'date'"),
        (lambda d: d.assign(date=["2020-03-01 02:00", "soon"]), r"read the timestamps \(examples: \['soon'\]"),
    ],
)
def test_update_rejects_bad_rows_and_keeps_state(fitted, mutate, match):
    fc, df = fitted
    fc = LRUForecaster.load_from(fc)
    before = fc.predict()
    new = df.iloc[fc_next_index(fc, df) : fc_next_index(fc, df) + 2].reset_index(drop=True)
    with pytest.raises(DataError, match=match):
        fc.update(mutate(new))
    pd.testing.assert_frame_equal(fc.predict(), before)  # nothing half-applied


def test_update_reads_numbers_written_for_people_and_missing_cells(fitted):
    # new rows as a spreadsheet sends them: text cells, a currency sign, an empty cell for a missing reading
    fc, df = fitted
    new = df.iloc[fc_next_index(fc, df) : fc_next_index(fc, df) + 2].reset_index(drop=True)
    as_numbers, as_text, missing = (LRUForecaster.load_from(fc) for _ in range(3))
    as_numbers.update(new.assign(s0=[1.5, np.nan]))
    as_text.update(new.astype({"s0": object}).assign(s0=["$1.5", ""]))
    missing.update(new.assign(s0=[np.nan, np.nan]))
    pd.testing.assert_frame_equal(as_text.predict(), as_numbers.predict())
    assert not as_text.predict().equals(missing.predict())  # the reading counted


def fc_next_index(fc, df) -> int:
    return int(np.nonzero(df["date"].to_numpy() == fc.last_time)[0][0]) + 1


def test_fit_refuses_too_short_data():
    with pytest.raises(DataError, match="too few"):
        LRUForecaster(336, 96, train=tiny_train(), **TINY_MODEL).fit(synthetic_frame(300), time_col="date")


def test_a_lookback_shorter_than_the_default_patch_is_one_patch():
    # yearly data with a lookback of 8: the default patch of 16 steps raised "segment must be between 1 and
    # lookback=8", naming an option the user never set
    years = pd.DataFrame({"year": [str(y) for y in range(1900, 2020)], "gdp": np.linspace(1, 50, 120) ** 1.5})
    fc = LRUForecaster(8, 2, train=tiny_train()).fit(years, time_col="year")
    assert fc.net_config.segment == 8
    assert list(fc.predict()["year"].dt.year) == [2020, 2021]
    with pytest.raises(ValueError, match="segment must be between 1 and lookback=8"):
        LRUForecaster(8, 2, segment=10)  # one the user did set is still checked


def test_a_series_or_a_period_index_fits_and_an_array_is_told_what_is_missing():
    # a pandas Series (df["y"]) and a PeriodIndex (monthly data) are common inputs; both were refused
    values = 10 + np.sin(np.arange(120) / 2)
    months = pd.period_range("2000-01", periods=120, freq="M")
    by_series = LRUForecaster(12, 3, train=tiny_train(), **TINY_MODEL).fit(pd.Series(values, index=months, name="y"))
    by_frame = LRUForecaster(12, 3, train=tiny_train(), **TINY_MODEL).fit(
        pd.DataFrame({"date": months.to_timestamp(), "y": values}), time_col="date"
    )
    assert by_series.freq == "1mo" and str(by_series.last_time)[:10] == "2009-12-01"
    np.testing.assert_allclose(by_series.forecast_array(), by_frame.forecast_array())
    with pytest.raises(DataError, match="an array has no timestamps"):
        LRUForecaster(12, 3).fit(values)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LRUForecaster(0, 6), "lookback must be a whole number of steps ≥ 1, got 0"),
        (lambda: LRUForecaster(24, -1), "horizon must be a whole number of steps ≥ 1, got -1"),
        (lambda: LRUForecaster(24.5, 6), "lookback must be a whole number of steps ≥ 1, got 24.5"),
        (lambda: LRUForecaster(24, 6, quantiles=[0.1, 1.5]), r"quantiles must lie strictly between 0 and 1"),
    ],
)
def test_impossible_settings_are_refused_where_they_are_given(make, match):
    # they were accepted, and failed (or gave nonsense) only inside fit
    with pytest.raises(ValueError, match=match):
        make()


def test_a_validation_share_outside_zero_to_one_is_refused():
    # 1.5 said "need at least -59 rows"
    with pytest.raises(ValueError, match=r"val_fraction .* in \(0, 1\); got 1.5"):
        LRUForecaster(24, 6).fit(synthetic_frame(300), time_col="date", val_fraction=1.5)


def test_a_filtered_frames_row_numbers_are_not_a_series_and_a_time_index_kept_as_a_column_is_read_once():
    df = synthetic_frame(400, n_series=1)
    filtered = df[df["s0"] > -10].sample(frac=1.0, random_state=0)  # an integer index that is not 0, 1, 2, ...
    fc = LRUForecaster(24, 6, train=tiny_train(), **TINY_MODEL).fit(filtered, time_col="date")
    assert fc.columns == ["s0"]  # the row numbers were a second series, "index"
    fc = LRUForecaster(24, 6, train=tiny_train(), **TINY_MODEL).fit(df.set_index("date", drop=False), time_col="date")
    assert fc.columns == ["s0"]  # pandas raised "cannot insert date, already exists"
    twice = pd.concat([df, df[["s0"]]], axis=1)
    with pytest.raises(DataError, match=r"columns \['s0'\] appear more than once"):
        LRUForecaster(24, 6).fit(twice, time_col="date")


def test_fit_tells_the_user_what_reading_their_frame_repaired(caplog):
    # a spreadsheet's column: numbers, one of them with a separator, and a note where a reading was missing;
    # pyarrow refused the mixed column, and a fit of a DataFrame told nobody what its reading had changed
    df = synthetic_frame(300, n_series=1).astype({"s0": object})
    df.loc[5, "s0"], df.loc[7, "s0"] = "sensor off", "1,234.5"
    with caplog.at_level("WARNING", logger="lruts"):
        fc = LRUForecaster(24, 6, train=tiny_train(), **TINY_MODEL).fit(df.drop(index=[20, 21]), time_col="date")
    (record,) = [r for r in caplog.records if "the table was read with these repairs" in r.getMessage()]
    text = record.getMessage()
    assert "read 1 numbers written with thousands separators" in text and "'sensor off'" in text
    assert "inserted 2 missing 1h steps" in text and fc.columns == ["s0"]
    with caplog.at_level("WARNING", logger="lruts"):
        caplog.clear()
        LRUForecaster(24, 6, train=tiny_train(), **TINY_MODEL).fit(synthetic_frame(300), time_col="date")
    assert not [r for r in caplog.records if "repairs" in r.getMessage()]  # a clean table: nothing said


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match="unknown model option"):
        LRUForecaster(48, 12, layers=3)


def test_flat_options_go_to_the_forecast_config_or_its_network():
    fc = LRUForecaster(48, 12, d_model=32, dropout=0.6, normalization="revin")
    cfg = fc.net_config
    assert (cfg.lookback, cfg.horizon, cfg.normalization) == (48, 12, "revin")
    assert (cfg.network.d_model, cfg.network.dropout) == (32, 0.6)
    assert cfg.network.d_state == LRUForecaster(48, 12).net_config.network.d_state  # the forecaster's default


def test_dates_with_a_zone_fit_forecast_and_stream_as_the_dates_they_are(tmp_path):
    # a daily table exported with its zone (local midnights: +01:00 in winter, +02:00 in summer); new rows come
    # the same way, as datetimes or text, across the autumn change. Before, the stored UTC times were off any
    # daily grid and the forecasts were dated 22:00 or 23:00 the day before, without a zone
    naive = synthetic_frame(320, n_series=2).assign(date=pd.date_range("2021-01-01", periods=320, freq="D"))
    zoned = naive.assign(date=naive["date"].dt.tz_localize("Europe/Berlin"))
    fits = [LRUForecaster(28, 7, train=tiny_train(epochs=1), **TINY_MODEL).fit(df.iloc[:290]) for df in (naive, zoned)]
    plain, dated = (fc.predict() for fc in fits)
    assert str(plain["date"].iloc[0]) == "2021-10-18 00:00:00"
    pd.testing.assert_frame_equal(dated, berlin(plain))  # the same forecast, dated in the table's zone
    rows = zoned.iloc[290:305]  # crosses 31 October (+02:00 → +01:00)
    as_text = rows.assign(date=rows["date"].map(lambda t: t.isoformat()))
    assert as_text["date"].str.endswith("+02:00").any() and as_text["date"].str.endswith("+01:00").any()
    expected = berlin(LRUForecaster.load_from(fits[0]).update(naive.iloc[290:305]))
    pd.testing.assert_frame_equal(LRUForecaster.load_from(fits[1]).update(rows), expected)
    pd.testing.assert_frame_equal(LRUForecaster.load_from(fits[1]).update(as_text), expected)
    in_utc = rows.assign(date=rows["date"].dt.tz_convert("UTC"))  # the same days, sent in another zone
    pd.testing.assert_frame_equal(LRUForecaster.load_from(fits[1]).update(in_utc), expected)
    loaded = LRUForecaster.load(fits[1].save(tmp_path / "zoned.lruts"))  # the clock is saved with it
    pd.testing.assert_frame_equal(loaded.update(rows), expected)


def berlin(frame: pd.DataFrame, col: str = "date", utc: bool = False) -> pd.DataFrame:
    """`frame` with its naive times `col` as Europe/Berlin's (local wall clock; `utc`: the times are UTC)."""
    times = frame[col].dt.tz_localize("UTC" if utc else "Europe/Berlin")
    return frame.assign(**{col: times.dt.tz_convert("Europe/Berlin")})


def test_times_with_a_zone_are_stored_in_utc_and_forecast_in_the_zone():
    # hourly readings with their zone: stored in UTC (no repeated or missing hour), forecast in the zone, so
    # the forecast merges back onto the user's table; new rows with the zone stream as UTC
    naive = synthetic_frame(700, n_series=1, start="2021-03-20")  # the spring change: 28 March, 02:00 → 03:00
    zoned = naive.assign(date=naive["date"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    fits = [LRUForecaster(48, 6, train=tiny_train(epochs=1), **TINY_MODEL).fit(df.iloc[:600]) for df in (naive, zoned)]
    pd.testing.assert_frame_equal(fits[1].predict(), berlin(fits[0].predict(), utc=True))
    assert len(zoned.merge(fits[1].predict()[["date"]], on="date")) == 6
    expected = berlin(fits[0].update(naive.iloc[600:630]), utc=True)
    pd.testing.assert_frame_equal(fits[1].update(zoned.iloc[600:630]), expected)


def test_a_row_far_after_the_last_observation_streams_and_is_named(fitted, caplog):
    # an outage, or a mistyped year: the steps between stream as missing, and the user is told
    fc, df = fitted
    fc = LRUForecaster.load_from(fc)
    fc.set_history(df.iloc[:1200])
    nearby = df.iloc[1200:1201].assign(date=df["date"].iloc[1199] + pd.Timedelta(hours=40))  # 40 < lookback 48
    with caplog.at_level("WARNING", logger="lruts"):
        fc.update(nearby)
        assert not caplog.records
        late = nearby.assign(date=nearby["date"] + pd.Timedelta(days=30))
        out = fc.update(late)
    assert len(caplog.records) == 1 and "720 steps after the last observation" in caplog.text
    assert out["date"].iloc[0] == late["date"].iloc[0] + pd.Timedelta(hours=1)


def test_a_table_of_step_numbers_is_forecast_in_step_numbers(tmp_path):
    # a simulation's or a sensor's sample index (1, 2, 3, …) was read as epoch seconds: the forecast came dated
    # 1970-01-01 00:06:41; step numbers come back numbered on, through update() and a saved file
    frame = synthetic_frame(400, n_series=1).drop(columns="date")
    frame.insert(0, "step", np.arange(1, 401))
    fc = LRUForecaster(48, 6, train=tiny_train(epochs=1), **TINY_MODEL).fit(frame.iloc[:380], time_col="step")
    assert fc.predict()["step"].tolist() == list(range(381, 387))
    assert fc.update(frame.iloc[380:390])["step"].tolist() == list(range(391, 397))
    loaded = LRUForecaster.load(fc.save(tmp_path / "steps.lruts"))
    assert loaded.update(frame.iloc[390:391])["step"].tolist() == list(range(392, 398))


def test_a_loggers_jittered_timestamps_are_read_and_streamed_on_their_grid(tmp_path):
    # readings a few seconds off the hour (a logger's clock): before, every one was "off the 1h grid", no gap
    # was filled, and update() refused the next jittered reading as "not a 1h step after the last observation"
    exact = synthetic_frame(700, n_series=1)
    rng = np.random.default_rng(0)
    jittered = exact.assign(date=exact["date"] + pd.to_timedelta(rng.integers(-5, 6, len(exact)), "s"))
    jittered = jittered.drop(index=[300, 301]).reset_index(drop=True)  # an outage: two readings lost
    fits = [
        LRUForecaster(48, 6, train=tiny_train(epochs=1), **TINY_MODEL).fit(df.iloc[:598])
        for df in (exact.drop(index=[300, 301]).reset_index(drop=True), jittered)
    ]
    assert fits[1].freq == "1h" and len(fits[1].predict()) == 6
    pd.testing.assert_frame_equal(fits[1].predict(), fits[0].predict())  # the same grid, the gap found alike
    expected = fits[0].update(exact.iloc[600:620])
    pd.testing.assert_frame_equal(fits[1].update(jittered.iloc[598:618]), expected)
    loaded = LRUForecaster.load(fits[1].save(tmp_path / "jitter.lruts"))
    pd.testing.assert_frame_equal(loaded.update(jittered.iloc[618:619]), fits[0].update(exact.iloc[620:621]))
    with pytest.raises(DataError, match="not a 1h step"):  # 20 minutes off is no jitter
        loaded.update(jittered.iloc[619:620].assign(date=lambda d: d["date"] + pd.Timedelta(minutes=20)))


def test_the_tables_own_time_column_names_the_forecast_and_reads_new_rows():
    # a time column found by its name or values ("ds", a DatetimeIndex, yyyymm months, years): the forecast was
    # dated in a column "date" and update() asked for one ("new rows lack column(s) ['date']"); months and
    # years given as integers streamed as nanoseconds after 1970
    hourly = synthetic_frame(400, n_series=1)
    months = pd.period_range("1990-01", periods=400, freq="M")
    tables = {
        "ds": hourly.rename(columns={"date": "ds"}),
        "index": hourly.set_index("date"),
        "ym": hourly.assign(date=months.strftime("%Y%m").astype(int)).rename(columns={"date": "ym"}),
    }
    for name, table in tables.items():
        fc = LRUForecaster(48, 6, train=tiny_train(epochs=1), **TINY_MODEL).fit(table.iloc[:390])
        column = "date" if name == "index" else name
        out = fc.update(table.iloc[390:392])
        assert out.columns[0] == column and len(out) == 6, name
    assert str(out["ym"].iloc[0])[:10] == str(months[392].start_time)[:10]


def test_a_wide_tables_outages_are_masked_never_filled_in(tmp_path, caplog):
    """A column's outage (NaN cells) and a gap in the timestamps are missing in fit: the training and validation
    windows mask them, the scaler reads the observed values alone, and the stream starts with them missing
    (before, fit forward-filled them: the invented readings were training targets and scaler input)."""
    df = synthetic_frame(1300)
    df.loc[400:519, "s1"] = np.nan  # an outage of one sensor
    df.loc[1295:, "s2"] = np.nan  # the last five readings of another
    table = df.drop(index=range(800, 830))  # and 30 hours when the logger sent nothing
    with caplog.at_level("INFO", logger="lruts"):
        fc = LRUForecaster(48, 12, quantiles=[0.1, 0.9], train=tiny_train(epochs=1), **TINY_MODEL).fit(table)
    n_train = 1300 - 130  # validation: the last 10% of the 1,300 hourly steps
    expected = df.iloc[:n_train].assign(**{c: df[c].where(~df.index.isin(range(800, 830))) for c in ("s0", "s1", "s2")})
    np.testing.assert_allclose(fc.scaler.mean, np.nanmean(expected[["s0", "s1", "s2"]].to_numpy(), axis=0), rtol=1e-6)
    # the network trained without the missing-value indicator and with it, the lower validation loss kept (on
    # series with outages validation prefers either, by up to 13%); each alone where the model option says
    trained = [r.getMessage() for r in caplog.records if r.getMessage().startswith("the network indicator-")]
    assert [m.split(":")[0] for m in trained] == ["the network indicator-off", "the network indicator-on"]
    each = [
        LRUForecaster(48, 12, quantiles=[0.1, 0.9], train=tiny_train(epochs=1), missing=m, **TINY_MODEL).fit(table)
        for m in (False, True)
    ]
    assert [f.net.net.cfg.missing for f in each] == [False, True] and each[1].net.net.c_in == 2 * each[0].net.net.c_in
    losses = [f.fit_result.best_val_loss for f in each]
    assert fc.fit_result.best_val_loss == min(losses) and fc.net.net.cfg.missing == (losses[1] < losses[0])
    assert fc.missing_inputs() == {"s0": (0, 0), "s1": (0, 0), "s2": (5, 0)}
    out = fc.predict()
    assert np.isfinite(out.drop(columns="date").to_numpy()).all()
    pd.testing.assert_frame_equal(fc.set_history(table), out)  # the history consumed again, as fit left it
    loaded = LRUForecaster.load(fc.save(tmp_path / "holes.lruts"))
    pd.testing.assert_frame_equal(loaded.predict(), out)
    # the stream goes on from there: the next reading of s2 is observed again
    nxt = pd.DataFrame({"date": [df["date"].iloc[-1] + pd.Timedelta(hours=1)], "s0": [1.0], "s1": [2.0], "s2": [3.0]})
    assert np.isfinite(fc.update(nxt).drop(columns="date").to_numpy()).all()
    assert fc.missing_inputs()["s2"] == (5, 0)


def test_a_wide_column_without_a_reading_in_the_training_rows_is_refused():
    df = synthetic_frame(600)
    df.loc[:560, "s1"] = np.nan
    with pytest.raises(DataError, match=r"\['s1'\] hold no reading in the 540 rows the scaler is fitted on"):
        LRUForecaster(48, 12, train=tiny_train(epochs=1), **TINY_MODEL).fit(df)


def test_a_frame_written_with_decimal_commas_fits_and_streams_as_its_numbers(tmp_path):
    # pandas.read_csv(sep=";") without decimal=",": every reading is text like "30,53". fit() found "no numeric
    # value column", and a fitted column's new rows "30,531" would have read as 30531 (the point's thousands)
    df = synthetic_frame(400, n_series=2).round({"s0": 3, "s1": 3})
    text = df.assign(**{c: df[c].map(lambda v: f"{v:.3f}".replace(".", ",")) for c in ("s0", "s1")})
    text.loc[3, "s0"] = f"{df.loc[3, 's0']:.2f}".replace(".", ",")  # one shorter reading: the mark it shows
    df.loc[3, "s0"] = round(df.loc[3, "s0"], 2)
    fits = [
        LRUForecaster(24, 6, train=tiny_train(), **TINY_MODEL).fit(f.iloc[:380], time_col="date") for f in (df, text)
    ]
    assert fits[1].decimal_comma == ["s0", "s1"]
    loaded = LRUForecaster.load(fits[1].save(tmp_path / "f.lruts"))
    numbers, *read = (fc.update(f.iloc[380:]) for fc, f in zip([*fits, loaded], (df, text, text), strict=True))
    for forecast in read:
        pd.testing.assert_frame_equal(forecast, numbers, rtol=1e-5)


def test_a_long_table_written_with_decimal_commas_streams_as_its_numbers():
    df = synthetic_frame(300, n_series=2).melt("date", var_name="unique_id", value_name="y").round({"y": 3})
    text = df.assign(y=df["y"].map(lambda v: f"{v:.3f}".replace(".", ",")))
    text.loc[0, "y"] = "1,5"  # the mark it shows; the rest reads either way
    df.loc[0, "y"] = 1.5
    cut = df["date"] < df["date"].iloc[280]
    fits = [
        LRUForecaster(24, 6, train=tiny_train(), **TINY_MODEL).fit(f[cut], id_col="unique_id", time_col="date")
        for f in (df, text)
    ]
    numbers, read = (fc.update(f[~cut]) for fc, f in zip(fits, (df, text), strict=True))
    pd.testing.assert_frame_equal(read, numbers, rtol=1e-5)


def test_a_tuners_hook_hears_both_networks_epochs_in_order_and_its_stop_ends_the_choice():
    # with the indicator chosen on validation a table with gaps trains two networks: an Optuna pruner heard the
    # second's epochs under the first's numbers (ignored as already reported), and a pruned first network was
    # followed by a second one, which the trial then kept as if it had not been pruned
    from lruts.data.windows import WindowDataset
    from lruts.forecasting.fitting import fit_with_indicator_choice
    from lruts.forecasting.net import ForecastNetConfig, LRUForecastNet

    values = synthetic_frame(600, n_series=1)[["s0"]].to_numpy(np.float32).copy()
    values[100:140] = np.nan
    data = torch.from_numpy(values)
    train = WindowDataset(data, 0, 500, 48, 12, split="train")
    val = WindowDataset(data, 452, 600, 48, 12, split="val")

    def build(missing):
        torch.manual_seed(0)
        return LRUForecastNet(ForecastNetConfig(48, 12, 1, missing=missing).with_options(TINY_MODEL))

    heard, stopped = [], []
    fit_with_indicator_choice(build, [False, True], train, val, tiny_train(), on_epoch_end=lambda e, m: heard.append(e))
    assert heard == sorted(set(heard)) and len(heard) == 4  # two epochs each, numbered on
    net, fit = fit_with_indicator_choice(
        build, [False, True], train, val, tiny_train(), on_epoch_end=lambda e, m: stopped.append(e) or True
    )
    assert stopped == heard[:1] and fit.stopped_by_callback and not net.cfg.missing  # the first, not trained on

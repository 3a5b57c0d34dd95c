"""Panels of long-format series: own spans, masked missing values, covariates, business days, errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import polars as pl
import pytest
from forecast_fixtures import shared_file

from lruts.data import load_panel, load_series, panel_splits
from lruts.data.timestamps import advance, grid_position, infer_freq, parse_freq, session, step_ns
from lruts.errors import DataError
from pipelines import ingest as ingest_cli

GAFA = shared_file("finance/gafa_stock.csv")
AUS_RETAIL = shared_file("panel/aus_retail.csv")


def synthetic_long(n_series: int = 6, seed: int = 0, nan_share: float = 0.05) -> pl.DataFrame:
    """Hourly series with their own start and length, some NaN targets, one future and one past covariate;
    the future covariate reaches 5 steps past each series' last target."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        start = np.datetime64("2020-01-01T00", "h") + int(rng.integers(0, 200))
        n = int(rng.integers(120, 300))
        t = start + np.arange(n + 5)
        y = (10 * i + np.sin(np.arange(n + 5) / 5) + rng.normal(0, 0.1, n + 5)).astype(np.float32)
        y[rng.random(n + 5) < nan_share] = np.nan
        y[n - 1] = 1.0  # the series' last observed target
        y[n:] = np.nan  # the horizon: future covariates only
        past = rng.normal(size=n + 5).astype(np.float32)
        past[n:] = np.nan
        frames.append(pl.DataFrame({"id": f"s{i}", "ds": t.astype("datetime64[ns]"), "y": y,
                                    "temp": rng.normal(size=n + 5), "load": past}))  # fmt: skip
    return pl.concat(frames).with_columns(pl.col("y").fill_nan(None), pl.col("load").fill_nan(None))


def panel_of(df: pl.DataFrame, **kw):
    return load_panel(df, id_col="id", time_col="ds", target_col="y", **kw)


# ---------------------------------------------------------------------------------------------------------------
# representation


def test_each_series_lives_on_its_own_grid_from_first_to_last_observation():
    df = synthetic_long()
    p = panel_of(df, future_covariates=["temp"], past_covariates=["load"])
    assert p.freq == "1h" and len(p) == 6 and p.values.dtype == np.float32
    assert p.values.shape == (p.lengths.sum(),) and p.past.shape == (p.lengths.sum(), 1)
    for i, sid in enumerate(p.ids):
        rows = df.filter(pl.col("id") == sid)
        observed = rows.filter(pl.col("y").is_not_null())
        first_last = observed["ds"].to_numpy()[[0, -1]]
        assert p.starts[i] == first_last[0] and p.last_times()[i] == first_last[1]
        ts = p.timestamps(i)
        y = rows.filter(pl.col("ds") <= observed["ds"][-1])["y"].to_numpy().astype(np.float32)
        np.testing.assert_array_equal(p.series(i), y)  # NaN where the target is missing
        np.testing.assert_array_equal(ts, rows["ds"].to_numpy()[: len(ts)])
        # the future covariate keeps the 5 horizon rows after the last target
        assert p.future_lengths[i] == p.lengths[i] + 5
        f = p.future[p.future_offsets[i] : p.future_offsets[i] + p.future_lengths[i], 0]
        np.testing.assert_allclose(f, rows["temp"].to_numpy().astype(np.float32))
    assert p.nbytes == p.values.nbytes + p.past.nbytes + p.future.nbytes + p.static.nbytes


def test_a_missing_step_inside_a_span_is_a_nan_row_and_is_reported():
    t = np.datetime64("2021-01-01", "D") + np.array([0, 1, 2, 5, 6])
    df = pl.DataFrame({"id": ["a"] * 5, "ds": t.astype("datetime64[ns]"), "y": [1.0, 2, 3, 6, 7]})
    p = panel_of(df, freq="1d")
    np.testing.assert_array_equal(p.series(0), [1, 2, 3, np.nan, np.nan, 6, 7])
    assert p.report.series["a"].missing_steps == 2 and "2 of 7 steps missing" in p.report.summary()


def test_rows_before_a_series_first_observed_target_are_dropped():
    t = (np.datetime64("2021-01-01", "D") + np.arange(6)).astype("datetime64[ns]")
    df = pl.DataFrame({"id": ["a"] * 6, "ds": t, "y": [None, None, 3.0, 4, 5, 6], "temp": np.arange(6.0)})
    p = panel_of(df, future_covariates=["temp"])
    assert p.starts[0] == t[2] and p.lengths[0] == 4 and p.report.before_start == 2
    np.testing.assert_array_equal(p.future[:, 0], [2, 3, 4, 5])


def test_pandas_input_and_a_static_frame():
    df = synthetic_long(3).to_pandas()
    static = pd.DataFrame({"id": ["s2", "s0", "s1"], "size": [3.0, 1.0, 2.0]})
    p = load_panel(df, id_col="id", time_col="ds", target_col="y", static_covariates=static)
    assert p.static_names == ["size"] and p.static[:, 0].tolist() == [1.0, 2.0, 3.0]  # in the panel's id order


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_static_file_with_numeric_ids_is_read_like_a_static_frame(tmp_path, suffix):
    long = synthetic_long(3).with_columns(pl.col("id").str.strip_prefix("s").cast(pl.Int64))
    static = pl.DataFrame({"id": [2, 0, 1], "size": [3.0, 1.0, 2.0]})
    path = tmp_path / f"static.{suffix}"
    static.write_csv(path) if suffix == "csv" else static.write_parquet(path)
    p = load_panel(long, id_col="id", time_col="ds", target_col="y", static_covariates=str(path))
    assert p.ids == ["0", "1", "2"] and p.static_names == ["size"] and p.static[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_a_static_file_that_is_missing_or_lacks_the_id_column_is_named(tmp_path):
    _err(synthetic_long(2), r"static covariates file '.*nope.csv' does not exist",
         static_covariates=str(tmp_path / "nope.csv"))  # fmt: skip
    keyed = tmp_path / "keyed.csv"
    pl.DataFrame({"key": ["s0", "s1"], "size": [1.0, 2.0]}).write_csv(keyed)
    _err(synthetic_long(2), r"static covariates file '.*keyed.csv': id column 'id' not found",
         static_covariates=str(keyed))  # fmt: skip


def test_identical_duplicates_are_dropped_and_reported():
    df = synthetic_long(2)
    p = panel_of(pl.concat([df, df.head(4)]))
    assert p.report.duplicate_rows == 4 and "4 identical repeats" in p.report.summary()
    np.testing.assert_array_equal(p.values, panel_of(df).values)


# ---------------------------------------------------------------------------------------------------------------
# errors: one line each, naming the series, the column and the timestamps


def _err(df, match, **kw):
    with pytest.raises(DataError, match=match) as e:
        panel_of(df, **kw)
    assert "\n" not in str(e.value)


def test_conflicting_duplicates_are_refused_naming_series_time_and_column():
    df = synthetic_long(2)
    row = df.filter(pl.col("y").is_not_null()).slice(10, 1)
    bad = pl.concat([df, row.with_columns(pl.col("y") + 1)])
    _err(bad, rf"series '{row['id'][0]}' has two rows at {row['ds'][0]} with different values in \['y'\]")


def test_errors_name_what_is_wrong():
    df = synthetic_long(2)
    _err(df.drop("y"), r"target column 'y' not found")
    _err(df.with_columns(pl.col("y").cast(pl.String) + "x"), r"target column 'y' is not numeric")
    _err(df, r"future covariates \['nope'\] are not columns of the table", future_covariates=["nope"])
    _err(df.with_columns(pl.lit("hot").alias("temp")), r"past covariate \['temp'\] is not numeric",
         past_covariates=["temp"])  # fmt: skip
    empty = df.with_columns(pl.when(pl.col("id") == "s1").then(None).otherwise(pl.col("y")).alias("y"))
    _err(empty, r"series \['s1'\] \(1\) have no observed value of 'y'")
    _err(df, r"static covariate 'temp' changes over time in series 's0'", static_covariates=["temp"])
    dup = pl.DataFrame({"id": ["s0", "s0", "s1"], "size": [1.0, 2.0, 3.0]})
    _err(df, r"repeats ids \['s0'\]", static_covariates=dup)
    _err(df, r"has no row for series \['s1'\]", static_covariates=dup.head(1))
    _err(df, r"static covariate \['kind'\] is not numeric",
         static_covariates=pl.DataFrame({"id": ["s0", "s1"], "kind": ["a", "b"]}))  # fmt: skip
    off = df.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(pl.col("ds") + pl.duration(minutes=30))
                          .otherwise(pl.col("ds")).alias("ds"))  # fmt: skip
    _err(off, r"series 's0' has a row at .*, off its 1h grid starting")
    # rows without an id were dropped without a word: a whole series lost
    no_id = df.with_columns(pl.when(pl.col("id") == "s1").then(None).otherwise(pl.col("id")).alias("id"))
    _err(no_id, r"rows have no value in the id column 'id' \(the first at 20")


def test_text_cells_of_a_long_table_are_reported_not_silently_masked():
    df = synthetic_long(2).to_pandas().astype({"y": object})
    df.loc[3, "y"], df.loc[4, "y"] = "offline", "1,234.5"
    panel = panel_of(pl.from_pandas(df.astype({"y": str})))
    assert "1 cells of 'y' hold text that is no number, read as missing: 'offline'" in panel.report.repairs()
    assert any(line.startswith("read 1 numbers written") for line in panel.report.repairs())


def test_a_series_too_short_for_the_windows_is_refused_by_name():
    p = panel_of(synthetic_long(3))
    short = p.ids[int(np.argmin(p.lengths))]
    with pytest.raises(DataError, match=rf"series \['{short} \({p.lengths.min()} steps\)'.* too short for lookback"):
        panel_splits(p, lookback=int(p.lengths.min()) - 20, horizon=12)


# ---------------------------------------------------------------------------------------------------------------
# windows


@pytest.mark.parametrize("stride", [1, 3])
def test_no_window_crosses_a_series_boundary_or_reads_before_a_series_starts(stride):
    p = panel_of(synthetic_long(8, nan_share=0.1), future_covariates=["temp"], past_covariates=["load"])
    L, H = 24, 6
    splits = panel_splits(p, L, H, stride=stride)
    tl = splits.train_lengths
    for ds, lo, hi in ((splits.train, np.zeros_like(tl), tl), (splits.val, tl - L, p.lengths)):
        idx = np.arange(len(ds))
        s, st = ds.series_of(idx), ds.window_start(idx)
        assert (st >= lo[s]).all() and (st + L + H <= hi[s]).all()  # inside its own series and split
        b = ds.__getitems__(idx.tolist())
        mean, std = splits.scaler.target.mean[s], splits.scaler.target.std[s]
        for w in range(0, len(ds), 7):
            own = p.series(s[w])[st[w] : st[w] + L + H]
            expect = np.nan_to_num((own - mean[w]) / std[w], nan=0.0)
            got = np.concatenate([b.x[w, :, 0].numpy(), b.y[w, :, 0].numpy()])
            np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5)
            assert ds.timestamps_of(w)[0] == p.timestamps(s[w])[st[w] + L]
        # where the targets lie, as fractions of the series' rows of the split (the blend's rolling folds)
        np.testing.assert_allclose(
            ds.target_position(idx), (st[:, None] + L + [0, H - 1] - lo[s, None]) / (hi - lo)[s, None]
        )
    # every window of the training split that has an observed target is there, none other
    expected = sum(
        int((~np.isnan(np.lib.stride_tricks.sliding_window_view(p.series(i)[:n], L + H)[::stride, L:])).any(1).sum())
        for i, n in enumerate(tl.tolist())
    )
    assert len(splits.train) == expected


def test_masks_are_false_exactly_where_targets_are_missing_and_all_missing_targets_are_skipped():
    t = (np.datetime64("2021-01-01T00", "h") + np.arange(60)).astype("datetime64[ns]")
    y = np.arange(60, dtype=np.float64)
    y[20:28] = np.nan  # an outage longer than the horizon
    df = pl.DataFrame({"id": "a", "ds": t, "y": y}).with_columns(pl.col("y").fill_nan(None))
    p = panel_of(df)
    splits = panel_splits(p, lookback=8, horizon=4, val_fraction=0.2)
    ds = splits.train
    starts = ds.window_start(np.arange(len(ds)))
    assert not np.isin(starts, [12, 13, 14, 15, 16]).any()  # their 4 targets fall inside the outage
    assert len(ds) == 48 - 12 + 1 - 5
    b = ds.__getitems__(list(range(len(ds))))
    rows = starts[:, None] + np.arange(12)
    missing = np.isnan(p.values[rows])
    np.testing.assert_array_equal(~b.mask[..., 0].numpy(), missing[:, :8])
    np.testing.assert_array_equal(~b.y_mask[..., 0].numpy(), missing[:, 8:])
    assert (b.x[~b.mask] == 0).all() and (b.y[~b.y_mask] == 0).all()


def test_a_batch_carries_every_covariate_scaled_on_the_training_rows():
    df = synthetic_long(4)
    static = pl.DataFrame({"id": [f"s{i}" for i in range(4)], "size": [1.0, 2.0, 3.0, 4.0]})
    p = panel_of(df, future_covariates=["temp"], past_covariates=["load"], static_covariates=static)
    splits = panel_splits(p, lookback=16, horizon=8)
    b = splits.train.__getitems__([0, 5, len(splits.train) - 1])
    assert b.x.shape == (3, 16, 1) and b.y.shape == (3, 8, 1)
    assert b.future_covariates.shape == (3, 24, 1) and b.past_covariates.shape == (3, 16, 1)
    assert b.static.shape == (3, 1) and b.mask.shape == (3, 16, 1) and b.y_mask.shape == (3, 8, 1)
    i = 5
    s, st = int(splits.train.series_of(i)), int(splits.train.window_start(i))
    raw = p.future[p.future_offsets[s] + st : p.future_offsets[s] + st + 24, 0]
    sc = splits.scaler.future
    np.testing.assert_allclose(b.future_covariates[1, :, 0].numpy(), (raw - sc.mean[0]) / sc.std[0], rtol=1e-5)
    # per-series statistics unscale a series' window back to its own level
    x = splits.scaler.target.inverse_transform(b.x[1:2].numpy(), channel=[s])[0, :, 0]
    own = p.series(s)[st : st + 16]
    np.testing.assert_allclose(x[~np.isnan(own)], own[~np.isnan(own)], rtol=1e-5)
    assert not any(np.isnan(getattr(b, k).numpy()).any() for k in ("x", "future_covariates", "past_covariates"))


def test_cutting_windows_holds_at_most_twice_the_panels_numbers():
    n, length = 200, 2_000
    t = (np.datetime64("2020-01-01T00", "h") + np.tile(np.arange(length), n)).astype("datetime64[ns]")
    y = np.random.default_rng(0).normal(size=n * length).astype(np.float32)
    p = load_panel(pl.DataFrame({"id": np.repeat(np.arange(n), length), "ds": t, "y": y}),
                   id_col="id", time_col="ds", target_col="y")  # fmt: skip
    raw = y.nbytes
    tracemalloc.start()
    splits = panel_splits(p, lookback=96, horizon=24)
    for lo in range(0, len(splits.train), 256):
        splits.train.__getitems__(list(range(lo, min(lo + 256, len(splits.train)))))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert p.nbytes + peak <= 2 * raw, (p.nbytes, peak, raw)


# ---------------------------------------------------------------------------------------------------------------
# calendars and the shared files


def test_business_days_parse_advance_and_invert():
    assert parse_freq("B") == "1b" and parse_freq("2B") == "2b" and parse_freq("D") == "1d"
    friday = np.datetime64("2021-02-26T16:00", "ns")
    nxt = advance(friday, "1b", np.arange(1, 4))
    assert [str(d)[:10] for d in nxt] == ["2021-03-01", "2021-03-02", "2021-03-03"]
    assert grid_position(nxt, friday, "1b").tolist() == [1, 2, 3]
    assert grid_position(np.array(["2021-02-27T16:00"], "datetime64[ns]"), friday, "1b").tolist() == [-1]  # Saturday
    jan31 = np.datetime64("2020-01-31", "ns")
    assert [str(d)[:10] for d in advance(jan31, "1mo", [1, 2])] == ["2020-02-29", "2020-03-31"]
    weekdays = np.array([d for d in np.arange("2021-01-04", "2021-03-01", dtype="datetime64[D]") if np.is_busday(d)])
    assert infer_freq(weekdays.astype("datetime64[ns]")) == "1b"
    assert infer_freq(np.arange("2021-01-04", "2021-03-01", dtype="datetime64[D]").astype("datetime64[ns]")) == "1d"


def test_stock_closes_are_business_days_and_a_friday_is_followed_by_a_monday():
    p = load_panel(GAFA, id_col="Symbol", time_col="Date", target_col="Close", past_covariates=["Volume"])
    assert p.freq == "1b" and p.ids == ["AAPL", "AMZN", "FB", "GOOG"]
    ts = p.timestamps(0)
    assert np.is_busday(ts.astype("datetime64[D]")).all()
    holidays = np.isnan(p.series(0))  # market holidays: missing business days, masked
    assert 0 < holidays.sum() < 0.05 * len(ts) and p.report.series["AAPL"].missing_steps == holidays.sum()
    friday = ts[(ts.astype("datetime64[D]").astype(np.int64) + 3) % 7 == 4][-1]
    assert str(advance(friday, p.freq, 1))[:10] == str(friday + np.timedelta64(3, "D"))[:10]  # the Monday


def test_a_wide_table_on_business_days_gets_its_holidays_as_missing_steps():
    days = np.array([d for d in np.arange("2021-03-01", "2021-03-29", dtype="datetime64[D]") if np.is_busday(d)])
    days = np.delete(days, 7)  # a Wednesday holiday
    s = load_series(pl.DataFrame({"date": days.astype("datetime64[ns]"), "close": np.arange(len(days), dtype=float)}),
                    freq="B", fill="mask")  # fmt: skip
    assert s.freq == "1b" and len(s) == len(days) + 1 and np.isnan(s.values[7, 0])
    assert str(s.timestamps[7])[:10] == "2021-03-10" and s.report.missing_steps == 1


def session_times(step: str = "5min", days: int = 20, opens: str = "07:00", closes: str = "21:00") -> np.ndarray:
    """Every step from `opens` to `closes` (inclusive) on the weekdays of `days` calendar days from Monday
    2021-03-01: (n,) datetime64[ns]."""
    dates = np.arange("2021-03-01", np.datetime64("2021-03-01") + days, dtype="datetime64[D]")
    dates = dates[np.is_busday(dates)].astype("datetime64[ns]")
    slots = pd.timedelta_range(pd.Timedelta(f"{opens}:00"), pd.Timedelta(f"{closes}:00"), freq=step).to_numpy()
    return (dates[:, None] + slots[None, :]).reshape(-1)


def test_a_session_steps_from_a_close_to_the_next_business_days_opening_and_back():
    freq = parse_freq("5min@7:00-21:00")
    assert freq == "5m@07:00-21:00" == parse_freq(freq)
    assert session(freq) == (5 * 60 * 10**9, 7 * 3600 * 10**9, 169) and step_ns(freq) is None
    friday = np.datetime64("2021-03-05T20:55", "ns")
    steps = advance(friday, freq, np.arange(-1, 4))
    assert [str(t)[:16] for t in steps] == ["2021-03-05T20:50", "2021-03-05T20:55", "2021-03-05T21:00",
                                           "2021-03-08T07:00", "2021-03-08T07:05"]  # fmt: skip
    assert grid_position(steps, steps[0], freq).tolist() == [0, 1, 2, 3, 4]
    # a night (Monday -> Tuesday) and a weekend, in one round trip of three weeks of slots
    k = np.arange(0, 15 * 169)
    assert grid_position(advance(friday, freq, k), friday, freq).tolist() == k.tolist()
    off = np.array(["2021-03-06T10:00", "2021-03-08T06:55", "2021-03-08T21:05", "2021-03-08T07:02", "2021-03-05T20:50"],
                   dtype="datetime64[ns]")  # fmt: skip
    assert grid_position(off, friday, freq).tolist() == [-1, -1, -1, -1, -1]  # weekend, night, off-step, before
    half_past = parse_freq("1h@09:30-16:30")
    assert str(advance(np.datetime64("2021-03-05T16:30", "ns"), half_past, 1))[:16] == "2021-03-08T09:30"


@pytest.mark.parametrize(
    ("freq", "message"),
    [
        ("5min@21:00-07:00", "opening time must come before the closing time"),
        ("5min@07:00-07:00", "opening time must come before the closing time"),
        ("5min@07:00-21:03", "21:03 is not a whole number of 5m steps after 07:00"),
        ("1d@07:00-21:00", "must be a fixed step under a day"),
        ("B@07:00-21:00", "must be a fixed step under a day"),
        ("fortnight@07:00-21:00", "must be a fixed step under a day"),
        ("5min@24:00-25:00", "between 00:00 and 23:59"),
    ],
)
def test_a_wrong_session_says_what_is_wrong(freq, message):
    with pytest.raises(DataError, match=message):
        parse_freq(freq)


def test_a_session_is_inferred_from_weekday_opening_hours_and_nothing_else():
    calls = session_times()
    calls = calls[calls.astype("datetime64[D]") != np.datetime64("2021-03-10")]  # a holiday
    calls = calls[(calls < np.datetime64("2021-03-16T07:00")) | (calls > np.datetime64("2021-03-16T09:00"))]  # outage
    assert infer_freq(calls) == "5m@07:00-21:00"
    assert infer_freq(session_times("1h", opens="09:30", closes="16:30")) == "1h@09:30-16:30"
    rng = np.random.default_rng(0)
    continuous = np.arange("2021-03-01", "2021-03-21", np.timedelta64(5, "m"), dtype="datetime64[ns]")
    assert infer_freq(continuous[rng.random(len(continuous)) > 0.05]) == "5m"  # random gaps: not a session
    weekdays = continuous[np.is_busday(continuous.astype("datetime64[D]"))]
    assert infer_freq(weekdays[rng.random(len(weekdays)) > 0.05]) == "5m"  # round the clock on weekdays
    # a window of hours, but no day seen from its first to its last hour
    ragged = session_times("1h", opens="09:00", closes="17:00")
    mornings = ragged.astype("datetime64[h]").astype(int) % 24 < 12
    even_days = ragged.astype("datetime64[D]").astype(int) % 2 == 0
    ragged = ragged[mornings == even_days]  # mornings on even days, afternoons on odd days
    assert infer_freq(ragged) == "1h"
    closes = session_times("1D", opens="16:00", closes="16:00", days=40)
    assert infer_freq(closes) == "1b"


def test_a_table_on_a_session_gets_its_holiday_as_missing_slots_and_no_night_rows():
    times = session_times("1h", opens="09:00", closes="17:00")  # 9 slots a day, 15 weekdays
    held = times.astype("datetime64[D]") != np.datetime64("2021-03-10")  # a holiday
    frame = pl.DataFrame({"ds": times[held], "y": np.arange(held.sum(), dtype=float)})
    for fill in ("mask", "ffill"):
        s = load_series(frame, time_col="ds", fill=fill)
        assert s.freq == "1h@09:00-17:00" and len(s) == len(times) and (s.timestamps == times).all()
        assert s.report.missing_steps == 9 and np.isnan(s.values[~held, 0]).all() == (fill == "mask")
    p = load_panel(frame.with_columns(id=pl.lit("calls")), id_col="id", time_col="ds", target_col="y")
    assert p.freq == "1h@09:00-17:00" and (p.timestamps(0) == times).all()
    assert np.isnan(p.series(0)[~held]).all() and p.report.series["calls"].missing_steps == 9


def test_unknown_series_are_named():
    p = panel_of(synthetic_long(2))
    assert p.index("s1") == 1
    with pytest.raises(DataError, match=r"unknown series 'zz'; the panel holds \['s0', 's1'\] \(2\)"):
        p.index("zz")


def test_aus_retail_monthly_series_of_unequal_length():
    p = load_panel(AUS_RETAIL, id_col="Series ID", time_col="Month", target_col="Turnover")
    assert len(p) == 152 and p.freq == "1mo"
    assert len(set(p.lengths.tolist())) > 1 and str(p.starts.min())[:10] == "1982-04-01"
    splits = panel_splits(p, lookback=12, horizon=6)
    s = splits.train.series_of(np.arange(len(splits.train)))
    assert set(s.tolist()) == set(range(152))


# ---------------------------------------------------------------------------------------------------------------
# ingestion


def test_cli_ingest_of_a_long_file_keeps_outages_missing_and_reports_each_series(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LRUTS_DATA_HOME", str(tmp_path / "home"))
    days = [f"2021-01-{d:02d}" for d in range(1, 11)]
    b_rows = [f"b,{d},{i}" for i, d in enumerate(days[3:9]) if i not in (2, 3)]  # from the 4th to the 9th, 2 out
    rows = [f"a,{d},{i}" for i, d in enumerate(days)] + b_rows
    path = tmp_path / "long.csv"
    path.write_text("id,date,y\n" + "\n".join(rows) + "\n")
    assert ingest_cli.main(["--path", str(path), "--id-col", "id"]) == 0
    out = capsys.readouterr().out
    assert "series b: 2021-01-04 00:00:00 .. 2021-01-09 00:00:00, 2 missing steps" in out
    b = pl.read_parquet(tmp_path / "home" / "long.parquet")["b"].to_list()
    assert b[:3] == [None] * 3 and b[5:7] == [None] * 2 and b[-1] is None  # nothing invented outside or inside
    assert ingest_cli.main(["--path", str(path), "--id-col", "id", "--fill", "ffill", "--name", "filled"]) == 0
    b = pl.read_parquet(tmp_path / "home" / "filled.parquet")["b"].to_list()
    assert b[:3] == [None] * 3 and b[5:7] == [1.0, 1.0] and b[-1] is None  # filled inside its span only


def test_a_series_of_a_coarser_step_than_the_panels_is_refused_by_name():
    # weekly rows in a daily panel were read on the daily grid, six days in seven missing, and forecast daily
    daily = pd.DataFrame({"unique_id": "shop", "ds": pd.date_range("2021-01-01", periods=400, freq="D"), "y": 1.0})
    weekly = pd.DataFrame({"unique_id": "region", "ds": pd.date_range("2021-01-03", periods=60, freq="W"), "y": 2.0})
    with pytest.raises(DataError, match=r"series 'region' \(7d\) step more coarsely than the panel's 1d"):
        load_panel(pd.concat([daily, weekly]))
    assert load_panel(pd.concat([daily, weekly]), freq="D").lengths.tolist() == [414, 400]  # asked for: one grid
    outages = daily.drop(index=range(100, 300, 2))  # a daily series with every other day missing for 200 days
    assert load_panel(pd.concat([daily.assign(unique_id="a"), outages])).freq == "1d"


def test_a_long_table_with_a_date_and_a_time_of_day_column_is_read_on_one_timestamp():
    # per series, a date column and a time-of-day column (a logger network's export): each date repeats for
    # every series and reading, which was refused as conflicting rows
    from lruts.data import load_panel

    times = pd.date_range("2024-01-01", periods=96, freq="15min")
    table = pd.DataFrame(
        {
            "station": np.repeat(["a", "b"], 96),
            "Date": np.tile(times.strftime("%d/%m/%Y"), 2),
            "Time": np.tile(times.strftime("%H:%M"), 2),
            "level": np.arange(192, dtype=float),
        }
    )
    panel = load_panel(table, id_col="station", time_col="Date", target_col="level")
    assert panel.freq == "15m" and panel.ids == ["a", "b"] and panel.lengths.tolist() == [96, 96]
    assert list(panel.starts) == [np.datetime64("2024-01-01T00:00", "ns")] * 2
    np.testing.assert_array_equal(panel.series(1), np.arange(96, 192, dtype=np.float32))
    assert panel.time_of_day == "Time" and panel.day_periods is None
    assert "joined the date column 'Date' and the time-of-day column 'Time'" in panel.report.repairs()[0]

"""Ingestion: timestamp layouts, each validation/repair and its report line, idempotency by content hash,
safe output paths for uploads, in-memory frames, partial datasets and the command line."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from lruts.data import IngestReport, PartialDatasetWarning, data_home, ingest, load_series
from lruts.errors import DataError
from pipelines import ingest as cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LRUTS_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LRUTS_OFFLINE", "1")
    return tmp_path / "data"


def write(tmp_path, text, name="s.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def hourly(n=10, cols=2, start="2021-03-01 00:00:00"):
    ts = pd.date_range(start, periods=n, freq="h")
    lines = ["date," + ",".join(f"v{j}" for j in range(cols))]
    lines += [f"{t:%Y-%m-%d %H:%M:%S}," + ",".join(f"{i * 10 + j}.5" for j in range(cols)) for i, t in enumerate(ts)]
    return lines


EXPECTED = np.array(["2016-07-01T02:00", "2016-07-01T03:00", "2016-07-01T04:00"], dtype="datetime64[ns]")


@pytest.mark.parametrize(
    "stamps",
    [
        ["2016-07-01 02:00:00", "2016-07-01 03:00:00", "2016-07-01 04:00:00"],  # ISO
        ["2016-07-01T02:00:00", "2016-07-01T03:00:00", "2016-07-01T04:00:00"],  # ISO with T
        ["2016/7/1 2:00", "2016/7/1 3:00", "2016/7/1 4:00"],  # the electricity/traffic layout
        ["1467338400", "1467342000", "1467345600"],  # epoch seconds
        ["1467338400000", "1467342000000", "1467345600000"],  # epoch milliseconds
        ["2016-07-01T04:00:00+02:00", "2016-07-01T05:00:00+02:00", "2016-07-01T06:00:00+02:00"],  # offsets
        ["2016-07-01T02:00:00Z", "2016-07-01T03:00:00Z", "2016-07-01T04:00:00Z"],  # UTC designator
        ["07/01/2016 02:00", "07/01/2016 03:00", "07/01/2016 04:00"],  # US month-first
    ],
)
def test_timestamp_layouts_parse_to_the_same_instants(tmp_path, stamps):
    path = write(tmp_path, "when,x\n" + "\n".join(f"{s},{i}" for i, s in enumerate(stamps)))
    series = load_series(path, time_col="when")
    np.testing.assert_array_equal(series.timestamps, EXPECTED)
    assert series.freq == "1h"
    if "+02:00" in stamps[0]:
        assert any("UTC" in r for r in series.report.repairs)


def test_dates_only_and_weekly_and_mixed_offsets(tmp_path):
    days = load_series(write(tmp_path, "date,x\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n"))
    assert days.freq == "1d" and str(days.timestamps[0]) == "2020-01-01T00:00:00.000000000"
    weeks = load_series(write(tmp_path, "date,x\n2020-01-01,1\n2020-01-08,2\n2020-01-15,3\n", "w.csv"))
    assert weeks.freq == "7d"
    # a daylight-saving change: +01:00 then +02:00, one hour apart in UTC
    dst = "t,x\n2021-03-28T00:00:00+01:00,1\n2021-03-28T01:00:00+01:00,2\n2021-03-28T03:00:00+02:00,3\n"
    s = load_series(write(tmp_path, dst, "dst.csv"))
    assert s.freq == "1h" and s.report.gaps == 0 and len(s) == 3


def _berlin_days(n=40, start="2021-03-10"):
    return pd.date_range(start, periods=n, freq="D", tz="Europe/Berlin")  # crosses 28 March (+01:00 → +02:00)


def test_dates_written_with_a_zone_stay_dates_across_daylight_saving(tmp_path):
    # exported with their zone, a daily table's local midnights are 23:00 then 22:00 in UTC: off any daily
    # grid (no gap filling, forecasts dated 22:00 the day before); they are read as the dates they are
    days = _berlin_days()
    dates = np.array(days.tz_localize(None), dtype="datetime64[ns]")
    kept = [i for i in range(len(days)) if i != 20]  # one day missing: a gap on the grid of days
    text = "date,x\n" + "\n".join(f"{days[i].isoformat(sep=' ')},{i}" for i in kept)
    assert "+01:00" in text and "+02:00" in text
    frame = pd.DataFrame({"date": days[kept], "x": np.array(kept, float)})
    for zone, source in ((None, write(tmp_path, text)), ("Europe/Berlin", frame)):  # text's offsets name no zone
        s = load_series(source)
        assert s.freq == "1d" and s.report.clock == {"kind": "local", "zone": zone}
        np.testing.assert_array_equal(s.timestamps, dates)
        assert s.report.gaps == 1 and len(s) == len(days)  # the missing day is a gap on the grid, kept missing
        assert np.isnan(s.values[20, 0]) and np.isfinite(np.delete(s.values[:, 0], 20)).all()
        assert any("local midnights" in r for r in s.report.repairs)
    # a column of fixed offsets (pandas' reading of such text) is read the same way, without warnings
    fixed = pd.DataFrame(
        {"date": pd.to_datetime([f"2021-03-2{d} 00:00:00-03:00" for d in (7, 8, 9)]), "x": [1.0, 2, 3]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_series(fixed)
    assert s.report.clock["kind"] == "local" and str(s.timestamps[0])[:16] == "2021-03-27T00:00"
    # times of day with a zone stay instants: converted to UTC, as before
    hours = pd.date_range("2021-03-27 22:00", periods=6, freq="h", tz="Europe/Berlin")
    s = load_series(pd.DataFrame({"date": hours, "x": np.arange(6.0)}))
    assert (
        s.report.clock == {"kind": "utc", "zone": "Europe/Berlin"}
        and s.freq == "1h"
        and str(s.timestamps[0])[:16] == "2021-03-27T21:00"
    )


def test_step_numbers_are_read_as_steps_and_epochs_as_instants(tmp_path):
    steps = load_series(write(tmp_path, "t,x\n" + "\n".join(f"{k},{k * 0.5}" for k in (1, 2, 3, 5, 6))))
    assert steps.report.clock == {"kind": "steps", "zone": None} and steps.freq == "1s"
    assert steps.report.gaps == 1 and len(steps) == 6  # step 4 missing: a gap on the grid of steps
    assert any("step numbers" in r for r in steps.report.repairs)
    frame = load_series(pd.DataFrame({"t": np.arange(0, 50, 10), "x": np.arange(5.0)}))
    assert frame.report.clock["kind"] == "steps" and frame.freq == "10s"
    epoch = load_series(write(tmp_path, "t,x\n1467338400,1\n1467342000,2\n1467345600,3\n", "e.csv"))
    assert epoch.report.clock is None and str(epoch.timestamps[0])[:13] == "2016-07-01T02"


def test_jittered_readings_move_to_their_grid_and_irregular_ones_stay_off_it():
    rng = np.random.default_rng(0)
    quarter = pd.date_range("2021-01-01", periods=300, freq="15min") + pd.to_timedelta(rng.normal(0, 20, 300), "s")
    s = load_series(pd.DataFrame({"date": quarter, "x": np.arange(300.0)}))
    assert s.freq == "15m" and s.report.snapped and s.report.regular and not s.report.warnings
    np.testing.assert_array_equal(s.timestamps, pd.date_range("2021-01-01", periods=300, freq="15min").to_numpy())
    assert any("moved to their nearest 15m step" in r for r in s.report.repairs)
    events = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.cumsum(rng.exponential(3600, 300)).astype(int), "s")
    with pytest.raises(DataError, match="off the grid of its most common step"):  # no step at all: not snapped
        load_series(pd.DataFrame({"date": events, "x": np.arange(300.0)}))
    two_a_step = pd.date_range("2021-01-01", periods=300, freq="30min") + pd.Timedelta(minutes=1)
    s = load_series(pd.DataFrame({"date": two_a_step, "x": np.arange(300.0)}))  # a step of its own, not jitter
    assert s.freq == "30m" and not s.report.snapped and str(s.timestamps[0])[11:16] == "00:01"


def test_true_false_columns_read_as_one_and_zero_from_a_file_as_from_a_frame(tmp_path):
    # a flag column: a DataFrame's booleans were read as 1 / 0 without a word, the same column in a CSV
    # ("True" / "False") dropped as text
    flags = [True, False, False, True, None, False]
    frame = pd.DataFrame(
        {"date": pd.date_range("2021-01-01", periods=6, freq="D"), "y": np.arange(6.0), "promo": flags}
    )
    text = "date,y,promo\n" + "\n".join(
        f"2021-01-0{i + 1},{i}.0,{'' if f is None else ('TRUE' if f else 'false')}" for i, f in enumerate(flags)
    )
    for source in (frame, write(tmp_path, text)):
        s = load_series(source, fill="mask")
        assert s.columns == ["y", "promo"]
        np.testing.assert_array_equal(s.values[:, 1], [1, 0, 0, 1, np.nan, 0])
        assert any("as true / false, in ['promo']" in r for r in s.report.repairs)


@pytest.mark.parametrize(
    ("stamps", "first", "freq"),
    [
        (["1990", "1991", "1992", "1993"], "1990-01-01", "12mo"),  # were epoch seconds: 1970-01-01 00:33:10
        (["1990Q1", "1990Q2", "1990Q3", "1990Q4"], "1990-01-01", "3mo"),
        (["1990-Q3", "1990-Q4", "1991-Q1", "1991-Q2"], "1990-07-01", "3mo"),
        (["1990 Q4", "1991 Q1", "1991 Q2", "1991 Q3"], "1990-10-01", "3mo"),
        (["2015-W52", "2015-W53", "2016-W01", "2016-W02"], "2015-12-21", "7d"),  # ISO weeks: their Monday
        (["2015W02-3", "2015W03-3", "2015W04-3", "2015W05-3"], "2015-01-07", "7d"),  # or the day given
    ],
)
def test_years_quarters_and_weeks_are_read_as_their_first_day(tmp_path, stamps, first, freq):
    series = load_series(write(tmp_path, "period,gdp\n" + "\n".join(f"{s},{i}" for i, s in enumerate(stamps))))
    assert str(series.timestamps[0])[:10] == first and series.freq == freq and len(series) == 4


def test_shuffled_rows_are_sorted_and_reported(tmp_path):
    lines = hourly(8)
    body = lines[1:]
    path = write(tmp_path, "\n".join([lines[0], *body[::-1]]))
    s = load_series(path)
    assert s.report.unsorted and (np.diff(s.timestamps) > np.timedelta64(0)).all()
    assert s.values[0, 0] == 0.5 and s.values[-1, 0] == 70.5


def test_duplicate_timestamps_keep_the_last_row(tmp_path):
    lines = hourly(5)
    path = write(tmp_path, "\n".join([*lines, lines[4].replace("30.5", "999"), lines[2]]))
    s = load_series(path)
    assert len(s) == 5 and s.report.duplicate_rows == 2 and s.report.conflicting_duplicates == 1
    assert s.values[3, 0] == 999.0 and s.values[1, 0] == 10.5
    # the note shows the first conflict, the usual cause of which is local time across a daylight-saving change
    assert any("the first at 2021-03-01 03:00:00 (v0: 30.5 and 999)" in r for r in s.report.repairs), s.report.repairs


def test_a_long_table_read_without_its_id_column_is_refused_not_thinned(tmp_path):
    # four stocks stacked in one file: read as a wide table, each date "repeated" and the last stock's row kept,
    # 3 in 4 rows were dropped as corrections and the rest forecast as one series under the stocks' column names
    t = np.datetime64("2021-01-04") + np.arange(30)
    rows = [f"{sym},{d},{100 * k + i}" for k, sym in enumerate(["AAPL", "AMZN", "FB", "GOOG"]) for i, d in enumerate(t)]
    path = write(tmp_path, "\n".join(["Symbol,Date,Close", *rows]))
    with pytest.raises(DataError, match=r"told apart by 'Symbol' \(4 values, AAPL, AMZN, FB, GOOG.*id_col='Symbol'"):
        load_series(path)
    assert load_series(path, id_col="Symbol").columns == ["AAPL", "AMZN", "FB", "GOOG"]
    # half-hourly readings under their dates beside a column that is no period number: no text column to split
    # on, nothing to join (a settlement period is joined: tests/test_forecaster_panel.py)
    halves = [f"2021-01-0{1 + i // 48},{(i * 7) % 48},{i}" for i in range(96)]
    with pytest.raises(DataError, match="a time column coarser than its rows"):
        load_series(write(tmp_path, "\n".join(["date,slot,demand", *halves]), name="periods.csv"))


@pytest.mark.parametrize("fill, value", [("ffill", 20.5), ("interpolate", 30.5), ("zero", 0.0)])
def test_gaps_are_found_inserted_and_filled_by_the_policy(tmp_path, fill, value):
    lines = hourly(6)
    path = write(tmp_path, "\n".join([lines[0], lines[1], lines[2], lines[3], lines[5], lines[6]]))
    s = load_series(path, fill=fill)
    assert len(s) == 6 and s.report.gaps == 1 and s.report.missing_steps == 1
    assert s.values[3, 0] == pytest.approx(value)
    assert s.report.filled == {"v0": 1, "v1": 1}
    with pytest.raises(DataError, match="1 gaps"):
        load_series(path, fill="error", name="strict")
    kept = load_series(path, regular=False, name="kept")
    assert len(kept) == 5 and not kept.report.regular


def test_huge_gap_is_an_error_not_a_million_invented_rows(tmp_path):
    path = write(tmp_path, "date,x\n2020-01-01 00:00,1\n2020-01-01 00:01,2\n2020-01-01 00:02,3\n2021-01-01 00:00,4\n")
    with pytest.raises(DataError, match=r"would make 783 of 787 rows .* missing"):  # kept missing: 783 empty rows
        load_series(path)
    with pytest.raises(DataError, match="invent"):
        load_series(path, fill="ffill", name="filled")


def test_nan_inf_and_out_of_range_values_are_set_missing_and_filled(tmp_path):
    path = write(tmp_path, "date,a,b\n2020-01-01,1,1\n2020-01-02,nan,inf\n2020-01-03,3,1e39\n2020-01-04,,-inf\n")
    s = load_series(path)  # kept missing (the default)
    assert s.report.non_finite == {"b": 3}
    np.testing.assert_array_equal(s.values, [[1, 1], [np.nan, np.nan], [3, np.nan], [np.nan, np.nan]])
    assert not s.report.filled and s.report.kept_missing == {"a": 2, "b": 3}
    s = load_series(path, fill="ffill", name="filled")
    assert np.isfinite(s.values).all()
    np.testing.assert_array_equal(s.values[:, 0], [1, 1, 3, 3])
    assert sum(s.report.filled.values()) == 5


def test_text_columns_are_dropped_and_junk_cells_reported(tmp_path):
    path = write(tmp_path, "date,name,x\n2020-01-01,alpha,1\n2020-01-02,beta,oops\n2020-01-03,gamma,3\n")
    s = load_series(path)
    assert s.columns == ["x"]
    assert s.report.dropped_columns == {"name": "not numeric"}
    assert s.report.junk_cells == {"x": 1}
    assert any("cells of 'x' hold text that is no number, read as missing: 'oops'" in r for r in s.report.repairs)
    with pytest.raises(DataError, match="not numeric"):
        load_series(path, target_cols=["name"], name="t2")


def test_numbers_written_with_separators_or_signs_are_read_not_dropped(tmp_path):
    # a sales column whose few values above 999 carry a separator: they were "non-numeric cells", set missing
    # and filled with the previous value, so the peaks were silently replaced
    path = write(tmp_path, 'date,sales\n2020-01-01,512.5\n2020-01-02,"1,234.5"\n2020-01-03,980\n2020-01-04,"12,000"\n')
    s = load_series(path)
    np.testing.assert_array_equal(s.values[:, 0], [512.5, 1234.5, 980, 12000])
    assert not s.report.junk_cells and not s.report.filled
    assert any("read 2 numbers written with thousands separators" in r and "['sales']" in r for r in s.report.repairs)
    # decimal commas (';' files): the point groups, and a junk cell is still junk
    eu = "date;v\n2020-01-01;1,5\n2020-01-02;1.234,5\n2020-01-03;oops\n2020-01-04;2 000,25\n"
    path = write(tmp_path, eu, "eu.csv")
    s = load_series(path, name="eu")
    np.testing.assert_array_equal(s.values[:, 0], [1.5, 1234.5, np.nan, 2000.25])
    assert s.report.junk_cells == {"v": 1}
    # a DataFrame the user read without thousands=, currency and percent signs (the number as written: 10.5% is 10.5)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=4),
            "y": ["1,000", "999.5", "-2,500.25", "$1,234.50"],
            "rate": ["10.5%", "11%", "9.75 %", "10%"],
            "eur": ["12 €", "€ 1 200", "-3,5 €", "7"],
        }
    )
    s = load_series(frame)
    np.testing.assert_array_equal(s.values[:, 0], [1000, 999.5, -2500.25, 1234.5])
    np.testing.assert_array_equal(s.values[:, 1], [10.5, 11, 9.75, 10])
    np.testing.assert_array_equal(s.values[:, 2], [12, 1200, -3.5, 7])  # "-3,5 €" reads only with a decimal comma
    assert not s.report.junk_cells and s.report.decimal_comma == ["eur"]


def test_decimal_commas_are_read_by_what_the_column_shows(tmp_path):
    # pandas.read_csv(sep=";") without decimal=",": the numbers stay text. "30,53" was no number (a table of them:
    # "no numeric value column"), and "30,531" read as 30531, a thousandfold reading with a note about separators
    times = pd.date_range("2020-01-01", periods=4)
    frame = pd.DataFrame(
        {"date": times, "a": ["30,53", "27,8", "1.234,5", None], "b": ["30,531", "27,787", "5", "0,125"]}
    )
    s = load_series(frame)
    np.testing.assert_allclose(s.values[:, 0], [30.53, 27.8, 1234.5, np.nan], rtol=1e-6)
    np.testing.assert_allclose(s.values[:, 1], [30.531, 27.787, 5, 0.125], rtol=1e-6)  # b's own: 0,125
    assert load_series(frame[["date", "b"]]).report.decimal_comma == ["b"]  # no thousands group after a 0
    assert s.report.decimal_comma == ["a", "b"] and not s.report.junk_cells
    assert any("decimal commas read as decimal points in ['a', 'b']" in r for r in s.report.repairs)
    # a column that shows no mark takes the table's: "30,531" beside "27,8" is 30.531
    s = load_series(frame.assign(b=["30,531", "27,787", "1,000", "2,500"]))
    np.testing.assert_allclose(s.values[:, 1], [30.531, 27.787, 1, 2.5], rtol=1e-6)
    # ... and beside a point's number (1,234.5) a thousands separator, as where the table shows no mark: said
    for other in (["1,234.5", "2", "3", "4"], ["1", "2", "3", "4"]):
        s = load_series(frame.assign(a=other, b=["30,531", "27,787", "1,000", "2,500"]))
        np.testing.assert_array_equal(s.values[:, 1], [30531, 27787, 1000, 2500])
        said = [r for r in s.report.repairs if "read as thousands separators" in r]
        assert bool(said) == (other[0] == "1"), said  # said where nothing in the table tells
    # a comma-separated file with its decimal commas quoted reads the same
    path = write(tmp_path, 'date,a\n2020-01-01,"30,53"\n2020-01-02,"27,8"\n2020-01-03,29\n')
    np.testing.assert_allclose(load_series(path).values[:, 0], [30.53, 27.8, 29], rtol=1e-6)


def test_a_table_without_a_numeric_column_says_what_its_columns_hold(tmp_path):
    path = write(tmp_path, "date,price\n2020-01-01,12 EUR\n2020-01-02,13 EUR\n")
    with pytest.raises(DataError, match=r"'price' holds e\.g\. '12 EUR'"):
        load_series(path)


def test_compressed_files_are_read_as_what_they_hold_and_json_is_named(tmp_path):
    import bz2
    import gzip
    import zipfile

    text = "\n".join(hourly(6)).encode()
    expected = load_series(write(tmp_path, text, "plain.csv"), name="plain").values
    (tmp_path / "s.csv.gz").write_bytes(gzip.compress(text))
    (tmp_path / "s.csv.bz2").write_bytes(bz2.compress(text))
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as z:
        z.writestr("export/s.csv", text)
    for name in ("s.csv.gz", "s.csv.bz2", "s.zip"):
        s = load_series(tmp_path / name, name=name.replace(".", "_"))
        np.testing.assert_array_equal(s.values, expected)
        assert s.report.repairs[0].startswith("decompressed")
    assert ingest(tmp_path / "s.csv.gz").parquet.name == "s.parquet"
    from lruts.forecasting.experiment import run_label

    assert run_label(str(tmp_path / "s.csv.gz")) == "s"  # the pipelines' runs folder too (it was "s.csv")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
        z.writestr("a.csv", text)
        z.writestr("b.csv", text)
    with pytest.raises(DataError, match=r"holds 2 files \['a.csv', 'b.csv'\]: unzip it"):
        load_series(tmp_path / "two.zip")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(text)[:20])
    with pytest.raises(DataError, match="could not decompress it as gzip"):
        load_series(tmp_path / "cut.csv.gz")
    wide = write(tmp_path, ",".join(f"c{i}" for i in range(40)) + "\nabc" + ",1" * 39 + "\n", "wide.csv")
    with pytest.raises(DataError, match=r"no time column found among \['c0', .* 'c11', '… 28 more'\]"):
        load_series(wide)  # the first names, not all 40
    with zipfile.ZipFile(tmp_path / "book.xlsx", "w") as z:  # a spreadsheet is a zip of many files
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(DataError, match="is a spreadsheet, which is not read: save the sheet as CSV"):
        load_series(tmp_path / "book.xlsx")
    with pytest.raises(DataError, match="looks like JSON"):  # its text was taken for one row of column names
        load_series(write(tmp_path, '[{"date": "2021-01-01", "y": 1}]', "j.json"))


def test_constant_columns_are_reported_and_optionally_dropped(tmp_path):
    path = write(tmp_path, "date,flat,x\n2020-01-01,5,1\n2020-01-02,5,2\n2020-01-03,5,3\n")
    s = load_series(path)
    assert s.report.constant_columns == ["flat"] and s.columns == ["flat", "x"]
    assert load_series(path, drop_constant=True, name="d").columns == ["x"]


def test_latin1_header_is_decoded(tmp_path):
    text = "date,SWDR (W/m\xb2),PAR (\xb5mol/m\xb2/s)\n2020-01-01 00:10:00,1,2\n2020-01-01 00:20:00,3,4\n"
    s = load_series(write(tmp_path, text, encoding="latin-1"))
    assert s.columns == ["SWDR (W/m²)", "PAR (µmol/m²/s)"] and s.freq == "10m"
    assert any("latin-1" in r for r in s.report.repairs)


def test_semicolons_and_decimal_commas(tmp_path):
    s = load_series(write(tmp_path, "date;a;b\n2020-01-01;1,5;2\n2020-01-02;2,5;3\n"))
    assert s.report.delimiter == ";" and s.values[:, 0].tolist() == [1.5, 2.5]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("date,x\n", "no data rows"),
        ("date,x\n2020-01-01,1\n", "1 usable row"),
        ("just one column\n1\n2\n", "single column"),
        ("date,x\nfoo,1\nbar,2\nbaz,3\n", "could not read the timestamps"),
        ("date,x\n2020-01-01,a\n2020-01-02,b\n", "no numeric value column"),
    ],
)
def test_unusable_files_raise_one_clear_data_error(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        ingest(write(tmp_path, text))


def test_reingest_is_skipped_when_unchanged_and_redone_when_changed(tmp_path, home):
    path = write(tmp_path, "\n".join(hourly(20)))
    first = ingest(path)
    assert not first.reused and first.parquet.parent == home
    stamp = first.parquet.stat().st_mtime_ns
    again = ingest(path)
    assert again.reused and again.parquet.stat().st_mtime_ns == stamp
    path.write_text("\n".join(hourly(21)))
    changed = ingest(path)
    assert not changed.reused and changed.report.rows == 21
    assert not ingest(path, fill="interpolate").reused  # options are part of the key
    assert ingest(path, fill="interpolate").reused
    assert not ingest(path, fill="interpolate", force=True).reused
    # a file read by an earlier version of the pipeline (which read a column of years as epoch seconds) is read again
    ingest(path)
    assert ingest(path).reused
    saved = changed.parquet.with_suffix(".report.json")
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "version": 2}))
    assert not ingest(path).reused


def test_report_is_saved_as_json_next_to_the_parquet(tmp_path):
    result = ingest(write(tmp_path, "\n".join(hourly(12))), name="my series")
    assert result.parquet.name == "my_series.parquet"
    saved = result.parquet.with_name("my_series.report.json")
    loaded = IngestReport.load(saved)
    assert loaded == result.report and json.loads(saved.read_text())["rows"] == 12
    assert pl.read_parquet(result.parquet).schema["v0"] == pl.Float32
    assert "12 rows x 2 series" in result.report.summary()


def test_uploads_stay_inside_the_data_folder(tmp_path, home):
    path = write(tmp_path, "\n".join(hourly(6)), name="up load.csv")
    r = ingest(path, dest_dir="uploads", name="../../etc/passwd")
    assert r.parquet == home / "uploads" / "etc_passwd.parquet"
    for bad in ("../outside", str(tmp_path / "elsewhere")):
        with pytest.raises(DataError, match="outside the data folder"):
            ingest(path, dest_dir=bad)
    assert not (tmp_path / "outside").exists() and not (tmp_path / "elsewhere").exists()
    assert ingest(path).parquet.name == "up_load.parquet"


def test_polars_and_pandas_frames_are_validated_in_memory(home):
    idx = pd.date_range("2020-01-01", periods=6, freq="15min")
    pdf = pd.DataFrame({"a": [1.0, 2, np.nan, 4, 5, 6], "b": [1, 1, 2, 3, 5, 8]}, index=idx)
    s = load_series(pdf, name="upload")
    assert s.freq == "15m" and s.columns == ["a", "b"] and np.isnan(s.values[2, 0]) and s.values[3, 0] == 4.0
    assert not s.report.filled
    assert load_series(pdf, name="filled", fill="ffill").values[2, 0] == 2.0
    plf = pl.DataFrame({"t": ["2020-01-03", "2020-01-01", "2020-01-02"], "y": [3, 1, 2]})
    s2 = load_series(plf)
    assert s2.values[:, 0].tolist() == [1, 2, 3] and s2.report.unsorted
    assert not home.exists() or not any(home.iterdir())  # nothing written for in-memory frames
    with pytest.raises(DataError):
        load_series(pl.DataFrame({"t": [], "y": []}))


def test_long_format_is_pivoted_one_column_per_id_and_nothing_is_filled_after_a_series_ends(tmp_path):
    text = "Symbol,Date,Close\nA,2020-01-02,1\nB,2020-01-02,10\nA,2020-01-03,2\nB,2020-01-03,20\nA,2020-01-06,3\n"
    for fill in (None, "ffill"):
        s = load_series(write(tmp_path, text), id_col="Symbol", target_cols=["Close"], regular=False, fill=fill)
        assert s.columns == ["A", "B"] and len(s) == 3
        np.testing.assert_array_equal(s.values[:, 1], [10, 20, np.nan])  # B ended: its last day stays missing
    assert s.report.series_spans["B"] == {"first": "2020-01-02 00:00:00", "last": "2020-01-03 00:00:00",
                                          "missing_steps": 0}  # fmt: skip


def test_partial_electricity_loads_with_a_warning_counting_the_series():
    with pytest.warns(PartialDatasetWarning, match="6 of the 321 expected series"):
        s = load_series("electricity")
    assert s.values.shape == (26_304, 6) and s.report.partial


def test_cli_ingests_a_dataset_and_a_path(tmp_path, capsys, home):
    assert cli.main(["--dataset", "ETTh1"]) == 0
    out = capsys.readouterr().out
    assert "ETTh1: 17,420 rows x 7 series" in out and (home / "ETTh1.report.json").exists()
    path = write(tmp_path, "when;x\n2020-01-01 00:00;1\n2020-01-01 01:00;2\n2020-01-01 03:00;4\n")
    assert cli.main(["--path", str(path), "--time-col", "when", "--freq", "1h"]) == 0
    out = capsys.readouterr().out
    assert "gaps: 1 holes" in out and "delimiter is ';'" in out
    assert cli.main(["--path", str(write(tmp_path, "", "empty.csv"))]) == 2
    assert "empty" in capsys.readouterr().err


def test_cli_help_is_instant_and_errors_have_no_traceback(tmp_path):
    code = "import sys; from pipelines import ingest\ntry:\n ingest.main(['--help'])\nexcept SystemExit:\n pass\n"
    code += "print('torch' in sys.modules, 'polars' in sys.modules, file=sys.stderr)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stderr.strip() == "False False"
    bad = write(tmp_path, b"date,x\n\x00\x01\x02garbage\n", "bad.csv")
    env = {**os.environ, "LRUTS_DATA_HOME": str(data_home())}
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", "--path", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr and "bad.csv" in run.stderr

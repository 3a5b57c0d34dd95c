"""A corpus of malformed files, hand-written and generated with hypothesis: each one either ingests with every
problem it carries repaired and reported, or raises one DataError (never an exception from inside polars,
pyarrow or csv), and the raw file is byte-identical afterwards."""

import hashlib
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lruts.data import ingest, load_series
from lruts.errors import DataError


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LRUTS_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LRUTS_OFFLINE", "1")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(n=12, start="2020-01-01", fmt="%Y-%m-%d %H:%M:%S"):
    ts = np.datetime64(start, "h") + np.arange(n)
    return [(str(t.astype("datetime64[s]").item().strftime(fmt)), f"{i}.5", f"{2 * i}") for i, t in enumerate(ts)]


def _csv(rows, header=("date", "a", "b"), sep=",", eol="\n") -> bytes:
    return eol.join(sep.join(r) for r in [header, *rows]).encode() + eol.encode()


ROWS = _rows()
# name -> (file bytes, file name, what must hold: a DataError matching this text, or a report check)
CORPUS = {
    "empty": (b"", "x.csv", "empty"),
    "blank lines": (b"\n\n  \n", "x.csv", "empty"),
    "header only": (b"date,a\n", "x.csv", "no data rows"),
    "single row": (_csv(ROWS[:1]), "x.csv", "1 usable row"),
    "no delimiter": (b"date a b\n2020-01-01 1 2\n", "x.csv", "single column"),
    "binary": (bytes(range(256)) * 4, "x.csv", "not a UTF-8"),
    "utf-16": ("date,a\n2020-01-01,1\n".encode("utf-16"), "x.csv", "UTF-16"),
    "junk timestamps": (_csv([("soon", "1", "2"), ("later", "2", "3"), ("never", "3", "4")]), "x.csv", "timestamps"),
    "all text values": (_csv([(r[0], "x", "y") for r in ROWS]), "x.csv", "no numeric value column"),
    "not parquet": (b"date,a\n2020-01-01,1\n", "x.parquet", "not a readable Parquet"),
    "huge gap": (_csv([*ROWS[:3], ("2031-01-01 00:00:00", "1", "1")]), "x.csv", "would make .* missing"),
    # repaired and reported
    "shuffled": (_csv(random.Random(0).sample(ROWS, len(ROWS))), "x.csv", lambda r: r.unsorted),
    "duplicates": (_csv([*ROWS, ROWS[4], ROWS[7]]), "x.csv", lambda r: r.duplicate_rows == 2),
    "gaps": (_csv(ROWS[:4] + ROWS[6:]), "x.csv", lambda r: r.gaps == 1 and r.missing_steps == 2),
    "junk cells": (_csv([*ROWS[:5], (ROWS[5][0], "n/a?", "#REF!"), *ROWS[6:]]), "x.csv", lambda r: r.junk_cells),
    "junk timestamp": (_csv([*ROWS[:5], ("??", "1", "1"), *ROWS[5:]]), "x.csv", lambda r: r.bad_timestamps == 1),
    "semicolons": (_csv(ROWS, sep=";"), "x.csv", lambda r: r.delimiter == ";"),
    "tabs + CRLF": (_csv(ROWS, sep="\t", eol="\r\n"), "x.tsv", lambda r: r.delimiter == "\t"),
    "pipes": (_csv(ROWS, sep="|"), "x.txt", lambda r: r.delimiter == "|"),
    "huge values": (_csv([*ROWS[:5], (ROWS[5][0], "1e39", "-1e300"), *ROWS[6:]]), "x.csv", lambda r: r.non_finite),
    "nan and inf": (_csv([*ROWS[:5], (ROWS[5][0], "NaN", "inf"), *ROWS[6:]]), "x.csv", lambda r: r.non_finite),
    "ragged lines": (
        _csv([*ROWS[:5], (*ROWS[5], "extra", "fields"), *ROWS[6:]]),
        "x.csv",
        lambda r: any("re-read as text" in x for x in r.repairs),
    ),
    "byte-order mark": (b"\xef\xbb\xbf" + _csv(ROWS), "x.csv", lambda r: any("byte-order" in x for x in r.repairs)),
    "no header": (_csv(ROWS)[len(b"date,a,b\n") :], "x.csv", lambda r: any("no header" in x for x in r.repairs)),
    "quoted fields (valid)": (
        b'"date","a","b"\n' + b"".join(f'"{t}","{a}","{b}"\n'.encode() for t, a, b in ROWS),
        "x.csv",
        lambda r: r.rows == 12,
    ),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_hand_written_malformed_file(tmp_path, case):
    content, name, expect = CORPUS[case]
    path = tmp_path / name
    path.write_bytes(content)
    before = _digest(path)
    if isinstance(expect, str):
        with pytest.raises(DataError, match=expect):
            ingest(path)
    else:
        result = ingest(path)
        assert expect(result.report), result.report.summary()
        series = load_series(path)
        values = series.values
        assert np.isfinite(values[~np.isnan(values)]).all() and (np.diff(series.timestamps) > np.timedelta64(0)).all()
        assert np.isfinite(load_series(path, fill="ffill", name="filled").values).all()
    assert _digest(path) == before


CORRUPTIONS = ("shuffle", "duplicate", "gap", "junk", "huge", "nan", "delimiter", "crlf", "empty_cells")


@st.composite
def malformed(draw):
    n = draw(st.integers(min_value=2, max_value=40))
    cols = draw(st.integers(min_value=1, max_value=3))
    values = draw(
        st.lists(
            st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=cols, max_size=cols),
            min_size=n,
            max_size=n,
        )
    )
    applied = draw(st.sets(st.sampled_from(CORRUPTIONS), max_size=4))
    ts = np.datetime64("2021-06-01T00", "h") + np.arange(n)
    rows = [[str(t).replace("T", " ") + ":00:00", *(repr(v) for v in row)] for t, row in zip(ts, values, strict=True)]
    rnd = random.Random(draw(st.integers(0, 2**16)))
    done = set()  # what was actually applied (a gap needs enough rows)

    def spoil(kind, choices):
        if kind in applied:
            rows[rnd.randrange(len(rows))][1 + rnd.randrange(cols)] = draw(st.sampled_from(choices))
            done.add(kind)

    if "gap" in applied and n > 4:
        del rows[rnd.randrange(1, n - 2)]
        done.add("gap")
    spoil("junk", ["abc", "1,2,3", "--", "#N/A!", "'"])
    spoil("huge", ["1e39", "-4e38", "9" * 60])
    spoil("nan", ["nan", "inf", "-inf", "NaN"])
    spoil("empty_cells", [""])
    if "duplicate" in applied:
        rows.append(list(rows[rnd.randrange(len(rows))]))
        done.add("duplicate")
    if "shuffle" in applied:
        rnd.shuffle(rows)
    sep = draw(st.sampled_from([";", "\t", "|"])) if "delimiter" in applied else ","
    eol = "\r\n" if "crlf" in applied else "\n"
    header = ["date", *(f"s{j}" for j in range(cols))]
    text = eol.join(sep.join(r) for r in [header, *rows]) + eol
    return text.encode(), done, sep


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed())
def test_generated_malformed_files_are_repaired_and_reported_or_refused(case):
    content, applied, sep = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.csv"
        path.write_bytes(content)
        os.environ["LRUTS_DATA_HOME"] = str(Path(tmp) / "data")  # the fixture's env is per test, not per example
        before = _digest(path)
        try:
            series = load_series(path)
        except DataError as e:
            assert str(e)  # one clear message; any other exception type fails the test
        else:
            r = series.report
            values = series.values  # missing cells kept missing (NaN), every other value a finite float32
            assert np.isfinite(values[~np.isnan(values)]).all() and values.dtype == np.float32
            assert (np.diff(series.timestamps) > np.timedelta64(0)).all()
            assert r.delimiter == sep
            if "duplicate" in applied:
                assert r.duplicate_rows >= 1
            if {"huge", "nan"} & applied and not r.dropped_columns:
                assert r.non_finite or r.junk_cells or r.filled or r.kept_missing
            if {"junk", "huge", "nan", "empty_cells", "gap", "duplicate"} & applied:
                assert r.repairs or r.warnings  # every damage that reaches the values is reported
        assert _digest(path) == before


def test_files_joined_end_to_end_drop_their_repeated_headers(tmp_path):
    # two exports concatenated: the second's header line was an unreadable timestamp (refused where it is
    # more than a tenth of the rows) and junk in every value column
    body = ["2021-01-01,1,5", "2021-01-02,2,6", "2021-01-03,3,7"]
    path = tmp_path / "joined.csv"
    path.write_text("\n".join(["date, sales ,temp", *body, "date, sales ,temp", "2021-01-04,4,8", "2021-01-05,5,9"]))
    s = load_series(path, target_cols=["sales"])
    assert len(s) == 5 and s.values[:, 0].tolist() == [1, 2, 3, 4, 5] and not s.report.junk_cells
    assert "dropped 1 line(s) repeating the header (files joined end to end)" in s.report.repairs


def test_a_row_index_saved_beside_the_data_is_not_a_series(tmp_path):
    # pandas' to_csv without index=False writes the row numbers under a blank header: they were read as a
    # series (column_0, or "Unnamed: 0" through pandas.read_csv) and forecast as a ramp
    import pandas as pd

    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=30, freq="D"), "sales": np.arange(30.0) % 7})
    frame.to_csv(tmp_path / "saved.csv")
    for source in (tmp_path / "saved.csv", pd.read_csv(tmp_path / "saved.csv")):
        s = load_series(source)
        assert s.columns == ["sales"] and any("a saved row index (0, 1, 2, …)" in r for r in s.report.repairs)
    # a frame filtered before it was saved keeps its gaps; HOBOware numbers its rows in a "#" column
    kept = frame[frame["sales"] != 3].assign(**{"#": lambda d: np.arange(5, 5 + len(d))})
    kept.to_csv(tmp_path / "filtered.csv")
    s = load_series(tmp_path / "filtered.csv")
    assert s.columns == ["sales"] and "dropped column '#': a logger's record numbers (5, 6, 7, …)" in s.report.repairs
    assert "dropped column 'column_0': a saved row index (0, 1, 2, …)" in s.report.repairs  # 3 skipped later
    steps = load_series(pd.DataFrame({"index": range(30), "y": np.arange(30.0) % 7}))  # the only time there is
    assert steps.columns == ["y"] and steps.report.clock["kind"] == "steps"


def test_missing_data_codes_are_missing_cells_and_values_in_range_are_not(tmp_path):
    # a logger writes -9999 for "no reading" (the weather benchmark's wind speeds do): read as a value it
    # inflated the scaler 50-fold and sank the forecasts; a -999 among balances of -2,000..2,000 is a balance
    wind = (np.arange(48) % 15).astype(float)
    balance = np.linspace(-2000, 2000, 48).round()
    wind[[7, 30]], balance[5] = -9999, -999
    rows = [
        (f"2021-01-{1 + i // 24:02d} {i % 24:02d}:00", f"{w:g}", f"{b:g}")
        for i, (w, b) in enumerate(zip(wind, balance, strict=True))
    ]
    path = tmp_path / "logger.csv"
    path.write_bytes(_csv(rows, header=("date", "wind", "balance")))
    s = load_series(path)
    assert np.nanmin(s.values[:, 0]) >= 0 and s.values[5, 1] == -999
    assert s.report.missing_codes == {"wind": {"-9999": 2}}
    assert "read missing-data codes as missing: -9999 in 'wind' (2 cells; its other values 0 to 14)" in s.report.repairs
    assert np.isnan(s.values[[7, 30], 0]).all() and np.isfinite(np.delete(s.values[:, 0], [7, 30])).all()
    assert not s.report.filled and s.report.kept_missing == {"wind": 2}  # then kept missing as any missing cell
    published = load_series(path, exact_rows=True, force=True)  # a benchmark file's rows stay as published
    assert published.values[7, 0] == -9999 and any("kept as published" in w for w in published.report.warnings)


def test_a_panel_reads_missing_data_codes_as_missing_in_target_and_covariates():
    import pandas as pd

    from lruts.data import load_panel

    t = pd.date_range("2021-01-01", periods=40, freq="D")
    y, temp = np.arange(40.0) % 9 + 10, np.arange(40.0) % 5
    y[12], temp[3] = 99999, -999
    panel = load_panel(pd.DataFrame({"unique_id": "a", "ds": t, "y": y, "temp": temp}), past_covariates=["temp"])
    assert np.isnan(panel.series(0)[12]) and np.nanmax(panel.series(0)) == 18 and np.isnan(panel.past[3, 0])
    assert any("99999 in 'y'" in r and "-999 in 'temp'" in r for r in panel.report.repairs())


def test_a_loggers_preamble_and_units_lines_are_skipped(tmp_path):
    # Campbell Scientific's TOA5: a station line above the header, units and aggregation lines below it; the
    # station line (8 fields) was taken for the header and the read failed inside polars
    rows = [f'"2021-05-01 {i // 6:02d}:{i % 6 * 10:02d}:00",{i},{10 + i % 7}.5,{50 + i % 5}' for i in range(60)]
    lines = [
        '"TOA5","site","CR1000","1234","CR1000.Std.32","CPU:p.CR1","5678","Table1"',
        '"TIMESTAMP","RECORD","AirTC_Avg","RH"',
    ]
    path = tmp_path / "logger.dat"
    path.write_text("\n".join([*lines, '"TS","RN","Deg C","%"', '"","","Avg","Smp"', *rows]) + "\n")
    s = load_series(path, target_cols=["AirTC_Avg", "RH"])
    assert len(s) == 60 and s.values[0].tolist() == [10.5, 50.0] and not s.report.junk_cells
    assert any(r.startswith("skipped 1 line(s) before the header") for r in s.report.repairs)
    assert any(r.startswith("skipped 2 line(s) under the header") for r in s.report.repairs)
    # its RECORD column numbers the logger's records (from wherever the logger's count stood): not a series
    every = load_series(path)
    assert every.columns == ["AirTC_Avg", "RH"]
    assert "dropped column 'RECORD': a logger's record numbers (0, 1, 2, …)" in every.report.repairs
    # a header with data lines one field wider (a trailing delimiter) is still the header, not a preamble
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("date,a\n" + "".join(f"2021-01-{d:02d},{d}.5,\n" for d in range(1, 21)))
    assert load_series(trailing).columns[0] == "a" and load_series(trailing).values[0, 0] == 1.5


def test_a_date_column_beside_a_time_of_day_column_is_one_timestamp(tmp_path):
    # UCI's household power consumption (`Date;Time;...`, day first, '?' for missing): read alone, each date
    # repeated 1,440 times
    import pandas as pd

    rows = [f"{16 + i // 1440}/12/2006;{i // 60 % 24:02d}:{i % 60:02d}:00;{i % 9}.25" for i in range(2880)]
    path = tmp_path / "household.txt"
    path.write_text("\n".join(["Date;Time;Global_active_power", *rows]) + "\n")
    for source in (path, pd.read_csv(path, sep=";"), pd.read_csv(path, sep=";", parse_dates=["Date"], dayfirst=True)):
        s = load_series(source)
        assert len(s) == 2880 and s.freq == "1m" and s.report.time_of_day == "Time"
        assert str(s.timestamps[61])[:19] == "2006-12-16T01:01:00" and s.values[61, 0] == 7.25
        assert "joined the date column 'Date' and the time-of-day column 'Time' into one timestamp" in s.report.repairs


def test_a_market_data_sites_export_reads_its_dates_and_volumes(tmp_path):
    # newest first, "Jun 28, 2024" dates, prices with thousands separators, volumes as 12.34M / 850.50K: the
    # dates were refused and the volume column dropped as text
    days = np.datetime64("2024-06-28") - np.arange(30)
    rows = [
        f'"{d.astype(object):%b %d, %Y}","{1200 + i:,}.50","{12 + i}.25M","{i - 10}.5%"'
        if i % 2
        else f'"{d.astype(object):%b %d, %Y}","{1200 + i:,}.50","{850 + i}.50K","{i - 10}.5%"'
        for i, d in enumerate(days)
    ]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(['"Date","Price","Vol.","Change %"', *rows]) + "\n")
    s = load_series(path, regular=False)
    assert str(s.timestamps[-1])[:10] == "2024-06-28" and s.columns == ["Price", "Vol.", "Change %"]
    assert s.values[-1].tolist() == [1200.5, 850500.0, -10.5] and s.values[-2].tolist() == [1201.5, 13250000.0, -9.5]
    assert any("magnitudes" in r and "'Vol.'" in r for r in s.report.repairs)


def test_readings_at_irregular_times_are_refused_with_how_to_resample(tmp_path):
    # a sensor that reports on change: read row by row as the steps of its most common gap (20 s), its
    # forecasts were the next readings dated 20 s apart
    rng = np.random.default_rng(0)
    times = np.datetime64("2024-01-01T00:00:00") + np.cumsum(rng.exponential(300, 400)).astype("timedelta64[s]")
    path = tmp_path / "events.csv"
    path.write_text(
        "time,value\n" + "".join(f"{t},{v:.3f}\n" for t, v in zip(times, rng.normal(size=400), strict=True))
    )
    with pytest.raises(DataError, match=r"off the grid of its most common step.*resample them to one first"):
        load_series(path)
    regular = tmp_path / "regular.csv"  # a few readings off the grid are kept, with a warning
    stamps = np.datetime64("2024-01-01T00:00") + np.arange(100).astype("timedelta64[h]")
    stamps[[10, 50]] += np.timedelta64(29, "m")
    regular.write_text("time,value\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
    assert len(load_series(regular)) == 100 and any(
        "2 timestamps are off the 1h grid" in w for w in load_series(regular).report.warnings
    )


def test_a_twelve_hour_clock_reads_as_hours(tmp_path):
    # a US spreadsheet's "1/2/2024 1:00 PM": refused ("could not read the timestamps")
    stamps = np.datetime64("2024-01-02T00:00") + np.arange(48).astype("timedelta64[h]")
    text = "".join(f"{t.astype(object):%m/%d/%Y %I:%M %p},{i}\n" for i, t in enumerate(stamps))
    path = tmp_path / "export.csv"
    path.write_text("Timestamp,kWh\n" + text)
    s = load_series(path)
    assert s.freq == "1h" and len(s) == 48 and str(s.timestamps[13])[:16] == "2024-01-02T13:00"


def test_values_whose_changes_float32_would_round_away_are_refused_with_the_fix(tmp_path):
    # a cumulative meter (123,456,789 Wh, +5..15 an hour): held as float32 its steps became 0, 8 and 16, silently
    import pandas as pd

    from lruts.data import load_panel

    rng = np.random.default_rng(0)
    meter = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=300, freq="h")})
    meter["wh"] = 123_456_789 + np.cumsum(rng.integers(5, 15, 300))
    path = tmp_path / "meter.csv"
    meter.to_csv(path, index=False)
    for read in (lambda: load_series(path), lambda: load_series(meter)):
        with pytest.raises(DataError, match=r"'wh' reaches 1\.234\d*e\+08.*steps of 8.*Subtract its first value"):
            read()
    since = load_series(meter.assign(wh=meter["wh"] - meter["wh"].iloc[0]))  # what the message says to do
    np.testing.assert_array_equal(np.diff(since.values[:, 0]), np.diff(meter["wh"].to_numpy()))
    long = meter.rename(columns={"date": "ds", "wh": "y"}).assign(unique_id="m1")
    small = long.assign(unique_id="m2", y=np.arange(300.0))  # a series at its own scale beside it is fine
    with pytest.raises(DataError, match="'y' of series 'm1'"):
        load_panel(pd.concat([small, long]))
    assert len(load_panel(small)) == 1


def test_a_period_column_beside_dates_is_read_only_where_it_numbers_each_days_rows(tmp_path):
    import pandas as pd

    # a day's numbered periods (hours 0..23 here) beside its date: one timestamp; the clock-change day's 25th
    # hour cannot be placed on the day and is dropped, reported
    days = pd.date_range("2023-10-27", periods=4, freq="D").strftime("%Y-%m-%d")
    rows = [(d, h, h + 10 * k) for k, d in enumerate(days) for h in range(25 if d == "2023-10-29" else 24)]
    s = load_series(pd.DataFrame(rows, columns=["date", "hour", "load"]))
    assert s.freq == "1h" and s.columns == ["load"] and len(s) == 96 and s.report.day_periods == [0, 3600]
    assert any("1 rows of periods past the day's last" in r for r in s.report.repairs)
    # a numeric column named like a period that does not number the day's rows stays a series
    other = pd.DataFrame({"date": days.repeat(2), "hour": [0, 1] * 4, "v": range(8)})
    with pytest.raises(DataError, match="a time column coarser than its rows"):
        load_series(other)

"""The dashboard's panel view (dashboard/panel.py through streamlit.testing.v1.AppTest): a forecaster fitted on a
long table opens with a series picker; the chosen series' forecast, interval and covariates are drawn (future
covariates over history and horizon, past ones over history); uploaded rows with a gap, a NaN and a re-sent row
stream through update() one at a time and are reported; a bad row is refused with the forecaster's message;
the future covariates the next forecast needs come from the rows known or uploaded, else the page says
which are missing; the demo forecaster builds from the shared data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import APP, plotly_traces
from streamlit.testing.v1 import AppTest

from lruts import LRUForecaster
from lruts.training import TrainConfig

TIMEOUT = 120  # seconds per script run: the first one loads torch and the model on a busy 2-core VM
H, LOOKBACK, HELD_OUT = 6, 24, 2 * 6  # every series' last HELD_OUT rows: targets held out, covariates known
SMALL = dict(d_model=16, d_state=16, n_layers=1, segment=4, dropout=0.0)


def driven_panel() -> pd.DataFrame:
    """Three hourly series of unequal spans: y = level + 3·x + noise, x a future covariate, p a past one."""
    rng = np.random.default_rng(0)
    frames = []
    for k, n in enumerate([120, 150, 180]):
        x, p = rng.standard_normal(n), rng.standard_normal(n)
        ts = pd.date_range(pd.Timestamp("2021-01-01") + pd.Timedelta(hours=5 * k), periods=n, freq="h")
        y = 10 * (k + 1) + 3 * x + 0.1 * rng.standard_normal(n)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ts, "y": y, "x": x, "p": p}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """runs/panel/L24-H6/forecaster.lruts fitted on the panel with each series' last HELD_OUT targets left
    out, and the dataset (all targets) as a CSV named by its results.json."""
    root = tmp_path_factory.mktemp("dashboard-panel")
    df = driven_panel()
    csv = root / "panel.csv"
    df.to_csv(csv, index=False)
    table = df.copy()
    table.loc[table.groupby("unique_id").tail(HELD_OUT).index, "y"] = np.nan
    fc = LRUForecaster(LOOKBACK, H, quantiles=[0.1, 0.9], **SMALL, train=TrainConfig(
        epochs=1, batch_size=32, lr=1e-2, patience=0, progress=False, max_steps_per_epoch=5))  # fmt: skip
    fc.fit(table, id_col="unique_id", future_covariates=["x"], past_covariates=["p"], calendar=True)
    out = root / "runs" / "panel" / f"L{LOOKBACK}-H{H}"
    out.mkdir(parents=True)
    fc.save(out / "forecaster.lruts")
    (out / "results.json").write_text(json.dumps({"config": {"dataset": str(csv)}}))
    return {"root": root, "csv": csv, "frame": df, "checkpoint": out / "forecaster.lruts"}


@pytest.fixture
def env(ws, monkeypatch):
    monkeypatch.setenv("LRUTS_RUNS_DIR", str(ws["root"] / "runs"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ws['root'] / 'none.db'}")  # no registry: local only
    return ws


def open_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def held_out(ws, sid: str) -> pd.DataFrame:
    return ws["frame"][ws["frame"]["unique_id"] == sid].tail(HELD_OUT).reset_index(drop=True)


def upload(at: AppTest, frame: pd.DataFrame, name: str = "rows.csv") -> AppTest:
    at.file_uploader(key="panel_upload").set_value((name, frame.to_csv(index=False).encode(), "text/csv"))
    at.run()
    return at.button(key="panel_add").click().run()


def traces(at: AppTest, i: int, meta: str) -> list[dict]:
    return plotly_traces(at.get("plotly_chart")[i].proto.spec, meta)


def test_picking_series_draws_each_ones_forecast_interval_and_covariates(env):
    at = open_app()
    picker = at.multiselect(key=f"panel_series:{env['csv']}")
    assert picker.options == ["s0", "s1", "s2"] and picker.value == ["s0"]
    expected = LRUForecaster.load(env["checkpoint"]).predict()
    expected = expected[expected["unique_id"] == "s0"]
    [forecast] = traces(at, 0, "forecast")
    np.testing.assert_allclose(forecast["y"], expected["forecast"], rtol=1e-4, atol=1e-4)
    upper, lower = traces(at, 0, "interval")
    np.testing.assert_allclose(upper["y"], expected["forecast_q0.9"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lower["y"], expected["forecast_q0.1"], rtol=1e-4, atol=1e-4)

    x, p = traces(at, 0, "covariate")  # future covariate x, then past covariate p
    last = pd.Timestamp(traces(at, 0, "history")[0]["x"][-1])
    truth = held_out(env, "s0").set_index("ds")
    ahead = [pd.Timestamp(t) > last for t in x["x"]]
    assert sum(ahead) == H  # x is drawn over the horizon too, with its known values
    np.testing.assert_allclose(np.array(x["y"])[ahead], truth["x"].iloc[:H], rtol=1e-6)
    p_ahead = np.array(p["y"], dtype=float)[ahead]
    assert np.isnan(p_ahead).all() and np.isfinite(np.array(p["y"], dtype=float)[~np.array(ahead)]).all()

    picker.set_value(["s0", "s2"]).run()
    assert len(at.get("plotly_chart")) == 2 and not at.exception
    assert traces(at, 1, "history")[0]["y"][-1] == pytest.approx(
        env["frame"].query("unique_id == 's2'")["y"].iloc[-HELD_OUT - 1]
    )


def test_uploaded_rows_with_a_gap_a_nan_and_a_resent_row_stream_one_at_a_time_and_are_reported(env):
    at = open_app()
    at.multiselect(key=f"panel_series:{env['csv']}").set_value(["s1"]).run()
    s1 = env["frame"][env["frame"]["unique_id"] == "s1"]
    resent = s1.iloc[[-HELD_OUT - 1]]  # the last observation, sent again
    new = held_out(env, "s1").iloc[:4].drop(index=1)  # the second hour skipped: a gap
    new.loc[2, "y"] = np.nan  # a missing reading
    rows = pd.concat([resent, new], ignore_index=True)
    upload(at, rows)
    assert not at.exception and not at.error, [e.value for e in at.error]
    [report] = [s.value for s in at.success]
    assert "4 row(s) → 4 step(s), 2 entered as missing (gap or NaN), 1 re-sent row(s) ignored" in report

    reference = LRUForecaster.load(env["checkpoint"])  # the same rows in one update(): the same forecast
    expected = reference.update(rows)
    expected = expected[expected["unique_id"] == "s1"]
    [forecast] = traces(at, 0, "forecast")
    np.testing.assert_allclose(forecast["y"], expected["forecast"], rtol=1e-4, atol=1e-4)
    assert pd.Timestamp(forecast["x"][0]) == new["ds"].iloc[-1] + pd.Timedelta(hours=1)
    assert "2 of the forecast's last 24 inputs missing" in " ".join(c.value for c in at.caption)
    drawn = traces(at, 0, "history")[0]
    drawn = pd.Series(drawn["y"], index=pd.to_datetime(drawn["x"]), dtype=float)
    assert drawn.loc[new["ds"]].isna().tolist() == [False, True, False]  # the NaN reading
    assert np.isnan(drawn.loc[held_out(env, "s1")["ds"].iloc[1]])  # the skipped hour: drawn as streamed, missing


def test_an_uploaded_series_the_forecaster_never_saw_joins_and_is_drawn(env):
    # a store that opened after the fit: its rows were refused as an unknown series
    at = open_app()
    s2 = env["frame"][env["frame"]["unique_id"] == "s2"]
    newcomer = s2.assign(unique_id="s9", y=s2["y"] + 5.0)
    newcomer.loc[newcomer.index[-HELD_OUT:], "y"] = np.nan  # its horizon's covariates, targets not yet known
    upload(at, newcomer, "new store.csv")
    assert not at.exception and not at.error, [e.value for e in at.error]
    [report] = [s.value for s in at.success]
    assert "joined without a refit: s9" in report
    assert "s9" in at.session_state["panel_live"].ids
    at.multiselect(key=f"panel_series:{env['csv']}").set_value(["s9"]).run()
    [forecast] = traces(at, 0, "forecast")
    last = newcomer.loc[newcomer["y"].notna(), "ds"].iloc[-1]
    assert pd.Timestamp(forecast["x"][0]) == last + pd.Timedelta(hours=1) and np.isfinite(forecast["y"]).all()


def test_a_bad_row_is_refused_with_the_forecasters_message_and_the_stream_is_unchanged(env):
    at = open_app()
    live = at.session_state["panel_live"]
    before = live.last_time("s0")
    conflicting = env["frame"][env["frame"]["unique_id"] == "s0"].iloc[[-HELD_OUT - 1]].assign(y=-1.0)
    good = held_out(env, "s0").iloc[:2]
    bad_uploads = {
        "conflicting re-sent row": (pd.concat([good, conflicting]), "already received with the value"),
        "a covariate missing": (good.drop(columns="p"), "lacks column(s) ['p']"),
        "text in a covariate": (good.astype({"x": object}).assign(x=["1.0", "oops"]), "not numbers"),
    }
    for what, (frame, message) in bad_uploads.items():
        upload(at, frame, f"{what}.csv")
        assert not at.exception, (what, at.exception)
        [error] = [e.value for e in at.error]
        assert error.startswith("Rows rejected, the stream is unchanged.") and message in error, (what, error)
        assert at.session_state["panel_live"].last_time("s0") == before, what


def test_future_covariates_come_from_the_known_rows_or_the_upload_else_the_page_says_which_are_missing(env):
    at = open_app()
    at.number_input(key="panel_burst_k").set_value(H).run()
    at.button(key="panel_burst").click().run()  # H rows: the known x still covers the next horizon
    assert not at.error and at.session_state["panel_live"].last_time("s0") == held_out(env, "s0")["ds"].iloc[H - 1]
    at.button(key="panel_step").click().run()  # one more: x is known for only H − 1 of the next H hours
    [error] = [e.value for e in at.error]
    assert "future covariates do not cover the horizon of series 's0'" in error and "['x'] missing" in error
    assert at.session_state["panel_live"].last_time("s0") == held_out(env, "s0")["ds"].iloc[H - 1]

    row = held_out(env, "s0").iloc[[H]]  # the same row, with x of the hour the horizon lacked (empty target)
    later = row.assign(ds=row["ds"] + pd.Timedelta(hours=H), y=np.nan, p=np.nan, x=0.5)
    upload(at, pd.concat([row, later]))
    assert not at.error, [e.value for e in at.error]
    live = at.session_state["panel_live"]
    assert live.last_time("s0") == row["ds"].iloc[0]
    assert live.covariates("s0", 3)["x"].iloc[-1] == 0.5  # the uploaded future covariate is drawn


def test_a_large_panel_picks_one_series_at_a_time_from_a_searchable_list(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n = 120  # over MULTISELECT_MAX: a multiselect of thousands of ids is unusable
    ts = pd.date_range("2021-01-01", periods=40, freq="h")
    df = pd.DataFrame({"unique_id": np.repeat([f"id{i:04d}" for i in range(n)], len(ts)), "ds": np.tile(ts, n),
                       "y": rng.standard_normal(n * len(ts))})  # fmt: skip
    csv, out = tmp_path / "large.csv", tmp_path / "runs" / "large" / f"L{LOOKBACK}-H{H}"
    df.to_csv(csv, index=False)
    out.mkdir(parents=True)
    fc = LRUForecaster(LOOKBACK, H, **SMALL, train=TrainConfig(epochs=1, max_steps_per_epoch=2, progress=False))
    fc.fit(df, id_col="unique_id").save(out / "forecaster.lruts")
    (out / "results.json").write_text(json.dumps({"config": {"dataset": str(csv)}}))
    monkeypatch.setenv("LRUTS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    at = open_app()
    picker = at.selectbox(key=f"panel_series:{csv}")
    assert len(picker.options) == n and not at.multiselect
    picker.select("id0097").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    history = traces(at, 0, "history")[0]
    np.testing.assert_allclose(history["y"][-1], df[df["unique_id"] == "id0097"]["y"].iloc[-1], rtol=1e-6)


def test_the_demo_forecaster_builds_from_the_shared_data_and_the_catalog_finds_it(tmp_path):
    from dashboard.catalog import local_models
    from dashboard.demo import build_demo, demo_files

    if demo_files() is None:
        pytest.fail("covariates/electricity_short.csv is in no data directory: set LRUTS_DATA_DIRS")
    path = build_demo(tmp_path, epochs=1, steps_per_epoch=2)
    [model] = local_models(tmp_path)
    assert model.path == str(path) and model.dataset.endswith("electricity_short.csv")
    fc = LRUForecaster.load(path)
    assert fc.panel.future_names == ["Exogenous1", "Exogenous2"] and fc.panel.calendar
    assert len(fc.predict()) == fc.horizon  # the held-out week's covariates are known: a forecast is ready


def test_known_rows_read_a_registered_dataset_and_a_wide_file_of_a_one_series_model(tmp_path, monkeypatch):
    """A run of pipelines.train names its data as the registry does (electricity_prices), and an MS run's data is
    a wide file without an id column: the panel view reads both."""
    from dashboard.panel import known_rows

    frame = driven_panel()
    one = frame[frame["unique_id"] == "s0"]
    fc = LRUForecaster(LOOKBACK, H, **SMALL, train=TrainConfig(epochs=1, patience=0, progress=False,
                                                              max_steps_per_epoch=2))  # fmt: skip
    fc.fit(one, id_col="unique_id", future_covariates=["x"], past_covariates=["p"])
    wide = tmp_path / "wide.csv"
    one.drop(columns="unique_id").to_csv(wide, index=False)
    rows = known_rows(fc, str(wide))
    assert (rows["unique_id"] == "s0").all() and len(rows) == len(one)
    np.testing.assert_allclose(rows["y"], one["y"])

    data = tmp_path / "data"
    (data / "covariates").mkdir(parents=True)
    prices = pd.DataFrame({"unique_id": "s0", "ds": one["ds"], "y": one["y"], "x": one["x"], "p": one["p"]})
    prices.to_csv(data / "covariates" / "electricity_short.csv", index=False)
    monkeypatch.setenv("LRUTS_DATA_DIRS", str(data))
    assert len(known_rows(fc, "electricity_prices")) == len(one)

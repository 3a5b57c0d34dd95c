"""The Streamlit dashboard through streamlit.testing.v1.AppTest: pick a dataset, a model (registry by
alias or version, or local checkpoint) and series; see forecast, metrics and backtest; stream
observations (incremental forecast == recompute from the full history); two sessions streaming at once;
pasted and uploaded rows, and bad uploads refused with a clear error."""

from __future__ import annotations

import socket
import tempfile

import mlflow
import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import APP, HORIZON, START, plotly_traces, recomputed_forecast, trained_workspace
from streamlit.testing.v1 import AppTest

from lruts.data import data_home
from lruts.errors import DataError

TIMEOUT = 120  # seconds per script run: the first one loads torch, mlflow and the model on a busy 2-core VM


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return trained_workspace(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture
def env(ws, monkeypatch):
    for k, v in ws.env.items():
        monkeypatch.setenv(k, v)
    yield ws
    mlflow.set_tracking_uri(None)


def open_app(model: str = "local") -> AppTest:
    """A fresh browser session on the app, with the local checkpoint (or the registered model) chosen."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    dataset = at.selectbox(key="dataset").value
    label = next(o for o in at.selectbox(key=f"model:{dataset}").options if o.startswith(model))
    at.selectbox(key=f"model:{dataset}").select(label).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def chart_forecast(at: AppTest) -> pd.Series:
    """The forecast drawn in the chart (last panel's forecast trace), indexed by time."""
    [trace] = plotly_traces(at.get("plotly_chart")[0].proto.spec, "forecast")[-1:]
    return pd.Series(trace["y"], index=pd.to_datetime(trace["x"]))


def live(at: AppTest):
    return at.session_state["live"]


def assert_forecasts_close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The forecasts of a stream and of a recompute from its history: their quantile columns differ once the
    stream's interval tracker has moved (a recompute restarts it, lruts/forecasting/blend.py)."""
    points = [c for c in a.columns if "_q" not in c]
    pd.testing.assert_frame_equal(
        a[points].reset_index(drop=True), b[points].reset_index(drop=True), rtol=1e-4, atol=1e-4
    )


# ---------------------------------------------------------------------------------------------- browsing


def test_local_checkpoint_shows_forecast_interval_metrics_and_backtest(env):
    ws = env
    at = open_app("local")
    assert at.selectbox(key="dataset").value == str(ws.csv)
    assert at.multiselect(key=f"series:{ws.csv}").value == ["s2"]  # default: the last series
    expected = recomputed_forecast(ws, START)  # the model over the history before the held-out rows
    drawn = chart_forecast(at)
    assert len(drawn) == HORIZON
    np.testing.assert_allclose(drawn.to_numpy(), expected["s2"].to_numpy(), rtol=1e-4, atol=1e-4)
    spec = at.get("plotly_chart")[0].proto.spec
    upper, lower = plotly_traces(spec, "interval")  # the band between the 0.9 and the 0.1 quantile
    np.testing.assert_allclose(upper["y"], expected["s2_q0.9"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lower["y"], expected["s2_q0.1"], rtol=1e-4, atol=1e-4)
    [history] = plotly_traces(spec, "history")
    assert pd.Timestamp(history["x"][-1]) == ws.frame["date"].iloc[START - 1]
    assert history["y"][-1] == pytest.approx(ws.frame["s2"].iloc[START - 1], rel=1e-6)
    [actual] = plotly_traces(spec, "actual")  # the held-out observations inside the horizon
    np.testing.assert_allclose(actual["y"], ws.frame["s2"].iloc[START : START + HORIZON], rtol=1e-6)

    # pick two series: two panels, each with its forecast
    at.multiselect(key=f"series:{ws.csv}").set_value(["s0", "s2"]).run()
    assert len(plotly_traces(at.get("plotly_chart")[0].proto.spec, "forecast")) == 2

    metrics = at.dataframe[1].value  # [0]: the forecast table
    assert list(metrics["model"])[:2] == ["LRU forecaster", "repeat_last"]
    assert metrics["mse"].iloc[0] == pytest.approx(ws.results["test"]["mse"])
    backtest = at.dataframe[-1].value
    assert len(backtest) == len(ws.results["backtest"])
    first_origin = pd.Timestamp(ws.frame["date"].iloc[START - 1])  # origin 0: the last row before the test part
    assert pd.Timestamp(backtest["origin time"].iloc[0]) == first_origin
    assert len(at.get("plotly_chart")) == 2  # forecast + backtest


def test_registered_model_by_alias_and_by_version_forecasts_like_the_checkpoint(env, tmp_path, monkeypatch):
    ws = env
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the app downloads registered models
    at = open_app("registry")
    name = ws.registered
    assert at.radio(key=f"by:{name}").value == "alias" and at.selectbox(key=f"alias:{name}").value == "champion"
    expected = recomputed_forecast(ws, START)["s2"].to_numpy()
    np.testing.assert_allclose(chart_forecast(at).to_numpy(), expected, rtol=1e-4, atol=1e-4)
    at.radio(key=f"by:{name}").set_value("version").run()
    assert at.selectbox(key=f"version:{name}").value == "1" and not at.exception
    np.testing.assert_allclose(chart_forecast(at).to_numpy(), expected, rtol=1e-4, atol=1e-4)
    assert at.dataframe[1].value["mse"].iloc[0] == pytest.approx(ws.results["test"]["mse"])
    assert list(tmp_path.iterdir()) == []  # the download was removed once its weights were in memory


def test_without_a_tracking_server_it_falls_back_to_local_checkpoints_and_says_so(env, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    [warning] = [w.value for w in at.warning]
    assert "local checkpoints only" in warning and "unreachable" in warning
    assert all(o.startswith("local") for o in at.selectbox(key=f"model:{env.csv}").options)
    assert len(chart_forecast(at)) == HORIZON


# ---------------------------------------------------------------------------------------------- live mode


def test_streamed_forecast_equals_the_forecast_recomputed_from_the_full_history(env):
    ws = env
    at = open_app("local")
    before = chart_forecast(at)
    for _ in range(3):
        at.button(key="step").click().run()
    at.number_input(key="burst_k").set_value(10).run()
    at.button(key="burst").click().run()  # 13 observations: crosses patch boundaries (segment 8)
    assert not at.exception and live(at).n_arrived == 13
    after = chart_forecast(at)
    assert after.index[0] == pd.Timestamp(ws.frame["date"].iloc[START + 13])  # the horizon moved on 13 steps
    assert after.iloc[-1] != before.iloc[-1]
    assert_forecasts_close(live(at).forecast(), recomputed_forecast(ws, START + 13))
    np.testing.assert_allclose(after.to_numpy(), recomputed_forecast(ws, START + 13)["s2"], rtol=1e-4, atol=1e-4)

    # latency next to the full recompute, which the dashboard also checks against the incremental forecast
    labels = {m.label: m.value for m in at.metric}
    assert labels["Median over 13 observation(s)"].endswith(" ms")
    at.button(key="recompute").click().run()
    assert f"Full recompute over {START + 13:,} steps" in {m.label for m in at.metric}
    assert live(at).recomputed.steps == START + 13 and live(at).recomputed.max_abs_diff < 1e-3
    live_scores = at.dataframe[2].value  # forecasts issued this session scored against arrivals
    assert live_scores["pairs"].iloc[0] > 13 and np.isfinite(live_scores["MAE"]).all()

    at.button(key="reset").click().run()
    assert live(at).n_arrived == 0
    assert_forecasts_close(live(at).forecast(), recomputed_forecast(ws, START))


def test_two_sessions_stream_independently_over_weights_loaded_once(env):
    ws = env
    a, b = open_app("local"), open_app("local")
    assert live(a).fc.net is live(b).fc.net  # st.cache_resource: one copy of the weights
    assert live(a) is not live(b)
    a.number_input(key="burst_k").set_value(5).run()
    a.button(key="burst").click().run()
    b.button(key="step").click().run()
    a.button(key="step").click().run()
    assert (live(a).n_arrived, live(b).n_arrived) == (6, 1)
    assert_forecasts_close(live(a).forecast(), recomputed_forecast(ws, START + 6))
    assert_forecasts_close(live(b).forecast(), recomputed_forecast(ws, START + 1))
    c = open_app("local")  # a newcomer starts from the held-out start, whatever the others did
    assert live(c).n_arrived == 0
    assert_forecasts_close(live(c).forecast(), recomputed_forecast(ws, START))


def test_pasted_and_uploaded_rows_continue_the_stream(env):
    ws = env
    at = open_app("local")
    rows = ws.frame.iloc[START : START + 2]
    at.text_area(key="paste").input(rows.to_csv(index=False)).run()
    at.button(key="add_paste").click().run()
    assert not at.error and live(at).n_arrived == 2
    upload = ws.frame.iloc[START + 2 : START + 5][["date", "s2", "s1", "s0"]]  # any column order, `;`-separated
    at.file_uploader(key="upload").set_value(("more.csv", upload.to_csv(index=False, sep=";").encode(), "text/csv"))
    at.run()
    at.button(key="add_upload").click().run()
    assert not at.error, [e.value for e in at.error]
    assert live(at).n_arrived == 5
    assert_forecasts_close(live(at).forecast(), recomputed_forecast(ws, START + 5))
    at.button(key="step").click().run()  # replay carries on after the user's rows
    assert_forecasts_close(live(at).forecast(), recomputed_forecast(ws, START + 6))
    assert not list((data_home() / "uploads").glob("more*"))  # read, then removed


def _next(ws, k: int = 2) -> pd.DataFrame:
    return ws.frame.iloc[START : START + k].copy()


BAD_UPLOADS = {
    "missing column": (lambda ws: _next(ws).drop(columns="s1").to_csv(index=False), "no numeric column(s) ['s1']"),
    "text in a value": (
        lambda ws: _next(ws).astype({"s0": object}).assign(s0=["1.0", "oops"]).to_csv(index=False),
        "not a number",
    ),
    "before the last observation": (lambda ws: ws.frame.iloc[START - 3 : START - 1].to_csv(index=False), "not after"),
    "unreadable time": (lambda ws: _next(ws).assign(date=["soon", "later"]).to_csv(index=False), "timestamps"),
    "binary": (lambda ws: b"\x00\x01\x02\xff\xfe" * 100, "binary.csv is not a UTF-8"),
    "too big": (lambda ws: b"date,s0,s1,s2\n" + b"2020-01-01 00:00:00,1,2,3\n" * 300_000, "the limit is 5 MB"),
}


def test_bad_uploads_are_refused_with_a_clear_error_and_leave_the_stream_unchanged(env):
    ws = env
    at = open_app("local")
    for what, (make, message) in BAD_UPLOADS.items():
        data = make(ws)
        data = data.encode() if isinstance(data, str) else data
        at.file_uploader(key="upload").set_value((f"{what}.csv", data, "text/csv"))
        at.run()
        at.button(key="add_upload").click().run()
        assert not at.exception, (what, at.exception)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "Rows rejected, the stream is unchanged" in errors[0], (what, errors)
        assert message in errors[0], (what, errors[0])
        assert live(at).n_arrived == 0, what
    assert_forecasts_close(live(at).forecast(), recomputed_forecast(ws, START))
    leftovers = [p for p in (data_home() / "uploads").glob("*") if p.suffix in (".csv", ".tmp")]
    assert not leftovers


# ---------------------------------------------------------------------------------------------- uploads module


def test_uploads_land_only_in_the_data_folder_under_a_sanitised_name():
    from dashboard.uploads import save_upload

    for name in ("../../../etc/evil.csv", "..\\..\\evil.csv", "/abs/evil.csv", ".hidden", "x" * 300 + ".exe"):
        path = save_upload(b"date,a\n2020-01-01,1\n", name)
        try:
            assert path.parent == data_home() / "uploads"
            assert not path.name.startswith(".") and path.suffix == ".csv" and len(path.name) < 130
        finally:
            path.unlink()


def test_uploads_over_the_size_limit_are_refused_before_anything_is_written():
    from dashboard.uploads import MAX_UPLOAD_MB, save_upload

    before = set((data_home() / "uploads").glob("*")) if (data_home() / "uploads").exists() else set()
    with pytest.raises(DataError, match=f"the limit is {MAX_UPLOAD_MB} MB"):
        save_upload(b"0" * ((MAX_UPLOAD_MB << 20) + 1), "big.csv")
    after = set((data_home() / "uploads").glob("*")) if (data_home() / "uploads").exists() else set()
    assert after == before


def test_a_positioned_forecaster_keeps_only_its_state_not_the_history(env):
    """Every session holds a positioned forecaster: its stream state must be O(1) in the history's length
    (a view of the last scan step would pin the whole (batch, length, N) scan output of every layer)."""
    from lruts import LRUForecaster

    fc = LRUForecaster.load(env.checkpoint)
    fc.set_history(env.frame.iloc[:START])
    stream = fc._stream.net if hasattr(fc._stream, "net") else fc._stream  # a blend's: the network's inside
    states = [s for alignment in stream.lru for s in alignment] + [stream.values, fc._stream.values]
    assert states and all(s.untyped_storage().nbytes() == s.numel() * s.element_size() for s in states)


def _hours(first: int, n: int = 2) -> np.ndarray:
    return np.datetime64("2020-01-01T00", "ns") + np.arange(first, first + n) * np.timedelta64(1, "h")


def test_live_score_counts_every_forecast_step_against_the_observation_that_arrived():
    from dashboard.live import LiveScore

    score = LiveScore(horizon=2, n_series=1)
    # forecasts: (H=2, C=1, point + 0.1 and 0.9 quantiles), issued for the two hours after the last arrival
    score.issue(_hours(1), np.array([[[1.0, 0.0, 2.0]], [[2.0, 1.0, 3.0]]]))  # made before the first arrival
    score.observe(_hours(1)[0], np.array([1.5]))  # scores the first forecast's step 1: error -0.5, inside [0, 2]
    score.issue(_hours(2), np.array([[[3.0, 2.0, 4.0]], [[4.0, 3.0, 5.0]]]))
    score.observe(_hours(2)[0], np.array([5.0]))  # first forecast's step 2 (2 vs 5), second's step 1 (3 vs 5)
    score.issue(_hours(3), np.array([[[9.0, 9.0, 9.0]], [[9.0, 9.0, 9.0]]]))
    table = score.table(["s"], [0.1, 0.9])
    assert table["pairs"].iloc[0] == 3
    assert table["MAE"].iloc[0] == pytest.approx((0.5 + 3 + 2) / 3)
    assert table["MSE"].iloc[0] == pytest.approx((0.25 + 9 + 4) / 3)
    assert table["coverage 0.1–0.9"].iloc[0] == pytest.approx(1 / 3)


def test_live_score_leaves_nan_arrivals_out_and_matches_steps_by_time_across_a_gap():
    from dashboard.live import LiveScore

    score = LiveScore(horizon=3, n_series=2)
    forecast = np.array([[[1.0, 10.0]], [[2.0, 20.0]], [[3.0, 30.0]]]).transpose(0, 2, 1)  # (H=3, C=2, 1)
    score.issue(_hours(1, 3), forecast)
    score.observe(_hours(1)[0], np.array([np.nan, 11.0]))  # series 0 missing: not an error of 1, not a crash
    # hour 2 skipped (a gap): the forecast's step 3 is scored against hour 3, not against the second arrival
    score.observe(_hours(3)[0], np.array([4.0, np.nan]))
    table = score.table(["a", "b"], [])
    assert table["pairs"].tolist() == [1, 1]
    assert table["MAE"].tolist() == pytest.approx([1.0, 1.0])  # |3 − 4| and |10 − 11|
    empty = LiveScore(horizon=1, n_series=1)
    empty.issue(_hours(1, 1), np.ones((1, 1, 1)))
    empty.observe(_hours(1)[0], np.array([np.nan]))
    assert empty.table(["a"], []).isna()["MAE"].all()  # nothing scored: no MAE, rather than 0


def test_streaming_a_gap_and_a_nan_reading_keeps_the_live_score_finite(env):
    from dashboard.live import LiveStream
    from lruts import LRUForecaster
    from lruts.data import load_series

    ws = env
    fc = LRUForecaster.load(ws.checkpoint, device="cpu")
    fc.set_history(ws.frame.iloc[:START])
    live = LiveStream(fc, load_series(str(ws.csv)), START)
    rows = ws.frame.iloc[START : START + 4].drop(index=START + 1).copy()  # hour START + 1 skipped
    rows.loc[START + 2, "s0"] = np.nan
    live.push(rows)
    table = live.score.table(fc.columns, fc.quantiles)
    # arrivals at START, START + 2, START + 3 meet 1, 2 and 3 earlier forecasts (the one made after the skipped
    # hour was never issued); s0's NaN at START + 2 is left out of its 2 pairs
    assert table["pairs"].tolist() == [4, 6, 6]
    assert np.isfinite(table["MAE"]).all()


def test_a_zone_aware_forecasters_forecast_is_drawn_in_the_historys_times():
    # a forecaster fitted on a zone-aware frame dates its forecasts in the zone; the dashboard draws them beside
    # the stored history, so it draws them in the stored times (mixed naive and zone-aware times misplace a trace)
    from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

    from dashboard.live import drawn
    from lruts import LRUForecaster

    frame = synthetic_frame(400, n_series=1)
    zoned = frame.assign(date=frame["date"].dt.tz_localize("UTC").dt.tz_convert("America/New_York"))
    fc = LRUForecaster(48, 6, train=tiny_train(epochs=1), **TINY_MODEL).fit(zoned)
    assert str(fc.predict()["date"].dt.tz) == "America/New_York"
    shown = drawn(fc.predict(), fc)["date"]
    expected = pd.date_range(frame["date"].iloc[-1] + pd.Timedelta(hours=1), periods=6, freq="h")
    assert (pd.DatetimeIndex(shown) == expected).all()

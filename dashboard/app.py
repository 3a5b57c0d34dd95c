"""lruts dashboard: browse forecasts and advance them live with the LRU's recurrent mode.

    streamlit run dashboard/app.py          # from the repository root (reads .streamlit/config.toml)

Models come from the MLflow registry (by alias or version) or from local checkpoints written by
`python -m pipelines.train` (runs/, or $LRUTS_RUNS_DIR). A forecaster fitted on a long table (a panel of
series with covariates) opens in the panel view: pick series, see their covariates beside the forecast,
stream rows with covariates (dashboard/panel.py); `python -m dashboard.demo` (or the sidebar's button)
builds one from the shared electricity data. Weights are loaded once per server process
and shared (st.cache_resource); each browser session streams on its own copy of the state
(st.session_state), so sessions never disturb each other. This file only lays out the page: finding
models, streaming and checking uploads are dashboard/catalog.py, live.py and uploads.py, over lruts.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.catalog import (
    RUNS_ENV,
    default_runs_dir,
    load_registered,
    local_models,
    read_results,
    registered_models,
    registry_problem,
)
from dashboard.charts import backtest_figure, forecast_figure, panel_figure
from dashboard.demo import build_demo, demo_dir, demo_files
from dashboard.live import LiveStream, Recompute, rows_frame
from dashboard.panel import PanelStream, columns_of, known_rows, read_rows
from dashboard.uploads import MAX_UPLOAD_MB, SUFFIXES, new_rows
from lruts import LRUForecaster
from lruts.data import load_series, split_borders
from lruts.errors import DataError, LrutsError
from lruts.tracking import TrackingError, load_tracking_config

# This program reads the registry through mlflow, which contacts a telemetry host from its import on unless
# told not to (../shared/spec/environment.md); the library opts out only when it starts a tracked run.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# ---------------------------------------------------------------------------------------------- shared, cached


@st.cache_data(ttl=30, show_spinner=False)
def registry_listing(uri: str, prefix: str) -> tuple[list, str | None]:
    """(registered forecasters, None), or ([], why the registry cannot be used). Arguments: the cache key."""
    cfg = load_tracking_config()
    problem = registry_problem(cfg)
    if problem:
        return [], problem
    try:
        return registered_models(cfg), None
    except TrackingError as e:
        return [], str(e)


@st.cache_resource(show_spinner="Loading the model weights…", max_entries=16)
def load_local(path: str, mtime: float) -> tuple[LRUForecaster, dict | None]:
    """A local checkpoint's weights (and results.json), loaded once per file version, shared by all sessions."""
    return LRUForecaster.load(path, device="cpu"), read_results(Path(path).parent / "results.json")


@st.cache_resource(show_spinner="Downloading the registered model…", max_entries=16)
def registered_weights(uri: str, name: str, version: str) -> tuple[LRUForecaster, dict | None]:
    """One registered model version's weights (a version never changes), shared by all sessions."""
    return load_registered(load_tracking_config(), name, version)


@st.cache_resource(show_spinner="Reading the dataset…", max_entries=8)
def load_dataset(dataset: str, stamp: float):
    """A dataset by name or path, validated by the ingestion. stamp: the file's mtime (a new key when it changes)."""
    return load_series(dataset)


@st.cache_resource(show_spinner="Running the model over the history…", max_entries=16)
def positioned(
    _fc: LRUForecaster, _series, model_key: tuple, dataset: str, stamp: float, start: int
) -> tuple[LRUForecaster, Recompute]:
    """The forecaster after the dataset's rows [0, start), and how long that full pass took. The
    model and data arguments are the cache key (stamp: the dataset file's mtime)."""
    fc = LRUForecaster.load_from(_fc)
    history = rows_frame(_series, 0, start, fc.time_col)
    fc.set_history(history.tail(2 * fc.lookback))  # one-time costs (kernel loading, allocator) stay out of the timing
    t0, c0 = time.perf_counter(), time.process_time()
    fc.set_history(history)
    recompute = Recompute(start, 1e3 * (time.perf_counter() - t0), None, 1e3 * (time.process_time() - c0))
    if start < len(_series):  # the first update() pays one-time costs (weight cache, kernels): not a session's
        LRUForecaster.load_from(fc).advance(_series.timestamps[start : start + 1], _series.values[start : start + 1])
    return fc, recompute


@st.cache_resource(show_spinner="Reading the panel…", max_entries=8)
def load_known(_fc: LRUForecaster, model_key: tuple, dataset: str, future: str | None, stamp: float) -> pd.DataFrame:
    """The rows known for a long-fitted model (dataset + future file). The other arguments: the cache key."""
    return known_rows(_fc, dataset, future)


# ---------------------------------------------------------------------------------------------- choosing


def demo_button(runs: Path) -> None:
    """Offer to build the demo panel forecaster when its data is there and it is not built yet."""
    if demo_files() is None or (demo_dir(runs) / "forecaster.lruts").is_file():
        return
    st.sidebar.caption("A forecaster of hourly electricity prices with two day-ahead covariates, trained here "
                       "in about a minute (`python -m dashboard.demo`).")  # fmt: skip
    if st.sidebar.button("Build the demo panel forecaster", key="build_demo"):
        with st.spinner("Training the demo forecaster on electricity_short…"):
            build_demo(runs)
        st.rerun()


def choose_model() -> tuple[tuple, str, LRUForecaster, dict | None]:
    """Sidebar: dataset, then model (registry by alias/version, or local checkpoint). Returns
    (model key, dataset, shared forecaster, results.json)."""
    sb = st.sidebar
    cfg = load_tracking_config()
    registry, problem = registry_listing(cfg.resolved_uri(), cfg.registered_model)
    if problem:
        sb.warning(f"MLflow registry not available, showing local checkpoints only: {problem}")
    runs = default_runs_dir()
    demo_button(runs)
    local = local_models(runs)
    datasets = sorted({m.dataset for m in registry} | {m.dataset for m in local})
    if not datasets:
        st.info(
            "No trained forecaster found (MLflow registry or "
            f"{runs}). Train one, e.g. `python -m pipelines.train --dataset ETTh1 --lookback 96 --horizons 24`, "
            "or build the demo panel forecaster (sidebar)."
        )
        st.stop()
    dataset = sb.selectbox("Dataset", datasets, key="dataset")
    sb.caption(f"Local checkpoints: {runs} (set {RUNS_ENV} to change)")
    models = {f"registry · {m.name}": m for m in registry if m.dataset == dataset}
    models |= {f"local · {m.label}": m for m in local if m.dataset == dataset}
    label = sb.selectbox("Model", list(models), key=f"model:{dataset}")
    model = models[label]
    if label.startswith("registry"):
        by = sb.radio("Select by", ["alias", "version"] if model.aliases else ["version"], horizontal=True,
                      key=f"by:{model.name}")  # fmt: skip
        if by == "alias":
            alias = sb.selectbox("Alias", sorted(model.aliases), key=f"alias:{model.name}")
            version = model.aliases[alias]
            sb.caption(f"@{alias} → version {version}")
        else:
            version = sb.selectbox("Version", model.versions, key=f"version:{model.name}")
        fc, results = registered_weights(cfg.resolved_uri(), model.name, version)
        return ("registry", model.name, version), dataset, fc, results
    mtime = Path(model.path).stat().st_mtime
    fc, results = load_local(model.path, mtime)
    return ("local", model.path, mtime), dataset, fc, results


def live_stream(model_key: tuple, dataset: str, fc: LRUForecaster) -> LiveStream:
    """This session's stream (st.session_state), started over the shared positioned forecaster."""
    path = Path(dataset)
    stamp = path.stat().st_mtime if path.is_file() else 0.0
    series = load_dataset(dataset, stamp)
    if list(series.columns) != list(fc.columns):
        raise DataError(f"the model forecasts columns {fc.columns}, dataset '{dataset}' has {series.columns}")
    start = split_borders(len(series), fc.lookback, series.split)["test"][0] + fc.lookback
    key = (model_key, dataset, stamp, start)
    live = st.session_state.get("live")
    if live is None or st.session_state.get("live_key") != key:
        base, initial = positioned(fc, series, model_key, dataset, stamp, start)
        live = LiveStream(base, series, start, initial=initial)
        st.session_state["live"], st.session_state["live_key"] = live, key
    return live


# ---------------------------------------------------------------------------------------------- live mode


def live_controls(live: LiveStream) -> None:
    """Buttons and inputs that make observations arrive; each arrival goes through update()."""
    c1, c2, c3, c4, c5 = st.columns([1.2, 1, 1.2, 1.4, 1])
    step = c1.button("Next observation", key="step", type="primary", disabled=live.remaining() == 0)
    burst = c2.number_input("Burst size", 1, 1000, 12, key="burst_k", label_visibility="collapsed")
    play = c3.button("Replay burst", key="burst", disabled=live.remaining() == 0)
    timing = c4.button("Time a full recompute", key="recompute")
    reset = c5.button("Reset stream", key="reset")
    with st.expander("Add your own observations (CSV rows: a header line, then rows that continue the series)"):
        example = ",".join([live.fc.time_col, *live.fc.columns])
        text = st.text_area("Paste rows", key="paste", placeholder=example, height=110)
        add_text = st.button("Add pasted rows", key="add_paste")
        up = st.file_uploader(
            f"…or upload a CSV (≤ {MAX_UPLOAD_MB} MB)",
            type=[s.lstrip(".") for s in SUFFIXES],
            key="upload",
            max_upload_size=MAX_UPLOAD_MB,
        )
        add_file = st.button("Add uploaded rows", key="add_upload", disabled=up is None)
    if reset:
        st.session_state.pop("live")
        st.rerun()
    if step or play:
        n = live.replay(1 if step else int(burst))
        st.toast(f"streamed {n} observation(s)")
    if add_text or (add_file and up is not None):
        data, name = (text.encode(), "pasted rows") if add_text else (up.getvalue(), up.name)
        try:
            rows = new_rows(data, name, time_col=live.fc.time_col, columns=live.fc.columns, freq=live.fc.freq,
                            last_time=live.fc.last_time, last_values=live.last_values())  # fmt: skip
            live.push(rows)
            st.success(f"added {len(rows)} observation(s) from {name}")
        except DataError as e:
            st.error(f"Rows rejected, the stream is unchanged. {e}")
    if timing:
        with st.spinner(f"Recomputing the forecast from all {live.start + live.n_arrived:,} observations…"):
            live.recompute()


def latency_panel(live: LiveStream) -> None:
    c1, c2, c3, c4 = st.columns(4)
    ms = live.update_ms
    c1.metric("Update + forecast, last observation", f"{ms[-1]:.2f} ms" if ms else "–", help="recurrent mode, O(1)")
    median = statistics.median(ms) if ms else None
    c2.metric(f"Median over {len(ms)} observation(s)", f"{median:.2f} ms" if median else "–")
    rc = live.recomputed
    c3.metric(f"Full recompute over {rc.steps:,} steps" if rc else "Full recompute", f"{rc.ms:.1f} ms" if rc else "–",
              help="set_history: the network re-run over the whole history in parallel mode")  # fmt: skip
    c4.metric("Speed-up of the update", f"{rc.ms / median:,.0f}×" if rc and median else "–")
    if rc and rc.max_abs_diff is not None:
        st.caption(
            f"Recomputed from all {rc.steps:,} observations: the forecast differs from the incremental one by at "
            f"most {rc.max_abs_diff:.2e} (float32 rounding)."
        )


def forecast_tab(live: LiveStream, series: list[str], shown: int) -> None:
    live_controls(live)
    latency_panel(live)
    fc = live.fc
    st.caption(
        f"Last observation {pd.Timestamp(fc.last_time)} · {live.start:,} history rows · {live.n_arrived} streamed · "
        f"{live.remaining():,} held-out observations left to replay"
    )
    if not series:
        st.info("Pick at least one series in the sidebar.")
        return
    fig = forecast_figure(live.recent(shown), live.forecast(), live.actuals(), series, time_col=fc.time_col,
                          quantiles=fc.quantiles)  # fmt: skip
    st.plotly_chart(fig, key="forecast_chart", config={"displaylogo": False})
    with st.expander("Forecast table"):
        cols = [fc.time_col] + [c for s in series for c in [s, *(f"{s}_q{q:g}" for q in fc.quantiles)]]
        st.dataframe(live.forecast()[cols], hide_index=True)


# ---------------------------------------------------------------------------------------------- metrics, backtest


def metrics_tab(live: LiveStream, results: dict | None, series: list[str]) -> None:
    st.subheader("Test split (every window of the protocol)")
    if results and results.get("test"):
        rows = [{"model": "LRU forecaster", **results["test"]}]
        rows += [{"model": name, **m} for name, m in results.get("baselines", {}).items()]
        table = pd.DataFrame(rows)
        keep = ["model", "mse", "mae", "mase", "smape"] + [c for c in table.columns if c.startswith("coverage")]
        st.dataframe(table[[c for c in [*keep, "windows"] if c in table.columns]], hide_index=True)
        st.caption("MSE and MAE on scaled values (the benchmark protocol); MASE and sMAPE (%) on the original scale.")
    else:
        st.info("This model has no results.json (metrics are written by `python -m pipelines.train`).")
    st.subheader("Live, this session")
    if live.score.pairs.any():
        table = live.score.table(live.fc.columns, live.fc.quantiles)
        st.dataframe(table[table["series"].isin(series)] if series else table, hide_index=True)
        st.caption("Every forecast step issued in this session against the observation that arrived; original scale.")
    else:
        st.info("Stream some observations to score the forecasts against them.")


def backtest_tab(live: LiveStream, results: dict | None) -> None:
    rows = (results or {}).get("backtest") or []
    if not rows:
        st.info("This model has no rolling-origin backtest (written by `python -m pipelines.train`).")
        return
    ts = live.series.timestamps
    table = pd.DataFrame(rows)
    table = table[live.start + table["origin"] - 1 < len(ts)]
    table.insert(1, "origin time", ts[live.start + table["origin"].to_numpy() - 1])
    st.plotly_chart(backtest_figure(table), key="backtest_chart", config={"displaylogo": False})
    st.caption(
        "Rolling origin over the test split: each origin is the last observation a forecast of "
        f"{live.fc.horizon} steps starts from; errors on scaled values."
    )
    st.dataframe(table, hide_index=True)


# ---------------------------------------------------------------------------------------------- panel view

MULTISELECT_MAX = 50  # more series than this: one at a time, from a searchable list


def panel_stream(model_key: tuple, dataset: str, fc: LRUForecaster, results: dict | None) -> PanelStream:
    """This session's stream over a long-fitted forecaster (st.session_state)."""
    future = (results or {}).get("config", {}).get("future")
    stamp = max((Path(f).stat().st_mtime for f in (dataset, future) if f and Path(f).is_file()), default=0.0)
    key = (model_key, dataset, future, stamp)
    live = st.session_state.get("panel_live")
    if live is None or st.session_state.get("panel_live_key") != key:
        live = PanelStream(fc, load_known(fc, model_key, dataset, future, stamp))
        st.session_state["panel_live"], st.session_state["panel_live_key"] = live, key
    return live


def pick_series(live: PanelStream, dataset: str) -> list[str]:
    ids = live.ids
    if len(ids) <= MULTISELECT_MAX:
        return st.sidebar.multiselect("Series", ids, default=ids[:1], key=f"panel_series:{dataset}")
    sid = st.sidebar.selectbox(f"Series (type to search {len(ids):,})", ids, key=f"panel_series:{dataset}")
    return [sid] if sid is not None else []


def panel_controls(live: PanelStream, chosen: list[str]) -> None:
    """Replay the chosen series' held-out rows, or upload rows; each row goes through update()."""
    left = sum(len(live.held_out(sid)) for sid in chosen)
    c1, c2, c3, c4 = st.columns([1.2, 1, 1.2, 1])
    step = c1.button("Next row", key="panel_step", type="primary", disabled=left == 0)
    burst = c2.number_input("Rows per series", 1, 1000, 24, key="panel_burst_k", label_visibility="collapsed")
    play = c3.button(f"Replay {burst} rows per series", key="panel_burst", disabled=left == 0)
    reset = c4.button("Reset stream", key="panel_reset")
    with st.expander(f"Upload rows ({', '.join(columns_of(live.fc))}): CSV or Parquet"):
        st.caption("Rows of any series, in time order per series; an empty target is a missing reading. The rows "
                   "after a series' last target give the future covariates of the next forecast.")  # fmt: skip
        up = st.file_uploader(f"Long rows (≤ {MAX_UPLOAD_MB} MB)", type=[x.lstrip(".") for x in SUFFIXES],
                              key="panel_upload", max_upload_size=MAX_UPLOAD_MB)  # fmt: skip
        add = st.button("Stream the uploaded rows", key="panel_add", disabled=up is None)
    if reset:
        st.session_state.pop("panel_live")
        st.rerun()
    try:
        if step or play:
            report = live.replay(chosen, 1 if step else int(burst))
            st.success(f"Replayed: {report.summary()}")
        if add and up is not None:
            report = live.push(read_rows(up.getvalue(), up.name, live.fc))
            st.success(f"{up.name}: {report.summary()}")
    except DataError as e:
        st.error(f"Rows rejected, the stream is unchanged. {e}")


def panel_tab(live: PanelStream, chosen: list[str], shown: int) -> None:
    panel_controls(live, chosen)
    fc = live.fc
    if live.forecast_problem:
        st.warning(
            f"No forecast yet: {live.forecast_problem}. Upload rows that carry them (after the series' last "
            "reading, with an empty target)."
        )
    if not chosen:
        st.info("Pick at least one series in the sidebar.")
        return
    for sid in chosen:
        forecast = live.forecast(sid)
        missing = int(forecast["missing_inputs"].iloc[0]) if "missing_inputs" in forecast and len(forecast) else 0
        st.caption(
            f"**{sid}** · last observation {pd.Timestamp(live.last_time(sid))} · {len(live.held_out(sid)):,} "
            f"held-out row(s) left to replay · {missing} of the forecast's last {fc.lookback} inputs missing"
        )
        fig = panel_figure(live.history(sid, shown), forecast, live.actuals(sid), live.covariates(sid, shown),
                           title=sid, time_col=fc.panel.time_col, target_col=fc.panel.target_col,
                           quantiles=fc.quantiles)  # fmt: skip
        st.plotly_chart(fig, key=f"panel_chart:{sid}", config={"displaylogo": False})
        with st.expander(f"{sid}: forecast table"):
            st.dataframe(forecast, hide_index=True)
    if live.reports:
        with st.expander(f"Stream log ({len(live.reports)} push(es))"):
            st.dataframe(pd.DataFrame([{"rows": r.rows, "steps": r.steps, "missing": r.missing,
                                        "re-sent ignored": r.resent, "outliers": len(r.outliers)}
                                       for r in live.reports]), hide_index=True)  # fmt: skip
    if fc.outliers:
        with st.expander(f"Outliers flagged ({len(fc.outliers)}), entered as missing"):
            st.dataframe(pd.DataFrame(fc.outliers), hide_index=True)


def panel_page(model_key: tuple, dataset: str, fc: LRUForecaster, results: dict | None) -> None:
    try:
        live = panel_stream(model_key, dataset, fc, results)
    except (LrutsError, OSError) as e:
        st.error(str(e))
        st.stop()
    chosen = pick_series(live, dataset)
    shown = st.sidebar.slider("History shown (steps)", fc.horizon, max(4000, 8 * fc.horizon),
                              max(4 * fc.horizon, fc.lookback), key="history_shown")  # fmt: skip
    p = fc.panel
    st.sidebar.caption(
        f"{len(p.ids):,} series · lookback {fc.lookback} · horizon {fc.horizon} · step {fc.freq} · "
        f"future covariates {p.future_names or '–'}{' + calendar' if p.calendar else ''} · "
        f"past covariates {p.past_names or '–'}"
    )
    panel_tab(live, chosen, shown)


# ---------------------------------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="lruts · forecasts", layout="wide")
    st.title("LRU forecasts")
    try:
        model_key, dataset, fc, results = choose_model()
        if fc.panel is not None:
            panel_page(model_key, dataset, fc, results)
            return
        live = live_stream(model_key, dataset, fc)
    except (LrutsError, OSError) as e:
        st.error(str(e))
        st.stop()
    series = st.sidebar.multiselect("Series", fc.columns, default=fc.columns[-1:], key=f"series:{dataset}")
    shown = st.sidebar.slider("History shown (steps)", fc.horizon, max(4000, 8 * fc.horizon),
                      max(4 * fc.horizon, fc.lookback), key="history_shown")  # fmt: skip
    st.sidebar.caption(
        f"lookback {fc.lookback} · horizon {fc.horizon} · step {fc.freq} · "
        + (f"quantiles {', '.join(f'{q:g}' for q in fc.quantiles)}" if fc.quantiles else "point forecast")
    )
    forecast, metrics, backtest = st.tabs(["Forecast & live", "Metrics", "Backtest"])
    with forecast:
        forecast_tab(live, series, shown)
    with metrics:
        metrics_tab(live, results, series)
    with backtest:
        backtest_tab(live, results)


main()

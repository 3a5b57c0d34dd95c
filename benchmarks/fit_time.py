"""Time to a good forecast: LRUForecaster at its defaults against neuralforecast's NHITS at its defaults on one
univariate series a user brings, forecasting at every day boundary of its last days.

    OMP_NUM_THREADS=1 /work/peers-venv/bin/python benchmarks/fit_time.py \
        [--path FILE --time-col date --column MT_001] [--lookback 336] [--horizon 48] [--origins 219] \
        [--every 24] [--models lruts nhits ets] [--seed 0] [--lr 5e-3]

Default series: the first client of electricity_6clients.csv (hourly kWh; found through LRUTS_DATA_DIRS),
which no default of lruts was chosen on. The last `origins` × `every` rows are held out; both models fit
on the rows before (each holding out its own validation rows from them the way it does by default:
lruts its last 10%, NHITS none, since its defaults have no early stopping), then forecast `horizon` steps at
every `every`-th row of the held-out part: lruts by `update()` with the new rows (no refit, O(1) per row),
NHITS by `predict(df=<the history up to the origin>)`. MAE and MSE on the original scale over every origin
and step, lruts's 80% interval (coverage and Winkler score: NHITS at its defaults gives none), and the wall
seconds of fit and of all forecasts. Every model is scored on the same held-out rows: where the series'
calendar has gaps (a stock's exchange holidays, which lruts's business-day steps count and the rows do not),
lruts's forecast is matched to the rows by date, and only the rows within its H steps are scored.

Its own optional install (the `peers` extra, see benchmarks/peers.py), never a runtime dependency of lruts
and not in the test suite. `--models ... ets` adds statsforecast's AutoETS (`pip install statsforecast`) at
lruts's season, fitted again at every origin on the history up to it (what an ETS user does).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from lruts.data import load_series
from lruts.data.timestamps import advance
from lruts.forecasting.baselines import season_length
from lruts.forecasting.metrics import winkler


def series_frame(args) -> tuple[pd.DataFrame, str]:
    """date, y: the chosen column of the file, as lruts reads it (validated, sorted)."""
    series = load_series(args.path, time_col=args.time_col)
    column = args.column or series.columns[0]
    values = series.values[:, series.columns.index(column)]
    return pd.DataFrame({"date": pd.to_datetime(series.timestamps), "y": values.astype(np.float64)}), series.freq


def origins(n: int, args) -> list[int]:
    """Row positions at which a forecast is made: every `every` rows of the held-out tail."""
    first = n - args.origins * args.every
    return [o for o in range(first, n - args.horizon + 1, args.every)]


def run_lruts(frame: pd.DataFrame, cut: list[int], args) -> tuple[np.ndarray, float, float]:
    """Forecasts (origins, H, 3) of the held-out rows at each origin (`on_rows`): the point and the 80%
    interval (the blend's intervals leave its point as is)."""
    from lruts import LRUForecaster
    from lruts.forecasting.fitting import forecaster_training

    train = forecaster_training()
    train.lr = args.lr or train.lr
    t0 = time.perf_counter()
    fc = LRUForecaster(args.lookback, args.horizon, quantiles=[0.1, 0.9], train=train)
    fc.fit(frame.iloc[: cut[0]], time_col="date")
    fit_s = time.perf_counter() - t0
    val = fc.blend_info["val_mse"]
    linear = min(v for k, v in val.items() if k.startswith("linear"))
    print(
        f"lruts (lr {train.lr:g}) on validation: blend MSE {fc.blend_info['val_mse_blend']:.4f}, network "
        f"{val['network']:.4f}, best linear map {linear:.4f}; best epoch {fc.fit_result.best_epoch} of "
        f"{fc.fit_result.epochs_run}; against the best simple forecast t = {fc.blend_info['t_against_simple']:.2f}, "
        "better in {} of {} blocks, the relative map in {} of {} later parts of the training rows".format(
            *fc.blend_info["blocks_better"], *fc.blend_info["history_parts_better"]
        )
    )
    t0 = time.perf_counter()
    preds, at = [], cut[0]
    for origin in cut:
        if origin > at:
            fc.update(frame.iloc[at:origin])
            at = origin
        steps = advance(fc.last_time, fc.freq, np.arange(1, args.horizon + 1))
        rows = frame["date"].to_numpy()[origin : origin + args.horizon]
        preds.append(on_rows(fc.forecast_array()[:, 0], steps, rows))
    return np.stack(preds), fit_s, time.perf_counter() - t0


def on_rows(forecast: np.ndarray, steps: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A forecast (H, ...) of the times `steps`, at the held-out rows' times `rows` (H,): NaN for a row past
    the last step (a calendar gap among the steps, a holiday, pushed it out). Equal to `forecast` on a
    series without gaps."""
    at = np.searchsorted(steps, rows)
    found = (at < len(steps)) & (steps[np.minimum(at, len(steps) - 1)] == rows)
    out = np.full_like(forecast, np.nan)
    out[found] = forecast[at[found]]
    return out


def pandas_freq(freq: str) -> str:
    return {"1h": "h", "30m": "30min", "15m": "15min", "10m": "10min", "1d": "D", "7d": "7D"}.get(freq, freq)


def run_ets(frame: pd.DataFrame, cut: list[int], args, freq: str) -> tuple[np.ndarray, float, float]:
    """AutoETS fitted at every origin on the rows before it: the first fit's seconds, and all the rest's."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    long = frame.rename(columns={"date": "ds"}).assign(unique_id="series")[["unique_id", "ds", "y"]]
    model = StatsForecast(models=[AutoETS(season_length=season_length(freq) or 1)], freq=pandas_freq(freq), n_jobs=1)
    seconds, preds = [], []
    for origin in cut:
        t0 = time.perf_counter()
        preds.append(model.forecast(df=long.iloc[:origin], h=args.horizon)["AutoETS"].to_numpy())
        seconds.append(time.perf_counter() - t0)
    return np.stack(preds), seconds[0], sum(seconds[1:])


def run_nhits(frame: pd.DataFrame, cut: list[int], args, freq: str) -> tuple[np.ndarray, float, float]:
    from neuralforecast import NeuralForecast
    from neuralforecast.models import NHITS

    long = frame.rename(columns={"date": "ds"}).assign(unique_id="series")[["unique_id", "ds", "y"]]
    pd_freq = pandas_freq(freq)
    t0 = time.perf_counter()
    nf = NeuralForecast(
        models=[
            NHITS(
                h=args.horizon, input_size=args.lookback, random_seed=args.seed, enable_progress_bar=False, logger=False
            )
        ],
        freq=pd_freq,
    )
    nf.fit(long.iloc[: cut[0]])
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds = [nf.predict(df=long.iloc[:origin])["NHITS"].to_numpy() for origin in cut]
    return np.stack(preds), fit_s, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", default="electricity", help="a file or a registered dataset name")
    ap.add_argument("--time-col", default=None)
    ap.add_argument("--column", default=None, help="the series (default: the file's first value column)")
    ap.add_argument("--lookback", type=int, default=336)
    ap.add_argument("--horizon", type=int, default=48)
    ap.add_argument("--origins", type=int, default=219, help="forecast origins in the held-out tail")
    ap.add_argument("--every", type=int, default=24, help="rows between origins (a day of hourly rows)")
    ap.add_argument("--models", nargs="+", default=["lruts", "nhits"], choices=["lruts", "nhits", "ets"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=None, help="lruts's learning rate (default: the forecaster's)")
    args = ap.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    frame, freq = series_frame(args)
    cut = origins(len(frame), args)
    true = np.stack([frame["y"].to_numpy()[o : o + args.horizon] for o in cut])
    weekly = {"1h": 168, "30m": 336, "15m": 672, "10m": 1008, "1d": 7}.get(freq)
    rows = [("repeat-last", np.stack([np.repeat(frame["y"].to_numpy()[o - 1], args.horizon) for o in cut]), 0.0, 0.0)]
    # a week, and the season lruts's seasonal naive uses when it is another (a day, a year of weeks)
    for season in dict.fromkeys(m for m in (weekly, season_length(freq)) if m):
        steps = np.arange(args.horizon) % season  # the last season repeated: never a value after the origin
        naive = np.stack([frame["y"].to_numpy()[o - season + steps] for o in cut])
        rows.append((f"seasonal naive (m = {season})", naive, 0.0, 0.0))
    for model in args.models:
        run = {"lruts": lambda: run_lruts(frame, cut, args), "nhits": lambda: run_nhits(frame, cut, args, freq),
               "ets": lambda: run_ets(frame, cut, args, freq)}[model]  # fmt: skip
        pred, fit_s, predict_s = run()
        rows.append((model, pred, fit_s, predict_s))
    print(
        f"{args.path} [{args.column or 'first column'}], {len(frame)} rows, step {freq}, lookback {args.lookback}, "
        f"horizon {args.horizon}, {len(cut)} origins every {args.every} rows (first at row {cut[0]})\n"
    )
    scored = np.ones(true.shape, dtype=bool)  # the rows every model forecast: all but those lruts's steps miss
    for _, pred, _, _ in rows:
        scored &= ~np.isnan(pred if pred.ndim == 2 else pred[..., 0])
    if not scored.all():
        print(f"scored: {int(scored.sum())} of {scored.size} held-out rows (the others fall past lruts's steps)\n")
    print("| model | MAE | MSE | 80% interval: coverage / Winkler | fit s | all forecasts s |")
    print("|---|---|---|---|---|---|")
    for name, pred, fit_s, predict_s in rows:
        interval = "–"
        if pred.ndim == 3:  # lruts: the point and the 80% interval
            pred, lower, upper = pred[..., 0][scored], pred[..., 1][scored], pred[..., 2][scored]
            inside = float(((lower <= true[scored]) & (true[scored] <= upper)).mean())
            interval = f"{inside:.3f} / {winkler(lower, upper, true[scored], 0.8):.4g}"
        else:
            pred = pred[scored]
        err = pred - true[scored]
        mae, mse = np.abs(err).mean(), np.square(err).mean()
        print(f"| {name} | {mae:.4g} | {mse:.4g} | {interval} | {fit_s:.0f} | {predict_s:.1f} |")


if __name__ == "__main__":
    main()

"""Day-ahead electricity prices with known-future covariates: a rolling-origin backtest of the last 7 days.

    LRUTS_DATA_DIRS=/work/shared/datasets OMP_NUM_THREADS=1 python benchmarks/covariates.py \
        [--lookback 168] [--horizon 24] [--days 7] [--epochs 10] [--steps-per-epoch 60] [--seeds 0 1 2] [--defaults]
    # with neuralforecast's NHITS too (its optional `peers` install, see benchmarks/peers.py):
    LRUTS_DATA_DIRS=/work/shared/datasets OMP_NUM_THREADS=1 PYTHONPATH=. /work/peers-venv/bin/python \
        benchmarks/covariates.py --nhits [--nhits-steps 500]

The data: covariates/electricity_short.csv (hourly price `y` of one market, `Exogenous1`, `Exogenous2`: the
day-ahead load and generation forecasts, so known for the next day). The backtest: one origin per day at
00:00 of each of the last `days` days; at each origin every model forecasts the next `horizon` hours
from the rows before it, reading that day's covariates where it takes them. MAE on the original scale over
every origin and step; for the LRUs, of the mean forecast over the seeds (each seed's MAE in the note).

- LRU + covariates: LRUForecaster fitted once on the rows before the first origin with the two
  covariates as future covariates and calendar features; at each later origin `update()` streams the
  previous day's rows (O(1) each, no refit) and `predict(future=...)` reads the day's covariates;
- LRU, no covariates: the same forecaster and training, without covariates or calendar;
- seasonal naive: the same hour of the day before;
- ridge + covariates: y's next `horizon` values regressed on its last `lookback` values and the
  `horizon` rows of both covariates (numpy closed form on standardised features), fitted on every
  window before the first origin; the penalty is the one of a grid with the lowest MAE on the last 20% of
  those windows (fitted on the first 80%), then refitted on all of them;
- NHITS + covariates (`--nhits`): neuralforecast's NHITS with the two covariates as `futr_exog_list`,
  input_size = lookback, h = horizon, scaler_type "robust" (as neuralforecast's own example on this data),
  `--nhits-steps` training steps, its other settings at their defaults; fitted once on the rows before the
  first origin, then `predict(df=rows before the origin, futr_df=the day's covariates)` at each origin.

Each LRU is run twice: with the library's default blend=True (the network blended with linear, repeat-last
and seasonal-naive forecasts by weights fitted on the validation rows; the mean weights are printed) and
with blend=False (the network alone). A small network and a short training, printed in the header.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common.recipes import forecaster, recipe

from lruts.data import data_file

FILE = "covariates/electricity_short.csv"
COVARIATES = ["Exogenous1", "Exogenous2"]
RIDGE_PENALTIES = [10.0**k for k in range(-3, 5)]


def load() -> pd.DataFrame:
    """The file from the first data directory that has it ($LRUTS_DATA_DIRS)."""
    df = pd.read_csv(data_file(FILE), parse_dates=["ds"])
    return df[["unique_id", "ds", "y", *COVARIATES]].sort_values("ds").reset_index(drop=True)


def lru_forecasts(
    df: pd.DataFrame, origins: list[int], args, covariates: bool, blend: bool, seed: int
) -> tuple[np.ndarray, str]:
    """(len(origins), horizon) forecasts of the forecaster fitted before the first origin and streamed,
    and a note: its fit seconds, training steps and, blended, the mean weight of each blended forecast."""
    fc = forecaster(args.lookback, args.horizon, args, seed=seed, blend=blend)
    cov = dict(future_covariates=COVARIATES, calendar=True) if covariates else {}
    columns = ["unique_id", "ds", "y", *COVARIATES] if covariates else ["unique_id", "ds", "y"]
    t = time.perf_counter()
    fc.fit(df.iloc[: origins[0]][columns], id_col="unique_id", time_col="ds", target_col="y", **cov)
    fit_s = time.perf_counter() - t
    out = []
    for k, o in enumerate(origins):
        future = df.iloc[o : o + args.horizon][["unique_id", "ds", *COVARIATES]] if covariates else None
        if k:
            fc.update(df.iloc[origins[k - 1] : o][columns], future=future)
        out.append(fc.predict(future=future)["forecast"].to_numpy())
    r = fc.fit_result
    note = f"fit {fit_s:.0f} s, best epoch {r.best_epoch} of {r.epochs_run}"
    if blend:
        weights = {k: np.mean(w) for k, w in fc.blend_info["weights"].items()}
        note += "; blend weights " + ", ".join(f"{k} {w:.2f}" for k, w in weights.items() if w > 0.005)
    return np.stack(out), note


def nhits_forecasts(df: pd.DataFrame, origins: list[int], args, seed: int) -> tuple[np.ndarray, str]:
    """(len(origins), horizon) forecasts of NHITS with the covariates (module docstring), and a note."""
    from neuralforecast import NeuralForecast
    from neuralforecast.models import NHITS

    model = NHITS(
        h=args.horizon, input_size=args.lookback, futr_exog_list=COVARIATES, scaler_type="robust",
        max_steps=args.nhits_steps, random_seed=seed, accelerator="cpu", devices=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    nf = NeuralForecast(models=[model], freq="h")
    t = time.perf_counter()
    nf.fit(df.iloc[: origins[0]])
    fit_s = time.perf_counter() - t
    out = []
    for o in origins:
        futr = df.iloc[o : o + args.horizon][["unique_id", "ds", *COVARIATES]]
        out.append(nf.predict(df=df.iloc[:o], futr_df=futr)["NHITS"].to_numpy())
    return np.stack(out), f"fit {fit_s:.0f} s, {args.nhits_steps} steps"


def ridge_forecasts(df: pd.DataFrame, origins: list[int], lookback: int, horizon: int) -> tuple[np.ndarray, float]:
    """(len(origins), horizon) forecasts of the ridge model (module docstring) and its chosen penalty."""
    y = df["y"].to_numpy(np.float64)
    x = df[COVARIATES].to_numpy(np.float64)

    def features(o: int) -> np.ndarray:
        return np.concatenate([y[o - lookback : o], x[o : o + horizon].reshape(-1)])

    starts = np.arange(lookback, origins[0] - horizon + 1)  # every window inside the rows before the first origin
    feats = np.stack([features(o) for o in starts])
    targets = np.stack([y[o : o + horizon] for o in starts])
    n_fit = int(0.8 * len(starts))
    best = min(RIDGE_PENALTIES, key=lambda lam: _ridge_mae(feats[:n_fit], targets[:n_fit], feats[n_fit:],
                                                           targets[n_fit:], lam))  # fmt: skip
    predict = _ridge(feats, targets, best)
    return np.stack([predict(features(o)[None])[0] for o in origins]), best


def _ridge(feats: np.ndarray, targets: np.ndarray, penalty: float):
    """A predictor fitted by ridge regression on standardised features with an unpenalised intercept."""
    mean, std = feats.mean(0), feats.std(0) + 1e-12
    z = (feats - mean) / std
    y_mean = targets.mean(0)
    w = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (targets - y_mean))
    return lambda f: ((f - mean) / std) @ w + y_mean


def _ridge_mae(f_fit, y_fit, f_val, y_val, penalty: float) -> float:
    return float(np.abs(_ridge(f_fit, y_fit, penalty)(f_val) - y_val).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lookback", type=int, default=168)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--defaults", action="store_true", help="the forecaster's default network and training budget")
    ap.add_argument("--nhits", action="store_true", help="also neuralforecast's NHITS (needs neuralforecast)")
    ap.add_argument("--nhits-steps", type=int, default=500)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    df = load()
    n, h = len(df), args.horizon
    origins = [n - h * (args.days - k) for k in range(args.days)]
    truth = np.stack([df["y"].to_numpy()[o : o + h] for o in origins])
    first, last = df["ds"][origins[0]], df["ds"][origins[-1]]
    print(f"electricity_short: {n} hourly rows, {df['ds'].iloc[0]} → {df['ds'].iloc[-1]}")
    print(f"origins: {args.days}, daily at {first:%H:%M} from {first:%Y-%m-%d} to {last:%Y-%m-%d}; "
          f"lookback {args.lookback}, horizon {h}; fit on the {origins[0]} rows before {first}")  # fmt: skip
    print(f"LRU: {recipe(args)}, seeds {args.seeds}; streamed with update()\n")

    rows = []
    for blend in (True, False):
        for cov in (True, False):
            name = f"LRU{' + covariates + calendar' if cov else ', no covariates'}{'' if blend else ', network alone'}"
            runs = [lru_forecasts(df, origins, args, cov, blend, seed) for seed in args.seeds]
            per_seed = " / ".join(f"{np.abs(pred - truth).mean():.3f}" for pred, _ in runs)
            mean = np.mean([pred for pred, _ in runs], axis=0)  # MAE below: of the seeds' mean forecast
            rows.append((name, mean, f"seeds {per_seed}; seed {args.seeds[0]}: {runs[0][1]}"))
    if args.nhits:
        runs = [nhits_forecasts(df, origins, args, seed) for seed in args.seeds]
        per_seed = " / ".join(f"{np.abs(pred - truth).mean():.3f}" for pred, _ in runs)
        rows.append(("NHITS + covariates", np.mean([pred for pred, _ in runs], axis=0),
                     f"seeds {per_seed}; seed {args.seeds[0]}: {runs[0][1]}"))  # fmt: skip
    seasonal = np.stack([df["y"].to_numpy()[o - 24 : o - 24 + h] for o in origins])
    rows.append(("seasonal naive (24 h)", seasonal, ""))
    pred, penalty = ridge_forecasts(df, origins, args.lookback, h)
    rows.append(("ridge + covariates", pred, f"penalty {penalty:g} (validation)"))

    print("| model | MAE | MAE per origin | note |")
    print("|---|---:|---|---|")
    for name, pred, note in rows:
        per_day = " ".join(f"{v:.2f}" for v in np.abs(pred - truth).mean(1))
        print(f"| {name} | {np.abs(pred - truth).mean():.3f} | {per_day} | {note} |")


if __name__ == "__main__":
    main()

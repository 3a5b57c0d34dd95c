"""Outages in a user's wide table: the forecaster on the table as it is (its gaps masked) against the same rows
forward-filled beforehand (what `fit()` did with a wide table's gaps until 2026-12-08).

    LRUTS_DATA_DIRS=../shared/datasets OMP_NUM_THREADS=1 python benchmarks/outages.py \
        [--data client|bank_calls] [--client 0] [--seeds 0 1 2 3 4] [--outages 30] [--outage-hours 168]

client: one client of the electricity benchmark's six (hourly; `--client`, its column), its last 60 days held out;
`outages` stretches of `outage-hours` rows, drawn at random (seed 0) from the fitted rows, are removed from the
table, as a meter's dead weeks. bank_calls: the call centre's 5-minute counts as one wide table (DateTime, Calls),
its last 5 business days held out; its own gaps (six business days with no rows) are the outages. Each variant fits
`LRUForecaster` at its defaults (quantiles 0.1 and 0.9; client: lookback 168, horizon 24; bank_calls: 338, 169) once
per training seed, then forecasts each held-out day at its start and streams the day's rows by update() (no
refit). MAE over the held-out days, the 80% interval's coverage and the fit seconds, per seed and their mean.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.data import data_file, load_series
from lruts.forecasting.fitting import forecaster_training


def client(args) -> tuple[pd.DataFrame, list[pd.DataFrame], str, int, int]:
    raw = pd.read_csv(data_file("forecasting/electricity_6clients.csv"))
    df = pd.DataFrame({"date": pd.to_datetime(raw["date"]), "y": raw[args.client].astype(float)})
    lookback, horizon, days = 168, 24, 60
    fitted, held = df.iloc[: -days * horizon], df.iloc[-days * horizon :]
    rng = np.random.default_rng(0)
    starts = rng.choice(np.arange(lookback, len(fitted) - args.outage_hours - lookback), args.outages, replace=False)
    dropped = np.concatenate([np.arange(s, s + args.outage_hours) for s in starts])
    fitted = fitted.drop(fitted.index[np.unique(dropped)])
    return fitted, [held.iloc[d * horizon : (d + 1) * horizon] for d in range(days)], "y", lookback, horizon


def bank_calls(args) -> tuple[pd.DataFrame, list[pd.DataFrame], str, int, int]:
    df = pd.read_csv(data_file("panel/bank_calls.csv"))
    df["DateTime"] = pd.to_datetime(df["DateTime"]).dt.tz_localize(None)
    dates = df["DateTime"].dt.normalize()
    held = sorted(dates.unique())[-5:]
    return df[dates < held[0]], [df[dates == d].reset_index(drop=True) for d in held], "Calls", 338, 169


def forward_filled(table: pd.DataFrame, target: str) -> pd.DataFrame:
    """The table with its gaps forward-filled on its grid (ingestion's fill="ffill", as fit() read it before)."""
    series = load_series(table, fill="ffill")
    return pd.DataFrame({table.columns[0]: series.timestamps, target: series.values[:, 0]})


def run(table, days, target, lookback, horizon, seed) -> dict[str, float]:
    train = dataclasses.replace(forecaster_training(), seed=seed, progress=False)  # the defaults, another seed
    fc = LRUForecaster(lookback, horizon, quantiles=[0.1, 0.9], train=train)
    t0 = time.perf_counter()
    fc.fit(table)
    fit_s = time.perf_counter() - t0
    errors, inside = [], []
    for day in days:
        p, y = fc.predict(), day[target].to_numpy()
        errors.append(np.abs(p[target].to_numpy() - y))
        inside.append((y >= p[f"{target}_q0.1"].to_numpy()) & (y <= p[f"{target}_q0.9"].to_numpy()))
        fc.update(day)
    return {"MAE": float(np.mean(errors)), "coverage": float(np.mean(inside)), "fit s": fit_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("client", "bank_calls"), default="client")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--client", default="0", help="client: the column of electricity_6clients.csv (0-5)")
    ap.add_argument("--outages", type=int, default=30)
    ap.add_argument("--outage-hours", type=int, default=168)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    table, days, target, lookback, horizon = (client if args.data == "client" else bank_calls)(args)
    variants = {"masked (as given)": table, "forward-filled beforehand": forward_filled(table, target)}
    missing = len(variants["forward-filled beforehand"]) - len(table)
    name = f"client {args.client}" if args.data == "client" else args.data
    print(f"{name}: {len(table):,} rows fitted ({missing:,} steps missing), {len(days)} days held out, "
          f"lookback {lookback}, horizon {horizon}\n")  # fmt: skip
    print("| variant | seed | MAE | 80% coverage | fit s |\n|---|---|---:|---:|---:|")
    for name, rows in variants.items():
        results = [run(rows, days, target, lookback, horizon, seed) for seed in args.seeds]
        for seed, r in zip(args.seeds, results, strict=True):
            print(f"| {name} | {seed} | {r['MAE']:.3f} | {r['coverage']:.3f} | {r['fit s']:.0f} |", flush=True)
        mean = {k: np.mean([r[k] for r in results]) for k in results[0]}
        print(f"| {name} | mean | **{mean['MAE']:.3f}** | {mean['coverage']:.3f} | {mean['fit s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""A series with opening hours: the bank call centre's 5-minute call counts, one forecast per day at the opening.

    LRUTS_DATA_DIRS=/work/shared/datasets OMP_NUM_THREADS=1 python benchmarks/sessions.py \
        [--days 5] [--lookback 338] [--epochs 10] [--steps-per-epoch 100] [--seed 0] [--defaults]

The data: panel/bank_calls.csv (`DateTime`, `Calls`: every weekday 07:00–21:00, 169 slots a day; nights,
weekends and six business days absent). lruts infers the session frequency "5m@07:00-21:00" from it, so a
step after a day's close is the next business day's opening. Each forecaster is fitted once on every row
before the last `days` days; at each of those days' openings it forecasts the day's 169 slots, then
`update()` streams the day's rows (O(1) each, no refit). MAE on the original scale over every day and slot,
against seasonal naive (the same slot of the previous business day). The forecasters: LRUForecaster with
its default blend and without it (`blend=False`, the network alone), each with and without calendar
features (the time within the session and the day of the week). Trained `--epochs` × `--steps-per-epoch`
at TrainConfig's other settings, or with `--defaults` the forecaster's training budget (as a user gets it).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.data import data_file
from lruts.forecasting.fitting import forecaster_training
from lruts.training import TrainConfig

SLOTS = 169  # 07:00, 07:05, ..., 21:00


def run(history: pd.DataFrame, days: list[pd.DataFrame], blend: bool, calendar: bool, args) -> tuple[float, float]:
    """(MAE over the days' slots, fit seconds) of one LRUForecaster fitted on `history`."""
    if args.defaults:
        train = dataclasses.replace(forecaster_training(), seed=args.seed, progress=False)
    else:
        train = TrainConfig(
            epochs=args.epochs, max_steps_per_epoch=args.steps_per_epoch, seed=args.seed, progress=False
        )
    fc = LRUForecaster(args.lookback, SLOTS, blend=blend, train=train)
    t0 = time.perf_counter()
    fc.fit(history, id_col="id", time_col="DateTime", target_col="Calls", calendar=calendar)
    fit_s = time.perf_counter() - t0
    errors = []
    for day in days:
        forecast = fc.predict()
        assert (forecast["DateTime"].to_numpy() == day["DateTime"].to_numpy()).all(), "forecast not dated on the day"
        errors.append(np.abs(forecast["forecast"].to_numpy() - day["Calls"].to_numpy()))
        fc.update(day)
    return float(np.mean(errors)), fit_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=5, help="held-out days, one forecast at each opening")
    ap.add_argument("--lookback", type=int, default=2 * SLOTS)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defaults", action="store_true", help="the forecaster's default training budget")
    args = ap.parse_args()

    df = pd.read_csv(data_file("panel/bank_calls.csv"))
    df["DateTime"] = pd.to_datetime(df["DateTime"]).dt.tz_localize(None)
    df["id"] = "calls"
    dates = df["DateTime"].dt.normalize()
    held = sorted(dates.unique())[-args.days :]
    history = df[dates < held[0]]
    days = [df[dates == d].reset_index(drop=True) for d in held]
    assert all(len(d) == SLOTS for d in days), "a held-out day is not a full session"
    previous = [df[dates == d].reset_index(drop=True) for d in sorted(dates.unique())[-args.days - 1 : -1]]
    gaps = [np.abs(p["Calls"].to_numpy() - d["Calls"].to_numpy()) for p, d in zip(previous, days, strict=True)]
    naive = float(np.mean(gaps))

    budget = "the default training budget" if args.defaults else f"{args.epochs} epochs × {args.steps_per_epoch} steps"
    print(f"bank_calls: {len(history):,} rows before {str(held[0])[:10]}, {args.days} days held out "
          f"({str(held[0])[:10]} … {str(held[-1])[:10]}), lookback {args.lookback}, horizon {SLOTS}, "
          f"{budget}, seed {args.seed}\n")  # fmt: skip
    print("| forecaster | MAE | fit s |\n|---|---:|---:|")
    print(f"| seasonal naive (previous business day) | {naive:.2f} | 0 |")
    for blend in (True, False):
        for calendar in (False, True):
            mae, fit_s = run(history, days, blend, calendar, args)
            name = f"LRUForecaster, {'blend' if blend else 'network alone'}{', calendar' if calendar else ''}"
            print(f"| {name} | {mae:.2f} | {fit_s:.0f} |")


if __name__ == "__main__":
    main()

"""Series a fitted panel forecaster never saw, joined from their rows without a refit, against the same series
fitted with the others.

    python benchmarks/join.py [--every 15] [--lookback 24] [--horizon 12]

aus_retail (found through LRUTS_DATA_DIRS; its series of at least 100 months): every `every`-th series is held
out of one fit and joins it by `update()` with its history (a store that opened after the fit); a second
forecaster is fitted on every series. Both forecast the held-out series' last `horizon` months from the same
history (each series' rows before them). Per forecaster: MAE over those series and months, their mean MASE
(scaled by each series' in-sample seasonal naive error), and the fit seconds; seasonal naive beside them. Not in
the test suite (the suite checks a join on a synthetic panel: tests/test_forecaster_panel.py).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.data import resolve_raw

ID, TIME, TARGET = "Series ID", "Month", "Turnover"


def scores(forecast: pd.DataFrame, truth: pd.DataFrame, history: pd.DataFrame, m: int) -> tuple[float, float]:
    """(MAE, mean MASE) of `forecast` (id, time, forecast) on `truth`, MASE scaled per series by its history's
    seasonal naive error."""
    both = forecast.merge(truth, on=[ID, TIME], validate="one_to_one")
    err = (both["forecast"] - both[TARGET]).abs()
    scale = history.groupby(ID)[TARGET].apply(lambda y: np.abs(y.to_numpy()[m:] - y.to_numpy()[:-m]).mean())
    return float(err.mean()), float((err / both[ID].map(scale)).groupby(both[ID]).mean().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=int, default=15)
    ap.add_argument("--lookback", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=12)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    table = pd.read_csv(resolve_raw("aus_retail"))[[ID, TIME, TARGET]]
    table[TIME] = pd.to_datetime(table[TIME], format="%Y %b")
    table = table[table.groupby(ID)[TARGET].transform("size") >= 100]  # a few series are too short to window
    test = table.groupby(ID).tail(args.horizon)
    history = table.drop(test.index)
    ids = list(dict.fromkeys(table[ID]))
    new = ids[:: args.every]
    print(f"aus_retail: {len(ids)} series, {len(new)} held out of the first fit and joined; lookback "
          f"{args.lookback}, horizon {args.horizon} months")  # fmt: skip
    held = history[ID].isin(new)
    rows = []
    for name, fit_on in (("fitted without them, then joined", history[~held]), ("fitted with them", history)):
        t0 = time.perf_counter()
        fc = LRUForecaster(args.lookback, args.horizon).fit(fit_on, id_col=ID, time_col=TIME, target_col=TARGET)
        fit_s = time.perf_counter() - t0
        out = fc.update(history[held]) if name.endswith("joined") else fc.predict()
        rows.append((name, *scores(out[out[ID].isin(new)], test[test[ID].isin(new)], history[held], 12), fit_s))
    year_before = history.assign(**{TIME: history[TIME] + pd.DateOffset(years=1)}).rename(columns={TARGET: "forecast"})
    naive = test[test[ID].isin(new)][[ID, TIME]].merge(year_before, on=[ID, TIME], validate="one_to_one")
    rows.append(("seasonal naive (12)", *scores(naive, test[test[ID].isin(new)], history[held], 12), 0.0))
    print("\n| the held-out series, forecast by | MAE | mean MASE | fit s |\n|---|---|---|---|")
    for name, mae, mase, fit_s in rows:
        print(f"| {name} | {mae:.3f} | {mase:.3f} | {fit_s:.0f} |")


if __name__ == "__main__":
    main()

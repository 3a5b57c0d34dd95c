"""A logger's missing-data codes (−9999) in a user's file: the forecaster on the file as it is against the same
rows with the codes blanked beforehand, as a careful user would.

    python benchmarks/missing_codes.py [--column OT] [--fit 30000] [--lookback 144] [--horizon 144] [--origins 40]

One column of the weather benchmark's file (found through LRUTS_DATA_DIRS), which holds −9999 where its logger
had no reading (OT: 34 cells in the first 30,000 rows and 16 in the forecast stretch; wv (m/s): 1 cell). Each
variant fits `LRUForecaster` at its defaults on the first `fit` rows, then forecasts every `horizon` rows of the
next `origins` × `horizon` by update() with the variant's rows (no refit). MAE / MSE over the targets that are
readings (the coded cells are scored in neither), the 80% interval's coverage, the fit seconds, and the blend's
weights. Reading the file as it is should give the cleaned file's forecasts. Not in the test suite (the suite
checks the reading and the stream: tests/test_data_malformed.py, tests/test_forecaster_panel.py).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.data import resolve_raw


def run(rows: pd.DataFrame, truth: np.ndarray, cut: list[int], args) -> dict[str, object]:
    t0 = time.perf_counter()
    fc = LRUForecaster(args.lookback, args.horizon, quantiles=[0.1, 0.9]).fit(rows.iloc[: args.fit])
    fit_s = time.perf_counter() - t0
    preds, at = [], args.fit
    for origin in cut:
        if origin > at:
            fc.update(rows.iloc[at:origin])
            at = origin
        preds.append(fc.forecast_array()[:, 0])
    p = np.stack(preds)
    seen = np.isfinite(truth)
    err = (p[..., 0] - truth)[seen]
    inside = ((truth >= p[..., 1]) & (truth <= p[..., 2]))[seen]
    weights = {k: round(float(np.mean(v)), 2) for k, v in fc.blend_info["weights"].items() if np.mean(v) >= 0.005}
    return {"MAE": np.abs(err).mean(), "MSE": (err**2).mean(), "coverage": inside.mean(), "fit s": fit_s, "w": weights}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--column", default="OT")
    ap.add_argument("--fit", type=int, default=30000)
    ap.add_argument("--lookback", type=int, default=144)
    ap.add_argument("--horizon", type=int, default=144)
    ap.add_argument("--origins", type=int, default=40)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    raw = pd.read_csv(resolve_raw("weather"), encoding="latin-1")
    column = next(c for c in raw.columns if c == args.column or c.startswith(f"{args.column} "))
    rows = raw[["date", column]].rename(columns={column: "y"})
    rows["date"] = pd.to_datetime(rows["date"])
    rows = rows.drop_duplicates("date", keep="last").reset_index(drop=True)  # the file's one repeated row
    coded = rows["y"].to_numpy() <= -9999
    cut = list(range(args.fit, args.fit + args.origins * args.horizon, args.horizon))
    y = np.where(coded, np.nan, rows["y"].to_numpy())
    truth = np.stack([y[o : o + args.horizon] for o in cut])
    print(f"weather '{column}': {coded[: args.fit].sum()} cells of -9999 in the {args.fit} rows fitted, "
          f"{coded[args.fit : cut[-1] + args.horizon].sum()} in the stretch forecast")  # fmt: skip
    print("\n| file | MAE | MSE | 80% coverage | fit s | blend weights |\n|---|---|---|---|---|---|")
    for name, variant in (("as it is", rows), ("codes blanked beforehand", rows.assign(y=y))):
        r = run(variant, truth, cut, args)
        print(f"| {name} | {r['MAE']:.4g} | {r['MSE']:.4g} | {r['coverage']:.3f} | {r['fit s']:.0f} | {r['w']} |")


if __name__ == "__main__":
    main()

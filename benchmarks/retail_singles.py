"""Real monthly series a user brings one at a time: the forecaster at its defaults on each aus_retail series.

    python benchmarks/retail_singles.py [--min-months 300] [--every 1] [--held-out 24] [--csv rows.csv]

aus_retail (found through LRUTS_DATA_DIRS): every `every`-th of its series of at least `min-months` months
(148 at 300), each fitted alone, `LRUForecaster(24, 12, quantiles=[0.1, 0.9])`, on all but its last
`held-out` months (its last 10% of those for validation: about two years, two blocks of windows), then
forecast at every month of the held-out tail by `update()` (no refit): 13 forecasts of 12 months at 24. Per
series: whether the blend was trusted (or kept a simple forecast), its MSE over seasonal naive's on the same
months, the 80% interval's coverage and Winkler score over its mean absolute monthly step (to compare
series). The table groups them by the blend's verdict; `--csv` keeps the rows. `--ets` adds statsforecast's
AutoETS (season 12, its 80% level), fitted again at every origin on the history up to it (what an ETS user
does; `pip install statsforecast`, never a dependency of lruts), and the geometric mean of lruts's MSE over
its. Not in the test suite.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.data import resolve_raw
from lruts.forecasting.metrics import winkler
from lruts.training import progress_bar

ID, TIME, TARGET = "Series ID", "Month", "Turnover"
LOOKBACK, HORIZON, SEASON = 24, 12, 12


def scores(name: str, f: np.ndarray, y: np.ndarray, origins: range) -> dict[str, float]:
    """`name`'s MSE over seasonal naive's and its 80% interval's coverage and Winkler score (over the series'
    mean absolute monthly step before the first origin), from forecasts f (origins, H, 3): point, lower, upper."""
    target = np.stack([y[o : o + HORIZON] for o in origins])
    naive = np.stack([y[o - SEASON : o - SEASON + HORIZON] for o in origins])
    prefix = "" if name == "lruts" else f"{name}_"
    return {
        f"{prefix}mse_over_seasonal_naive": float(((f[..., 0] - target) ** 2).mean() / ((naive - target) ** 2).mean()),
        f"{prefix}coverage": float(((f[..., 1] <= target) & (target <= f[..., 2])).mean()),
        f"{prefix}winkler_per_step": winkler(f[..., 1], f[..., 2], target, 0.8)
        / float(np.abs(np.diff(y[: origins[0]])).mean()),
    }


def ets_forecasts(frame: pd.DataFrame, origins: range) -> np.ndarray:
    """AutoETS fitted at every origin on the rows before it: (origins, H, 3)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    long = pd.DataFrame({"unique_id": "series", "ds": frame[TIME], "y": frame[TARGET]})
    model = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="MS", n_jobs=1)
    columns = ["AutoETS", "AutoETS-lo-80", "AutoETS-hi-80"]
    return np.stack([model.forecast(df=long.iloc[:o], h=HORIZON, level=[80])[columns].to_numpy() for o in origins])


def one_series(frame: pd.DataFrame, held_out: int, ets: bool) -> dict[str, object]:
    """Fit on all but the last `held_out` months, forecast at each month of them that has HORIZON after it."""
    series, frame = frame[ID].iloc[0], frame[[TIME, TARGET]].reset_index(drop=True)
    y = frame[TARGET].to_numpy()
    origins = range(len(y) - held_out, len(y) - HORIZON + 1)
    fc = LRUForecaster(LOOKBACK, HORIZON, quantiles=[0.1, 0.9]).fit(frame.iloc[: origins[0]], time_col=TIME)
    forecasts, at = [], origins[0]
    for origin in origins:
        if origin > at:
            fc.update(frame.iloc[at:origin])
            at = origin
        forecasts.append(fc.forecast_array()[:, 0])  # (H, 3): the point, then the 0.1 and 0.9 quantiles
    weights = fc.blend_info["weights"]
    simple = next((k for k in ("repeat_last", "seasonal_naive") if weights[k] == [1.0] * HORIZON), None)
    row = {"id": series, "months": len(y), "blend": simple or "trusted"}
    row |= scores("lruts", np.stack(forecasts), y, origins)
    return row | (scores("ets", ets_forecasts(frame, origins), y, origins) if ets else {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-months", type=int, default=300)
    ap.add_argument("--every", type=int, default=1, help="every k-th qualifying series (in Series ID order)")
    ap.add_argument("--held-out", type=int, default=24, help="months held out at each series' end")
    ap.add_argument("--csv", default=None, help="write the per-series rows here")
    ap.add_argument("--ets", action="store_true", help="AutoETS beside it (statsforecast)")
    args = ap.parse_args()
    logging.getLogger("lruts").setLevel(logging.ERROR)  # the blend's verdict, once per series

    table = pd.read_csv(resolve_raw("aus_retail"))[[ID, TIME, TARGET]]
    table[TIME] = pd.to_datetime(table[TIME], format="%Y %b")
    groups = [g.sort_values(TIME) for _, g in table.groupby(ID, sort=True) if len(g) >= args.min_months]
    groups = groups[:: args.every]
    rows = pd.DataFrame([one_series(g, args.held_out, args.ets) for g in progress_bar(groups, desc="series")])
    if args.csv:
        rows.to_csv(args.csv, index=False)
    print(f"aus_retail: {len(rows)} series of {args.min_months}+ months, each fitted alone; lookback {LOOKBACK}, "
          f"horizon {HORIZON}, the last {args.held_out} months held out\n")  # fmt: skip
    models = ["lruts", "ets"] if args.ets else ["lruts"]
    print("| blend | series | model | MSE / seasonal naive's: mean, median, worst | 80% coverage: mean, median, "
          "share < 0.7 | Winkler / mean step |\n|---|---|---|---|---|---|")  # fmt: skip
    for name, g in [*rows.groupby("blend"), ("all", rows)]:
        for model in models:
            prefix = "" if model == "lruts" else f"{model}_"
            r, c = g[f"{prefix}mse_over_seasonal_naive"], g[f"{prefix}coverage"]
            print(
                f"| {name} | {len(g)} | {model} | {r.mean():.3f}, {r.median():.3f}, {r.max():.3f} | {c.mean():.3f}, "
                f"{c.median():.3f}, {(c < 0.7).mean():.2f} | {g[f'{prefix}winkler_per_step'].mean():.2f} |"
            )
    if args.ets:
        ratio = np.exp(np.log(rows["mse_over_seasonal_naive"] / rows["ets_mse_over_seasonal_naive"]).mean())
        print(f"\nlruts's MSE over AutoETS's, geometric mean over the series: {ratio:.3f}")


if __name__ == "__main__":
    main()

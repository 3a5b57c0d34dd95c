"""One global LRUForecaster over a panel of series, against repeat-last and seasonal naive: per-series MASE.

    LRUTS_DATA_DIRS=/work/shared/datasets OMP_NUM_THREADS=1 python benchmarks/panels.py \
        [--datasets gafa_stock aus_retail] [--epochs 10] [--steps-per-epoch 60] [--seeds 0 1 2] [--peers] [--defaults]

The panels (long format, read as the files come):
- gafa_stock: the adjusted close of 4 stocks on trading days (the forecaster infers business days; an
  exchange holiday is a missing step), horizon 5, lookback 60;
- aus_retail: monthly retail turnover of 152 series of unequal spans, horizon 12, lookback 36.

The hold-out: each series' last `horizon` steps of its own grid (business days, months); the rest is its
history, which the forecaster is fitted on (one network over every series; 10% of each history validates)
and the baselines read. Its forecast is dated by the forecaster and scored where the hold-out has a value
(a holiday inside the hold-out is left out). Baselines, from each series' history on its grid (a missing
step carries the last value forward): repeat-last (the last value for every step) and seasonal naive (the
value one season before: 5 business days for the stocks, 12 months for retail).

MASE per series: the MAE over its hold-out divided by the in-sample MAE of the naive forecast of season 1
(stocks) or 12 (monthly) over its history. Printed per panel: the mean and median over the series, the
share of series where the blended LRU's MASE is below each other method's (and where it ties, within
1e-6 relative: a blend that chose one baseline alone), and the aggregate (the MAE summed over the
series divided by their scales summed, i.e. MASE weighted by scale). A series whose history is too short
for a training window of its own is left out of the fit and of every row, and counted (the forecaster would
forecast one with at least `lookback` readings from its own rows; the comparison keeps to fitted series).
The LRU rows: the library's default blend=True (the network blended with linear, repeat-last and seasonal-naive
forecasts fitted on the validation rows) and blend=False (the network alone), each the mean forecast over the
seeds: a small recipe (common/recipes.py: NETWORK, `--epochs` × `--steps-per-epoch` of 32 windows, lr 3e-3), or with
`--defaults` the forecaster as a user gets it. `--peers` adds statsforecast's AutoETS and AutoTheta (what a user
forecasting short monthly panels would pick; their own install, `pip install statsforecast`), each fitted per
series on its history grid (missing steps carried forward) at the naive baseline's season.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from common.recipes import forecaster, recipe

from lruts.data import data_file

VAL_FRACTION = 0.1


@dataclass(frozen=True)
class PanelCase:
    name: str
    file: str
    horizon: int
    lookback: int
    grid: str  # pandas frequency of each series' grid
    scale_season: int  # of MASE's in-sample naive
    naive_season: int  # of the seasonal-naive baseline


CASES = {
    "gafa_stock": PanelCase("gafa_stock", "finance/gafa_stock.csv", 5, 60, "B", 1, 5),
    "aus_retail": PanelCase("aus_retail", "panel/aus_retail.csv", 12, 36, "MS", 12, 12),
}


def read(case: PanelCase) -> pd.DataFrame:
    """The panel as (id, ds, y), sorted by series and time."""
    raw = pd.read_csv(data_file(case.file))
    if case.name == "gafa_stock":
        df = pd.DataFrame({"id": raw["Symbol"], "ds": pd.to_datetime(raw["Date"]), "y": raw["Adj_Close"]})
    else:
        df = pd.DataFrame(
            {"id": raw["Series ID"], "ds": pd.to_datetime(raw["Month"], format="%Y %b"), "y": raw["Turnover"]}
        )
    return df.sort_values(["id", "ds"]).reset_index(drop=True)


def on_grid(rows: pd.DataFrame, freq: str) -> pd.Series:
    """One series' y on its grid from its first to its last row, NaN where a step has no row."""
    return rows.set_index("ds")["y"].reindex(pd.date_range(rows["ds"].min(), rows["ds"].max(), freq=freq))


def too_short(case: PanelCase, length: int) -> bool:
    """Whether a history of `length` steps has no training window of its own (panel_splits drops it): fewer
    training rows than one window after the validation rows (max(horizon, VAL_FRACTION of the history))."""
    n_val = max(case.horizon, math.ceil(VAL_FRACTION * length))
    return length - n_val < case.lookback + case.horizon


def split(case: PanelCase, df: pd.DataFrame):
    """(history rows of the kept series, {id: hold-out grid y (H,)}, {id: history grid y}, ids left out)."""
    history, holdout, grids, dropped = [], {}, {}, []
    for sid, rows in df.groupby("id", sort=True):
        grid = on_grid(rows, case.grid)
        if too_short(case, len(grid) - case.horizon):
            dropped.append(sid)
            continue
        cut = grid.index[-case.horizon]
        history.append(rows[rows["ds"] < cut])
        holdout[sid], grids[sid] = grid.iloc[-case.horizon :], grid.iloc[: -case.horizon]
    return pd.concat(history, ignore_index=True), holdout, grids, dropped


def lru_forecasts(case: PanelCase, history: pd.DataFrame, holdout: dict, args, blend: bool, seed: int):
    """{id: (H,) forecast on the hold-out's dates} of a forecaster fitted on `history`, and its fit seconds."""
    fc = forecaster(case.lookback, case.horizon, args, seed=seed, blend=blend)
    t = time.perf_counter()
    fc.fit(history, id_col="id", time_col="ds", target_col="y", val_fraction=VAL_FRACTION)
    fit_s = time.perf_counter() - t
    out = fc.predict()
    forecasts = {}
    for sid, rows in out.groupby("id", sort=False):
        dates = pd.DatetimeIndex(rows["ds"])
        if not dates.equals(holdout[sid].index):
            raise SystemExit(f"{sid}: the forecast is dated {list(dates)}, the hold-out {list(holdout[sid].index)}")
        forecasts[sid] = rows["forecast"].to_numpy()
    return forecasts, fit_s, fc.freq


def baselines(grid: pd.Series, horizon: int, season: int) -> dict[str, np.ndarray]:
    y = grid.ffill().to_numpy()
    return {
        "repeat-last": np.full(horizon, y[-1]),
        f"seasonal naive ({season})": y[-season + (np.arange(horizon) % season)],
    }


def peer_forecasts(case: PanelCase, grids: dict[str, pd.Series]) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """{model: {id: (H,) forecast}} of statsforecast's AutoETS and AutoTheta, one fit per series, and the
    seconds all fits and forecasts took."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta

    long = pd.concat(
        pd.DataFrame({"unique_id": sid, "ds": g.index, "y": g.ffill().to_numpy()}) for sid, g in grids.items()
    )
    models = [AutoETS(season_length=case.naive_season), AutoTheta(season_length=case.naive_season)]
    t = time.perf_counter()
    out = StatsForecast(models=models, freq=case.grid, n_jobs=1).forecast(df=long, h=case.horizon)
    seconds = time.perf_counter() - t
    out = out.reset_index() if "unique_id" not in out.columns else out
    return {
        f"{name} (statsforecast)": {sid: rows[name].to_numpy() for sid, rows in out.groupby("unique_id")}
        for name in ("AutoETS", "AutoTheta")
    }, seconds


def scale(grid: pd.Series, season: int) -> float:
    y = grid.to_numpy()
    return float(np.nanmean(np.abs(y[season:] - y[:-season])))


def run(case: PanelCase, args) -> None:
    df = read(case)
    history, holdout, grids, dropped = split(case, df)
    ids = sorted(holdout)
    methods: dict[str, dict[str, np.ndarray]] = {}
    notes = []
    for blend in (True, False):
        runs = [lru_forecasts(case, history, holdout, args, blend, seed) for seed in args.seeds]
        name = "LRU (global)" + ("" if blend else ", network alone")
        methods[name] = {sid: np.mean([r[0][sid] for r in runs], axis=0) for sid in ids}
        notes.append(f"{name}: fit {' / '.join(f'{r[1]:.0f}' for r in runs)} s")
        freq = runs[0][2]
    for sid in ids:
        for name, pred in baselines(grids[sid], case.horizon, case.naive_season).items():
            methods.setdefault(name, {})[sid] = pred
    if args.peers:
        peers, seconds = peer_forecasts(case, {sid: grids[sid] for sid in ids})
        methods |= peers
        notes.append(f"statsforecast: {seconds:.0f} s for both models over every series")
    scales = {sid: scale(grids[sid], case.scale_season) for sid in ids}
    errors = {
        name: np.array([np.nanmean(np.abs(preds[sid] - holdout[sid].to_numpy())) for sid in ids])
        for name, preds in methods.items()
    }
    s = np.array([scales[sid] for sid in ids])
    mase = {name: e / s for name, e in errors.items()}

    print(f"\n### {case.name}: {len(ids)} series, horizon {case.horizon}, lookback {case.lookback}, "
          f"forecaster frequency {freq!r}")  # fmt: skip
    first, last = min(h.index[0] for h in holdout.values()), max(h.index[-1] for h in holdout.values())
    print(f"hold-out: each series' last {case.horizon} grid steps ({first:%Y-%m-%d} … {last:%Y-%m-%d}); "
          f"MASE scale: in-sample naive of season {case.scale_season}; {len(dropped)} series left out "
          f"(history too short for lookback + horizon + validation): {dropped}")  # fmt: skip
    print("; ".join(notes) + "\n")
    lru = mase["LRU (global)"]
    print("| method | mean MASE | median MASE | aggregate MASE | LRU (global) better / tied on |")
    print("|---|---:|---:|---:|---:|")
    for name, m in mase.items():
        # a blend that chose a baseline alone equals it up to float rounding: a tie, not a win
        wins, ties = np.mean(lru < m * (1 - 1e-6)), np.mean(np.isclose(lru, m, rtol=1e-6))
        better = "" if name == "LRU (global)" else f"{wins:.0%} / {ties:.0%}"
        print(f"| {name} | {m.mean():.3f} | {np.median(m):.3f} | {errors[name].sum() / s.sum():.3f} | {better} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", choices=sorted(CASES), default=list(CASES))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--peers", action="store_true", help="add statsforecast's AutoETS and AutoTheta")
    ap.add_argument("--defaults", action="store_true", help="the forecaster's default network and training budget")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    print(f"LRU: {recipe(args)}, seeds {args.seeds}; no covariates")
    for name in args.datasets:
        run(CASES[name], args)


if __name__ == "__main__":
    main()

"""A demo forecaster for the dashboard's panel view, built from the shared data directory, no code needed:

    LRUTS_DATA_DIRS=../shared/datasets python -m dashboard.demo     # or the dashboard's "Build the demo" button

It reads covariates/electricity_short.csv (hourly prices `y` of one market with two day-ahead covariates,
`Exogenous1` and `Exogenous2`) and covariates/electricity_future_vars.csv (those covariates for the 24 hours
after the file), holds the last week's prices out (their covariates stay: they are known a day ahead), and
fits a small LRUForecaster on the rest with both covariates and calendar features. It writes
runs/electricity_short/L<lookback>-H<horizon>/forecaster.lruts and a results.json naming both files, where
dashboard/catalog.py finds local checkpoints; the dashboard replays the held-out week through update().
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lruts.errors import DataError

PRICES = "covariates/electricity_short.csv"
FUTURE = "covariates/electricity_future_vars.csv"
COVARIATES = ["Exogenous1", "Exogenous2"]
LOOKBACK, HORIZON, HELD_OUT = 168, 24, 7 * 24
NETWORK = dict(d_model=16, d_state=16, n_layers=2, dropout=0.0)  # a CPU minute, not a benchmark


def demo_files() -> tuple[Path, Path] | None:
    """The two demo files from the first data directory that has them (lruts.data.files.data_dirs), or None."""
    from lruts.data.files import data_dirs

    for d in data_dirs():
        if (d / PRICES).is_file() and (d / FUTURE).is_file():
            return d / PRICES, d / FUTURE
    return None


def demo_dir(runs: Path) -> Path:
    return Path(runs) / "electricity_short" / f"L{LOOKBACK}-H{HORIZON}"


def build_demo(runs: Path, *, epochs: int = 3, steps_per_epoch: int = 40) -> Path:
    """Fit and save the demo forecaster under `runs`; returns the forecaster.lruts path. DataError when
    the data directory lacks the files."""
    from lruts import LRUForecaster
    from lruts.data.files import data_dirs
    from lruts.io import save_json
    from lruts.training import TrainConfig

    files = demo_files()
    if files is None:
        raise DataError(
            f"{PRICES} and {FUTURE} are in none of the data directories {[str(d) for d in data_dirs()]}; "
            "set LRUTS_DATA_DIRS to the folder that holds them (e.g. ../shared/datasets)"
        )
    prices, future = files
    frame = pd.read_csv(prices, parse_dates=["ds"])[["unique_id", "ds", "y", *COVARIATES]]
    ahead = pd.read_csv(future, parse_dates=["ds"])[["unique_id", "ds", *COVARIATES]]
    frame.loc[frame.index[-HELD_OUT:], "y"] = np.nan  # held out: only the covariates are known ahead
    table = pd.concat([frame, ahead], ignore_index=True)
    train = TrainConfig(epochs=epochs, max_steps_per_epoch=steps_per_epoch, batch_size=32, lr=3e-3, patience=0,
                        progress=False, device="cpu")  # fmt: skip
    fc = LRUForecaster(LOOKBACK, HORIZON, quantiles=[0.1, 0.9], train=train, **NETWORK)
    fc.fit(table, id_col="unique_id", time_col="ds", target_col="y", future_covariates=COVARIATES, calendar=True)
    out = demo_dir(runs)
    out.mkdir(parents=True, exist_ok=True)
    path = fc.save(out / "forecaster.lruts")
    config = {"dataset": str(prices), "future": str(future), "lookback": LOOKBACK, "horizons": [HORIZON],
              "held_out": HELD_OUT}  # fmt: skip
    save_json({"config": config}, out / "results.json")
    return path


def main(argv: list[str] | None = None) -> int:
    from dashboard.catalog import default_runs_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=None, help="where to write it (default: the dashboard's runs dir)")
    args = p.parse_args(argv)
    try:
        path = build_demo(args.runs or default_runs_dir())
    except DataError as e:
        print(f"error: {e}")
        return 2
    print(f"wrote {path}; open it in the dashboard: streamlit run dashboard/app.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

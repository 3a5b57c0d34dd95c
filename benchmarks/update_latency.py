"""One series' `update()` with covariates: milliseconds per observation after 1k and 10k steps of history.

    OMP_NUM_THREADS=1 python benchmarks/update_latency.py [--histories 1000 10000] [--observations 200]

A long-fitted LRUForecaster (the project's default architecture, lookback 168, horizon 24, quantiles
0.1/0.9, blend on; two future covariates and calendar features; trained for a few steps only: the timing
does not depend on the weights' values) on one synthetic hourly series. For each history length it is
positioned by set_history() over that many rows, with the future covariates of every later step given
then (as a day-ahead feed would have them), and then receives `--observations` more rows:
  one row   update(one long row) per observation: DataFrame in, the new forecast out as a DataFrame;
  block     update(`--block` rows) per call, the time divided by the rows (what a catch-up after an outage
            or a batch feed costs per observation).
Median wall and CPU (process time, all threads) milliseconds per observation, after `--warm` untimed
calls, and the fastest call's wall time (on a shared machine: the cost without waiting for a core). Each
observation is one recurrent step of the stack, O(1) in the history's length: the columns for
1k and 10k should agree. Target (issue 17): ≤ 1 ms per observation.

A second table puts the series in panels of `--panels` series (the others alike, with their own noise; the
network fitted on the panel): one row of one series per update(), after 1,000 steps of history. The
forecast returned covers every series, but only the series that received the row is stepped: the cost
should stay near the single series' (the frame returned grows with the panel).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from lruts import LRUForecaster
from lruts.training import TrainConfig

LOOKBACK, HORIZON = 168, 24
COVARIATES = ["load_fc", "wind_fc"]


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """One hourly series (id s<seed>) driven by two known-ahead covariates, daily cycle and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    load = np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(n)
    wind = rng.standard_normal(n)
    y = 50 + 10 * load - 5 * wind + rng.standard_normal(n)
    ds = pd.date_range("2020-01-01", periods=n, freq="h")
    return pd.DataFrame({"id": f"s{seed}", "ds": ds, "y": y, "load_fc": load, "wind_fc": wind})


def timed(call) -> tuple[float, float]:
    """(wall ms, CPU ms) of call()."""
    w, c = time.perf_counter(), time.process_time()
    call()
    return 1e3 * (time.perf_counter() - w), 1e3 * (time.process_time() - c)


def measure(fitted: LRUForecaster, df: pd.DataFrame, history: int, rows: int, block: int, warm: int) -> dict:
    """Median ms per observation of update() over `rows` rows after `history` rows, one row and `block`
    rows at a time."""
    future = df[["id", "ds", *COVARIATES]]
    out = {}
    for mode, size in (("one row", 1), ("block", block)):
        fc = LRUForecaster.load_from(fitted)
        fc.set_history(df.iloc[:history], future=future.iloc[history:])
        calls = [df.iloc[s : s + size] for s in range(history, history + (warm + rows // size) * size, size)]
        for call in calls[:warm]:
            fc.update(call)
        times = [timed(lambda f=fc, c=call: f.update(c)) for call in calls[warm:]]
        wall = [t[0] / size for t in times]
        out[mode] = (statistics.median(wall), statistics.median(t[1] for t in times) / size, min(wall))
    return out


def fit(df: pd.DataFrame) -> LRUForecaster:
    """The forecaster of the benchmark, trained for a few steps on `df` (one series or a panel)."""
    train = TrainConfig(epochs=1, max_steps_per_epoch=5, progress=False, device="cpu")
    fitted = LRUForecaster(LOOKBACK, HORIZON, quantiles=[0.1, 0.9], train=train)
    fitted.fit(df, id_col="id", time_col="ds", target_col="y", future_covariates=COVARIATES, calendar=True)
    return fitted


def in_panel(n_series: int, rows: int, warm: int) -> tuple[float, float, float]:
    """One row of series s0 per update() in a panel of n_series, after 1,000 steps: median wall / CPU ms and
    the fastest wall ms."""
    history = 1_000
    panel = pd.concat([synthetic(history + 2 * HORIZON + warm + rows, seed) for seed in range(n_series)])
    fc = fit(panel.groupby("id").head(history))
    fc.set_history(
        panel.groupby("id").head(history), future=panel.groupby("id").tail(-history)[["id", "ds", *COVARIATES]]
    )
    s0 = panel[panel["id"] == "s0"]
    calls = [s0.iloc[k : k + 1] for k in range(history, history + warm + rows)]
    for call in calls[:warm]:
        fc.update(call)
    times = [timed(lambda c=call: fc.update(c)) for call in calls[warm:]]
    wall = [t[0] for t in times]
    return statistics.median(wall), statistics.median(t[1] for t in times), min(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--histories", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--observations", type=int, default=200, help="observations timed per history and mode")
    ap.add_argument("--block", type=int, default=50, help="rows per update() call in the block mode")
    ap.add_argument("--warm", type=int, default=5, help="untimed calls first (compilation, caches)")
    ap.add_argument("--panels", type=int, nargs="*", default=[10, 100], help="series per panel, second table")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    longest = max(args.histories) + (args.warm + 1) * args.block + args.observations + 2 * HORIZON
    df = synthetic(longest)
    fitted = fit(df.iloc[:1_000])
    cfg = fitted.net_config.network
    print(f"one hourly series, future covariates {COVARIATES} + calendar; lookback {LOOKBACK}, horizon {HORIZON}, "
          f"quantiles 0.1/0.9, blend on; network d_model {cfg.d_model}, d_state {cfg.d_state}, "
          f"{cfg.n_layers} layers; torch threads 1\n")  # fmt: skip
    results = {h: measure(fitted, df, h, args.observations, args.block, args.warm) for h in args.histories}
    print("| update() | " + " | ".join(f"history {h:,}: wall / CPU / fastest ms per obs" for h in args.histories)
          + " |")  # fmt: skip
    print("|---|" + "---:|" * len(args.histories))
    for mode in ("one row", f"block of {args.block}"):
        key = "one row" if mode == "one row" else "block"
        cells = " | ".join(" / ".join(f"{v:.3f}" for v in results[h][key]) for h in args.histories)
        print(f"| {mode} | {cells} |")
    print("\n| series in the panel | one row of one series: wall / CPU / fastest ms |\n|---|---:|")
    for n in args.panels:
        print(f"| {n} | " + " / ".join(f"{v:.3f}" for v in in_panel(n, args.observations, args.warm)) + " |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

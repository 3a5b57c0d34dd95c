"""A synthetic panel of long-format series: load it, cut its windows, feed a training loop; memory and windows/s.

    python benchmarks/panel.py [--series 1000] [--steps 5000] [--lookback 168] [--horizon 24] [--batch 256]

The panel: `series` hourly series of `steps` rows each, starting at different times, 1% of the targets
missing, one future covariate (reaching `horizon` rows past each series' end) and one past covariate.
Raw numeric size: every number of the long table as float32 (target + two covariates: rows · 3 · 4 bytes).

  load     long polars frame -> Panel (time; the panel's arrays, bytes)
  cut      panel_splits (per-series scaler, train/val index) and `batches` batches of random windows
           read straight from the dataset: the panel's bytes plus the peak of every allocation made
           while cutting (tracemalloc), as a multiple of the raw size
  loader   the same through make_loader(train, batch, shuffle=True): windows/s delivered to the loop, and
           its peak: the Python allocations (tracemalloc) plus the sampler's permutation of every window
           index (a torch tensor, 4 bytes a window, which tracemalloc does not see)
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import polars as pl


def synthetic(series: int, steps: int, horizon: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = steps + horizon
    ids = np.repeat(np.arange(series, dtype=np.int32), n)
    offsets = rng.integers(0, 24 * 30, series)  # series start up to a month apart
    ts = np.datetime64("2020-01-01T00", "h") + (offsets[:, None] + np.arange(n)).reshape(-1)
    level = rng.uniform(10, 1000, series).astype(np.float32)
    temp = rng.standard_normal(series * n).astype(np.float32)
    y = (level[:, None] + np.cumsum(rng.standard_normal((series, n), dtype=np.float32), axis=1)).reshape(-1)
    y += 0.5 * temp
    y[rng.random(y.size) < 0.01] = np.nan
    tail = np.tile(np.arange(n) >= steps, series)  # the horizon rows: future covariate only
    y[tail] = np.nan
    load = rng.standard_normal(series * n).astype(np.float32)
    load[tail] = np.nan
    frame = pl.DataFrame({"id": ids, "ds": ts.astype("datetime64[ns]"), "y": y, "temp": temp, "load": load})
    return frame.with_columns(pl.col("y", "load").fill_nan(None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--lookback", type=int, default=168)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batches", type=int, default=400)
    args = ap.parse_args()

    import torch

    from lruts.data import load_panel, panel_splits
    from lruts.training import make_loader

    torch.set_num_threads(1)
    frame = synthetic(args.series, args.steps, args.horizon)
    raw = args.series * args.steps * 3 * 4

    t = time.perf_counter()
    panel = load_panel(frame, id_col="id", time_col="ds", target_col="y", future_covariates=["temp"],
                       past_covariates=["load"])  # fmt: skip
    load_s = time.perf_counter() - t
    del frame

    tracemalloc.start()
    t = time.perf_counter()
    splits = panel_splits(panel, args.lookback, args.horizon)
    cut_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(args.batches):
        splits.train.__getitems__(rng.integers(0, len(splits.train), args.batch).tolist())
    direct = args.batches * args.batch / (time.perf_counter() - t)
    peak = tracemalloc.get_traced_memory()[1]

    tracemalloc.reset_peak()
    loader = make_loader(splits.train, args.batch, shuffle=True)
    it = iter(loader)
    next(it)  # warm-up
    t = time.perf_counter()
    n = 0
    for _, batch in zip(range(args.batches), it, strict=False):
        n += len(batch)
    rate = n / (time.perf_counter() - t)
    loader_peak = tracemalloc.get_traced_memory()[1] + loader.sampler.nbytes
    tracemalloc.stop()

    mb = 1 << 20
    rows = [
        ("series x steps", f"{args.series:,} x {args.steps:,}"),
        ("raw numeric size", f"{raw / mb:,.1f} MB"),
        ("panel arrays", f"{panel.nbytes / mb:,.1f} MB ({panel.nbytes / raw:.2f}x raw)"),
        ("load_panel", f"{load_s:.2f} s"),
        ("windows train / val", f"{len(splits.train):,} / {len(splits.val):,}"),
        ("window index", f"{(splits.train.index_nbytes + splits.val.index_nbytes) / 1024:,.1f} kB"),
        ("panel_splits", f"{cut_s:.2f} s"),
        ("peak while cutting", f"{peak / mb:,.1f} MB allocated + panel = {(panel.nbytes + peak) / raw:.2f}x raw"),
        ("windows/s, direct", f"{direct:,.0f} (batch {args.batch}, L={args.lookback}, H={args.horizon}, 1 thread)"),
        ("windows/s, loader", f"{rate:,.0f}"),
        ("peak with the loader", f"{loader_peak / mb:,.1f} MB + panel = {(panel.nbytes + loader_peak) / raw:.2f}x raw"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()

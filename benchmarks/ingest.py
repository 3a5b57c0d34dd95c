"""Ingest + window a synthetic long series from CSV: wall time, peak memory, windows/s to a training loop.

    python benchmarks/ingest.py [--series 321] [--steps 155000] [--workdir /tmp/lruts-bench] [--keep]

Three processes, so that one phase's memory does not hide in another's: one writes the CSV (an hourly
random walk, 321 × 155,000 = 50M values, 3 decimals), one measures, this one prints the table. In the
measuring process each phase's peak resident memory (VmHWM, reset between phases through
/proc/self/clear_refs) is reported above the baseline after the imports (torch, polars), as a multiple
of the raw numeric size T·C·4 bytes (the float32 values, which is what the library holds):
  ingest       CSV -> validated Parquet (sha256, sniff, read, validate, write)
  load+window  Parquet -> Series (T, C) -> make_splits (scaler on train rows, one scaled copy, views)
Throughput: a dummy loop consumes make_loader(train, B, shuffle=True) batches (multivariate and
channel-independent) vs the time of one real LRU training step (forward, backward, AdamW) on the same
batch shape, so "loader share" is the fraction of a training step the loader would cost on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def generate(path: Path, series: int, steps: int, chunk: int = 5_000) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    level = rng.uniform(10, 1000, series).astype(np.float32)
    start = np.datetime64("2010-01-01T00:00", "ns")
    with open(path, "wb") as f:
        for lo in range(0, steps, chunk):
            n = min(chunk, steps - lo)
            walk = level + np.cumsum(rng.standard_normal((n, series), dtype=np.float32), axis=0)
            level = walk[-1]
            ts = start + np.arange(lo, lo + n).astype("timedelta64[h]")
            frame = pl.DataFrame({"date": ts}).with_columns(pl.from_numpy(walk, schema=[str(i) for i in range(series)]))
            frame.write_csv(f, include_header=lo == 0, float_precision=3, datetime_format="%Y-%m-%d %H:%M:%S")


def measure(path: Path, home: Path, lookback: int, horizon: int, batch: int, n_batches: int, fresh: bool) -> dict:
    os.environ["LRUTS_DATA_HOME"] = str(home)
    import torch

    from lruts import DeepLRUConfig, LRUSequenceModel
    from lruts.data import ingest, load_series, make_splits
    from lruts.training import make_loader

    torch.set_num_threads(2)
    out: dict = {"threads": torch.get_num_threads()}
    out["baseline"] = _status("VmRSS")

    _reset_peak()
    t = time.perf_counter()
    result = ingest(path, name="bench", force=fresh)
    out["ingest_s"] = time.perf_counter() - t
    out["ingest_peak"] = _status("VmHWM")
    out["reused"] = result.reused
    out["rows"], out["series"] = result.report.rows, result.report.n_columns

    _reset_peak()
    before = _status("VmRSS")
    t = time.perf_counter()
    series = load_series(path, name="bench")
    splits = make_splits(series, lookback, horizon)
    out["window_s"] = time.perf_counter() - t
    out["window_peak"] = _status("VmHWM")
    out["window_before"] = before
    out["windows"] = [len(splits.train), len(splits.val), len(splits.test)]
    out["peak"] = max(out["ingest_peak"], out["window_peak"])
    if not fresh:
        return out

    def loader_rate(ds) -> float:
        loader = make_loader(ds, batch, shuffle=True)
        it = iter(loader)
        next(it)  # warm-up
        t = time.perf_counter()
        n = 0
        for _, windows in zip(range(n_batches), it, strict=False):
            n += len(windows)
        return n / (time.perf_counter() - t)

    out["loader_mv"] = loader_rate(splits.train)
    ci = make_splits(series, lookback, horizon, channel_independent=True)
    out["loader_ci"] = loader_rate(ci.train)

    c = series.n_channels
    for key, d_in, model_batch in (("step_mv", c, batch), ("step_ci", 1, batch)):
        model = LRUSequenceModel(DeepLRUConfig(d_input=d_in, d_model=128, d_state=256, n_layers=4), d_output=d_in)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(model_batch, lookback, d_in)
        times = []
        for i in range(6):
            t = time.perf_counter()
            pred, _ = model(x)
            loss = pred[:, -horizon:].pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t)
        out[key] = sorted(times)[len(times) // 2]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=321)
    ap.add_argument("--steps", type=int, default=155_000)
    ap.add_argument("--lookback", type=int, default=96)
    ap.add_argument("--horizon", type=int, default=96)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=300, help="batches timed per loader")
    ap.add_argument("--workdir", type=Path, default=None, help="where the CSV and Parquet go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    ap.add_argument("--_generate", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_reuse", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._generate:
        generate(args._generate, args.series, args.steps)
        return
    if args._measure:
        home = args._measure.parent / "home"
        res = measure(args._measure, home, args.lookback, args.horizon, args.batch, args.batches, not args._reuse)
        print(json.dumps(res))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="lruts-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"synthetic_{args.series}x{args.steps}.csv"
    me = [sys.executable, __file__, "--series", str(args.series), "--steps", str(args.steps)]
    if not csv.exists():
        t = time.perf_counter()
        subprocess.run([*me, "--_generate", str(csv)], check=True)
        print(f"generated {csv} ({csv.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
    flags = ["--lookback", str(args.lookback), "--horizon", str(args.horizon), "--batch", str(args.batch)]
    flags += ["--batches", str(args.batches)]

    def child(*extra: str) -> dict:
        run = subprocess.run([*me, *flags, "--_measure", str(csv), *extra], check=True, capture_output=True, text=True)
        return json.loads(run.stdout.strip().splitlines()[-1])

    r = child()  # cold: ingest from CSV, then load + window, then the loaders and model steps
    w = child("--_reuse")  # a training process: the Parquet is up to date, load + window only
    assert w["reused"]
    raw = r["rows"] * r["series"] * 4
    mb = 1 / 2**20

    print(
        f"\n{r['series']} series x {r['rows']:,} steps = {r['rows'] * r['series'] / 1e6:.1f}M values; "
        f"CSV {csv.stat().st_size * mb:,.0f} MiB; raw numeric size (float32) {raw * mb:,.0f} MiB; "
        f"baseline RSS after imports {r['baseline'] * mb:,.0f} MiB; torch threads {r['threads']}; "
        f"L={args.lookback} H={args.horizon} B={args.batch}; windows train/val/test {r['windows']}; "
        f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print("| phase (process) | wall s | peak RSS above baseline MiB | peak / raw numeric size |")
    print("|---|---|---|---|")
    rows = (
        ("ingest CSV -> Parquet (cold process)", r["ingest_s"], r["ingest_peak"] - r["baseline"]),
        ("load + make_splits after it (same process)", r["window_s"], r["window_peak"] - r["baseline"]),
        ("whole pipeline, one process", r["ingest_s"] + r["window_s"], r["peak"] - r["baseline"]),
        (
            "load + make_splits, Parquet up to date (new process)",
            w["ingest_s"] + w["window_s"],
            w["peak"] - w["baseline"],
        ),
    )
    for phase, secs, above in rows:
        print(f"| {phase} | {secs:.1f} | {above * mb:,.0f} | {above / raw:.2f}x |")
    print(
        "\n| layout | loader windows/s | LRU train step ms (4 layers, H=128, N=256) | model windows/s | loader share |"
    )
    print("|---|---|---|---|---|")
    for name, key, step in (
        ("multivariate (B, L, 321)", "loader_mv", "step_mv"),
        ("channel-independent (B, L, 1)", "loader_ci", "step_ci"),
    ):
        model_rate = args.batch / r[step]
        share = model_rate / r[key]
        print(f"| {name} | {r[key]:,.0f} | {r[step] * 1e3:.1f} | {model_rate:,.0f} | {share:.1%} |")
    if not args.keep and args.workdir is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

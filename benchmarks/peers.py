"""neuralforecast's NHITS and PatchTST on exactly lruts's protocol windows: the peers a user would pick instead.

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -c constraints.txt -e '.[peers]'   # from the repository root
    # as run on 2026-12-06 (neuralforecast 3.3.0, torch 2.13.0+cpu), the same from a worktree:
    # /work/peers-venv/bin/pip install -c /work/main/constraints.txt -e /work/wt-peers neuralforecast
    OMP_NUM_THREADS=1 /work/peers-venv/bin/python benchmarks/peers.py --dataset exchange_rate --horizons 96 \
        [--lookback 336] [--models nhits patchtst] [--max-steps N] [--seed 1] [--threads 1]

Its own optional install (the `peers` extra), never a runtime dependency of lruts and not in the test suite.
`-c constraints.txt` pins torch to the CPU wheel; without it pip fetches a multi-GB CUDA torch.

What it runs, per dataset and horizon H (../shared/spec/forecasting.md):
- the series, split borders and train-fitted scaler come from lruts.data (`load_series`, `make_splits`), as
  in lruts.forecasting.experiment; the whole series is scaled with that scaler and cut at the end of the
  test split (ETT's trailing rows are never used), one univariate series per variable (neuralforecast's
  channel-independent layout), time stamps replaced by row numbers (`freq=1`) so that a window is a row range
  whatever the file's dates (duplicated or missing timestamps included);
- each model at neuralforecast's defaults except `input_size=L`, `h=H`, `random_seed=--seed` and, when given,
  `max_steps=--max-steps` (the defaults: NHITS 1,000 steps, PatchTST 5,000, MAE loss, batches of 1,024 windows,
  no early stopping, scaler_type "identity", PatchTST with RevIN). Without early stopping there is nothing
  to validate, so it trains on the train rows alone, which is where lruts trains; `--early-stop-patience K`
  instead fits on train + val rows with `val_size` = the val rows (still training on the train rows only) and
  stops after K validation checks (every `val_check_steps` = 100 steps) without improvement;
- `NeuralForecast.cross_validation(use_fitted=True, step_size=1, n_windows=<lruts's test windows>)` predicts
  every test window with the fitted weights; the cutoffs and the targets are checked against lruts's test
  split, window by window, before scoring;
- MSE and MAE on the scaled values over every window, step and variable, sMAPE and MASE on the original scale:
  lruts.forecasting.evaluation.score, as for the LRU.

Prints a markdown table and writes runs/peers/<dataset>/H<H>/<model>.json (settings, library versions, windows,
seed, metrics, fit and predict seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from lruts.data import load_series, make_splits
from lruts.errors import ConfigError, DataError
from lruts.forecasting.evaluation import Predictions, score
from lruts.forecasting.experiment import naive_scales
from lruts.io import save_json

MODELS = {"nhits": "NHITS", "patchtst": "PatchTST"}  # flag -> neuralforecast class


def long_frame(scaled: np.ndarray, columns: list[str]):
    """(T, C) scaled values -> neuralforecast's long frame: unique_id (the column), ds (row number), y."""
    import pandas as pd

    t, c = scaled.shape
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.asarray(columns, dtype=object), t),
            "ds": np.tile(np.arange(t, dtype=np.int64), c),
            "y": scaled.T.reshape(-1).astype(np.float64),
        }
    )


def build_model(name: str, lookback: int, horizon: int, args) -> tuple[object, dict]:
    """The neuralforecast model at its defaults but for these settings (returned beside it, for the JSON)."""
    import neuralforecast.models as nf_models

    settings = {"input_size": lookback, "h": horizon, "random_seed": args.seed}
    if args.max_steps is not None:
        settings["max_steps"] = args.max_steps
    if args.early_stop_patience > 0:
        settings["early_stop_patience_steps"] = args.early_stop_patience
    quiet = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    return getattr(nf_models, MODELS[name])(**settings, **quiet), settings


def run_peer(name: str, series, splits, args) -> dict:
    """Fit one peer on the train rows, predict every test window, score it like lruts scores the LRU."""
    from neuralforecast import NeuralForecast

    lookback, horizon = splits.lookback, splits.horizon
    train_end = splits.borders["train"][1]
    val_end = splits.borders["val"][1]
    test_start, test_end = splits.borders["test"]
    scaled = splits.scaler.transform(series.values[:test_end].astype(np.float64))
    frame = long_frame(scaled, series.columns)
    n_windows = len(splits.test)

    model, settings = build_model(name, lookback, horizon, args)
    nf = NeuralForecast(models=[model], freq=1)
    early_stop = args.early_stop_patience > 0
    fit_rows = val_end if early_stop else train_end
    val_size = val_end - train_end if early_stop else 0
    t0 = time.perf_counter()
    nf.fit(frame[frame["ds"] < fit_rows], val_size=val_size)
    fit_seconds = time.perf_counter() - t0
    fitted = nf.models[0]
    t0 = time.perf_counter()
    cv = nf.cross_validation(frame, n_windows=n_windows, step_size=1, refit=False, use_fitted=True)
    predict_seconds = time.perf_counter() - t0

    column = MODELS[name]
    cv = cv.sort_values(["unique_id", "cutoff", "ds"])
    order = {c: k for k, c in enumerate(series.columns)}
    if sorted(cv["unique_id"].unique(), key=order.get) != list(series.columns):
        raise AssertionError(f"{column} forecast series {sorted(cv['unique_id'].unique())}, not {series.columns}")
    shape = (len(series.columns), n_windows, horizon)
    by_series = [cv[cv["unique_id"] == c] for c in series.columns]
    pred = np.stack([g[column].to_numpy() for g in by_series]).reshape(shape).transpose(1, 2, 0)
    true = np.stack([g["y"].to_numpy() for g in by_series]).reshape(shape).transpose(1, 2, 0)
    cutoffs = np.stack([g["cutoff"].to_numpy() for g in by_series]).reshape(shape)[..., 0]
    check_windows(cutoffs, true, splits, test_start)

    metrics = score(
        Predictions(pred[..., None].astype(np.float32), true.astype(np.float32)),
        splits.scaler,
        naive_scale=naive_scales(splits, series),
    )
    return {
        "dataset": series.name,
        "model": column,
        "lookback": lookback,
        "horizon": horizon,
        "windows": n_windows,
        "seed": args.seed,
        "threads": args.threads,
        "settings": {
            **settings,
            "early_stop_patience_steps": args.early_stop_patience,
            "fit_rows": [0, fit_rows],
            "val_size": val_size,
            "max_steps": fitted.max_steps,
            "steps_run": len(fitted.train_trajectories),  # one (global_step, loss) entry per training step
            "cross_validation": {"n_windows": n_windows, "step_size": 1, "refit": False, "use_fitted": True},
        },
        "test": metrics,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "versions": {
            pkg: version(pkg) for pkg in ("lruts", "neuralforecast", "torch", "pytorch-lightning", "numpy", "pandas")
        }
        | {"python": platform.python_version()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }


def check_windows(cutoffs: np.ndarray, true: np.ndarray, splits, test_start: int) -> None:
    """Prove the forecasts are lruts's test windows: window w's last input row is test_start + L + w - 1 for
    every series (so its input is the L rows lruts reads), and its targets equal lruts's scaled targets."""
    n, lookback = len(splits.test), splits.lookback
    expected = test_start + lookback - 1 + np.arange(n)
    if not (cutoffs == expected[None, :]).all():
        raise AssertionError("neuralforecast's cutoffs are not lruts's test windows")
    ours = splits.test.__getitems__(list(range(n))).y.numpy()
    if not np.allclose(true, ours, atol=1e-5):
        raise AssertionError(f"targets differ from lruts's test split (max |Δ| {np.abs(true - ours).max():.2e})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="a registry name (ETTh1, exchange_rate, electricity, ...)")
    ap.add_argument("--horizons", type=int, nargs="+", default=[96])
    ap.add_argument("--lookback", type=int, default=336, help="lruts's default and the README's commands: 336")
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["nhits", "patchtst"])
    ap.add_argument("--max-steps", type=int, help="training steps (default: each model's, NHITS 1000, PatchTST 5000)")
    ap.add_argument(
        "--early-stop-patience",
        type=int,
        default=-1,
        help="validation checks without improvement before stopping (default -1: off, as in neuralforecast)",
    )
    ap.add_argument("--seed", type=int, default=1, help="random_seed (neuralforecast's default: 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--out", default="runs", help="results go to <out>/peers/<dataset>/H<H>/<model>.json")
    args = ap.parse_args()
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1, got {args.max_steps}")
    try:
        import neuralforecast  # noqa: F401
    except ImportError:
        raise ConfigError(
            "benchmarks/peers.py needs neuralforecast: install the peers extra in its own venv "
            "(see this script's docstring: pip install -c constraints.txt -e '.[peers]')"
        ) from None
    import torch

    torch.set_num_threads(args.threads)
    for noisy in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "neuralforecast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    series = load_series(args.dataset)
    rows = []
    for horizon in args.horizons:
        try:
            splits = make_splits(series, args.lookback, horizon)
        except DataError as e:
            raise DataError(f"{args.dataset} at lookback {args.lookback}, horizon {horizon}: {e}") from None
        for name in args.models:
            result = run_peer(name, series, splits, args)
            path = save_json(result, Path(args.out) / "peers" / args.dataset / f"H{horizon}" / f"{name}.json")
            rows.append(result)
            print(f"{result['model']} H={horizon}: MSE {result['test']['mse']:.4f}, wrote {path}", flush=True)

    print(f"\n{series.name}, lookback {args.lookback}, every test window, scaled values, {args.threads} thread(s)\n")
    print("| model | H | windows | MSE | MAE | fit s | predict s | steps |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['horizon']} | {r['windows']} | {r['test']['mse']:.4f} | {r['test']['mae']:.4f} "
            f"| {r['fit_seconds']:.0f} | {r['predict_seconds']:.0f} | {r['settings']['steps_run']} |"
        )


if __name__ == "__main__":
    main()

"""What the years before the test split say about the blend's parts: rolling-origin folds.

    python benchmarks/history_folds.py --dataset exchange_rate --horizon 192 [--lookback 336] [--folds 5]

The blend weighs its parts on the validation split alone. Where the test split disagrees with that choice
(exchange_rate: the map of levels loses to repeat-last on validation and our DLinear wins on test; ETTh1:
the other way round) one may ask whether a longer history would have chosen otherwise. This splits the
later 55% of the rows before the test split (train and validation) into `folds` consecutive blocks; for
each block it fits the two shared ridge maps of the blend on every window whose target ends before the
block (penalty chosen, from the blend's grid, on the last 15% of those windows by a map fitted on the
windows before them) and scores them on the windows inside the block, beside repeat-last and seasonal
naive. Scaled values (the train split's mean and std), MSE over every window (a stride keeps ≤ 3000 per
dataset). The test split is never read.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from lruts.data import load_series
from lruts.data.registry import get_spec
from lruts.data.windows import split_borders
from lruts.forecasting.baselines import season_length
from lruts.forecasting.blend import best_ridge, level_features, ridge_features


def windows(x: torch.Tensor, origins: np.ndarray, lookback: int, horizon: int, relative: bool):
    """The blend's ridge features (N·C, L + 1) and targets (N·C, H) at these origins, relative to the last
    value or not (an error is the same on either scale: the last value cancels)."""
    w = torch.stack([x[o - lookback : o] for o in origins])  # (N, L, C)
    y = torch.stack([x[o : o + horizon] for o in origins]).transpose(1, 2)  # (N, C, H)
    z = (ridge_features if relative else level_features)(w, lookback)
    t = y - w[:, -1, :, None] if relative else y
    return z.flatten(0, 1), t.flatten(0, 1)


def fit_ridge(fit_on: tuple[torch.Tensor, torch.Tensor], tune_on: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The blend's ridge map of (features, targets), its penalty chosen on the `tune_on` windows."""
    (z, t), (vz, vt) = fit_on, tune_on
    return best_ridge(z.T @ z, z.T @ t, vz.T @ vz, vz.T @ vt)[0]


def seasonal_naive_mse(x: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> float:
    """The last season repeated over the horizon, as the blend's seasonal naive part."""
    steps = np.arange(horizon) % season - season  # never a value after the origin
    pred = np.stack([x[o + steps] for o in origins])
    return float(np.square(pred - np.stack([x[o : o + horizon] for o in origins])).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--horizon", type=int, required=True)
    ap.add_argument("--lookback", type=int, default=336)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    L, H = args.lookback, args.horizon

    series = load_series(args.dataset)
    rule = get_spec(args.dataset).split if get_spec(args.dataset) else "ratio"
    borders = split_borders(len(series.values), L, rule)
    train_end, before_test = borders["train"][1], borders["val"][1]
    x = series.values[:before_test].astype(np.float64)
    x = torch.from_numpy((x - x[:train_end].mean(0)) / x[:train_end].std(0))
    stride = max(1, (before_test - L - H) // 3000)
    origins = np.arange(L, before_test - H + 1, stride)
    edges = np.linspace(int(0.45 * before_test), before_test, args.folds + 1).astype(int)

    print(f"{args.dataset}, lookback {L}, horizon {H}: {len(origins)} windows before the test split, stride {stride}\n")
    m = season_length(series.freq)
    print(f"| rows | windows scored | repeat-last | seasonal naive (m = {m}) | relative map | map of levels |")
    print("|---|---|---|---|---|---|")
    for lo, hi in itertools.pairwise(edges):
        fit_on, scored = origins[origins + H <= lo], origins[(origins >= lo) & (origins + H <= hi)]
        if len(scored) == 0 or len(fit_on) < 60 or not (fit_on + H <= fit_on[int(0.85 * len(fit_on))]).any():
            continue
        tune = fit_on[int(0.85 * len(fit_on)) :]  # the penalty's windows; the map's end before them
        inner = fit_on[fit_on + H <= tune[0]]
        row = [len(scored)]
        for relative in (True, False):
            w = fit_ridge(windows(x, inner, L, H, relative), windows(x, tune, L, H, relative))
            z, t = windows(x, scored, L, H, relative)
            if relative:  # the target relative to the last value is repeat-last's error
                row += [float(t.square().mean()), seasonal_naive_mse(x.numpy(), scored, H, m) if m else np.nan]
            row.append(float((z @ w - t).square().mean()))
        print(f"| {lo}–{hi} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")


if __name__ == "__main__":
    main()

"""On a random walk nothing beats repeat-last: how often the forecaster keeps it, and what it costs when not.

    python benchmarks/random_walks.py [--walks 20] [--lookback 96] [--horizon 24] [--fit 4000] [--ahead 1000]

For each seed, a daily Gaussian random walk; LRUForecaster at its defaults fits on the first `fit` rows, then
forecasts every 7th day of the next `ahead` by update() (no refit). Per walk: whether the blend kept
repeat-last, the evidence it decided on (t, blocks better / blocks, the training rows' later parts in which
the relative map beat repeat-last) and its MSE over those forecasts divided by repeat-last's on the same
origins. The last line: the walks that kept it and the mean and worst ratio over all walks. Not in the test
suite (the suite checks one walk: tests/test_blend.py).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from lruts import LRUForecaster


def mse_ratio(fc: LRUForecaster, df: pd.DataFrame, start: int, horizon: int) -> float:
    """The forecaster's MSE over every 7th origin from `start`, streamed by update(), over repeat-last's."""
    y = df["y"].to_numpy()
    err, err_last, at = [], [], start
    for origin in range(start, len(df) - horizon + 1, 7):
        if origin > at:
            fc.update(df.iloc[at:origin])
            at = origin
        target = y[origin : origin + horizon]
        err.append(np.mean((fc.forecast_array()[:, 0, 0] - target) ** 2))
        err_last.append(np.mean((y[origin - 1] - target) ** 2))
    return float(np.mean(err) / np.mean(err_last))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--walks", type=int, default=20)
    ap.add_argument("--lookback", type=int, default=96)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--fit", type=int, default=4000)
    ap.add_argument("--ahead", type=int, default=1000)
    args = ap.parse_args()
    logging.getLogger("lruts").setLevel(logging.ERROR)  # the blend's note on keeping repeat-last, once per walk

    print("| walk | kept repeat-last | t | blocks better | history's parts better | MSE / repeat-last's |")
    print("|---|---|---|---|---|---|")
    ratios, kept = [], 0
    for seed in range(args.walks):
        rng = np.random.default_rng(seed)
        n = args.fit + args.ahead
        df = pd.DataFrame(
            {"date": pd.date_range("2000-01-01", periods=n, freq="D"), "y": 100 + rng.normal(size=n).cumsum()}
        )
        fc = LRUForecaster(args.lookback, args.horizon).fit(df.iloc[: args.fit], time_col="date")
        info = fc.blend_info
        keeps = info["weights"]["repeat_last"] == [1.0] * args.horizon
        kept += keeps
        ratios.append(mse_ratio(fc, df, args.fit, args.horizon))
        better, blocks = info["blocks_better"]
        parts_better, parts = info["history_parts_better"]
        t = info["t_against_simple"]
        print(
            f"| {seed} | {'yes' if keeps else 'no'} | {t:.2f} | {better} / {blocks} | {parts_better} / {parts} "
            f"| {ratios[-1]:.3f} |"
        )
    print(
        f"\nkept repeat-last on {kept} of {args.walks} walks; MSE / repeat-last's over all walks: "
        f"mean {np.mean(ratios):.3f}, worst {max(ratios):.3f}"
    )


if __name__ == "__main__":
    main()

"""Evaluate forecasters and baselines on the benchmark protocol (every test window).

    python -m pipelines.evaluate --dataset ETTh1 --lookback 336 --horizons 96 192 336 720
    python -m pipelines.evaluate --dataset electricity --lookback 336 --horizons 96 --baselines dlinear
    python -m pipelines.evaluate --dataset ETTh1 --lookback 512 --horizons 96 --baselines patchtst  # PatchTST/64
    python -m pipelines.evaluate --report      # rewrite the tables of docs/results.md from runs/*/L*-H*/results.json
    python -m pipelines.evaluate --ratio       # per dataset: the LRU's MSE against the best baseline or peer

For each horizon: the LRU forecaster trained by pipelines.train (runs/<dataset>/L<lookback>-H<h>/
forecaster.lruts, if present), repeat-last, seasonal naive and a DLinear trained through the same
trainer; on request (`--baselines patchtst`, tens of minutes per horizon on a CPU) PatchTST, trained
by the same trainer with its own script's hyperparameters. MSE/MAE on scaled values over every test
window (the protocol), MASE and sMAPE on the original scale, and a rolling-origin backtest (origins
`--backtest-stride` steps apart). Beside them, MSE/MAE over the test windows PatchTST's code scores (it
drops the last partial batch of 128; lruts.forecasting.evaluation), to compare with its published
numbers like for like.

A panel (a registered panel dataset such as electricity_prices, or a run trained with --id-col or
--features MS) is scored as its training run split it: the run's own settings are read from the
results.json beside its forecaster, every series' test windows are scored, MASE per series.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BASELINES = ["repeat_last", "seasonal_naive", "dlinear"]  # the default set; PatchTST only on request


@dataclass
class EvaluateConfig:
    dataset: str | None = None  # a registered dataset name or a CSV/Parquet path
    lookback: int = 336  # the LRU's lookback: its model is read from runs/<dataset>/L<lookback>-H<h>/
    horizons: list[int] = field(default_factory=lambda: [96])  # scored one by one
    features: Literal["M", "MS"] = "M"  # MS: the run trained with --features MS (runs/<dataset>-MS/...)
    runs: str = "runs"  # where pipelines.train wrote its models
    # the baselines scored beside the LRU (patchtst: tens of minutes per horizon on a CPU)
    baselines: list[Literal["repeat_last", "seasonal_naive", "dlinear", "patchtst"]] = field(
        default_factory=lambda: list(BASELINES)
    )
    dlinear_epochs: int = 10  # at most, for each learning rate tried
    patchtst_epochs: int = 100  # at most (its scripts' 100)
    backtest_stride: int | None = None  # steps between backtest origins (default: the horizon)
    out: str | None = None  # write all results as JSON here
    # only rewrite the results tables in --results-md from the runs in --runs (next to published numbers)
    report: bool = False
    results_md: str = "docs/results.md"  # markdown file whose results block --report rewrites
    # only print, per dataset in --runs, the LRU's average MSE against the best baseline or peer, and the worst ratio
    ratio: bool = False


def main(argv: list[str] | None = None) -> int:
    from lruts.cli import add_dataclass_arguments, config_from_args

    ap = argparse.ArgumentParser(
        prog="python -m pipelines.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataclass_arguments(ap, EvaluateConfig())
    args = config_from_args(EvaluateConfig(), ap.parse_args(argv))
    if args.ratio:
        from lruts.forecasting.report import ratio_markdown

        print(ratio_markdown(args.runs))
        return 0
    if args.report:
        from lruts.errors import LrutsError
        from lruts.forecasting.report import update_results

        try:
            print(f"updated {update_results(args.results_md, args.runs)}")
        except LrutsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if not args.dataset:
        ap.error("give --dataset NAME (or --report, or --ratio)")

    import logging

    from lruts.errors import LrutsError
    from lruts.forecasting.evaluation import predict_windows, rolling_origin, score
    from lruts.forecasting.experiment import (
        ExperimentConfig,
        baseline_models,
        load_data,
        naive_scales,
        per_series_mase,
        protocol_splits,
        run_label,
        with_dataset_defaults,
    )
    from lruts.forecasting.forecaster import LRUForecaster
    from lruts.io import save_json

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows, everything = [], {}
    for h in args.horizons:
        model_file = (
            Path(args.runs) / run_label(args.dataset, args.features) / f"L{args.lookback}-H{h}" / "forecaster.lruts"
        )
        try:
            fc = LRUForecaster.load(model_file, device="cpu") if model_file.exists() else None
            # a panel is split as its run split it; a wide table, or a dataset without a run, by its defaults
            cfg = ExperimentConfig(dataset=args.dataset, features=args.features)
            if fc is not None and fc.panel is not None:
                cfg = _run_config(model_file.with_name("results.json"), args.dataset)
            cfg = with_dataset_defaults(cfg)
            series = load_data(cfg)
            splits = protocol_splits(cfg, series, args.lookback, h)
        except LrutsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        scale = naive_scales(splits, series)
        models, windows = {}, {}
        if fc is not None:
            models["LRU"] = fc.net
            if fc.lookback != args.lookback:  # an ensemble with a longer member: the same targets, longer inputs
                windows["LRU"] = protocol_splits(cfg, series, fc.lookback, h).test
        else:
            print(
                f"(no trained LRU at {model_file}: run pipelines.train --dataset {args.dataset} "
                f"--lookback {args.lookback} --horizons {h})"
            )
        dlinear_epochs = args.dlinear_epochs if "dlinear" in args.baselines else 0
        patchtst_epochs = args.patchtst_epochs if "patchtst" in args.baselines else 0
        baselines = baseline_models(
            splits, series, h, args.lookback, dlinear_epochs=dlinear_epochs, patchtst_epochs=patchtst_epochs
        )
        models.update({name: m for name, m in baselines.items() if name in args.baselines})
        for name, model in models.items():
            preds = predict_windows(model, windows.get(name, splits.test))
            quantiles = fc.quantiles if name == "LRU" else None  # the forecaster's interval: coverage, Winkler
            m = score(preds, splits.scaler, naive_scale=scale, quantiles=quantiles)
            bt = rolling_origin(preds, args.backtest_stride or h)
            bt_mse = [r["mse"] for r in bt]
            rows.append((h, name, m, len(bt), min(bt_mse), max(bt_mse)))
            everything[f"H{h}/{name}"] = {
                "metrics": m,
                "mase_per_series": per_series_mase(preds, splits, series),
                "backtest": bt,
            }
    print(f"\n{args.dataset}, lookback {args.lookback}; every test window; MSE/MAE scaled, MASE/sMAPE original scale")
    print(
        "| horizon | model | MSE | MAE | MASE mean / median | sMAPE % | windows | MSE / MAE on PatchTST's windows | "
        "backtest origins | origin MSE min–max | interval coverage / Winkler |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    nan = float("nan")
    for h, name, m, n_bt, lo_bt, hi_bt in rows:
        print(
            f"| {h} | {name} | {m['mse']:.3f} | {m['mae']:.3f} | {m.get('mase', nan):.3f} / "
            f"{m.get('mase_median', nan):.3f} | "
            f"{m['smape']:.1f} | {int(m['windows'])} | "
            f"{m.get('mse_patchtst_windows', nan):.3f} / {m.get('mae_patchtst_windows', nan):.3f} | "
            f"{n_bt} | {lo_bt:.3f}–{hi_bt:.3f} | "
            + (f"{_coverage(m):.3f} / {m['winkler']:.2f} |" if "winkler" in m else "– |")
        )
    if args.out:
        save_json(everything, args.out)
    return 0


def _coverage(metrics: dict[str, float]) -> float:
    """The interval's empirical coverage (score names it by its levels: coverage_0.1_0.9)."""
    return next(v for k, v in metrics.items() if k.startswith("coverage_"))


def _run_config(results: Path, dataset: str):
    """The experiment settings a training run saved in its results.json (its data columns and split)."""
    import json

    from lruts.errors import DataError
    from lruts.forecasting.experiment import ExperimentConfig

    if not results.is_file():
        raise DataError(f"{results} is missing: the panel run's settings are read from it; re-run pipelines.train")
    config = dict(json.loads(results.read_text())["config"])
    for key in ("horizon", "n_series", "rows"):  # what the run added to its settings
        config.pop(key, None)
    return ExperimentConfig.from_dict({**config, "dataset": dataset})


if __name__ == "__main__":
    sys.exit(main())

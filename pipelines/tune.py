"""Hyperparameter search with Optuna (TPE, pruning on per-epoch validation loss).

    python -m pipelines.tune --dataset ETTh1 --trials 20
    python -m pipelines.tune --dataset ETTh1 --trials 20 --storage journal:runs/tune/etth1.journal  # N workers
    python -m pipelines.tune --dataset ETTh1 --trials 20 --storage postgresql://user@host/optuna  # N machines

Re-running the same command continues the study (stored in runs/tune/<study>/ by default). The best
configuration is written to runs/tune/<study>/best.yaml; retrain it with
    python -m pipelines.train --config runs/tune/<study>/best.yaml
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.tune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--trials", type=int, required=True, help="trials to run now (added to the study's)")
    ap.add_argument("--horizon", type=int, default=96)
    ap.add_argument("--lookback", type=int)
    ap.add_argument("--epochs", type=int, default=6, help="max epochs per trial")
    ap.add_argument("--max-steps-per-epoch", type=int)
    ap.add_argument("--study", help="study name (default <dataset>-L<lookback>-H<horizon>)")
    ap.add_argument("--storage", help="journal:FILE, sqlite:///FILE or postgresql://... (default: a sqlite file)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs")
    ap.add_argument("--no-track", action="store_true")
    args = ap.parse_args(argv)

    import logging

    from lruts.errors import LrutsError
    from lruts.forecasting.experiment import ExperimentConfig
    from lruts.tuning import tune

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cfg = ExperimentConfig(dataset=args.dataset, horizons=[args.horizon], out_dir=args.out, track=not args.no_track)
    if args.lookback:
        cfg.lookback = args.lookback
    cfg.train.epochs = args.epochs
    cfg.train.max_steps_per_epoch = args.max_steps_per_epoch
    cfg.train.seed = args.seed
    try:
        study = tune(cfg, args.trials, study_name=args.study, storage=args.storage, seed=args.seed)
    except LrutsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    states = [t.state.name for t in study.trials]
    print(
        f"study {study.study_name}: {len(states)} trials ({states.count('COMPLETE')} complete, "
        f"{states.count('PRUNED')} pruned)"
    )
    if states.count("COMPLETE"):
        print(f"best val loss {study.best_value:.4f} with {study.best_params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

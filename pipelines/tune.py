"""Hyperparameter search with Optuna (TPE, pruning on per-epoch validation loss).

    python -m pipelines.tune --dataset ETTh1 --trials 20
    python -m pipelines.tune --dataset ETTh1 --trials 20 --storage journal:runs/tune/etth1.journal  # N workers
    python -m pipelines.tune --dataset ETTh1 --trials 20 --storage postgresql://user@host/optuna  # N machines
    python -m pipelines.tune --config base.yaml --trials 20    # search around a config (fixed fields from it)

Re-running the same command continues the study (stored in runs/tune/<study>/ by default). The best
configuration is written to runs/tune/<study>/best.yaml; retrain it with
    python -m pipelines.train --config runs/tune/<study>/best.yaml
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.tune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", help="a registered dataset name or a CSV/Parquet path (default: the config's)")
    ap.add_argument(
        "--config",
        help="YAML experiment config the trials start from (pipelines.train's format); the search space's "
        "fields are sampled, every other field is taken from it",
    )
    ap.add_argument("--trials", type=int, required=True, help="trials to run now (added to the study's)")
    ap.add_argument("--horizon", type=int, help="default: the config's first horizon, else 96")
    ap.add_argument("--lookback", type=int)
    ap.add_argument("--epochs", type=int, help="max epochs per trial (default 6)")
    ap.add_argument("--max-steps-per-epoch", type=int)
    ap.add_argument("--study", help="study name (default <dataset>-L<lookback>-H<horizon>)")
    ap.add_argument("--storage", help="journal:FILE, sqlite:///FILE or postgresql://... (default: a sqlite file)")
    ap.add_argument("--seed", type=int, help="sampler and training seed (default: the config's, else 0)")
    ap.add_argument("--out", help="output folder (default: the config's, else runs/)")
    ap.add_argument("--no-track", action="store_true")
    return ap


def build_config(args: argparse.Namespace):
    """The study's base config: the --config file (or the defaults), then the flags given."""
    from lruts.forecasting.experiment import ExperimentConfig

    cfg = ExperimentConfig.from_yaml(args.config) if args.config else ExperimentConfig()
    if args.dataset:
        cfg.dataset = args.dataset
    if args.horizon or not args.config:
        cfg.horizons = [args.horizon or 96]
    if args.lookback:
        cfg.lookback = args.lookback
    if args.epochs or not args.config:
        cfg.train.epochs = args.epochs or 6
    if args.max_steps_per_epoch:
        cfg.train.max_steps_per_epoch = args.max_steps_per_epoch
    if args.out:
        cfg.out_dir = args.out
    if args.seed is not None:
        cfg.train.seed = args.seed
    cfg.track = cfg.track and not args.no_track
    return cfg


def main(argv: list[str] | None = None) -> int:
    from pipelines._long_job import parse_dataset_job, run_long_job

    args = parse_dataset_job(parser(), argv)
    from lruts.forecasting.tuning import tune

    def job():
        cfg = build_config(args)
        return tune(cfg, args.trials, study_name=args.study, storage=args.storage, seed=cfg.train.seed)

    study, code = run_long_job(job, "finished trials are in the study's storage; run the same command to go on")
    if code:
        return code
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

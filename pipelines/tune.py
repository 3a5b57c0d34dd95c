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
import dataclasses
import sys

# an experiment's fields that a study fixes itself (one horizon, no registration, no ensemble) have no flag
NO_FLAG = {"horizons", "register", "tag", "backtest_stride"}


def defaults():
    """A study's base without --config: the experiment's defaults, 6 epochs per trial, horizon 96."""
    from lruts.forecasting.experiment import ExperimentConfig

    cfg = ExperimentConfig()
    return dataclasses.replace(cfg, horizons=[96], train=dataclasses.replace(cfg.train, epochs=6))


def parser() -> argparse.ArgumentParser:
    from lruts.cli import add_dataclass_arguments
    from pipelines.train import NO_FLAG as NO_TRAIN_FLAG
    from pipelines.train import OLD_NAMES

    ap = argparse.ArgumentParser(
        prog="python -m pipelines.tune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--config",
        help="YAML experiment config the trials start from (pipelines.train's format); the search space's "
        "fields are sampled, every other field is taken from it",
    )
    ap.add_argument("--trials", type=int, required=True, help="trials to run now (added to the study's)")
    ap.add_argument("--horizon", type=int, help="default: the config's first horizon, else 96")
    ap.add_argument("--study", help="study name (default <dataset>-L<lookback>-H<horizon>)")
    ap.add_argument("--storage", help="journal:FILE, sqlite:///FILE or postgresql://... (default: a sqlite file)")
    # fixed settings of every trial; --seed also seeds the sampler
    add_dataclass_arguments(ap, defaults(), exclude=NO_FLAG | NO_TRAIN_FLAG, aliases=OLD_NAMES)
    return ap


def build_config(args: argparse.Namespace):
    """The study's base config: the --config file (or the defaults()), then the flags given."""
    from lruts.cli import config_from_args
    from lruts.forecasting.experiment import ExperimentConfig

    cfg = ExperimentConfig.from_yaml(args.config) if args.config else defaults()
    if args.horizon:
        cfg = dataclasses.replace(cfg, horizons=[args.horizon])
    return config_from_args(cfg, args)


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

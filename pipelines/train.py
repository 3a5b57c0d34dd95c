"""Train, evaluate, track and register an LRU forecaster.

    python -m pipelines.train --dataset electricity                 # quick run: horizon 96, short epochs
    python -m pipelines.train --dataset ETTh1 --full               # the protocol: horizons 96..720, full epochs
    python -m pipelines.train --config runs/tune/ETTh1/best.yaml   # re-train a tuned configuration
    python -m pipelines.train --dataset ETTh1 --resume             # continue from the last checkpoint
    python -m pipelines.train --dataset ETTh1 --member dropout=0.6 --member lookback=512   # a 2-model ensemble
    python -m pipelines.train --dataset electricity_prices --lookback 168 --horizons 24     # a panel with covariates
    python -m pipelines.train --dataset my.csv --id-col unique_id --target y --future-covariates temp   # a long file
    python -m pipelines.train --dataset ETTh1 --features MS        # OT the target, the six loads past covariates
    torchrun --nproc_per_node=2 -m pipelines.train --dataset ETTh1 # distributed data parallel

A config file (YAML: the fields of lruts.forecasting.experiment.ExperimentConfig) sets the defaults;
flags override it. Checkpoints and results go to runs/<dataset>/L<lookback>-H<horizon>/ (a quick run: to
runs/<dataset>/L<lookback>-H<horizon>-quick/, so it never overwrites a protocol run).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

# Without --full (and without --config), a quick run: a few short epochs of small batches at a higher learning rate
QUICK = {"epochs": 4, "min_steps_per_epoch": None, "max_steps_per_epoch": 150, "batch_size": 32, "lr": 1e-3}
# fields without a flag: the model's sizes come from the experiment, the members from --member, and a
# forecaster's recurrence runs forward in time only
NO_FLAG = {"model.lookback", "model.horizon", "model.n_channels", "model.quantiles", "model.network.d_input"}
NO_FLAG |= {"model.network.bidirectional", "ensemble"}
OLD_NAMES = {"n_layers": "--layers", "out_dir": "--out"}  # flags older than the field names they set


def parser() -> argparse.ArgumentParser:
    from lruts.cli import add_dataclass_arguments
    from lruts.forecasting.experiment import ExperimentConfig

    ap = argparse.ArgumentParser(
        prog="python -m pipelines.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", help="YAML experiment config (e.g. the best config written by pipelines.tune)")
    ap.add_argument(
        "--full",
        action="store_true",
        help="the full protocol: the dataset's horizons (96 192 336 720; illness: 24 36 48 60), full-length "
        "epochs (default: a quick run of 4 epochs of 150 steps at horizon 96)",
    )
    ap.add_argument("--resume", action="store_true", help="continue from runs/.../last.pt")
    ap.add_argument(
        "--channel-mixing",
        dest="model.channel_independent",
        action="store_const",
        const=False,
        help="mix all series in one sequence (the same as --no-channel-independent)",
    )
    add_dataclass_arguments(ap, ExperimentConfig(), exclude=NO_FLAG, aliases=OLD_NAMES)
    ap.add_argument_group("ensemble").add_argument(
        "--member",
        action="append",
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="an ensemble member: the overrides of this config it trains with (lookback, seed or a model "
        "setting: dropout, segment, d_model, ...); repeat for each member. The forecast is the members' mean",
    )
    return ap


def build_config(args: argparse.Namespace):
    """The --config file (or the defaults), the quick or full protocol's settings, then the flags given."""
    from lruts.cli import config_from_args
    from lruts.data.registry import protocol_horizons
    from lruts.forecasting.experiment import ExperimentConfig

    cfg = ExperimentConfig.from_yaml(args.config) if args.config else ExperimentConfig()
    if args.full:
        cfg = dataclasses.replace(cfg, horizons=protocol_horizons(args.dataset or cfg.dataset))
    elif not args.config:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **QUICK), tag="quick")
    cfg = config_from_args(cfg, args)
    if args.member:
        cfg = dataclasses.replace(cfg, ensemble=[parse_member(m) for m in args.member])
    return cfg


def parse_member(text: str) -> dict:
    """ "dropout=0.6,lookback=512" → {"dropout": 0.6, "lookback": 512} (values read as YAML scalars)."""
    import yaml

    from lruts.errors import ConfigError

    member = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--member {text!r}: expected KEY=VALUE pairs separated by commas, e.g. dropout=0.6")
        member[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return member


def main(argv: list[str] | None = None) -> int:
    from pipelines._long_job import parse_dataset_job, run_long_job

    args = parse_dataset_job(parser(), argv)
    from lruts.forecasting.experiment import run_experiment
    from lruts.training import distributed_context

    def job():
        cfg = build_config(args)
        return cfg, run_experiment(cfg, resume=args.resume)

    done, code = run_long_job(job)
    if code:
        return code
    cfg, results = done
    if distributed_context()[0] != 0:
        return 0
    print(f"\n{cfg.dataset}, lookback {cfg.lookback} (test: every window, scaled values)")
    print(
        "| horizon | MSE | MAE | MASE mean / median | sMAPE % | repeat-last MSE | seasonal-naive MSE | DLinear MSE "
        "| epochs | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b = r.baselines
        sn, dl = (b.get(k, {}).get("mse", float("nan")) for k in ("seasonal_naive", "dlinear"))
        print(
            f"| {r.horizon} | {r.test['mse']:.3f} | {r.test['mae']:.3f} | {r.test.get('mase', float('nan')):.3f} / "
            f"{r.test.get('mase_median', float('nan')):.3f} | "
            f"{r.test['smape']:.1f} | {b['repeat_last']['mse']:.3f} | {sn:.3f} | {dl:.3f} | {r.fit.epochs_run} | "
            f"{r.minutes:.1f} |"
        )
        for k, v in r.test.items():
            if k.startswith("coverage"):
                print(f"  interval {k}: {v:.3f} (nominal {r.test['nominal_coverage']:.2f})")
    print(
        f"\nresults: {results[0].out_dir if results else cfg.out_dir}/results.json"
        + (f"; MLflow run {results[0].run_id}" if results and results[0].run_id else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

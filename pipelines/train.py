"""Train, evaluate, track and register an LRU forecaster.

    python -m pipelines.train --dataset electricity                 # quick run: horizon 96, short epochs
    python -m pipelines.train --dataset ETTh1 --full               # the protocol: horizons 96..720, full epochs
    python -m pipelines.train --config runs/tune/ETTh1/best.yaml   # re-train a tuned configuration
    python -m pipelines.train --dataset ETTh1 --resume             # continue from the last checkpoint
    python -m pipelines.train --dataset ETTh1 --member dropout=0.6 --member lookback=512   # a 2-model ensemble
    torchrun --nproc_per_node=2 -m pipelines.train --dataset ETTh1 # distributed data parallel

A config file (YAML: the fields of lruts.forecasting.experiment.ExperimentConfig) sets the defaults;
flags override it. Checkpoints and results go to runs/<dataset>/L<lookback>-H<horizon>/ (a quick run: to
runs/<dataset>/L<lookback>-H<horizon>-quick/, so it never overwrites a protocol run).
"""

from __future__ import annotations

import argparse
import sys

FULL_HORIZONS = [96, 192, 336, 720]
# Without --full (and without --config), a quick run: a few short epochs at a higher learning rate
QUICK = {"epochs": 4, "max_steps_per_epoch": 150, "lr": 1e-3}
MODEL_FLAGS = {  # flag → ModelOptions field
    "normalization": "normalization",
    "anchor": "anchor",
    "linear_skip": "linear_skip",
    "segment": "segment",
    "d_model": "d_model",
    "d_state": "d_state",
    "layers": "n_layers",
    "r_min": "r_min",
    "r_max": "r_max",
    "norm": "norm",
    "dropout": "dropout",
    "loss": "loss",
}
TRAIN_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "lr_factor": "lr_factor",
    "weight_decay": "weight_decay",
    "ema": "ema",
    "patience": "patience",
    "seed": "seed",
    "device": "device",
    "max_steps_per_epoch": "max_steps_per_epoch",
}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", help="a registered dataset name (see pipelines.ingest --list) or a CSV/Parquet path")
    ap.add_argument("--config", help="YAML experiment config (e.g. the best config written by pipelines.tune)")
    ap.add_argument("--lookback", type=int)
    ap.add_argument("--horizons", type=int, nargs="+")
    ap.add_argument(
        "--full",
        action="store_true",
        help="the full protocol: horizons 96 192 336 720 (ILI: 24..60), full-length epochs "
        "(default: a quick run of 4 epochs of 150 steps at horizon 96)",
    )
    ap.add_argument("--quantiles", type=float, nargs="+", help="add a quantile head, e.g. 0.1 0.9")
    g = ap.add_argument_group("model")
    g.add_argument("--normalization", choices=["anchor", "revin", "none"])
    g.add_argument("--anchor", choices=["last", "patch_mean"], help="with anchor normalisation: forecast from what")
    g.add_argument(
        "--linear-skip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a linear path from the last L inputs to the forecast (default: on)",
    )
    g.add_argument("--channel-mixing", action="store_true", help="mix all series in one sequence")
    g.add_argument("--segment", type=int, help="patch length P")
    g.add_argument("--d-model", type=int)
    g.add_argument("--d-state", type=int)
    g.add_argument("--layers", type=int)
    g.add_argument("--r-min", type=float)
    g.add_argument("--r-max", type=float)
    g.add_argument("--norm", choices=["batch", "layer"])
    g.add_argument("--dropout", type=float)
    g.add_argument(
        "--member",
        action="append",
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="an ensemble member: the overrides of this config it trains with (lookback, seed or a model "
        "setting: dropout, segment, d_model, ...); repeat for each member. The forecast is the members' mean",
    )
    g = ap.add_argument_group("training")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--loss", choices=["mse", "mae"], help="the point forecast's training loss (default: mse)")
    g.add_argument("--lr-factor", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument(
        "--ema",
        type=float,
        help="decay per step of a moving average of the weights, which validation and the saved model use "
        "(e.g. 0.99; default 0: off)",
    )
    g.add_argument("--patience", type=int)
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    g.add_argument("--max-steps-per-epoch", type=int)
    g.add_argument("--resume", action="store_true", help="continue from runs/.../last.pt")
    g.add_argument("--out", help="output folder (default runs/)")
    g.add_argument("--no-progress", action="store_true")
    g = ap.add_argument_group("tracking")
    g.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    g.add_argument("--no-register", action="store_true", help="log to MLflow but do not register the model")
    return ap


def build_config(args: argparse.Namespace):
    from lruts.forecasting.experiment import ExperimentConfig

    cfg = ExperimentConfig.from_yaml(args.config) if args.config else ExperimentConfig()
    if args.dataset:
        cfg.dataset = args.dataset
    if args.lookback:
        cfg.lookback = args.lookback
    if args.full:
        cfg.horizons = [24, 36, 48, 60] if cfg.dataset == "illness" else FULL_HORIZONS
    elif not args.config:
        for name, value in QUICK.items():
            setattr(cfg.train, name, value)
        cfg.tag = "quick"
    if args.horizons:
        cfg.horizons = args.horizons
    if args.quantiles:
        cfg.quantiles = sorted(args.quantiles)
    if args.channel_mixing:
        cfg.model.channel_independent = False
    for flag, name in MODEL_FLAGS.items():
        if getattr(args, flag) is not None:
            setattr(cfg.model, name, getattr(args, flag))
    for flag, name in TRAIN_FLAGS.items():
        if getattr(args, flag) is not None:
            setattr(cfg.train, name, getattr(args, flag))
    if args.member:
        cfg.ensemble = [parse_member(m) for m in args.member]
    if args.out:
        cfg.out_dir = args.out
    cfg.track = cfg.track and not args.no_track
    cfg.register = cfg.register and not args.no_register
    cfg.train.progress = not args.no_progress
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
        "| horizon | MSE | MAE | MASE | sMAPE % | repeat-last MSE | seasonal-naive MSE | DLinear MSE "
        "| epochs | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b = r.baselines
        sn, dl = (b.get(k, {}).get("mse", float("nan")) for k in ("seasonal_naive", "dlinear"))
        print(
            f"| {r.horizon} | {r.test['mse']:.3f} | {r.test['mae']:.3f} | {r.test.get('mase', float('nan')):.3f} | "
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

"""Flags generated from the config dataclasses: names, types and help from the source; the pipelines keep
every flag name they had."""

import argparse
from dataclasses import dataclass, field
from typing import Literal

import pytest

from lruts.cli import add_dataclass_arguments, config_from_args, field_comments


@dataclass
class Inner:
    width: int = 8  # how wide
    # how it is gated,
    # over two lines
    gate: Literal["full", "half"] = "full"


@dataclass
class Outer:
    name: str = "x"
    flag: bool = True  # on or off
    sizes: list[int] = field(default_factory=lambda: [1])
    limit: float | None = None
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.name == "bad":
            raise ValueError("bad name")


def parse(*argv: str) -> Outer:
    ap = argparse.ArgumentParser()
    add_dataclass_arguments(ap, Outer(), aliases={"width": "--w"})
    return config_from_args(Outer(), ap.parse_args(argv))


def test_help_is_the_comment_beside_or_above_the_field():
    assert field_comments(Inner) == {"width": "how wide", "gate": "how it is gated, over two lines"}
    assert field_comments(Outer) == {"flag": "on or off"}
    ap = argparse.ArgumentParser()
    add_dataclass_arguments(ap, Outer())
    text = " ".join(ap.format_help().split())
    assert "--width WIDTH how wide (default: 8)" in text and "how it is gated, over two lines" in text


def test_flags_set_only_the_fields_given_nested_ones_included():
    assert parse() == Outer()
    cfg = parse("--no-flag", "--sizes", "3", "4", "--limit", "0.5", "--w", "16", "--gate", "half")
    assert cfg == Outer(flag=False, sizes=[3, 4], limit=0.5, inner=Inner(width=16, gate="half"))
    assert parse("--flag").flag and parse("--sizes").sizes == []
    with pytest.raises(SystemExit):
        parse("--gate", "quarter")  # not one of the Literal's choices
    with pytest.raises(ValueError, match="bad name"):
        parse("--name", "bad")  # the rebuilt dataclass checks its new values


def test_train_keeps_every_flag_name_it_had():
    from pipelines.train import build_config, parser

    old = (
        "--dataset x.csv --lookback 64 --horizons 12 24 --quantiles 0.9 0.1 --normalization revin --anchor patch_mean "
        "--no-linear-skip --channel-mixing --segment 8 --d-model 32 --d-state 16 --layers 3 --r-min 0.1 --r-max 0.9 "
        "--norm batch --dropout 0.5 --epochs 7 --batch-size 16 --lr 0.01 --loss mae --lr-factor 0.25 "
        "--weight-decay 0.01 --ema 0.99 --patience 2 --seed 5 --device cpu --max-steps-per-epoch 9 --resume --out o "
        "--no-progress --no-track --no-register --member dropout=0.1"
    )
    cfg = build_config(parser().parse_args(old.split()))
    assert (cfg.dataset, cfg.lookback, cfg.horizons, cfg.quantiles, cfg.out_dir) == (
        "x.csv",
        64,
        [12, 24],
        [0.1, 0.9],
        "o",
    )
    m, n, t = cfg.model, cfg.model.network, cfg.train
    assert (m.normalization, m.anchor, m.linear_skip, m.channel_independent, m.segment, m.loss) == (
        "revin",
        "patch_mean",
        False,
        False,
        8,
        "mae",
    )
    assert (n.d_model, n.d_state, n.n_layers, n.r_min, n.r_max, n.norm, n.dropout) == (
        32,
        16,
        3,
        0.1,
        0.9,
        "batch",
        0.5,
    )
    assert (t.epochs, t.batch_size, t.lr, t.lr_factor, t.weight_decay, t.ema, t.patience, t.seed) == (
        7,
        16,
        0.01,
        0.25,
        0.01,
        0.99,
        2,
        5,
    )
    assert (t.device, t.max_steps_per_epoch, t.progress, cfg.track, cfg.register) == ("cpu", 9, False, False, False)
    assert cfg.ensemble == [{"dropout": 0.1}]


def test_the_full_protocol_takes_the_datasets_horizons_from_the_registry():
    from pipelines.train import build_config, parser

    assert build_config(parser().parse_args(["--dataset", "illness", "--full"])).horizons == [24, 36, 48, 60]
    assert build_config(parser().parse_args(["--dataset", "ETTh1", "--full"])).horizons == [96, 192, 336, 720]


def test_tune_keeps_every_flag_name_it_had():
    from pipelines.tune import build_config, parser

    old = (
        "--dataset ETTh1 --trials 3 --horizon 192 --lookback 96 --epochs 2 --max-steps-per-epoch 5 --study s "
        "--storage journal:x --seed 4 --out o --no-track"
    )
    args = parser().parse_args(old.split())
    cfg = build_config(args)
    assert (args.trials, args.study, args.storage) == (3, "s", "journal:x")
    assert (cfg.dataset, cfg.horizons, cfg.lookback, cfg.out_dir, cfg.track) == ("ETTh1", [192], 96, "o", False)
    assert (cfg.train.epochs, cfg.train.max_steps_per_epoch, cfg.train.seed) == (2, 5, 4)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"quantiles": [0.1, 1.5]}, "quantiles must lie strictly between 0 and 1"),
        ({"horizons": [0]}, r"lookback and horizons must be ≥ 1 step, got 336 and \[0\]"),
        ({"lookback": -5}, "lookback and horizons must be ≥ 1 step, got -5"),
    ],
)
def test_an_impossible_experiment_is_refused_before_anything_is_read(settings, match):
    # the pipelines build their config from the flags first; a quantile of 1.5 failed in torch.quantile after
    # the whole training run
    from lruts.errors import ConfigError
    from lruts.forecasting.experiment import ExperimentConfig

    with pytest.raises(ConfigError, match=match):
        ExperimentConfig(dataset="ETTh1", **settings)

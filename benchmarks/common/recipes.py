"""The forecaster a benchmark fits, from its command line: as a user gets it (`--defaults`: the default network
and training budget, `fitting.forecaster_training()`), or the small recipe the panel and covariate tables were
first measured with (NETWORK, `--epochs` × `--steps-per-epoch` of 32 windows, lr 3e-3, no early stopping).

    fc = forecaster(lookback, horizon, args, seed=0, blend=True)   # args: --defaults, --epochs, --steps-per-epoch
    print(f"LRU: {recipe(args)}")
"""

from __future__ import annotations

import dataclasses

from lruts import LRUForecaster
from lruts.forecasting.fitting import forecaster_training
from lruts.training import TrainConfig

NETWORK = dict(d_model=32, d_state=32, n_layers=2, dropout=0.0)


def forecaster(lookback: int, horizon: int, args, *, seed: int, blend: bool) -> LRUForecaster:
    """An unfitted LRUForecaster on the CPU, by `args.defaults` the user's or the small recipe."""
    if args.defaults:
        train = dataclasses.replace(forecaster_training(), seed=seed, progress=False, device="cpu")
        return LRUForecaster(lookback, horizon, train=train, blend=blend)
    train = TrainConfig(
        epochs=args.epochs, max_steps_per_epoch=args.steps_per_epoch, batch_size=32, lr=3e-3, patience=0,
        seed=seed, progress=False, device="cpu",
    )  # fmt: skip
    return LRUForecaster(lookback, horizon, train=train, blend=blend, **NETWORK)


def recipe(args) -> str:
    """What `forecaster` fits, in words, for a benchmark's header."""
    if args.defaults:
        return "the forecaster's default network and training (forecaster_training())"
    return f"{NETWORK}, {args.epochs} epochs × ≤ {args.steps_per_epoch} steps of 32 windows, lr 3e-3"

"""One way to train a forecasting model: `LRUForecaster.fit`, the protocol pipeline (each ensemble member
too) and the trained baselines all call `fit_forecast_net`, which runs the generic Trainer with the
forecasting loss on window batches.

    fit = fit_forecast_net(net, splits.train, splits.val, TrainConfig(epochs=10), quantiles=[0.1, 0.9])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn
from torch.utils.data import Dataset

from lruts.forecasting.losses import forecast_loss
from lruts.forecasting.net import batch_inputs
from lruts.tracking import PrefixedRun, Run
from lruts.training import FitResult, TrainConfig, Trainer

log = logging.getLogger("lruts")

if TYPE_CHECKING:  # the data package (polars) loads when data is read, not when a forecaster is imported
    from lruts.data.batch import WindowBatch


def forecaster_training() -> TrainConfig:
    """The training budget a forecaster starts from, in `LRUForecaster` and in `pipelines.train --full`: at most
    10 epochs of 100–300 steps of 128 windows, early stopping after 3 epochs without a better validation loss,
    lr 5e-3 (the recurrence's × 0.5). The cap keeps a long series' fit as quick as a short one's; the floor
    gives a short series' network at least NHITS's default budget of 1,000 steps (an epoch of a set of fewer
    than 100 batches draws its windows again) where one pass per epoch left illness's 50 steps. The lr: at
    5e-4 the network was still improving when the budget ended (its best validation epoch the last) on every
    long series tried; 5e-3 gave the lowest blended validation MSE over seven series (docs/experiments.md,
    sixteenth session), in the same time."""
    return TrainConfig(
        epochs=10, patience=3, lr=5e-3, lr_factor=0.5, batch_size=128, min_steps_per_epoch=100, max_steps_per_epoch=300
    )


def fit_forecast_net(
    net: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    train_cfg: TrainConfig,
    *,
    quantiles: list[float] = (),
    point: str = "mse",
    checkpoint_dir: str | Path | None = None,
    run: Run | None = None,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, float]], bool | None] | None = None,
    distributed: bool = True,
) -> FitResult:
    """Train `net` (x (B, L, C) and the batch's mask and covariates → (B, H, C, 1 + Q)) on the window
    batches of `train_set` with early stopping on `val_set`, minimising forecast_loss (point "mse" | "mae",
    plus the pinball loss of `quantiles`) over the observed targets. `net` ends with its best validation
    weights, on the trainer's device, in eval mode.
    distributed=False: this process alone, even under torchrun (a side model only rank 0 trains)."""
    quantiles = list(quantiles)

    def loss_fn(model: nn.Module, batch: WindowBatch):
        out = model(batch.x, **batch_inputs(batch))
        return forecast_loss(out, batch.y, quantiles, point, y_mask=batch.y_mask), len(batch)

    trainer = Trainer(
        net,
        loss_fn,
        train_cfg,
        checkpoint_dir=checkpoint_dir,
        run=run,
        on_epoch_end=on_epoch_end,
        distributed=distributed,
    )
    fit = trainer.fit(train_set, val_set, resume=resume)
    net.eval()
    return fit


def indicator_options(missing: bool | None, has_missing: bool) -> list[bool]:
    """Whether the network reads the missing-value indicator (1 − mask beside each value): never where the data
    has no missing value; where it has, as the model says (`ForecastNetConfig.missing`), or, left to validation
    (None, the default), both ways, for `fit_with_indicator_choice` to keep the better: over series with
    outages validation preferred the network without it on some and with it on others, by up to 13%
    (docs/experiments.md, twentieth session), so no one setting serves every series."""
    if not has_missing:
        return [False]
    return [False, True] if missing is None else [missing]


def fit_with_indicator_choice(
    build: Callable[[bool], nn.Module],
    options: list[bool],
    train_set: Dataset,
    val_set: Dataset,
    train_cfg: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    run: Run | None = None,
    **fit_options,
) -> tuple[nn.Module, FitResult]:
    """`build(missing)`'s network trained by `fit_forecast_net` for each of `options` (`indicator_options`), the
    one with the lower validation loss kept: (net, its FitResult). With two options each trains from the same
    seed (`build` seeds), its checkpoints under indicator-off/ or indicator-on/ and its metrics prefixed alike;
    an `on_epoch_end` hook (a tuner's pruner) hears their epochs one after the other, numbered on, and where it
    stops a network, that one is returned (a pruned trial is not trained further)."""
    best, choosing, epochs = None, len(options) > 1, 0
    hook = fit_options.pop("on_epoch_end", None)
    for missing in options:
        name = f"indicator-{'on' if missing else 'off'}"
        net = build(missing)
        fit = fit_forecast_net(
            net,
            train_set,
            val_set,
            train_cfg,
            checkpoint_dir=Path(checkpoint_dir) / name if choosing and checkpoint_dir is not None else checkpoint_dir,
            run=PrefixedRun(run, f"{name}_") if choosing and run is not None else run,
            on_epoch_end=None if hook is None else (lambda epoch, metrics, start=epochs: hook(start + epoch, metrics)),
            **fit_options,
        )
        if fit.stopped_by_callback:
            return net, fit
        epochs += fit.epochs_run
        if choosing:
            log.info("the network %s: validation loss %.4f", name, fit.best_val_loss)
        if best is None or fit.best_val_loss < best[1].best_val_loss:
            best = (net, fit)
    return best

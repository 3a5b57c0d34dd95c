"""One forecasting experiment, end to end: data → protocol splits → train → evaluate every test
window (with baselines through the same harness) → track in MLflow → register the model.

`pipelines.train` parses flags into an `ExperimentConfig` and calls `run_experiment`; `pipelines.tune`
calls `train_and_evaluate` for each trial.

The data is a wide table (every column a target, one network over them: `load_series`, `make_splits`) or
a panel (`load_panel`: a long table with `id_col`, or a wide table in the "MS" setting, its target one
series and its other columns past covariates): one global network over the series, which read their
covariates and missing-value masks, each series split by time into train / val / test (`protocol_splits`).
Both go through the same training, blending, scoring and baselines; a panel's MASE is per series, each on
its own training rows' seasonal-naive scale.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lruts.errors import ConfigError
from lruts.forecasting.baselines import DLinear, PatchTST, RepeatLast, SeasonalNaive, season_length
from lruts.forecasting.blend import Blend, fit_blend
from lruts.forecasting.evaluation import Predictions, mase_per_series, predict_windows, rolling_origin, score
from lruts.forecasting.fitting import (
    fit_forecast_net,
    fit_with_indicator_choice,
    forecaster_training,
    indicator_options,
)
from lruts.forecasting.losses import forecast_loss
from lruts.forecasting.net import ForecastEnsemble, ForecastNetConfig, LRUForecastNet
from lruts.io import safe_name, save_json
from lruts.tracking import NullRun, PrefixedRun, Run, TrackingConfig, load_tracking_config, start_run
from lruts.training import FitResult, TrainConfig, distributed_context

log = logging.getLogger("lruts")

# what the experiment sets itself, not in its `model` section
DATA_SIZES = ("lookback", "horizon", "n_channels", "quantiles")


@dataclass
class ExperimentConfig:
    dataset: str = "electricity"  # a registered dataset name (see pipelines.ingest --list) or a CSV/Parquet path
    # a long table (one row per series and time): its series id column (default: the registry's for a panel
    # dataset; none: a wide table, every column a target)
    id_col: str | None = None
    target: str | None = None  # a long table's target column (default: the registry's, else "y"); with MS: the target
    time_col: str | None = None  # a long table's time column (default: the registry's, else "ds")
    # columns known ahead, read for the forecast's horizon too (default: the registry's)
    future_covariates: list[str] | None = None
    # columns observed only up to the forecast's start (default: the registry's; MS: every non-target column)
    past_covariates: list[str] | None = None
    static_covariates: list[str] | None = None  # columns constant per series (default: the registry's)
    # static covariates from a CSV/Parquet file with one row per series: the id column and numeric columns
    static_file: str | None = None
    calendar: bool | None = None  # calendar features of the timestamps as future covariates (default: the registry's)
    # a wide table's setting: M, every column a target; MS, one target (the last column, or --target) whose
    # other columns are past covariates: a one-series panel, split at the dataset's protocol borders
    features: Literal["M", "MS"] = "M"
    lookback: int = 336  # L: steps of history the model reads
    horizons: list[int] = field(default_factory=lambda: [96])  # one model per horizon
    # quantile levels to forecast, e.g. 0.1 0.9 (with blend: split-conformal on validation; else a quantile head)
    quantiles: list[float] = field(default_factory=list)
    # blend the network with the linear, repeat-last and seasonal-naive forecasts by weights fitted on validation
    blend: bool = True
    # the forecaster's architecture; its sizes (lookback, horizon, series, quantiles) are the experiment's
    model: ForecastNetConfig = field(default_factory=ForecastNetConfig)
    train: TrainConfig = field(default_factory=forecaster_training)
    out_dir: str = "runs"  # output folder
    track: bool = True  # log to MLflow
    register: bool = True  # register the model in MLflow (when tracking)
    backtest_stride: int | None = None  # rolling-origin stride; default: the horizon
    tag: str = ""  # suffix of the run folder (L<L>-H<H>-<tag>): "quick" for pipelines.train's quick runs
    # an ensemble: one mapping of overrides (lookback, seed, model fields) of this config per member; the
    # forecast is the members' mean (ForecastEnsemble). Empty: one model.
    ensemble: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.quantiles = sorted(float(q) for q in self.quantiles)  # the network's quantile outputs are in order
        # before any data is read or a model trained: a quantile of 1.5 failed after training
        if any(not 0 < q < 1 for q in self.quantiles):
            raise ConfigError(
                f"quantiles must lie strictly between 0 and 1 (0.1 0.9: an 80% interval), got {self.quantiles}"
            )
        if self.lookback < 1 or not self.horizons or min(self.horizons) < 1:
            raise ConfigError(f"lookback and horizons must be ≥ 1 step, got {self.lookback} and {self.horizons}")

    @property
    def run_label(self) -> str:
        """The runs folder's name of this experiment's data: the dataset's, with "-MS" for the MS setting (another
        task on the same file: its models never share a folder or a registered name with the multivariate ones)."""
        return run_label(self.dataset, self.features)

    @property
    def net_quantiles(self) -> list[float]:
        """The network's own quantile outputs: none when the blend calibrates the quantiles instead."""
        return [] if self.blend else list(self.quantiles)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        d = dict(d)
        defaults = cls()  # the dataclass defaults, not TrainConfig's own: one set of defaults for every caller
        sections = {}
        given = d.pop("train", None) or {}
        _check_known("train", given, defaults.train)
        sections["train"] = dataclasses.replace(defaults.train, **given)
        given = d.pop("model", None) or {}
        _check_known("model", given, ForecastNetConfig.option_names() - set(DATA_SIZES))
        sections["model"] = defaults.model.with_options(given)
        _check_known("experiment", d, {f.name for f in dataclasses.fields(defaults)} - set(sections))
        return cls(**sections, **d)

    def to_dict(self) -> dict[str, Any]:
        """The settings as from_dict and a YAML file take them: the model's sizes, which the experiment
        sets when it builds a network, left out."""
        d = asdict(self)
        for name in DATA_SIZES:
            del d["model"][name]
        del d["model"]["network"]["d_input"]
        return d

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        """A config file (YAML: this dataclass's fields, e.g. the best.yaml pipelines.tune writes); fields
        it does not name keep the defaults."""
        from lruts.io import read_yaml_mapping

        d = read_yaml_mapping(path, "experiment settings", "e.g. the best.yaml pipelines.tune writes")
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


def run_label(dataset: str, features: str = "M") -> str:
    """See ExperimentConfig.run_label."""
    return safe_name(dataset) + ("-MS" if features == "MS" else "")


def _check_known(section: str, given: Any, known: Any) -> None:
    """`known`: the names allowed, or a dataclass instance whose fields they are."""
    if not isinstance(given, dict):
        raise ConfigError(f"{section} settings must be a mapping, got {given!r}")
    if dataclasses.is_dataclass(known):
        known = {f.name for f in dataclasses.fields(known)}
    unknown = set(given) - set(known)
    if unknown:
        raise ConfigError(f"unknown {section} setting(s) {sorted(unknown)}; known: {sorted(known)}")


MEMBER_FIELDS = ("lookback", "seed", *sorted(ForecastNetConfig.option_names() - set(DATA_SIZES) - {"network"}))


def member_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """The ensemble's members as experiments: this one with each member's overrides applied."""
    members = []
    for k, over in enumerate(cfg.ensemble):
        if not isinstance(over, dict) or not over:
            raise ConfigError(
                f"ensemble member {k} must be a mapping of overrides, e.g. {{dropout: 0.6}}; got {over!r}"
            )
        unknown = set(over) - set(MEMBER_FIELDS)
        if unknown:
            raise ConfigError(
                f"ensemble member {k}: unknown setting(s) {sorted(unknown)}; known: {sorted(MEMBER_FIELDS)}"
            )
        model = {name: value for name, value in over.items() if name not in ("lookback", "seed")}
        members.append(
            dataclasses.replace(
                cfg,
                ensemble=[],
                lookback=int(over.get("lookback", cfg.lookback)),
                model=cfg.model.with_options(model),
                train=dataclasses.replace(cfg.train, seed=int(over.get("seed", cfg.train.seed))),
            )
        )
    return members


@dataclass
class TrainedModel:
    """A network (or ensemble) trained on the protocol's train split, and how it did."""

    net: LRUForecastNet | ForecastEnsemble | Blend
    splits: Any  # lruts.data.Splits: an ensemble's have its longest member's lookback
    fit: FitResult  # an ensemble's: the validation loss of its mean, its members' epochs
    test: dict[str, float]  # the protocol metrics on every test window; empty when not evaluated
    preds: Predictions | None  # the test windows' forecasts; None when not evaluated
    members: list[FitResult] = field(default_factory=list)  # an ensemble's: each member's own fit
    blend: dict[str, Any] = field(default_factory=dict)  # what fit_blend chose (weights, validation MSEs)

    def earlier_seconds(self) -> float:
        """Training seconds earlier processes spent before this run resumed (its members', for an ensemble)."""
        if self.members:
            return sum(m.earlier_seconds() for m in self.members)
        return self.fit.earlier_seconds()


@dataclass
class HorizonResult:
    horizon: int
    test: dict[str, float]
    baselines: dict[str, dict[str, float]]
    fit: FitResult
    minutes: float
    run_id: str | None
    out_dir: str
    members: list[FitResult] = field(default_factory=list)  # an ensemble's: each member's own fit


def build_net(cfg: ExperimentConfig, horizon: int, data, missing: bool = False) -> LRUForecastNet:
    """The network for `data` (a Series: one channel per column; a Panel: one channel and its covariates; either,
    where `missing`, reading the missing-value indicator: `fitting.indicator_options`)."""
    torch.manual_seed(cfg.train.seed)
    sizes: dict[str, Any] = {"n_channels": n_channels(data), "missing": missing}
    if is_panel(data):
        sizes |= {"n_future": len(data.future_names), "n_past": len(data.past_names), "n_static": data.static.shape[1]}
    return LRUForecastNet(
        dataclasses.replace(cfg.model, lookback=cfg.lookback, horizon=horizon, quantiles=cfg.net_quantiles, **sizes)
    )


def is_panel(data) -> bool:
    from lruts.data.panel import Panel

    return isinstance(data, Panel)


def n_channels(data) -> int:
    """The network's channels: a wide table's columns; a panel's 1 (its series are batched windows)."""
    return 1 if is_panel(data) else data.values.shape[1]


def with_dataset_defaults(cfg: ExperimentConfig) -> ExperimentConfig:
    """`cfg` with the long-format settings it leaves unset (None) taken from the registry (a panel dataset's
    id, time, target and covariate columns) or the defaults; a ConfigError for settings that do not fit
    together."""
    from lruts.data.registry import get_spec

    spec = get_spec(cfg.dataset)
    declared = spec if spec is not None and spec.panel else None

    def pick(given, name: str, default):
        if given is not None:
            return given
        return getattr(declared, name) if declared is not None else default

    id_col = pick(cfg.id_col, "id_col", None)
    target = cfg.target if cfg.target is not None else (declared.target_cols[0] if declared is not None else None)
    out = dataclasses.replace(
        cfg,
        id_col=id_col,
        target=target if target is not None or id_col is None else "y",
        time_col=pick(cfg.time_col, "time_col", "ds" if id_col is not None else None),
        future_covariates=list(pick(cfg.future_covariates, "future_covariates", [])),
        past_covariates=list(pick(cfg.past_covariates, "past_covariates", [])),
        # a static file replaces the registry's static columns, as any flag replaces its default
        static_covariates=[] if cfg.static_file else list(pick(cfg.static_covariates, "static_covariates", [])),
        calendar=bool(pick(cfg.calendar, "calendar", False)),
    )
    if cfg.static_file and cfg.static_covariates:
        raise ConfigError(
            "static covariates come from columns of the long table (--static-covariates) or from a file with one "
            "row per series (--static-file), not both: give one (put every static column in the file)"
        )
    covariates = any((out.future_covariates, out.past_covariates, out.static_covariates, out.static_file, out.calendar))
    if out.id_col is None and out.features == "M" and (covariates or cfg.target is not None):
        raise ConfigError(
            f"'{cfg.dataset}' is read as a wide table, every column a target: covariates and --target need a long "
            "table (--id-col COLUMN; pipelines.train also takes a wide table's --features MS: its last column the "
            "target, the others past covariates)"
        )
    if out.id_col is not None and out.features == "MS":
        raise ConfigError("--features MS turns a wide table into one series with covariates; drop --id-col, or MS")
    if out.features == "MS" and (out.static_covariates or out.static_file):
        raise ConfigError(
            "--features MS makes one series: static covariates do not apply; drop --static-covariates / --static-file"
        )
    if (out.id_col is not None or out.features == "MS") and out.ensemble:
        raise ConfigError("an ensemble trains on wide tables only; remove the ensemble members for a panel")
    return out


def load_data(cfg: ExperimentConfig):
    """The experiment's data (cfg as with_dataset_defaults leaves it): a Series for a wide table, a Panel
    for a long one or the MS setting (DataError for unknown or text covariate columns)."""
    from lruts.data import load_panel, load_series
    from lruts.data.registry import get_spec

    if cfg.id_col is None and cfg.features == "M":
        return load_series(cfg.dataset)
    if cfg.id_col is not None:
        from lruts.data import resolve_raw

        panel = load_panel(
            resolve_raw(cfg.dataset) if get_spec(cfg.dataset) else cfg.dataset,
            id_col=cfg.id_col,
            time_col=cfg.time_col,
            target_col=cfg.target,
            future_covariates=cfg.future_covariates,
            past_covariates=cfg.past_covariates,
            static_covariates=cfg.static_file or cfg.static_covariates or None,
        )
    else:
        panel = _one_series_panel(load_series(cfg.dataset), cfg)
    if cfg.calendar:
        from lruts.forecasting.panel_front import with_calendar

        panel = with_calendar(panel)
    log.info("panel: %s", panel.report.summary())
    return panel


def _one_series_panel(series, cfg: ExperimentConfig):
    """The MS setting: a wide table as a one-series panel, its target the last column (or cfg.target), the
    other columns past covariates (or cfg.past_covariates) unless named as future covariates."""
    import polars as pl

    from lruts.data import load_panel

    target = cfg.target or series.columns[-1]
    if target not in series.columns:
        raise ConfigError(f"--target '{target}' is not a column of '{cfg.dataset}'; columns are: {series.columns}")
    past = cfg.past_covariates or [c for c in series.columns if c not in (target, *cfg.future_covariates)]
    frame = pl.DataFrame({"series": [target] * len(series.values), "date": series.timestamps})
    frame = frame.with_columns(pl.Series(c, series.values[:, j]) for j, c in enumerate(series.columns))
    return load_panel(
        frame, id_col="series", time_col="date", target_col=target, future_covariates=cfg.future_covariates,
        past_covariates=past, freq=series.freq,
    )  # fmt: skip


# a panel's protocol, per series: like the wide tables' ratio rule, 70 / 10 / 20 (each at least a horizon)
PANEL_VAL_FRACTION, PANEL_TEST_FRACTION = 0.1, 0.2


def protocol_splits(cfg: ExperimentConfig, data, lookback: int, horizon: int):
    """train / val / test splits of `data`: a wide table's by the protocol (make_splits); a panel's per series
    by time (its series too short for a training window dropped, with a log line); the MS setting's at the
    dataset's protocol borders (ETT: 12 / 4 / 4 months)."""
    from lruts.data import make_splits, panel_splits, split_borders
    from lruts.data.registry import get_spec

    if not is_panel(data):
        return make_splits(data, lookback, horizon)
    if cfg.features == "MS":
        spec = get_spec(cfg.dataset)
        b = split_borders(int(data.lengths[0]), lookback, spec.split if spec else "ratio")
        borders = (b["train"][1], b["val"][1], b["test"][1])
        return panel_splits(data, lookback, horizon, borders=borders)
    splits = panel_splits(
        data, lookback, horizon, val_fraction=PANEL_VAL_FRACTION, test_fraction=PANEL_TEST_FRACTION, drop_short=True
    )
    if splits.dropped:
        log.warning(
            "dropped %d series too short for lookback %d + horizon %d and their validation and test rows: %s",
            len(splits.dropped), lookback, horizon, ", ".join(splits.dropped),
        )  # fmt: skip
    return splits


def train_and_evaluate(
    cfg: ExperimentConfig,
    series,
    horizon: int,
    *,
    run: Run | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_epoch_end=None,
    evaluate_test: bool = True,
) -> TrainedModel:
    """Train one model (or an ensemble) on the protocol's train split (early stopping on val), blend it with
    the simple forecasts on val (cfg.blend), and score every test window. `series`: load_data(cfg)'s, a
    Series or a Panel."""
    if cfg.ensemble:
        net, splits, fit, members = _train_ensemble(
            cfg, series, horizon, run=run, checkpoint_dir=checkpoint_dir, resume=resume
        )
    else:
        splits = protocol_splits(cfg, series, cfg.lookback, horizon)
        net, fit = _train_net(cfg, series, horizon, splits, run, checkpoint_dir, resume, on_epoch_end)
        members = []
    chosen = {}
    if cfg.blend:
        net = Blend(net, splits.lookback, horizon, n_channels(series), season_length(series.freq), cfg.quantiles)
        chosen = fit_blend(net, splits.train, splits.val)
        log.info("blend on validation: MSE %s", ", ".join(f"{k} {v:.4f}" for k, v in chosen["val_mse"].items()))
    return TrainedModel(net, splits, fit, *_test_scores(net, splits, series, cfg, evaluate_test), members, chosen)


def _train_net(cfg, series, horizon: int, splits, run, checkpoint_dir, resume, on_epoch_end=None):
    """One network trained on `splits` (early stopping on val): (net, its FitResult)."""
    return fit_with_indicator_choice(
        lambda missing: build_net(cfg, horizon, series, missing),
        indicator_options(cfg.model.missing, bool(np.isnan(series.values).any())),
        splits.train,
        splits.val,
        cfg.train,
        quantiles=cfg.net_quantiles,
        point=cfg.model.loss,
        checkpoint_dir=checkpoint_dir,
        run=run,
        resume=resume,
        on_epoch_end=on_epoch_end,
    )


def _test_scores(net, splits, series, cfg: ExperimentConfig, evaluate_test: bool) -> tuple[dict, Predictions | None]:
    """(protocol metrics, predictions) of every test window; ({}, None) unless asked, and on ranks other
    than 0 (under torchrun rank 0 alone scores)."""
    if not evaluate_test or distributed_context()[0] != 0:
        return {}, None
    preds = predict_windows(net, splits.test, device=net.head.weight.device, progress=cfg.train.progress)
    test = score(preds, splits.scaler, naive_scale=naive_scales(splits, series), quantiles=list(cfg.quantiles))
    return test, preds


def _train_ensemble(cfg, series, horizon: int, *, run, checkpoint_dir, resume):
    """Train each member as its own model (checkpoints under member<k>/, metrics prefixed member<k>_),
    then judge the members' mean forecast on the validation split (its loss is the ensemble's
    best_val_loss, which registration compares): (ensemble, splits, its FitResult, the members')."""
    from lruts.data import make_splits

    configs = member_configs(cfg)
    splits = make_splits(series, max(m.lookback for m in configs), horizon)  # too short a series: before training
    nets, fits = [], []
    for k, member in enumerate(configs):
        log.info("ensemble member %d/%d: %s", k + 1, len(cfg.ensemble), cfg.ensemble[k])
        net, fit = _train_net(
            member,
            series,
            horizon,
            make_splits(series, member.lookback, horizon),
            PrefixedRun(run, f"member{k}_") if run is not None else None,
            checkpoint_dir / f"member{k}" if checkpoint_dir is not None else None,
            resume,
        )
        nets.append(net)
        fits.append(fit)
    ensemble = ForecastEnsemble(nets).eval()
    device = ensemble.head.weight.device
    val = predict_windows(ensemble, splits.val, device=device)
    val_loss = float(
        forecast_loss(torch.from_numpy(val.pred), torch.from_numpy(val.true), cfg.net_quantiles, cfg.model.loss)
    )
    log.info(
        "ensemble of %d: val %.4f (members %s)", len(nets), val_loss, " ".join(f"{f.best_val_loss:.4f}" for f in fits)
    )
    fit = FitResult(
        val_loss,
        best_epoch=0,
        epochs_run=sum(f.epochs_run for f in fits),
        stopped_early=all(f.stopped_early for f in fits),
        stopped_by_callback=any(f.stopped_by_callback for f in fits),
    )
    return ensemble, splits, fit, fits


def naive_scales(splits, series) -> np.ndarray:
    """Each series' in-sample seasonal-naive MAE on its own training rows, original scale: (n_series,); a
    panel series' over its observed pairs (NaN when it has none)."""
    from lruts.forecasting.metrics import naive_scale

    season = season_length(series.freq) or 1
    if not is_panel(series):
        lo, hi = splits.borders["train"]
        return naive_scale(series.values[lo:hi], season)
    out = np.full(len(series), np.nan)
    for i, n in enumerate(splits.train_lengths.tolist()):
        y = series.series(i)[:n].astype(np.float64)
        change = np.abs(y[season:] - y[:-season])
        if np.isfinite(change).any():
            out[i] = np.nanmean(change)
    return out


def per_series_mase(preds: Predictions, splits, series) -> dict[str, float]:
    """Each series' MASE on the test windows, by series name (a panel's ids, a wide table's columns)."""
    names = series.ids if is_panel(series) else series.columns
    values = mase_per_series(preds, splits.scaler, naive_scales(splits, series))
    return {name: float(v) for name, v in zip(names, values, strict=True) if np.isfinite(v)}


class TargetOnly(torch.nn.Module):
    """A baseline on windows with masks or covariates (a panel's, a table's with missing values): it reads the
    target's lookback (missing steps at 0, the series' training mean) and none of the batch's covariates or
    masks."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, **_inputs: torch.Tensor) -> torch.Tensor:
        return self.model(x)


DLINEAR_LRS = (5e-3, 1e-3, 1e-4)  # DLinear's reference lr and two lower ones; the best on validation is kept


def baseline_models(
    splits, series, horizon: int, lookback: int, *, dlinear_epochs: int = 10, patchtst_epochs: int = 0
) -> dict[str, torch.nn.Module]:
    """The baselines, ready to predict: repeat-last, seasonal naive (when a season fits in the lookback)
    and DLinear trained on the same train split with early stopping on the same val split, its lr chosen
    on that val split from DLINEAR_LRS (dlinear_epochs=0 leaves DLinear out). One fixed lr does not serve
    every horizon under our schedule: at long horizons the reference 5e-3 overfits within an epoch, while at
    short ones it is as good as any (docs/experiments.md, "DLinear's learning rate").

    patchtst_epochs > 0 adds PatchTST (baselines.PatchTST; PatchTST/64 at lookback 512), trained by the same
    trainer with its script's recipe: Adam (AdamW without weight decay), lr 1e-4 for 4 epochs then × 0.9 per
    epoch, batch 128, at most patchtst_epochs epochs; early stopping after 10 without a better validation
    loss (its scripts wait 100: by then the lr has shrunk 0.9^10-fold)."""
    target_only = is_panel(series) or bool(np.isnan(series.values).any())  # batches with masks or covariates
    models: dict[str, torch.nn.Module] = {"repeat_last": RepeatLast(horizon)}
    season = season_length(series.freq) or None
    if season and season <= lookback:
        models["seasonal_naive"] = SeasonalNaive(horizon, season)
    if dlinear_epochs:
        best = (math.inf, None)
        for lr in DLINEAR_LRS:
            torch.manual_seed(0)
            dlinear = TargetOnly(DLinear(lookback, horizon)) if target_only else DLinear(lookback, horizon)
            cfg = TrainConfig(epochs=dlinear_epochs, lr=lr, weight_decay=0.0, patience=3, progress=False)
            fit = fit_forecast_net(dlinear, splits.train, splits.val, cfg, distributed=False)  # rank 0 alone
            log.info("DLinear baseline, lr %g: best val %.4f (epoch %d)", lr, fit.best_val_loss, fit.best_epoch)
            if fit.best_val_loss < best[0]:
                best = (fit.best_val_loss, dlinear)
        models["dlinear"] = best[1].eval()
    if patchtst_epochs:
        torch.manual_seed(0)
        patchtst = TargetOnly(PatchTST(lookback, horizon)) if target_only else PatchTST(lookback, horizon)
        recipe = {"lr": 1e-4, "weight_decay": 0.0, "batch_size": 128, "epoch_decay": 0.9, "hold_epochs": 4}
        cfg = TrainConfig(epochs=patchtst_epochs, patience=10, **recipe)
        fit = fit_forecast_net(patchtst, splits.train, splits.val, cfg, distributed=False)
        log.info("PatchTST baseline: best val %.4f (epoch %d)", fit.best_val_loss, fit.best_epoch)
        models["patchtst"] = patchtst.eval()
    return {name: TargetOnly(m) if target_only and not isinstance(m, TargetOnly) else m for name, m in models.items()}


def evaluate_baselines(splits, series, horizon: int, lookback: int) -> dict[str, dict[str, float]]:
    """The baselines' protocol metrics on the same test windows as the LRU."""
    scale = naive_scales(splits, series)
    models = baseline_models(splits, series, horizon, lookback)
    return {
        name: score(predict_windows(m, splits.test), splits.scaler, naive_scale=scale) for name, m in models.items()
    }


def run_experiment(
    cfg: ExperimentConfig, *, resume: bool = False, tracking: TrackingConfig | None = None
) -> list[HorizonResult]:
    """Train, evaluate, track and register one model per horizon; write results.json per horizon."""
    rank, _ = distributed_context()
    tracking = tracking or (load_tracking_config() if cfg.track else None)
    cfg = with_dataset_defaults(cfg)
    series = load_data(cfg)
    name = cfg.run_label
    results = []
    for horizon in cfg.horizons:
        t0 = time.perf_counter()
        folder = f"L{cfg.lookback}-H{horizon}" + (f"-{safe_name(cfg.tag)}" if cfg.tag else "")
        out = Path(cfg.out_dir) / name / folder  # a tagged (quick) run never overwrites a protocol run's files
        run_name = f"{name}-{folder}"
        n_series = len(series) if is_panel(series) else series.values.shape[1]
        config = {**cfg.to_dict(), "horizon": horizon, "n_series": n_series, "rows": len(series.values)}
        track = cfg.track and rank == 0
        with start_run(
            tracking.experiment if track else "", run_name=run_name, config=config, tracking=tracking, enabled=track
        ) as run:
            trained = train_and_evaluate(cfg, series, horizon, run=run, checkpoint_dir=out, resume=resume)
            splits, fit, test, preds = trained.splits, trained.fit, trained.test, trained.preds
            if rank != 0:
                continue
            # an ensemble's splits have its longest member's lookback; the baselines keep the config's
            base = splits if splits.lookback == cfg.lookback else protocol_splits(cfg, series, cfg.lookback, horizon)
            baselines = evaluate_baselines(base, series, horizon, cfg.lookback)
            run.log_metrics({f"test_{k}": v for k, v in test.items()})
            for b, m in baselines.items():
                run.log_metrics({f"{b}_test_{k}": v for k, v in m.items()})
            backtest = rolling_origin(preds, cfg.backtest_stride or horizon)
            # a resumed run also counts the epochs an earlier process ran before the interruption
            minutes = (time.perf_counter() - t0 + trained.earlier_seconds()) / 60
            summary = {
                "config": config,
                "test": test,
                "mase_per_series": per_series_mase(preds, splits, series),
                "baselines": baselines,
                "fit": {**asdict(fit), "members": [asdict(m) for m in trained.members]},
                "blend": trained.blend,
                "backtest": backtest,
                "minutes": minutes,
                "run_id": run.run_id,
                **({"dropped_series": splits.dropped} if is_panel(series) else {}),
            }
            save_json(summary, out / "results.json")
            if not is_panel(series):  # a panel's scaler is saved in its forecaster
                save_json(splits.scaler.to_dict(), out / "scaler.json")
            _log_artifacts(run, out, splits, series, preds, horizon)
            forecaster = _forecaster(trained.net, splits, series, cfg)
            forecaster.save(out / "forecaster.lruts")
            if track and cfg.register:
                val_loss = trained.blend.get("val_mse_blend", fit.best_val_loss)  # what the user's forecast scored
                _register(run, forecaster, tracking, name, horizon, val_loss)
            results.append(
                HorizonResult(horizon, test, baselines, fit, minutes, run.run_id, str(out), members=trained.members)
            )
    return results


def _forecaster(net, splits, series, cfg: ExperimentConfig):
    from lruts.forecasting.forecaster import LRUForecaster

    if is_panel(series):
        return LRUForecaster.from_trained_panel(net, splits, cfg.future_covariates, calendar=cfg.calendar)
    return LRUForecaster.from_trained(net, splits.scaler, series)


def _log_artifacts(run: Run, out: Path, splits, series, preds: Predictions, horizon: int) -> None:
    """scaler, config (logged at start), results, and a forecast-vs-actual plot of the last test window."""
    if isinstance(run, NullRun):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if (out / "scaler.json").exists():
        run.log_artifact(out / "scaler.json")
    run.log_artifact(out / "results.json")
    i = len(preds.pred) - 1
    x = splits.test[i].x[0]
    c = n_channels(series) - 1  # the last column: the target in the ETT/TSLib layouts ("OT")
    name = series.ids[preds.series[i]] if is_panel(series) else series.columns[c]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    lb = x.shape[0]
    ax.plot(range(lb), x[:, c].numpy(), color="0.4", label="history")
    ax.plot(range(lb, lb + horizon), preds.true[i, :, c], color="k", label="actual")
    ax.plot(range(lb, lb + horizon), preds.pred[i, :, c, 0], color="C1", label="forecast")
    ax.set_title(f"{'panel' if is_panel(series) else series.name}: {name}, last test window (scaled)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    run.log_figure(fig, "forecast_vs_actual.png")
    plt.close(fig)


def _register(run: Run, forecaster, tracking: TrackingConfig, name: str, horizon: int, val_loss: float) -> None:
    """Log the pyfunc model, register it, and move the champion alias to it if it beats the champion."""
    from mlflow import MlflowClient

    from lruts.forecasting.pyfunc import log_forecaster

    model_name = f"{tracking.registered_model}-{name}-H{horizon}"
    info = log_forecaster(run, forecaster, registered_model=model_name)
    if info is None or info.registered_model_version is None:
        return
    client = MlflowClient()

    def champion_val() -> float:
        try:
            mv = client.get_model_version_by_alias(model_name, tracking.champion_alias)
        except Exception:  # no champion yet
            return float("inf")
        return client.get_run(mv.run_id).data.metrics.get("val_loss_best", float("inf"))

    run.log_metrics({"val_loss_best": val_loss})
    if val_loss < (run.call("get champion", champion_val) or float("inf")):
        run.call(
            "set alias",
            client.set_registered_model_alias,
            model_name,
            tracking.champion_alias,
            info.registered_model_version,
        )
        log.info(
            "%s v%s is the new %s (val loss %.4f)",
            model_name,
            info.registered_model_version,
            tracking.champion_alias,
            val_loss,
        )

"""Hyperparameter search with Optuna: TPE sampling, pruning on the per-epoch validation loss,
persistent storage (resumable; shared by workers on several machines), one MLflow parent run per
study with a nested run per trial, and the best configuration written out for `pipelines.train`.

Storage:
    default            sqlite:///runs/tune/<study>/study.db     one process
    journal:FILE       Optuna's JournalStorage on a file         several processes on one machine
    postgresql://...   a database server                         workers on several machines
Trials are scored on the validation split only; the test split is never looked at while tuning.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

from lruts.errors import ConfigError
from lruts.forecasting.experiment import ExperimentConfig, load_data, train_and_evaluate, with_dataset_defaults
from lruts.io import safe_name
from lruts.tracking import TrackingConfig, load_tracking_config, start_run

log = logging.getLogger("lruts")

# The search space: (kind, low/choices, high, log) per dotted field of ExperimentConfig. It covers the
# region where ETTh1's validation loss was lowest (RevIN, P = 48, dropout up to 0.8; docs/experiments.md);
# every other field comes from the base config.
SPACE: dict[str, tuple] = {
    "train.lr": ("float", 1e-4, 5e-3, True),
    "train.lr_factor": ("categorical", [0.1, 0.25, 0.5, 1.0]),
    "train.weight_decay": ("float", 1e-3, 0.1, True),
    "model.d_model": ("categorical", [32, 64, 128]),
    "model.d_state": ("categorical", [64, 128, 256]),
    "model.n_layers": ("int", 1, 4),
    "model.dropout": ("float", 0.0, 0.8, False),
    "model.r_max": ("categorical", [0.9, 0.99, 0.999]),
    "model.segment": ("categorical", [8, 16, 24, 48]),
    "model.normalization": ("categorical", ["anchor", "revin"]),
}


def storage_for(spec: str | None, study_dir: Path):
    """An Optuna storage from a --storage string (see the module docstring)."""
    import optuna

    if spec is None:
        study_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(study_dir / 'study.db').resolve()}"
    if spec.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(spec[len("journal:") :]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return spec


def apply(cfg: ExperimentConfig, params: dict[str, Any]) -> ExperimentConfig:
    """A copy of `cfg` with dotted params ("train.lr": 1e-3) set; the model's network fields go by their
    flat names ("model.d_model": 64)."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    out = copy.deepcopy(cfg)
    model = out.model.with_options(sections.pop("model", {}))
    return dataclasses.replace(
        out,
        model=model,
        **{section: dataclasses.replace(getattr(out, section), **v) for section, v in sections.items()},
    )


def fit_to_lookback(space: dict[str, tuple], lookback: int) -> dict[str, tuple]:
    """`space` without the patch lengths longer than the lookback, which no trial could build a network with."""
    spec = space.get("model.segment")
    if spec is None or spec[0] != "categorical":
        return space
    choices = [p for p in spec[1] if p <= lookback]
    if not choices:
        raise ConfigError(
            f"lookback {lookback} is shorter than every patch length the search tries ({spec[1]}): "
            "use a longer --lookback"
        )
    return {**space, "model.segment": ("categorical", choices)}


def suggest(trial, space: dict[str, tuple]) -> dict[str, Any]:
    params = {}
    for key, spec in space.items():
        kind = spec[0]
        if kind == "float":
            params[key] = trial.suggest_float(key, spec[1], spec[2], log=spec[3])
        elif kind == "int":
            params[key] = trial.suggest_int(key, spec[1], spec[2])
        else:
            params[key] = trial.suggest_categorical(key, spec[1])
    return params


def tune(
    base: ExperimentConfig,
    trials: int,
    *,
    horizon: int | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    space: dict[str, tuple] | None = None,
    pruner=None,
    seed: int = 0,
    tracking: TrackingConfig | None = None,
    enqueue: list[dict[str, Any]] | None = None,
):
    """Run (or continue) a study of `trials` more trials; write best.yaml; return the study."""
    import optuna
    import yaml

    if base.ensemble:
        raise ConfigError(
            "tuning searches one model per trial and prunes on its epochs: remove `ensemble` from the config "
            "(tune the members' settings, then list them as ensemble members for pipelines.train)"
        )
    horizon = horizon or base.horizons[0]
    study_name = study_name or f"{base.run_label}-L{base.lookback}-H{horizon}"
    study_dir = Path(base.out_dir) / "tune" / safe_name(study_name)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage_for(storage, study_dir),
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, trials)),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        direction="minimize",
        load_if_exists=True,
    )
    for params in enqueue or []:
        study.enqueue_trial(params)
    base = with_dataset_defaults(base)  # a panel's columns resolved once: every trial reads the same data
    series = load_data(base)
    space = fit_to_lookback(space or SPACE, base.lookback)
    if base.track:
        tracking = tracking or load_tracking_config()

    def objective(trial) -> float:
        cfg = apply(base, suggest(trial, space))
        cfg.horizons = [horizon]

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            trial.report(metrics["val_loss"], epoch)
            return trial.should_prune()

        with start_run(
            tracking.tune_experiment if base.track else "",
            run_name=f"trial-{trial.number}",
            config={**cfg.to_dict(), "trial": trial.number},
            tracking=tracking,
            enabled=base.track,
            nested=True,
        ) as run:
            fit = train_and_evaluate(cfg, series, horizon, run=run, on_epoch_end=report, evaluate_test=False).fit
            run.log_metrics({"best_val_loss": fit.best_val_loss})
            if fit.stopped_by_callback:
                run.set_tags({"state": "pruned"})
                raise optuna.TrialPruned(f"pruned after epoch {fit.epochs_run}")
        return fit.best_val_loss

    with start_run(
        tracking.tune_experiment if base.track else "",
        run_name=f"study-{study_name}",
        config={**base.to_dict(), "study": study_name, "trials": trials, "horizon": horizon},
        tracking=tracking,
        enabled=base.track,
    ) as parent:
        study.optimize(objective, n_trials=trials, gc_after_trial=True)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if done:
            best = apply(base, study.best_params)
            best.horizons = [horizon]
            study_dir.mkdir(parents=True, exist_ok=True)
            path = study_dir / "best.yaml"
            path.write_text(yaml.safe_dump(best.to_dict(), sort_keys=False))
            parent.log_metrics({"best_val_loss": study.best_value})
            parent.log_params({f"best.{k}": v for k, v in study.best_params.items()})
            parent.log_artifact(path)
            log.info(
                "best trial %d: val loss %.4f; config %s — retrain: python -m pipelines.train --config %s",
                study.best_trial.number,
                study.best_value,
                path,
                path,
            )
    return study

"""Experiment tracking with MLflow: configuration, a reachability check before work starts, and a
run wrapper whose logging can never crash a long training run.

Configuration comes from `mlflow.yaml` at the repository root (or the path in $LRUTS_MLFLOW_CONFIG);
environment variables override it:

    MLFLOW_TRACKING_URI          tracking_uri       (default sqlite:///mlflow.db, embedded)
    LRUTS_MLFLOW_EXPERIMENT      experiment         (forecasting runs)
    LRUTS_MLFLOW_MODEL_NAME      registered_model
    LRUTS_MLFLOW_ARTIFACTS       artifact_location  (for new experiments)
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lruts.errors import LrutsError

log = logging.getLogger("lruts")

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENV = {
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "experiment": "LRUTS_MLFLOW_EXPERIMENT",
    "registered_model": "LRUTS_MLFLOW_MODEL_NAME",
    "artifact_location": "LRUTS_MLFLOW_ARTIFACTS",
}


class TrackingError(LrutsError, RuntimeError):
    """The tracking backend is unusable (unreachable server, unwritable store)."""


def _mlflow():
    """The mlflow module, imported only where tracking is really used: the base install has no mlflow.

    MLflow contacts a telemetry host from its import on unless told not to (../shared/spec/environment.md);
    the opt-out is made here, when tracking starts, and only if the user has not chosen."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    return mlflow


@dataclass
class TrackingConfig:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "lruts-forecasting"
    tune_experiment: str = "lruts-tuning"
    lra_experiment: str = "lruts-lra"
    registered_model: str = "lruts-forecaster"
    champion_alias: str = "champion"
    artifact_location: str | None = "mlartifacts"

    def resolved_uri(self) -> str:
        """The tracking URI with a relative sqlite path anchored at the repository root."""
        uri = self.tracking_uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str((REPO_ROOT / uri[len("sqlite:///") :]).resolve())
        return uri

    def resolved_artifacts(self) -> str | None:
        if not self.artifact_location or "://" in self.artifact_location:
            return self.artifact_location
        return (REPO_ROOT / self.artifact_location).resolve().as_uri()


def load_tracking_config(path: str | Path | None = None) -> TrackingConfig:
    """mlflow.yaml (or `path`), then environment overrides."""
    import yaml

    path = Path(path or os.environ.get("LRUTS_MLFLOW_CONFIG") or REPO_ROOT / "mlflow.yaml")
    values: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise TrackingError(f"{path} must hold a mapping of settings, got {type(loaded).__name__}")
        known = {f.name for f in fields(TrackingConfig)}
        unknown = set(loaded) - known
        if unknown:
            raise TrackingError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        values.update(loaded)
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    return TrackingConfig(**values)


def check_tracking_backend(cfg: TrackingConfig, timeout: float = 5.0) -> None:
    """Fail fast, before any training, if the tracking backend cannot be used."""
    uri = cfg.resolved_uri()
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise TrackingError(f"MLflow server {uri} answered {resp.status} on /health")
        except (urllib.error.URLError, OSError) as e:
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable ({getattr(e, 'reason', e)}). Start it (e.g. "
                "`mlflow server --host 127.0.0.1 --port 5000 --workers 1`), point MLFLOW_TRACKING_URI at a "
                "running server, or run with --no-track."
            ) from None
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        if not os.access(db.parent, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
            raise TrackingError(f"cannot write the MLflow store {db}; fix permissions or set MLFLOW_TRACKING_URI")


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; values that MLflow cannot take as params become strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


class Run:
    """An active MLflow run. Logging failures (a server that died mid-run) are reported once and then
    logging stops; the training run goes on, and everything is also kept in `self.history`."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._broken = run_id is None

    def _safe(self, what: str, fn, *args, **kwargs) -> Any:
        if self._broken:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # any backend failure must not end hours of training
            self._broken = True
            log.warning("MLflow %s failed (%s); tracking is off for the rest of this run", what, e)
            return None

    def _log(self, name: str, *args, **kwargs) -> None:
        """mlflow.<name>(*args, **kwargs) under the never-crash policy; a NullRun never imports mlflow."""
        if not self._broken:
            self._safe(name, getattr(_mlflow(), name), *args, **kwargs)

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten(params)
        self._log("log_params", {k: ("" if v is None else v) for k, v in flat.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.history.setdefault(k, []).append((step or 0, float(v)))
        self._log("log_metrics", {k: float(v) for k, v in metrics.items()}, step=step)

    def log_dict(self, d: Mapping[str, Any], name: str) -> None:
        self._log("log_dict", dict(d), name)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._log("log_artifact", str(path), artifact_path)

    def log_figure(self, figure, name: str) -> None:
        self._log("log_figure", figure, name)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._log("set_tags", dict(tags))

    def call(self, what: str, fn, *args, **kwargs) -> Any:
        """Run any other MLflow call under the same never-crash policy."""
        return self._safe(what, fn, *args, **kwargs)


class PrefixedRun:
    """A tracking run whose metric names get a prefix (an ensemble member's epochs: member0_val_loss, …)."""

    def __init__(self, run: Run, prefix: str) -> None:
        self.run, self.prefix = run, prefix

    def log_metrics(self, metrics, step: int | None = None) -> None:
        self.run.log_metrics({self.prefix + k: v for k, v in metrics.items()}, step=step)


class NullRun(Run):
    """Tracking switched off (--no-track): keeps history, talks to nobody."""

    def __init__(self) -> None:
        super().__init__(None)


def configure(cfg: TrackingConfig) -> None:
    _mlflow().set_tracking_uri(cfg.resolved_uri())


def ensure_experiment(name: str, cfg: TrackingConfig) -> str:
    client = _mlflow().MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=cfg.resolved_artifacts())


@contextlib.contextmanager
def start_run(
    experiment: str,
    *,
    run_name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tracking: TrackingConfig | None = None,
    enabled: bool = True,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[Run]:
    """Open an MLflow run (checked first), log `config` as params and as config.json, yield a Run.

    With enabled=False, yields a NullRun. A nested run goes under the currently active run.
    """
    if not enabled:
        yield NullRun()
        return
    cfg = tracking or load_tracking_config()
    if not nested:
        check_tracking_backend(cfg)
        configure(cfg)
    mlflow = _mlflow()
    try:
        exp_id = ensure_experiment(experiment, cfg)
        active = mlflow.start_run(experiment_id=exp_id, run_name=run_name, nested=nested, tags=dict(tags or {}))
    except Exception as e:
        raise TrackingError(f"could not start an MLflow run at {cfg.resolved_uri()}: {e}; use --no-track") from e
    run = Run(active.info.run_id)
    try:
        if config is not None:
            run.log_params(config)
            run.log_dict(config, "config.json")
        yield run
    except BaseException:
        with contextlib.suppress(Exception):
            mlflow.end_run(status="KILLED" if _interrupted() else "FAILED")
        raise
    else:
        with contextlib.suppress(Exception):
            mlflow.end_run()


def _interrupted() -> bool:
    import sys

    return isinstance(sys.exc_info()[1], KeyboardInterrupt)

"""Where the dashboard finds trained forecasters: local checkpoints written by `pipelines.train`
(runs/<dataset>/L<lookback>-H<horizon>/forecaster.lruts + results.json) and the MLflow model registry
(`<registered_model>-<dataset>-H<horizon>`, by alias or version). No Streamlit here: app.py caches
what these functions return.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lruts import LRUForecaster
from lruts.errors import DataError
from lruts.tracking import REPO_ROOT, TrackingConfig, TrackingError, check_tracking_backend

RUNS_ENV = "LRUTS_RUNS_DIR"  # where pipelines.train wrote its checkpoints (default <repo>/runs)


@dataclass(frozen=True)
class LocalModel:
    path: str  # the forecaster.lruts file
    dataset: str  # as given to pipelines.train: a registered dataset name or a file path
    label: str  # e.g. "ETTh1/L96-H24"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    dataset: str  # the `dataset` parameter of the run that produced the newest version
    aliases: dict[str, str] = field(default_factory=dict)  # alias → version
    versions: tuple[str, ...] = ()  # newest first


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV) or REPO_ROOT / "runs").expanduser()


def local_models(root: str | os.PathLike) -> list[LocalModel]:
    """Every runs/<dataset>/L*-H*/forecaster.lruts under `root`, sorted by path."""
    root = Path(root).expanduser()
    found = []
    for path in sorted(root.glob("*/L*-H*/forecaster.lruts")):
        results = read_results(path.parent / "results.json")
        dataset = (results or {}).get("config", {}).get("dataset") or path.parent.parent.name
        found.append(LocalModel(str(path), str(dataset), f"{path.parent.parent.name}/{path.parent.name}"))
    return found


def read_results(path: str | os.PathLike) -> dict | None:
    """A results.json written by pipelines.train (test metrics, baselines, backtest), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- registry


def registry_problem(cfg: TrackingConfig) -> str | None:
    """Why the model registry cannot be used right now, or None if it can."""
    uri = cfg.resolved_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        return f"no MLflow store at {uri[len('sqlite:///') :]} yet (nothing registered)"
    try:
        check_tracking_backend(cfg)
    except TrackingError as e:
        return str(e)
    return None


def _client(cfg: TrackingConfig):
    from mlflow import MlflowClient

    from lruts.tracking import configure

    configure(cfg)
    return MlflowClient()


def registered_models(cfg: TrackingConfig) -> list[RegisteredModel]:
    """The registered lruts forecasters, with their aliases and versions. Raises TrackingError."""
    from mlflow.exceptions import MlflowException

    try:
        client = _client(cfg)
        found = []
        for rm in client.search_registered_models(filter_string=f"name LIKE '{cfg.registered_model}-%'"):
            versions = sorted(client.search_model_versions(f"name='{rm.name}'"), key=lambda v: -int(v.version))
            if not versions:
                continue
            params = client.get_run(versions[0].run_id).data.params if versions[0].run_id else {}
            dataset = params.get("dataset") or rm.name[len(cfg.registered_model) + 1 :].rsplit("-H", 1)[0]
            aliases = {a: str(v) for a, v in (rm.aliases or {}).items()}
            found.append(RegisteredModel(rm.name, dataset, aliases, tuple(str(v.version) for v in versions)))
    except (MlflowException, OSError) as e:
        raise TrackingError(f"could not read the MLflow model registry at {cfg.resolved_uri()}: {e}") from e
    return sorted(found, key=lambda m: m.name)


def load_registered(cfg: TrackingConfig, name: str, version: str) -> tuple[LRUForecaster, dict | None]:
    """Version `version` of registered model `name`, on the CPU, and the results.json of the run that
    logged it (None if that run has none). The download goes to a temporary directory that is removed
    once the weights are in memory, so loading models never fills the disk."""
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="lruts-dash-") as dst:
        try:
            client = _client(cfg)
            local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=dst))
            run_id = client.get_model_version(name, version).run_id
            results = None
            if run_id:
                try:
                    results = read_results(
                        mlflow.artifacts.download_artifacts(
                            run_id=run_id, artifact_path="results.json", dst_path=str(Path(dst) / "run")
                        )
                    )
                except MlflowException:
                    results = None  # a run without results.json: metrics and backtest are not shown
        except (MlflowException, OSError) as e:
            raise TrackingError(f"could not download {name} version {version}: {e}") from e
        found = sorted(local.rglob("forecaster.lruts"))
        if not found:
            raise DataError(f"registered model {name} version {version} has no forecaster.lruts artifact")
        return LRUForecaster.load(found[0], device="cpu"), results

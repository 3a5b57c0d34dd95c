"""MLflow tracking end to end (a real embedded sqlite store), a dead server detected before any
training, logging failures that never crash a run, and an Optuna study with a pruned trial."""

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import forecast_fixtures as fixtures
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from forecast_fixtures import synthetic_frame
from mlflow import MlflowClient

from lruts.forecasting.experiment import ExperimentConfig, run_experiment
from lruts.forecasting.tuning import tune
from lruts.tracking import Run, TrackingConfig, TrackingError, load_tracking_config, start_run


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An isolated MLflow store and a small CSV dataset."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LRUTS_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    csv = tmp_path / "toy.csv"
    synthetic_frame(1000).to_csv(csv, index=False)
    yield tmp_path, csv
    mlflow.set_tracking_uri(None)


def tiny_experiment(csv, out, **kw) -> ExperimentConfig:
    return fixtures.tiny_experiment(csv, out, quantiles=[0.1, 0.9], **kw)  # with a quantile head


def test_run_is_fully_recorded_and_the_model_loads_and_predicts(store):
    tmp_path, csv = store
    [result] = run_experiment(tiny_experiment(csv, tmp_path / "runs"))
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.data.params["lookback"] == "48" and run.data.params["model.network.d_model"] == "16"
    assert run.data.params["train.lr"] == "0.003"
    for key in ("test_mse", "test_mae", "test_mase", "test_smape", "repeat_last_test_mse", "val_loss"):
        assert key in run.data.metrics, key
    assert run.data.metrics["test_mse"] == pytest.approx(result.test["mse"])
    assert [m.step for m in client.get_metric_history(result.run_id, "val_loss")] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.json", "scaler.json", "results.json", "forecast_vs_actual.png"} <= artifacts
    logged_config = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/config.json")
    assert logged_config["train"]["epochs"] == 2

    name = "lruts-forecaster-toy-H12"
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.run_id == result.run_id
    # the champion is judged on what the user's forecast (the blend) scored on validation
    blend = json.loads((Path(result.out_dir) / "results.json").read_text())["blend"]
    assert run.data.metrics["val_loss_best"] == pytest.approx(blend["val_mse_blend"])
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    from lruts import LRUForecaster

    local = LRUForecaster.load(f"{result.out_dir}/forecaster.lruts")
    empty = pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]"), "s0": [], "s1": [], "s2": []})
    pd.testing.assert_frame_equal(model.predict(empty), local.predict())
    new = synthetic_frame(1003).iloc[1000:].reset_index(drop=True)  # the next 3 rows of the series
    pd.testing.assert_frame_equal(model.predict(new), LRUForecaster.load_from(local).update(new), rtol=1e-5)
    pd.testing.assert_frame_equal(model.predict(empty), local.predict())  # serving does not keep state

    # a second, worse run does not take the champion alias
    worse = tiny_experiment(csv, tmp_path / "runs2")
    worse.train.lr = 1e-6
    run_experiment(worse)
    assert client.get_model_version_by_alias(name, "champion").run_id == result.run_id
    assert len(client.search_model_versions(f"name='{name}'")) == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_tracking_server_is_reported_before_training(store, monkeypatch):
    tmp_path, csv = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(TrackingError, match=r"unreachable.*--no-track"):
        run_experiment(tiny_experiment(csv, tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()  # nothing was trained


def test_no_track_runs_without_any_server(store, monkeypatch):
    tmp_path, csv = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    [result] = run_experiment(tiny_experiment(csv, tmp_path / "runs", track=False))
    assert result.run_id is None and np.isfinite(result.test["mse"])


def test_logging_failure_mid_run_warns_once_and_never_raises(caplog):
    run = Run("some-run")

    def dead(*a, **k):
        raise ConnectionError("server went away")

    with caplog.at_level(logging.WARNING, logger="lruts"):
        assert run.call("log_metrics", dead) is None
        assert run.call("log_metrics", dead) is None
        run.log_metrics({"loss": 1.0}, step=3)  # not sent any more, but kept
    assert sum("server went away" in r.message for r in caplog.records) == 1
    assert run.history["loss"] == [(3, 1.0)]


@pytest.mark.parametrize(("chosen", "expected"), [(None, "true"), ("false", "false")])
def test_a_started_run_opts_out_of_mlflow_telemetry_unless_the_user_chose(store, monkeypatch, chosen, expected):
    if chosen is None:
        monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", chosen)
    with start_run("telemetry", tracking=load_tracking_config()) as run:
        assert run.run_id is not None
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == expected


def test_an_untracked_run_logs_without_mlflow():
    code = (
        "import sys\n"
        "from lruts.tracking import start_run\n"
        "with start_run('x', config={'lr': 0.1}, enabled=False) as run:\n"
        "    run.log_metrics({'loss': 1.0}, step=1); run.log_params({'a': 1}); run.set_tags({'t': 'v'})\n"
        "print(run.history['loss'], 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[(1,", "1.0)]", "False"]


def test_config_file_and_environment_overrides(tmp_path, monkeypatch):
    path = tmp_path / "mlflow.yaml"
    path.write_text(yaml.safe_dump({"tracking_uri": "http://example:5000", "experiment": "from-file"}))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_tracking_config(path)
    assert (cfg.tracking_uri, cfg.experiment) == ("http://example:5000", "from-file")
    monkeypatch.setenv("LRUTS_MLFLOW_EXPERIMENT", "from-env")
    assert load_tracking_config(path).experiment == "from-env"
    path.write_text("tracking_url: typo\n")
    with pytest.raises(TrackingError, match="unknown setting"):
        load_tracking_config(path)
    assert TrackingConfig(tracking_uri="sqlite:///x.db").resolved_uri().endswith("/x.db")


def test_optuna_study_prunes_a_bad_trial_logs_nested_runs_and_writes_a_retrainable_config(store):
    import optuna

    tmp_path, csv = store
    base = tiny_experiment(csv, tmp_path / "runs")
    base.quantiles = []
    base.train.epochs = 3
    good = {"train.lr": 3e-3, "model.n_layers": 1}
    space = {"train.lr": ("float", 1e-7, 1e-2, True), "model.n_layers": ("int", 1, 2)}
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = tune(
        base,
        3,
        space=space,
        pruner=pruner,
        study_name="t",
        enqueue=[good, {**good, "train.lr": 2e-3}, {**good, "train.lr": 1e-7}],
    )
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert states[2] == optuna.trial.TrialState.PRUNED  # lr 1e-7 barely moves: worse than the median

    client = MlflowClient()
    exp = client.get_experiment_by_name("lruts-tuning")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}

    best = yaml.safe_load((tmp_path / "runs" / "tune" / "t" / "best.yaml").read_text())
    assert best["train"]["lr"] == pytest.approx(study.best_params["train.lr"])
    # the study resumes from its storage
    again = tune(base, 1, space=space, pruner=pruner, study_name="t")
    assert len(again.trials) == 4


def test_the_search_never_tries_a_patch_longer_than_the_lookback():
    from lruts.errors import ConfigError
    from lruts.forecasting.tuning import SPACE, fit_to_lookback

    assert fit_to_lookback(SPACE, 24)["model.segment"] == ("categorical", [8, 16, 24])
    assert fit_to_lookback(SPACE, 336)["model.segment"] == SPACE["model.segment"]
    with pytest.raises(ConfigError, match="lookback 4 is shorter than every patch length"):
        fit_to_lookback(SPACE, 4)

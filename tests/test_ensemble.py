"""Ensembles of LRU forecasters: the forecast is the members' mean, each member on its own lookback; a
stream advances every member in O(1) and equals a recompute; save/load keeps it; the pipeline trains
the members, judges their mean on validation, scores it on every test window and resumes exactly."""

import dataclasses
import json

import pandas as pd
import pytest
import torch
from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_experiment

from lruts import LRUForecaster
from lruts.data import StandardScaler, load_series, make_splits
from lruts.errors import ConfigError, DataError, ShapeError
from lruts.forecasting.evaluation import predict_windows
from lruts.forecasting.experiment import ExperimentConfig, member_configs, run_experiment
from lruts.forecasting.net import ForecastEnsemble, ForecastNetConfig, LRUForecastNet
from lruts.forecasting.report import collect, dataset_table
from lruts.forecasting.tuning import tune
from lruts.tracking import PrefixedRun, Run
from pipelines import evaluate
from pipelines.train import build_config, parse_member, parser


def members(horizon: int = 12, quantiles=()) -> list[LRUForecastNet]:
    """Two members that differ in lookback, patch length and normalisation (the anchor one streams
    through the compiled step, the RevIN one re-runs its window)."""
    torch.manual_seed(0)
    a = LRUForecastNet(ForecastNetConfig(32, horizon, 3, quantiles=list(quantiles)).with_options(TINY_MODEL))
    b = LRUForecastNet(
        ForecastNetConfig(48, horizon, 3, quantiles=list(quantiles), normalization="revin").with_options(
            {**TINY_MODEL, "segment": 16}
        )
    )
    return [a.eval(), b.eval()]


def test_ensemble_forecast_is_the_members_mean_each_on_its_own_lookback():
    a, b = members()
    ens = ForecastEnsemble([a, b]).eval()
    assert ens.lookback == 48
    x = torch.randn(5, 48, 3)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), (a(x[:, -32:]) + b(x)) / 2)
    with pytest.raises(ShapeError, match="needs 48"):
        ens(x[:, -32:])
    with pytest.raises(ValueError, match="share horizon"):
        ForecastEnsemble([a, LRUForecastNet(ForecastNetConfig(32, 24, 3).with_options(TINY_MODEL))])


def test_ensemble_forecaster_streams_like_a_recompute_and_survives_save_and_load(tmp_path):
    df = synthetic_frame(700)
    series = load_series(df.iloc[:600], time_col="date")
    scaler = StandardScaler.fit(series.values)
    fc = LRUForecaster.from_trained(ForecastEnsemble(members(quantiles=[0.1, 0.9])), scaler, series)
    assert fc.lookback == 48 and list(fc.predict().columns)[:3] == ["date", "s0", "s0_q0.1"]
    streamed = fc.update(df.iloc[600:637])  # 37 rows: crosses patch boundaries of both members
    recomputed = LRUForecaster.load_from(fc).set_history(df.iloc[:637])
    pd.testing.assert_frame_equal(streamed, recomputed, rtol=1e-4, atol=1e-4)

    path = fc.save(tmp_path / "ens.lruts")
    blob = torch.load(path, weights_only=True)
    assert blob["version"] == 5 and len(blob["members"]) == 2 and blob["ensemble"] and "blend" not in blob
    loaded = LRUForecaster.load(path)
    assert isinstance(loaded.net, ForecastEnsemble) and loaded.lookback == 48
    pd.testing.assert_frame_equal(loaded.predict(), streamed)
    nxt = df.iloc[637:640]
    pd.testing.assert_frame_equal(loaded.update(nxt), fc.update(nxt), rtol=1e-5, atol=1e-5)
    single = LRUForecaster.from_trained(members()[0], scaler, series).save(tmp_path / "one.lruts")
    blob = torch.load(single, weights_only=True)
    assert (blob["version"], len(blob["members"]), blob["ensemble"]) == (5, 1, False)
    assert isinstance(LRUForecaster.load(single).net, LRUForecastNet)


def test_load_reads_format_2_ensembles_with_flat_member_configs(tmp_path):
    df = synthetic_frame(700)
    series = load_series(df.iloc[:600], time_col="date")
    fc = LRUForecaster.from_trained(ForecastEnsemble(members()), StandardScaler.fit(series.values), series)
    blob = torch.load(fc.save(tmp_path / "new.lruts"), weights_only=True)
    old_network_fields = ("d_model", "d_state", "n_layers", "r_min", "r_max", "max_phase", "norm", "dropout")
    flat = [
        {**{k: v for k, v in c.items() if k != "network"}, **{k: c["network"][k] for k in old_network_fields}}
        for c in blob["members"]
    ]
    del blob["ensemble"]
    blob.update(version=2, members=flat)
    torch.save(blob, tmp_path / "old.lruts")
    loaded = LRUForecaster.load(tmp_path / "old.lruts")
    assert [m.cfg for m in loaded.net.members] == [m.cfg for m in fc.net.members]
    pd.testing.assert_frame_equal(loaded.update(df.iloc[600:605]), fc.update(df.iloc[600:605]), rtol=1e-5)


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ensemble")
    csv = tmp / "toy.csv"
    synthetic_frame(900).to_csv(csv, index=False)
    # the ensemble's own mean, not blended (tests/test_blend.py blends ensembles)
    ensemble = [{"dropout": 0.1}, {"lookback": 64, "seed": 1}]
    cfg = tiny_experiment(csv, tmp / "runs", track=False, blend=False, ensemble=ensemble)
    return tmp, csv, cfg, run_experiment(cfg)[0]


def test_pipeline_trains_each_member_and_scores_their_mean(ensemble_run):
    tmp, csv, _, r = ensemble_run
    out = tmp / "runs" / "toy" / "L48-H12"
    assert r.out_dir == str(out)
    for k in (0, 1):
        assert (out / f"member{k}" / "best.pt").is_file() and (out / f"member{k}" / "last.pt").is_file()
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["fit"]["members"]) == 2
    assert saved["fit"]["epochs_run"] == sum(m["epochs_run"] for m in saved["fit"]["members"])

    fc = LRUForecaster.load(out / "forecaster.lruts")
    assert isinstance(fc.net, ForecastEnsemble)
    assert [m.cfg.lookback for m in fc.net.members] == [48, 64]
    assert [m.cfg.network.dropout for m in fc.net.members] == [0.1, TINY_MODEL["dropout"]]
    splits = make_splits(load_series(str(csv)), 64, 12)  # the longest member's windows
    val = predict_windows(fc.net, splits.val)
    assert r.fit.best_val_loss == pytest.approx(float(((val.pred[..., 0] - val.true) ** 2).mean()), rel=1e-5)
    test = predict_windows(fc.net, splits.test)
    assert r.test["mse"] == pytest.approx(float(((test.pred[..., 0] - test.true) ** 2).mean()), rel=1e-5)
    # the same test windows as one model at lookback 48 (the protocol offsets its borders by L)
    assert r.test["windows"] == len(make_splits(load_series(str(csv)), 48, 12).test)
    assert {m["windows"] for m in r.baselines.values()} == {r.test["windows"]}
    # the mean is better on validation than either member here
    assert r.fit.best_val_loss < min(m.best_val_loss for m in r.members)


def test_evaluate_scores_a_saved_ensemble_on_its_own_windows(ensemble_run):
    tmp, csv, _, r = ensemble_run
    out = tmp / "eval.json"
    args = ["--dataset", str(csv), "--lookback", "48", "--horizons", "12", "--runs", str(tmp / "runs"),
            "--baselines", "repeat_last", "--out", str(out)]  # fmt: skip
    assert evaluate.main(args) == 0
    assert json.loads(out.read_text())["H12/LRU"]["metrics"]["mse"] == pytest.approx(r.test["mse"], rel=1e-5)


def test_resuming_a_finished_ensemble_trains_nothing_more_and_gives_the_same_forecast(ensemble_run):
    _, _, cfg, r = ensemble_run
    again = run_experiment(cfg, resume=True)[0]
    assert again.test["mse"] == r.test["mse"]
    assert [m.epochs_run for m in again.members] == [m.epochs_run for m in r.members]
    assert [m.resumed_after for m in again.members] == [m.epochs_run for m in r.members]


def test_members_are_given_as_overrides_with_one_clear_error_per_mistake(tmp_path):
    assert parse_member("dropout=0.6,lookback=512") == {"dropout": 0.6, "lookback": 512}
    assert parse_member("d-model=32") == {"d_model": 32}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_member("dropout")
    cfg = build_config(
        parser().parse_args(["--dataset", "ETTh1", "--member", "dropout=0.6", "--member", "lookback=512"])
    )
    first, second = member_configs(cfg)
    assert (first.lookback, first.model.network.dropout) == (336, 0.6)
    assert (second.lookback, second.model.network.dropout, second.train.seed) == (
        512,
        cfg.model.network.dropout,
        cfg.train.seed,
    )
    cfg.ensemble = [{"dropuot": 0.6}]
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['dropuot'\]"):
        member_configs(cfg)
    cfg.ensemble = [0.6]
    with pytest.raises(ConfigError, match="must be a mapping"):
        member_configs(cfg)
    yaml_cfg = tmp_path / "ens.yaml"
    yaml_cfg.write_text("dataset: ETTh1\nensemble:\n  - {dropout: 0.6}\n  - {lookback: 512}\n")
    assert ExperimentConfig.from_yaml(yaml_cfg).ensemble == [{"dropout": 0.6}, {"lookback": 512}]
    with pytest.raises(ConfigError, match="remove `ensemble`"):
        tune(ExperimentConfig.from_yaml(yaml_cfg), 1, storage=None)


def test_a_member_with_a_longer_lookback_is_refused_before_any_training_when_the_series_is_too_short(ensemble_run):
    tmp, _, cfg, _ = ensemble_run
    path = tmp / "short.csv"
    synthetic_frame(900).iloc[:300].to_csv(path, index=False)
    short = dataclasses.replace(cfg, dataset=str(path), ensemble=[{"lookback": 48}, {"lookback": 200}])
    with pytest.raises(DataError, match="shorter than lookback"):
        run_experiment(short)
    assert not (tmp / "runs" / "short").exists()  # the first member did not train


def test_the_results_table_names_an_ensemble_and_its_lookbacks(ensemble_run):
    tmp, _, _, r = ensemble_run
    [(name, runs)] = collect(tmp / "runs").items()
    table = dataset_table(name, runs)
    assert "| horizon | LRU (ours, mean of 2: L=48 / 64) |" in table
    assert f"| 12 | {r.test['mse']:.3f} / {r.test['mae']:.3f} |" in table


def test_each_members_epochs_are_tracked_under_its_own_prefix():
    run = Run(None)  # no MLflow behind it: the run's own history still records what was logged
    PrefixedRun(run, "member1_").log_metrics({"val_loss": 0.5, "train_loss": 0.7}, step=3)
    assert run.history == {"member1_val_loss": [(3, 0.5)], "member1_train_loss": [(3, 0.7)]}

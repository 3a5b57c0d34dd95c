"""The pipelines on panels: a long file with covariates trained, scored per series, saved, reloaded and
evaluated through the CLI; ETT's MS setting on a wide table; the registry's panel defaults and the flags
over them; the CLI's one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest

from lruts.forecasting.experiment import ExperimentConfig, with_dataset_defaults
from lruts.forecasting.forecaster import LRUForecaster
from pipelines import evaluate, train

L, H = 24, 6
TINY = ["--d-model", "8", "--d-state", "8", "--n-layers", "1", "--segment", "8", "--dropout", "0"]
QUICK = ["--epochs", "1", "--max-steps-per-epoch", "3", "--batch-size", "32", "--no-track", "--tag", ""]


def long_frame(seed: int = 0) -> pd.DataFrame:
    """Three hourly series of unequal spans driven by a known-ahead covariate `temp`, the horizon's `temp`
    rows given after each series' last target; series 'c' too short for the protocol (dropped)."""
    rng = np.random.default_rng(seed)
    parts = []
    for sid, start, n in (("a", "2021-01-01", 400), ("b", "2021-01-05", 300), ("c", "2021-01-10", 40)):
        t = pd.date_range(start, periods=n + H, freq="h")
        temp = np.sin(2 * np.pi * np.arange(n + H) / 24) + 0.3 * rng.standard_normal(n + H)
        y = 2.0 * temp + 0.1 * rng.standard_normal(n + H)
        y[n:] = np.nan  # the future rows: covariates only
        parts.append(pd.DataFrame({"unique_id": sid, "ds": t, "y": y, "temp": temp, "region": f"r{sid}"}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def panel_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("panel")
    csv = tmp / "sensors.csv"
    long_frame().to_csv(csv, index=False)
    args = ["--dataset", str(csv), "--id-col", "unique_id", "--target", "y", "--future-covariates", "temp",
            "--lookback", str(L), "--horizons", str(H), "--out", str(tmp / "runs"), *TINY, *QUICK]  # fmt: skip
    assert train.main(args) == 0
    return tmp, csv, tmp / "runs" / "sensors" / f"L{L}-H{H}"


def test_train_on_a_long_file_reports_per_series_mase_and_saves_a_long_forecaster(panel_run, capsys):
    _, _, out = panel_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["dropped_series"] == ["c"]
    assert set(saved["mase_per_series"]) == {"a", "b"}
    per_series = list(saved["mase_per_series"].values())
    assert saved["test"]["mase"] == pytest.approx(np.mean(per_series))
    assert saved["test"]["mase_median"] == pytest.approx(np.median(per_series))
    # test windows: the last 20% of each kept series (a: 80 rows, b: 60), every window inside its series
    assert saved["test"]["windows"] == (80 - H + 1) + (60 - H + 1)
    assert {m["windows"] for m in saved["baselines"].values()} == {saved["test"]["windows"]}
    assert saved["config"]["future_covariates"] == ["temp"] and saved["config"]["id_col"] == "unique_id"

    fc = LRUForecaster.load(out / "forecaster.lruts", device="cpu")
    assert fc.panel.future_names == ["temp"] and fc.panel.ids == ["a", "b", "c"]
    forecast = fc.predict()  # the horizon's covariates came with the file
    assert list(forecast.columns[:3]) == ["unique_id", "ds", "forecast"]
    assert len(forecast) == 3 * H and np.isfinite(forecast["forecast"]).all()
    # 'c', too short to train on, is read as a series that joins after the fit: by its own scale (it had mean 0
    # and std 1, its values fed to the network unscaled)
    c = long_frame().query("unique_id == 'c'")["y"].dropna()
    scale = fc.panel.scaler.target
    assert (scale.mean[2], scale.std[2]) == pytest.approx((c.mean(), c.std(ddof=0)), rel=1e-4)


def test_evaluate_scores_a_saved_panel_run_on_its_own_test_windows(panel_run):
    tmp, csv, out = panel_run
    trained = json.loads((out / "results.json").read_text())
    scores = tmp / "eval.json"
    args = ["--dataset", str(csv), "--lookback", str(L), "--horizons", str(H), "--runs", str(tmp / "runs"),
            "--baselines", "repeat_last", "--out", str(scores)]  # fmt: skip
    assert evaluate.main(args) == 0
    everything = json.loads(scores.read_text())
    assert set(everything) == {f"H{H}/LRU", f"H{H}/repeat_last"}
    lru = everything[f"H{H}/LRU"]
    assert lru["metrics"]["windows"] == trained["test"]["windows"]
    assert lru["metrics"]["mse"] == pytest.approx(trained["test"]["mse"], rel=1e-5)
    assert lru["mase_per_series"] == pytest.approx(trained["mase_per_series"], rel=1e-5)
    assert everything[f"H{H}/repeat_last"]["metrics"]["mse"] == pytest.approx(
        trained["baselines"]["repeat_last"]["mse"], rel=1e-6
    )


def test_a_static_file_reaches_the_network_and_the_saved_forecaster_and_evaluate_reads_it(tmp_path):
    csv, static = tmp_path / "sensors.csv", tmp_path / "sites.csv"
    long_frame().to_csv(csv, index=False)
    pd.DataFrame({"unique_id": ["c", "a", "b"], "altitude": [5.0, 1.0, 2.0]}).to_csv(static, index=False)
    args = ["--dataset", str(csv), "--id-col", "unique_id", "--target", "y", "--future-covariates", "temp",
            "--static-file", str(static), "--lookback", str(L), "--horizons", str(H), "--out", str(tmp_path / "runs"),
            *TINY, *QUICK]  # fmt: skip
    assert train.main(args) == 0
    out = tmp_path / "runs" / "sensors" / f"L{L}-H{H}"
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["static_file"] == str(static) and saved["config"]["static_covariates"] == []
    fc = LRUForecaster.load(out / "forecaster.lruts", device="cpu")
    assert fc.net_config.n_static == 1 and fc.panel.static_names == ["altitude"]
    # each series' value, matched by id (the file's rows are in another order)
    altitude = fc.panel.scaler.static.inverse_transform(fc.panel.static.numpy())
    np.testing.assert_allclose(altitude[:, 0], [1.0, 2.0, 5.0], rtol=1e-6)
    scores = tmp_path / "eval.json"
    args = ["--dataset", str(csv), "--lookback", str(L), "--horizons", str(H), "--runs", str(tmp_path / "runs"),
            "--baselines", "repeat_last", "--out", str(scores)]  # fmt: skip
    assert evaluate.main(args) == 0  # the run's static file is read again: the same panel, the same score
    assert json.loads(scores.read_text())[f"H{H}/LRU"]["metrics"]["mse"] == pytest.approx(saved["test"]["mse"])


def test_ms_setting_is_one_series_with_the_other_columns_as_past_covariates(tmp_path):
    n = 600
    rng = np.random.default_rng(1)
    t = np.arange(n)
    wide = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h")})
    wide["load_a"] = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    wide["load_b"] = np.cos(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    wide["OT"] = wide["load_a"] + 0.5 * wide["load_b"] + 0.1 * rng.standard_normal(n)
    csv = tmp_path / "ett_like.csv"
    wide.to_csv(csv, index=False)
    args = ["--dataset", str(csv), "--features", "MS", "--lookback", str(L), "--horizons", str(H),
            "--out", str(tmp_path / "runs"), *TINY, *QUICK]  # fmt: skip
    assert train.main(args) == 0
    out = tmp_path / "runs" / "ett_like-MS" / f"L{L}-H{H}"  # never the multivariate run's folder
    saved = json.loads((out / "results.json").read_text())
    # the protocol's ratio borders (70 / 10 / 20 of the rows), as the wide table's own splits
    assert saved["test"]["windows"] == n - (n - int(0.2 * n)) - H + 1
    assert list(saved["mase_per_series"]) == ["OT"] and saved["config"]["n_series"] == 1
    fc = LRUForecaster.load(out / "forecaster.lruts", device="cpu")
    assert fc.panel.target_col == "OT" and fc.panel.past_names == ["load_a", "load_b"]
    scored = tmp_path / "scored.json"
    args = ["--dataset", str(csv), "--features", "MS", "--lookback", str(L), "--horizons", str(H),
            "--runs", str(tmp_path / "runs"), "--baselines", "repeat_last", "--out", str(scored)]  # fmt: skip
    assert evaluate.main(args) == 0
    assert json.loads(scored.read_text())[f"H{H}/LRU"]["metrics"]["mse"] == pytest.approx(saved["test"]["mse"])


def test_registered_panel_defaults_apply_and_flags_override_them():
    prices = with_dataset_defaults(ExperimentConfig(dataset="electricity_prices"))
    assert (prices.id_col, prices.time_col, prices.target) == ("unique_id", "ds", "y")
    assert prices.future_covariates[:2] == ["Exogenous1", "Exogenous2"] and len(prices.future_covariates) == 9
    chosen = with_dataset_defaults(ExperimentConfig(dataset="electricity_prices", future_covariates=["Exogenous1"]))
    assert chosen.future_covariates == ["Exogenous1"]
    retail = with_dataset_defaults(ExperimentConfig(dataset="aus_retail"))
    assert (retail.id_col, retail.time_col, retail.target) == ("Series ID", "Month", "Turnover")
    # a dataset the registry pivots wide stays wide
    assert with_dataset_defaults(ExperimentConfig(dataset="gafa_stock")).id_col is None


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--id-col", "unique_id", "--future-covariates", "humidity"], "['humidity'] are not columns"),
        (["--id-col", "unique_id", "--past-covariates", "region"], "is not numeric"),
        (["--future-covariates", "temp"], "need a long table (--id-col COLUMN"),
        (["--id-col", "unique_id", "--static-file", "sites.csv"], "sites.csv' repeats ids ['a']"),
        (["--id-col", "unique_id", "--static-file", "few_sites.csv"], "few_sites.csv' has no row for series ['c']"),
        (["--id-col", "unique_id", "--static-file", "text_sites.csv"], "static covariate ['kind'] is not numeric"),
        (["--id-col", "unique_id", "--static-file", "no_sites.csv"], "no_sites.csv' does not exist"),
        (["--id-col", "unique_id", "--static-file", "few_sites.csv", "--static-covariates", "region"], "not both"),
        (["--static-file", "few_sites.csv"], "need a long table (--id-col COLUMN"),
        (["--features", "MS", "--static-file", "few_sites.csv"], "drop --static-covariates / --static-file"),
    ],
    ids=[
        "unknown column",
        "text covariate",
        "covariates on a wide table",
        "static file: duplicate ids",
        "static file: an id missing",
        "static file: a text column",
        "static file: missing",
        "static columns and a static file",
        "static file on a wide table",
        "static file with MS",
    ],
)
def test_cli_refuses_bad_covariates_with_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, flags, says):
    monkeypatch.chdir(tmp_path)  # the static files' relative paths
    csv = tmp_path / "sensors.csv"
    long_frame().to_csv(csv, index=False)
    pd.DataFrame({"unique_id": ["a", "b", "a", "c"], "altitude": [1.0, 2.0, 3.0, 4.0]}).to_csv("sites.csv", index=False)
    pd.DataFrame({"unique_id": ["a", "b"], "altitude": [1.0, 2.0]}).to_csv("few_sites.csv", index=False)
    pd.DataFrame({"unique_id": ["a", "b", "c"], "kind": ["x", "y", "z"]}).to_csv("text_sites.csv", index=False)
    args = ["--dataset", str(csv), *flags, "--lookback", str(L), "--horizons", str(H), "--out", str(tmp_path), *QUICK]
    assert train.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("**/results.json"))


def test_ingest_keeps_covariates_as_covariates_and_reports_them(tmp_path, capsys, monkeypatch):
    from pipelines import ingest

    monkeypatch.setenv("LRUTS_DATA_HOME", str(tmp_path / "home"))
    csv = tmp_path / "sensors.csv"
    long_frame().to_csv(csv, index=False)
    args = ["--path", str(csv), "--id-col", "unique_id", "--target", "y", "--future-covariates", "temp"]
    assert ingest.main(args) == 0
    out = capsys.readouterr().out
    assert "3 series, step 1h" in out and "target 'y', one series per 'unique_id'" in out
    assert "future covariates: temp" in out
    assert not list(tmp_path.glob("**/*.parquet"))  # the pipelines read the file itself


def test_ingest_reads_a_static_file_as_train_does(tmp_path, capsys, monkeypatch):
    from pipelines import ingest

    monkeypatch.setenv("LRUTS_DATA_HOME", str(tmp_path / "home"))
    csv, static = tmp_path / "sensors.csv", tmp_path / "sites.csv"
    long_frame().to_csv(csv, index=False)
    pd.DataFrame({"unique_id": ["a", "b", "c"], "altitude": [1.0, 2.0, 5.0]}).to_csv(static, index=False)
    assert ingest.main(["--path", str(csv), "--id-col", "unique_id", "--static-file", str(static)]) == 0
    assert "static covariates: altitude" in capsys.readouterr().out
    assert ingest.main(["--path", str(csv), "--id-col", "unique_id", "--static-file", str(tmp_path / "no.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the static covariates file") and len(err.splitlines()) == 1


def test_train_on_a_wide_file_with_outages_masks_them(tmp_path):
    # a wide file with a sensor's outage and hours the logger sent nothing: kept missing (the default for every
    # table), the network reads the mask, the baselines read the lookback as a panel's, every score is finite
    # and counts no missing target (before, the file was forward-filled: invented readings in every split)
    t = pd.date_range("2021-01-01", periods=600, freq="h")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"date": t})
    for j in range(2):
        df[f"s{j}"] = np.sin(2 * np.pi * (np.arange(600) / 24 + j / 2)) + 0.1 * rng.standard_normal(600)
    df.loc[100:140, "s1"] = np.nan  # a training-stretch outage
    df.loc[540:545, "s0"] = np.nan  # and one among the test targets
    csv = tmp_path / "meters.csv"
    df.drop(index=range(300, 310)).to_csv(csv, index=False)  # ten hours with no row
    args = ["--dataset", str(csv), "--lookback", str(L), "--horizons", str(H), "--out", str(tmp_path / "runs"),
            *TINY, *QUICK]  # fmt: skip
    assert train.main(args) == 0
    out = next((tmp_path / "runs" / "meters").iterdir())
    saved = json.loads((out / "results.json").read_text())
    fc = LRUForecaster.load(out / "forecaster.lruts", device="cpu")
    # the network trained without the missing-value indicator and with it (each its own checkpoints), one kept
    assert all((out / f"indicator-{way}" / "best.pt").is_file() for way in ("off", "on"))
    for metrics in (saved["test"], *saved["baselines"].values()):
        assert all(np.isfinite(v) for k, v in metrics.items() if k in ("mse", "mae", "mase", "smape")), metrics
    assert np.isfinite(fc.forecast_array()).all()

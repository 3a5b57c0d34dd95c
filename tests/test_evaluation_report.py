"""pipelines.evaluate scores the trained LRU and every baseline on every test window, and the
results table puts a run's numbers next to the published ones."""

import json
import math

import numpy as np
import pytest
from forecast_fixtures import synthetic_frame, tiny_experiment

from lruts.data import load_series, make_splits
from lruts.errors import ConfigError
from lruts.forecasting.experiment import run_experiment
from lruts.forecasting.report import PUBLISHED, collect, dataset_table, update_results
from pipelines import evaluate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    csv = tmp / "toy.csv"
    synthetic_frame(900).to_csv(csv, index=False)
    return tmp, csv, run_experiment(tiny_experiment(csv, tmp / "runs", horizons=[12, 24], track=False))


def test_training_run_scores_the_dlinear_baseline_on_the_same_windows(trained):
    _, _, results = trained
    for r in results:
        assert set(r.baselines) == {"repeat_last", "seasonal_naive", "dlinear"}
        assert {m["windows"] for m in r.baselines.values()} == {r.test["windows"]}


def test_evaluate_cli_scores_the_lru_and_baselines_on_every_test_window(trained, capsys):
    tmp, csv, results = trained
    out = tmp / "eval.json"
    code = evaluate.main(
        ["--dataset", str(csv), "--lookback", "48", "--horizons", "12", "--runs", str(tmp / "runs"),
         "--dlinear-epochs", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    everything = json.loads(out.read_text())
    assert set(everything) == {"H12/LRU", "H12/repeat_last", "H12/seasonal_naive", "H12/dlinear"}
    n_test = len(make_splits(load_series(str(csv)), 48, 12).test)
    assert {v["metrics"]["windows"] for v in everything.values()} == {n_test}
    # the saved forecaster scores exactly what the training run scored
    assert everything["H12/LRU"]["metrics"]["mse"] == pytest.approx(results[0].test["mse"], rel=1e-5)
    # backtest origins every horizon steps cover the test windows
    assert len(everything["H12/LRU"]["backtest"]) == -(-n_test // 12)
    assert "| 12 | LRU |" in capsys.readouterr().out


def test_evaluate_cli_trains_patchtst_on_request(trained, capsys):
    tmp, csv, _ = trained
    out = tmp / "eval_patchtst.json"
    code = evaluate.main(
        ["--dataset", str(csv), "--lookback", "48", "--horizons", "12", "--runs", str(tmp / "runs"),
         "--baselines", "patchtst", "--patchtst-epochs", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    everything = json.loads(out.read_text())
    assert set(everything) == {"H12/LRU", "H12/patchtst"}
    n_test = len(make_splits(load_series(str(csv)), 48, 12).test)
    assert everything["H12/patchtst"]["metrics"]["windows"] == n_test
    assert math.isfinite(everything["H12/patchtst"]["metrics"]["mse"])
    assert "| 12 | patchtst |" in capsys.readouterr().out


def test_report_renders_each_horizon_and_the_average_into_the_marked_block(trained, tmp_path):
    tmp, _, results = trained
    quick = tmp / "runs" / "toy" / "L48-H12-quick"  # a newer quick run of the same horizon is no protocol result
    quick.mkdir()
    r = json.loads((tmp / "runs" / "toy" / "L48-H12" / "results.json").read_text())
    r["config"]["tag"], r["test"]["mse"] = "quick", 99.0
    (quick / "results.json").write_text(json.dumps(r))
    runs = collect(tmp / "runs")
    assert sorted(runs["toy"]) == [12, 24]
    assert runs["toy"][12]["test"]["mse"] != 99.0
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text("# title\n\nbefore\n<!-- forecast-results:begin -->\nold\n<!-- forecast-results:end -->\nafter\n")
    assert evaluate.main(["--report", "--runs", str(tmp / "runs"), "--results-md", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith("after\n") and "old" not in text
    r12 = results[0]
    assert f"| 12 | {r12.test['mse']:.3f} / {r12.test['mae']:.3f} |" in text
    mean_mse = (results[0].test["mse"] + results[1].test["mse"]) / 2
    assert f"**{mean_mse:.3f} /" in text
    # rendering twice changes nothing (idempotent)
    update_results(page, tmp / "runs")
    assert page.read_text() == text


def test_report_renders_into_docs_results_by_default(trained, tmp_path, monkeypatch):
    tmp, _, results = trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    assert evaluate.main(["--report", "--runs", str(tmp / "runs")]) == 0
    text = (tmp_path / "docs" / "results.md").read_text()
    assert "<!-- forecast-results:begin -->" in text
    assert f"| 12 | {results[0].test['mse']:.3f} / {results[0].test['mae']:.3f} |" in text


def test_report_refuses_to_write_into_a_readme(trained, tmp_path, capsys):
    tmp, _, _ = trained
    readme = tmp_path / "README.md"
    readme.write_text("# lruts\n\n<!-- forecast-results:begin -->\nold\n<!-- forecast-results:end -->\n")
    with pytest.raises(ConfigError, match=r"docs/results\.md"):
        update_results(readme, tmp / "runs")
    assert evaluate.main(["--report", "--runs", str(tmp / "runs"), "--results-md", str(readme)]) == 2
    assert "not a README" in capsys.readouterr().err
    assert "old" in readme.read_text()  # left as the human wrote it


def test_published_numbers_are_shown_with_their_lookback_and_average():
    run = {"config": {"lookback": 96, "horizon": 96}, "test": {"mse": 0.4, "mae": 0.41}, "baselines": {},
           "fit": {"epochs_run": 3}, "minutes": 1.0}  # fmt: skip
    runs = {h: {**run, "config": {"lookback": 96, "horizon": h}} for h in (96, 192, 336, 720)}
    table = dataset_table("ETTh1", runs)
    assert "PatchTST/64 (published, L=512)" in table
    assert "| 96 | 0.400 / 0.410 | 0.370 / 0.400 |" in table
    patchtst_avg = sum(PUBLISHED["ETTh1"]["PatchTST/64"][1][h][0] for h in (96, 192, 336, 720)) / 4
    assert f"{patchtst_avg:.3f}" == "0.413"  # the spec's average, from its four horizons
    assert "| **avg** | **0.400 / 0.410** | 0.413 /" in table


def test_dlinear_baseline_keeps_the_learning_rate_best_on_validation(trained, monkeypatch):
    """A diverging lr in the grid must lose to a sane one on the validation split."""
    from lruts.forecasting import experiment
    from lruts.forecasting.evaluation import predict_windows, score

    _, csv, _ = trained
    series = load_series(str(csv))
    splits = make_splits(series, 48, 12)
    fitted = {}
    for lrs in [(1e4, 1e-3), (1e-3,), (1e4,)]:
        monkeypatch.setattr(experiment, "DLINEAR_LRS", lrs)
        model = experiment.baseline_models(splits, series, 12, 48, dlinear_epochs=2)["dlinear"]
        fitted[lrs] = score(predict_windows(model, splits.val), splits.scaler)["mse"]
    assert fitted[(1e4,)] > 10 * fitted[(1e-3,)]  # the bad lr is bad
    assert fitted[(1e4, 1e-3)] == pytest.approx(fitted[(1e-3,)])  # and the grid kept the good one


def test_ratio_compares_the_lru_with_the_best_baseline_or_peer_over_the_same_horizons(tmp_path, capsys):
    def result(dataset: str, h: int, lru: float, baselines: dict[str, float]) -> None:
        folder = tmp_path / dataset / f"L336-H{h}"
        folder.mkdir(parents=True)
        r = {"config": {"horizon": h}, "test": {"mse": lru}, "baselines": {k: {"mse": v} for k, v in baselines.items()}}
        (folder / "results.json").write_text(json.dumps(r))

    result("walk", 96, 0.10, {"repeat_last": 0.08, "dlinear": 0.12})
    result("walk", 192, 0.20, {"repeat_last": 0.16, "dlinear": 0.30})
    result("grid", 96, 0.14, {"repeat_last": 0.80, "dlinear": 0.15})
    peer = tmp_path / "peers" / "grid" / "H96"
    peer.mkdir(parents=True)
    (peer / "NHITS.json").write_text(json.dumps({"horizon": 96, "model": "NHITS", "test": {"mse": 0.07}}))
    (tmp_path / "peers" / "walk" / "H96").mkdir(parents=True)  # a peer that ran only one of walk's horizons
    (tmp_path / "peers" / "walk" / "H96" / "NHITS.json").write_text(
        json.dumps({"horizon": 96, "model": "NHITS", "test": {"mse": 0.01}})
    )
    assert evaluate.main(["--ratio", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| grid | 96 | 0.140 | NHITS (peer) | 0.070 | 2.000 |" in out  # the peer is the best other
    assert "| walk | 96 192 | 0.150 | repeat-last | 0.120 | 1.250 |" in out  # the half-run peer is left out
    assert out.strip().endswith("worst ratio: 2.000 (grid, against NHITS (peer))")


def test_predict_windows_gives_a_model_the_batch_covariates_and_mask():
    import polars as pl
    import torch

    from lruts.data import load_panel, panel_splits
    from lruts.forecasting.evaluation import predict_windows

    rng = np.random.default_rng(0)
    n = 120
    hours = (np.datetime64("2020-01-01T00", "h") + np.arange(n)).astype("datetime64[ns]")
    df = pl.DataFrame({"id": "a", "ds": hours, "y": rng.normal(size=n), "temp": rng.normal(size=n)})
    panel = load_panel(df, id_col="id", time_col="ds", target_col="y", future_covariates=["temp"])
    splits = panel_splits(panel, 16, 4)

    class ReadsTheHorizonsCovariate(torch.nn.Module):
        def forward(self, x, *, future=None, mask=None):
            assert mask is not None and mask.shape == x.shape
            return future[:, -4:, :1, None]  # (B, H, 1, 1): the covariate of each forecast step

    preds = predict_windows(ReadsTheHorizonsCovariate(), splits.val)
    batch = splits.val.__getitems__(list(range(len(splits.val))))
    np.testing.assert_allclose(preds.pred[..., 0], batch.future_covariates[:, -4:, :1].numpy())

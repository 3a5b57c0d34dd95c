"""Metrics equal their reference definitions written out element by element; baselines forecast
what they claim; the evaluation covers every window."""

import math

import numpy as np
import pytest
import torch

from lruts.data import StandardScaler, WindowDataset
from lruts.data.panel_windows import PanelScaler
from lruts.forecasting import metrics
from lruts.forecasting.baselines import DLinear, PatchTST, RepeatLast, SeasonalNaive, season_length
from lruts.forecasting.evaluation import Predictions, mase_per_series, predict_windows, rolling_origin, score


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 4, 3))


def test_mse_mae_smape_by_their_definitions(arrays):
    pred, true = arrays
    elems = list(zip(pred.ravel(), true.ravel(), strict=True))
    assert metrics.mse(pred, true) == pytest.approx(sum((p - t) ** 2 for p, t in elems) / len(elems))
    assert metrics.mae(pred, true) == pytest.approx(sum(abs(p - t) for p, t in elems) / len(elems))
    ref = sum(200 * abs(p - t) / (abs(p) + abs(t)) for p, t in elems) / len(elems)
    assert metrics.smape(pred, true) == pytest.approx(ref)
    assert metrics.smape(np.zeros(3), np.zeros(3)) == 0.0  # 0/0 counts as a perfect forecast


def test_mase_by_its_definition():
    train = np.array([[1.0, 10.0], [3.0, 10.0], [2.0, 10.0], [5.0, 10.0]])
    scale = metrics.naive_scale(train, season=1)
    assert scale.tolist() == [(2 + 1 + 3) / 3, 0.0]
    pred = np.array([[[2.0, 1.0]], [[4.0, 3.0]]])
    true = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    # series 0: MAE (1 + 3) / 2 = 2, divided by its naive MAE 2 → 1; series 1 (constant) has none
    identity = StandardScaler(np.zeros(2), np.ones(2))
    per_series = mase_per_series(Predictions(pred[..., None], true), identity, scale)
    assert per_series[0] == pytest.approx(1.0) and np.isnan(per_series[1])
    assert score(Predictions(pred[..., None], true), identity, naive_scale=scale)["mase"] == pytest.approx(1.0)
    assert metrics.coverage(np.zeros(4), np.ones(4), np.array([0.5, 1.5, -1, 1.0])) == 0.5


def test_panel_mase_is_per_series_on_its_own_scale_and_leaves_masked_targets_out():
    # three windows (H = 2) of two panel series; series 1's levels are 10x series 0's, and so is its scale
    scaler = PanelScaler(StandardScaler(np.array([0.0, 100.0]), np.array([1.0, 10.0])), *[None] * 3)
    pred = np.array([[1.0, 1.0], [0.0, 0.0], [2.0, 9.0]])[..., None, None]
    true = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])[..., None]
    mask = np.array([[True, True], [True, True], [True, False]])[..., None]  # window 2's second target: missing
    p = Predictions(pred, true, mask, series=np.array([0, 0, 1]))
    per_series = mase_per_series(p, scaler, naive_scale=np.array([0.5, 10.0]))
    # series 0: MAE 1 / 0.5 = 2; series 1: |2 - 1| · 10 = 10 on the original scale / 10 = 1 (the 9 is missing)
    assert per_series.tolist() == pytest.approx([2.0, 1.0])
    m = score(p, scaler, naive_scale=np.array([0.5, 10.0]))
    assert m["mase"] == pytest.approx(1.5) and m["mase_median"] == pytest.approx(1.5)
    assert m["mae"] == pytest.approx(1.0)  # 5 observed targets, each 1 off (scaled)
    assert [r["mse"] for r in rolling_origin(p, 1)] == pytest.approx([1.0, 1.0, 1.0])  # window 2: not (1 + 9²) / 2


def test_baselines_forecast_what_they_claim():
    x = torch.arange(12.0).reshape(1, 12, 1)
    assert RepeatLast(3)(x)[0, :, 0, 0].tolist() == [11.0, 11.0, 11.0]
    # season 4: the next 6 steps repeat the last season 8, 9, 10, 11
    assert SeasonalNaive(6, 4)(x)[0, :, 0, 0].tolist() == [8.0, 9.0, 10.0, 11.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="lookback"):
        SeasonalNaive(6, 24)(x)
    assert DLinear(12, 5)(torch.randn(2, 12, 3)).shape == (2, 5, 3, 1)


def test_a_season_is_a_day_of_steps_and_a_session_is_its_slots():
    assert season_length("30m") == 48 and season_length("1b") == 5 and season_length("1mo") == 12
    assert season_length("5m@07:00-21:00") == 169  # yesterday's same slot


def test_patchtst_is_patchtst_64_at_lookback_512_and_follows_level_and_scale():
    torch.manual_seed(0)
    net = PatchTST(512, 24).eval()
    assert net.n_patches == 64  # (512 − 16) / 8 + 1 patches, one more from the padding at the end
    x = torch.randn(3, 512, 2)
    y = net(x)
    assert y.shape == (3, 24, 2, 1)
    # RevIN: a window shifted and scaled per series gives the forecast shifted and scaled alike
    a, c = torch.tensor([2.0, 0.5]), torch.tensor([10.0, -3.0])
    torch.testing.assert_close(net(x * a + c), y * a[:, None] + c[:, None], rtol=1e-4, atol=1e-4)
    # the series do not mix: changing one leaves the other's forecast alone
    x2 = x.clone()
    x2[..., 1] = torch.randn(3, 512)
    torch.testing.assert_close(net(x2)[..., 0, :], y[..., 0, :])


def test_evaluation_scores_every_window_and_backtests_by_origin():
    values = np.sin(np.arange(300) / 5.0)[:, None].repeat(2, 1).astype(np.float32)
    scaler = StandardScaler.fit(values[:200])
    ds = WindowDataset(values, 150, 300, 24, 6, split="test", scaler=scaler)
    p = predict_windows(RepeatLast(6), ds, batch_size=7)  # batches that do not divide the window count
    assert len(p.pred) == len(ds) == 300 - 150 - 24 - 6 + 1
    m = score(p, scaler)
    assert m["windows"] == len(ds)
    assert m["mse"] == pytest.approx(np.mean((p.pred[..., 0] - p.true) ** 2))
    rows = rolling_origin(p, stride=6)
    assert [r["origin"] for r in rows] == list(range(0, len(ds), 6))
    assert rows[1]["mse"] == pytest.approx(np.mean((p.pred[6, ..., 0] - p.true[6]) ** 2))
    assert not math.isnan(m["smape"])


def test_score_beside_every_window_reports_the_windows_patchtst_scores():
    """PatchTST's test loader drops the last partial batch of 128: those windows are left out of the
    *_patchtst_windows metrics and only of them."""
    rng = np.random.default_rng(1)
    true = rng.normal(size=(300, 4, 2))
    pred = true + 0.1
    pred[256:] += 5.0  # the 44 windows after two full batches are far off
    scaler = StandardScaler(np.zeros(2), np.ones(2))
    m = score(Predictions(pred[..., None], true), scaler)
    assert m["mse"] == pytest.approx(np.mean((pred - true) ** 2))
    assert m["mse_patchtst_windows"] == pytest.approx(0.01)
    assert m["mae_patchtst_windows"] == pytest.approx(0.1)
    few = score(Predictions(pred[:100, ..., None], true[:100]), scaler)  # no full batch: nothing to report
    assert "mse_patchtst_windows" not in few

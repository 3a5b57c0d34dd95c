"""The blend (lruts/forecasting/blend.py): exact least squares on the simplex, intervals that reach their
nominal coverage, no loss to repeat-last on a random walk, and a stream equal to the window pass."""

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
from forecast_fixtures import TINY_MODEL, tiny_train
from scipy import stats

from lruts import LRUForecaster
from lruts.data import WindowDataset
from lruts.errors import ShapeError
from lruts.forecasting.blend import (
    CANDIDATES,
    Blend,
    Evidence,
    _out_of_block_residuals,
    _report_untrusted,
    _sample_quantiles,
    _simple_maps,
    _t_test,
    fit_blend,
    ridge_features,
    simplex_least_squares,
)
from lruts.forecasting.evaluation import predict_windows
from lruts.forecasting.net import ForecastEnsemble, ForecastNetConfig, LRUForecastNet


def windows(values: np.ndarray, lookback: int, horizon: int) -> WindowDataset:
    data = torch.from_numpy(values.astype(np.float32))
    return WindowDataset(data, 0, len(data), lookback, horizon)


def seasonal_noise(n: int, rng: np.random.Generator, channels: int = 2) -> np.ndarray:
    """A daily cycle (period 24) plus independent Gaussian noise: every window's residual is exchangeable."""
    t = np.arange(n)[:, None]
    return np.sin(2 * np.pi * t / 24) * np.arange(1, channels + 1) + rng.normal(0, 0.5, (n, channels))


@torch.no_grad()
def blended_forecasts(blend: Blend, dataset: WindowDataset):
    batch = dataset.__getitems__(list(range(len(dataset))))
    return blend(batch.x), batch.y


@torch.no_grad()
def blended_parts(blend: Blend, dataset: WindowDataset):
    batch = dataset.__getitems__(list(range(len(dataset))))
    return blend.candidates(batch.x, blend.net(batch.x)[..., 0]), batch.y


def test_simplex_least_squares_recovers_a_known_mixture_and_stays_on_the_simplex():
    g = torch.Generator().manual_seed(0)
    parts = torch.randn(500, 3, 2, 4, generator=g)  # (windows, steps, series, parts)
    true_w = torch.tensor([[0.7, 0.3, 0.0, 0.0], [0.0, 0.0, 0.25, 0.75], [1.0, 0.0, 0.0, 0.0]])  # per step
    y = (parts * true_w[:, None]).sum(-1)
    w = simplex_least_squares(parts, y, usable=[True] * 4)
    torch.testing.assert_close(w, true_w, atol=1e-5, rtol=0)
    # a target outside the parts' hull: the weights stay non-negative and sum to one
    w = simplex_least_squares(parts, 3 * y + 1, usable=[True, True, True, False])
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(3)) and (w[:, 3] == 0).all()


def fit_walk_blend(seed: int, val_steps: int, lookback: int = 16, horizon: int = 24) -> dict:
    """fit_blend of a tiny untrained network's blend on a unit random walk: 3,000 training steps, then
    `val_steps` of validation; what it chose."""
    walk = np.cumsum(np.random.default_rng(seed).normal(0, 1, (3000 + val_steps, 1)), axis=0)
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 1).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 1, season=0, quantiles=[])
    return fit_blend(blend, windows(walk[:3000], lookback, horizon), windows(walk[3000:], lookback, horizon))


def test_two_equal_forecasts_of_a_series_far_from_zero_do_not_break_the_weights_solver():
    # one series: the shared and the per-series linear maps are the same forecast, and this random walk
    # wanders to values in the tens: the KKT system of the two was singular and fit raised (seed 10 of 20)
    info = fit_walk_blend(seed=10, val_steps=600)
    w = torch.tensor(list(info["weights"].values()))
    assert (w >= 0).all() and torch.allclose(w.sum(0), torch.ones(24), atol=1e-3)


def test_split_conformal_intervals_reach_their_nominal_coverage_on_fresh_data():
    rng = np.random.default_rng(0)
    lookback, horizon = 48, 12
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 2).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 2, season=24, quantiles=[0.1, 0.9])
    info = fit_blend(
        blend,
        windows(seasonal_noise(1500, rng), lookback, horizon),
        windows(seasonal_noise(2500, rng), lookback, horizon),
    )
    out, y = blended_forecasts(blend, windows(seasonal_noise(3000, rng), lookback, horizon))
    lo, hi = out[..., 1], out[..., 2]
    coverage = ((y >= lo) & (y <= hi)).float().mean().item()
    # the quantiles come from ~2,400 validation windows per step and series, the coverage from ~3,000 test
    # windows: seeds 0-3 of this set-up land within ±0.021 of nominal, so ±0.03 is sampling error
    assert abs(coverage - 0.8) < 0.03, coverage
    for q, below in ((0.1, y < lo), (0.9, y <= hi)):  # and each level on its own
        assert abs(below.float().mean().item() - q) < 0.03
    assert info["val_mse"]["seasonal_naive"] > info["val_mse"]["linear"]  # the noise averages out linearly
    assert set(info["val_mse"]) == set(CANDIDATES)
    # on validation the blend is never worse than the simple forecasts, nor, once trusted, than any part
    assert info["val_mse_blend"] <= min(info["val_mse"][k] for k in ("repeat_last", "seasonal_naive")) + 1e-6
    assert info["t_against_simple"] < -2 and info["val_mse_blend"] <= min(info["val_mse"].values()) + 1e-6


@pytest.mark.parametrize("kind", ["cycle", "random walk"])
def test_a_validation_span_under_two_horizons_is_judged_on_the_first_steps_it_spans_twice(kind):
    # 61 validation windows at H = 48 make one block of a horizon, too few for a t statistic: the blend is
    # judged on the first 30 steps (two blocks of 30 windows). A cycle under noise is forecast far better by
    # the fitted maps than by seasonal naive, so they are kept; a random walk keeps repeat-last.
    rng = np.random.default_rng(0)
    lookback, horizon = 48, 48
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 2).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 2, season=24, quantiles=[])

    def series(n: int) -> np.ndarray:
        return seasonal_noise(n, rng) if kind == "cycle" else np.cumsum(rng.normal(0, 1, (n, 2)), axis=0)

    val = windows(series(lookback + horizon + 60), lookback, horizon)
    assert len(val) == 61
    info = fit_blend(blend, windows(series(3000), lookback, horizon), val)
    assert info["t_steps"] == 30
    weights = blend.weights.sum(0)
    if kind == "cycle":
        assert info["t_against_simple"] < -2
        assert float(weights[CANDIDATES.index("linear")] + weights[CANDIDATES.index("linear_per_series")]) > 0
    else:
        assert not info["t_against_simple"] < -2
        assert float(weights[CANDIDATES.index("repeat_last")]) == horizon


@pytest.mark.parametrize(
    ("t", "better", "blocks", "trusted"),
    [
        (-13.0, 1, 2, True),  # clearly better on average: Student's t with 1 degree of freedom, p = 0.024
        (-2.5, 1, 2, False),  # p = 0.12: two blocks' means are one standard error apart by chance often enough
        (-2.5, 29, 40, True),  # 39 degrees of freedom, p = 0.008
        (-2.0, 20, 40, False),  # p = 0.026
        (-1.9, 13, 13, True),  # better in every block, one far more than the rest (a sign test: p = 1/8192)
        (-1.9, 6, 6, True),  # p = 1/64
        (-1.9, 5, 6, False),  # p = 7/64
        (-1.9, 2, 2, False),  # two blocks can never pass the sign test alone
        (float("nan"), 0, 0, False),  # nothing to tell
    ],
)
def test_the_blend_is_trusted_on_a_t_test_or_a_sign_test_over_blocks(t, better, blocks, trusted):
    assert Evidence(3, t, 48, better, blocks).trusted is trusted


@pytest.mark.parametrize(
    ("t", "better", "blocks", "history", "trusted"),
    [
        (-1.0, 1, 2, (5, 5), True),  # too short a validation; the history's 5 parts and validation: p = 1/64
        (-1.0, 1, 2, (4, 5), False),  # p = 7/64
        (0.5, 1, 2, (5, 5), False),  # validation does not agree
        (-1.0, 5, 12, (5, 5), False),  # validation could have shown it and did not
        (-13.0, 1, 2, (3, 5), True),  # validation shows it and the history agrees more often than not
        (-13.0, 1, 2, (2, 5), False),  # the history says otherwise
        (-1.9, 6, 6, (0, 5), False),
        (-13.0, 1, 2, (0, 0), True),  # no history to ask
        (-4.28, 3, 3, (0, 0), False),  # ETTh1 at H = 720: 3 blocks, t alone p = 0.0253, just short of 2.5%
        (-4.28, 3, 3, (5, 5), True),  # and its history shows it
    ],
)
def test_the_history_shows_what_a_short_validation_cannot_and_vetoes_what_it_contradicts(
    t, better, blocks, history, trusted
):
    assert Evidence(3, t, 48, better, blocks, *history).trusted is trusted


def test_the_t_test_is_students_t_with_the_blocks_degrees_of_freedom():
    # scipy (a dev dependency) as the reference; lruts computes it without scipy
    for df in (1, 2, 3, 4, 5, 6, 13, 40, 409):
        for t in (-465.0, -12.7, -4.3, -2.0, -0.5, 0.0, 1.5):
            assert _t_test(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)
    assert _t_test(-math.inf, 3) == 0.0 and math.isnan(_t_test(-2.0, 0)) and math.isnan(_t_test(math.nan, 5))


def test_the_simple_forecasts_as_maps_of_the_relative_features_are_repeat_last_and_seasonal_naive():
    # the history scores repeat-last and seasonal naive through the relative map's sums: their maps must be
    # those forecasts exactly (a season shorter than the horizon repeats)
    lookback, horizon, season = 16, 12, 5
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 2).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 2, season=season, quantiles=[])
    x = torch.randn(8, lookback, 2, dtype=torch.float64)
    z, last = ridge_features(x, lookback), x[:, -1:]
    maps = _simple_maps(blend)
    for name, w in maps.items():
        expected = blended_parts_of(blend, x)[..., CANDIDATES.index(name)]
        torch.testing.assert_close((z @ w).transpose(1, 2) + last, expected)
    # a season longer than the lookback: no seasonal naive the features could give
    assert set(_simple_maps(Blend(net, lookback, horizon, 2, season=24, quantiles=[]))) == {"repeat_last"}


@torch.no_grad()
def blended_parts_of(blend: Blend, x: torch.Tensor) -> torch.Tensor:
    return blend.double().candidates(x, torch.zeros(len(x), blend.horizon, x.shape[-1], dtype=x.dtype))


def test_a_pattern_only_the_validation_months_show_does_not_make_the_forecast(caplog):
    # a walk with a 12-step cycle in its first 1,500 training steps and in its 600 validation steps, none in
    # the 1,500 between: validation rewards the linear maps' cycle in 48 of 49 blocks (t = -14.8), but on the
    # training rows' later parts, each refitted before, they lose to repeat-last in 5 of 5. A validation
    # stretch is one regime that all its blocks share (a stock's calm spell or trend): the forecast stays
    # repeat-last, and fit says why
    rng = np.random.default_rng(0)
    lookback, horizon, n = 24, 12, 3600
    t = np.arange(n)
    cycle = np.sin(2 * np.pi * t / 12) * ((t < 1500) | (t >= 3000))
    x = (np.cumsum(rng.normal(0, 0.3, n)) + cycle)[:, None]
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 1).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 1, season=0, quantiles=[])
    with caplog.at_level(logging.INFO, logger="lruts"):
        info = fit_blend(blend, windows(x[:3000], lookback, horizon), windows(x[3000 - lookback :], lookback, horizon))
    assert info["t_against_simple"] < -2 and info["history_parts_better"] == [0, 5], info
    assert info["weights"]["repeat_last"] == [1.0] * horizon
    (record,) = [r for r in caplog.records if "the forecast is repeat_last alone" in r.getMessage()]
    assert "beat it in only 0 of 5 later parts" in record.getMessage()


def cycle_with_noise(n: int, rng: np.random.Generator, noise) -> np.ndarray:
    """A daily cycle whose steps dominate the local scale (module doc of blend.py), plus Gaussian noise of
    level `noise` (n,): a change of the noise barely moves the local scale, so only tracking can follow it."""
    t = np.arange(n)[:, None]
    return 3 * np.sin(2 * np.pi * t / 24) * np.arange(1, 3) + rng.normal(0, 1, (n, 2)) * noise[:, None]


def interval_coverage(pred: np.ndarray, true: np.ndarray) -> float:
    return float(((true >= pred[..., 1]) & (true <= pred[..., 2])).mean())


@pytest.mark.parametrize("shift", [1.0, 2.0])
def test_online_intervals_hold_their_coverage_when_the_noise_level_changes(shift):
    rng = np.random.default_rng(0)
    lookback, horizon, n = 48, 12, 12000
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 2).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 2, season=24, quantiles=[0.1, 0.9])
    level = np.full(1500, 0.2)
    fit_blend(blend, *(windows(cycle_with_noise(1500, rng, level), lookback, horizon) for _ in range(2)))
    # the test period: the noise level times `shift` from its middle on
    test = windows(cycle_with_noise(n, rng, np.where(np.arange(n) < n // 2, 0.2, 0.2 * shift)), lookback, horizon)
    later = slice(n // 2, None)  # the windows whose targets are all in the second half
    online = predict_windows(blend, test)
    blend.tracking_rate = 0.0
    fixed = predict_windows(blend, test)
    np.testing.assert_array_equal(online.pred[..., 0], fixed.pred[..., 0])  # the point forecast is unchanged
    coverage = interval_coverage(online.pred[later], online.true[later])
    # each tracker's miss rate over its n updates is (r_start − r_end)/(η·n) from nominal (blend.py). Doubled
    # noise moves an offset by about half the validation width w, η = TRACKING_RATE·w/h: over the ≈ 6,000
    # later windows that is ≤ h/(2·0.3·6000) ≤ 0.004 per level at h ≤ 12, so the ±0.03 is the offsets'
    # own fluctuation and the targets' sampling error (±0.021 for split conformal, the test above)
    assert abs(coverage - 0.8) < 0.03, coverage
    if shift > 1:  # split conformal with the validation offsets does not follow
        assert interval_coverage(fixed.pred[later], fixed.true[later]) < 0.7
    else:
        assert abs(interval_coverage(fixed.pred[later], fixed.true[later]) - 0.8) < 0.03


def test_an_interval_between_sample_quantiles_covers_a_fresh_draw_with_its_nominal_probability():
    # 24 exchangeable residuals, as a monthly series' validation gives per horizon step: the 80% interval
    # between their 0.1- and 0.9-quantiles covers 20 / 25 of fresh draws on average at the plotting
    # positions k/(n + 1); torch.quantile's positions (k − 1)/(n − 1) cover 18.4 / 25
    g = torch.Generator().manual_seed(0)
    r, fresh = torch.randn(24, 20_000, generator=g), torch.randn(20_000, generator=g)
    levels = torch.tensor([0.1, 0.9])
    for quantiles, expected in ((_sample_quantiles(r, levels), 0.8), (torch.quantile(r, levels, dim=0), 0.736)):
        coverage = ((fresh >= quantiles[0]) & (fresh <= quantiles[1])).float().mean().item()
        assert abs(coverage - expected) < 0.01, coverage  # 20,000 draws: sampling error ±0.003
    # with many residuals the two positions agree (within the spacing of neighbouring order statistics)
    r = torch.randn(5000, 3, generator=g)
    torch.testing.assert_close(_sample_quantiles(r, levels), torch.quantile(r, levels, dim=0), atol=5e-3, rtol=0)


def test_sample_quantiles_leave_a_series_missing_targets_out():
    # residuals (N, H, C) of a wide table's validation windows: series 1 missed targets in windows 5..19, series
    # 2 in every window; each series' quantiles are over its own windows, one with none takes everyone's
    g = torch.Generator().manual_seed(0)
    r = torch.randn(20, 4, 3, generator=g)
    levels = torch.tensor([0.1, 0.9])
    holed = r.clone()
    holed[5:, :, 1] = math.nan
    holed[:, :, 2] = math.nan
    got = _sample_quantiles(holed, levels)  # (Q, H, C)
    torch.testing.assert_close(got[..., 0], _sample_quantiles(r[:, :, 0], levels))
    torch.testing.assert_close(got[..., 1], _sample_quantiles(r[:5, :, 1], levels))
    everyone = torch.cat([r[:, :, 0], r[:5, :, 1]])
    torch.testing.assert_close(got[..., 2], _sample_quantiles(everyone, levels))
    assert torch.isfinite(got).all()


def test_a_wide_column_dead_through_validation_leaves_the_others_calibrated():
    # a sensor dead for the last 150 hours: validation windows keep the other series' targets (before, every
    # window had a missing target somewhere and the blend fell back to repeat-last for every column)
    t = np.arange(1300)
    df = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=1300, freq="h")})
    for j in range(3):
        df[f"s{j}"] = np.sin(2 * np.pi * (t / 24 + j / 3)) + 0.1 * np.random.default_rng(j).standard_normal(1300)
    df.loc[1150:, "s1"] = np.nan
    fc = LRUForecaster(48, 12, quantiles=[0.1, 0.9], train=tiny_train(epochs=1), **TINY_MODEL).fit(df)
    assert fc.blend_info["calibration_windows"] == 130 - 12 + 1  # every validation window
    assert fc.blend_info["weights"]["seasonal_naive"][0] < 1.0 and fc.blend_info["weights"]["repeat_last"][0] < 1.0
    assert np.isfinite(fc.blend_info["val_mse_blend"]) and torch.isfinite(fc.net.offsets).all()
    out = fc.predict()
    assert np.isfinite(out.drop(columns="date").to_numpy()).all()
    assert (out["s0_q0.9"] > out["s0_q0.1"]).all() and (out["s1_q0.9"] > out["s1_q0.1"]).all()


def test_out_of_block_residuals_come_from_weights_fitted_on_the_other_blocks():
    g = torch.Generator().manual_seed(0)
    parts = torch.randn(30, 4, 2, 3, generator=g)  # (windows, steps, series, parts)
    y = parts[..., 0] + 0.5 * torch.randn(30, 4, 2, generator=g)
    residual = _out_of_block_residuals(parts, y, [True] * 3, (4, 10, 3))  # 3 blocks of 10 windows
    for b in range(3):
        block = torch.arange(30) // 10 == b
        w = simplex_least_squares(parts[~block], y[~block], usable=[True] * 3)
        torch.testing.assert_close(residual[block], y[block] - (parts[block] * w[:, None]).sum(-1))
    # a remainder of windows joins the last block
    residual = _out_of_block_residuals(parts, y, [True] * 3, (4, 12, 2))
    w = simplex_least_squares(parts[:12], y[:12], usable=[True] * 3)
    torch.testing.assert_close(residual[12:], y[12:] - (parts[12:] * w[:, None]).sum(-1))


def test_intervals_of_a_blend_trusted_on_a_short_validation_reach_their_nominal_coverage():
    # 24 validation windows (2 blocks, as a monthly series' last two years give), on which the weights of up
    # to six parts per step are fitted too: offsets from those residuals at torch.quantile's positions
    # covered 0.70 of fresh windows (mean of seeds 0-5, 0.62-0.78 each); out of block and at the plotting
    # positions 0.79 (seeds 0-5; 0.81 over seeds 6-11)
    lookback, horizon, coverages = 48, 12, []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        torch.manual_seed(0)
        net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 2).with_options(TINY_MODEL)).eval()
        blend = Blend(net, lookback, horizon, 2, season=24, quantiles=[0.1, 0.9])
        val = windows(seasonal_noise(lookback + horizon + 23, rng), lookback, horizon)
        info = fit_blend(blend, windows(seasonal_noise(1500, rng), lookback, horizon), val)
        assert info["blocks_better"] == [2, 2] and info["weights"]["seasonal_naive"] != [1.0] * horizon
        out, y = blended_forecasts(blend, windows(seasonal_noise(3000, rng), lookback, horizon))
        coverages.append(((y >= out[..., 1]) & (y <= out[..., 2])).float().mean().item())
    assert abs(np.mean(coverages) - 0.8) < 0.04, coverages


@pytest.mark.parametrize("seed", [0, 1])
def test_a_blend_that_keeps_a_simple_forecast_calibrates_on_the_training_windows_too(seed):
    # a random walk (σ = 1) whose validation months happen to be calm (σ = 0.3): the blend keeps
    # repeat-last, which has nothing fitted, so its training windows' residuals are as honest as validation's;
    # calibrated on validation alone, its 80% interval covers about a third of what follows
    rng = np.random.default_rng(seed)
    lookback, horizon = 16, 48

    def walk(n: int, sigma: float) -> np.ndarray:
        return np.cumsum(rng.normal(0, sigma, (n, 1)), axis=0)

    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 1).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 1, season=0, quantiles=[0.1, 0.9])
    info = fit_blend(blend, windows(walk(3000, 1.0), lookback, horizon), windows(walk(600, 0.3), lookback, horizon))
    assert info["weights"]["repeat_last"] == [1.0] * horizon, info["t_against_simple"]
    out, y = blended_forecasts(blend, windows(walk(6000, 1.0), lookback, horizon))
    coverage = ((y >= out[..., 1]) & (y <= out[..., 2])).float().mean().item()
    # seeds 0-7: 0.73-0.82 (the calm months pull it down a little; 6,000 steps of a walk at lead 48 are
    # about 125 independent outcomes); calibrated on validation alone: 0.24 and 0.29
    assert abs(coverage - 0.8) < 0.1, coverage


def test_a_blend_that_keeps_a_simple_forecast_on_too_short_a_validation_warns_the_user(caplog):
    # a random walk: the blend keeps repeat-last; with 4 blocks of validation windows (135 steps at
    # lookback 16, horizon 24) no blend could have passed the test, and the user is told to give it more
    with caplog.at_level("INFO", logger="lruts"):
        info = fit_walk_blend(seed=0, val_steps=135)
    assert info["weights"]["repeat_last"] == [1.0] * 24 and info["blocks_better"][1] == 4
    (record,) = [r for r in caplog.records if "the forecast is repeat_last alone" in r.getMessage()]
    assert record.levelname == "WARNING" and "4 blocks are too few to tell" in record.getMessage()


@pytest.mark.parametrize("blocks, level", [(5, "WARNING"), (6, "INFO"), (40, "INFO")])
def test_an_untrusted_blend_warns_only_where_no_blend_could_have_passed(blocks, level, caplog):
    # 6 blocks all better pass the sign test at 2.5% (2^-6); 5 cannot: there the evidence was never possible
    with caplog.at_level("INFO", logger="lruts"):
        _report_untrusted(Evidence(CANDIDATES.index("seasonal_naive"), -1.0, 24, blocks // 2, blocks))
    (record,) = caplog.records
    assert record.levelname == level and "the forecast is seasonal_naive alone" in record.getMessage()


def test_a_validation_of_one_window_says_so_instead_of_a_t_statistic(caplog):
    # 60 months at lookback 12, horizon 6: validation holds one window; "t = nan over 0 blocks" told nothing
    with caplog.at_level("INFO", logger="lruts"):
        _report_untrusted(Evidence(CANDIDATES.index("seasonal_naive"), math.nan, 0, 0, 0))
    (record,) = caplog.records
    assert record.levelname == "WARNING" and "fewer than two windows" in record.getMessage()
    assert "nan" not in record.getMessage()


def test_a_series_that_reverts_to_its_mean_gets_the_map_of_levels():
    # AR(1) around 0 with φ = 0.97: the best forecast h steps on is φ^h × the last value, which a map relative
    # to the last value (its coefficients sum to 1) cannot express and the map of levels can
    rng = np.random.default_rng(0)
    lookback, horizon = 24, 48

    def ar1(n: int) -> np.ndarray:
        x = np.zeros((n, 1))
        for t in range(1, n):
            x[t] = 0.97 * x[t - 1] + rng.normal()
        return x

    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 1).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 1, season=0, quantiles=[0.1, 0.9])
    info = fit_blend(blend, windows(ar1(4000), lookback, horizon), windows(ar1(2000), lookback, horizon))
    assert info["val_mse"]["linear_levels"] < 0.8 * info["val_mse"]["linear"], info["val_mse"]
    folds = info["training_folds"]  # it reverts on every stretch of the training rows too
    assert folds["admitted"] and sum(folds["levels"]) < 0.8 * sum(folds["relative"]), folds
    assert info["weights"]["linear_levels"][-1] > 0.5, info["weights"]
    out, y = blended_forecasts(blend, windows(ar1(3000), lookback, horizon))
    parts, _ = blended_parts(blend, windows(ar1(3000), lookback, horizon))
    blended = ((out[..., 0] - y) ** 2).mean().item()
    assert blended < ((parts[..., CANDIDATES.index("linear")] - y) ** 2).mean().item() * 0.9


def test_a_panel_of_reverting_series_with_their_own_spans_gets_the_map_of_levels():
    # a long table's fit (PanelWindows) through the rolling folds, series of 1,200 to 3,000 rows starting at
    # different times (where each window lies in its own series: test_data_panel); all revert, all five parts
    # are scored, and the map of levels is admitted and earns the weight
    rng = np.random.default_rng(0)
    frames = []
    for i, (start, n) in enumerate([(0, 2000), (300, 1500), (-500, 3000), (900, 1200)]):
        x = np.zeros(n)
        for t in range(1, n):
            x[t] = 0.97 * x[t - 1] + rng.normal()
        dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(start + np.arange(n), unit="h")
        frames.append(pd.DataFrame({"id": f"s{i}", "date": dates, "y": 10 * (i + 1) + x}))
    fc = LRUForecaster(24, 48, train=tiny_train(), **TINY_MODEL)
    fc.fit(pd.concat(frames), id_col="id", time_col="date", target_col="y")
    folds = fc.blend_info["training_folds"]
    assert folds["admitted"] and len(folds["levels"]) == 5, folds
    assert sum(folds["levels"]) < 0.8 * sum(folds["relative"]), folds
    assert max(fc.blend_info["weights"]["linear_levels"]) > 0.5, fc.blend_info["weights"]


def test_a_random_walk_that_returns_toward_old_levels_in_validation_does_not_get_the_map_of_levels(caplog):
    # walk 0 of benchmarks/random_walks.py at L 336, H 96, the forecaster's split of its 8,000 rows: its
    # validation stretch rewards the map of levels in 7 of 7 blocks (t = −3.65, 0.77 of the weight when it was
    # admitted on validation alone) and the forecasts after it cost +32% over repeat-last; on the training rows'
    # later parts it does not beat the relative map, so it is left out
    lookback, horizon, n, n_train = 336, 96, 8000, 7200
    walk = 100 + np.random.default_rng(0).normal(size=n + 2000).cumsum()[:n, None]
    walk = (walk - walk[:n_train].mean()) / walk[:n_train].std()
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(lookback, horizon, 1).with_options(TINY_MODEL)).eval()
    blend = Blend(net, lookback, horizon, 1, season=7, quantiles=[])
    data = torch.from_numpy(walk.astype(np.float32))
    train, val = (
        WindowDataset(data, 0, n_train, lookback, horizon),
        WindowDataset(data, n_train - lookback, n, lookback, horizon),
    )
    with caplog.at_level(logging.INFO, logger="lruts"):
        info = fit_blend(blend, train, val)
    assert not info["training_folds"]["admitted"] and len(info["training_folds"]["levels"]) == 5
    assert any("the map of levels is left out of the blend" in r.getMessage() for r in caplog.records)
    assert info["weights"]["linear_levels"] == [0.0] * horizon


def test_a_blend_saved_before_the_map_of_levels_loads_and_forecasts_as_it_did():
    blend = blend_of("anchor")
    with torch.no_grad():
        blend.weights[:, CANDIDATES.index("linear_levels")] = 0
        blend.weights.div_(blend.weights.sum(-1, keepdim=True))
    old = {k: v for k, v in blend.state_dict().items() if k != "level_map"}
    old["weights"] = old["weights"][:, :5].clone()  # five candidates then
    fresh = blend_of("anchor")
    fresh.load_state_dict(old)
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), blend(x))
    assert (fresh.level_map == 0).all() and fresh.weights.shape == (5, len(CANDIDATES))


def test_the_first_blend_with_one_linear_layer_loads_and_forecasts_as_it_did():
    # format 4 as first written (2026-12-06): four parts (network, linear, repeat-last, seasonal naive), the
    # linear map an nn.Linear of the window − last, offsets in raw units; it raised on load
    blend = blend_of("anchor")
    first = [CANDIDATES.index(k) for k in ("network", "linear", "repeat_last", "seasonal_naive")]
    with torch.no_grad():
        kept = torch.zeros(len(CANDIDATES), dtype=torch.bool)
        kept[first] = True
        blend.weights.mul_(kept).div_(blend.weights.sum(-1, keepdim=True))
        blend.adaptive.fill_(False)
    drop = ("shared_map", "series_maps", "level_map", "adaptive")
    old = {k: v for k, v in blend.state_dict().items() if k not in drop}
    old["linear.weight"], old["linear.bias"] = blend.shared_map[:-1].T.clone(), blend.shared_map[-1].clone()
    old["weights"] = blend.weights[:, first].clone()
    fresh = blend_of("anchor")
    fresh.load_state_dict(old)
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), blend(x))
    assert (fresh.series_maps == 0).all() and not fresh.adaptive


def random_walk_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"date": pd.date_range("2020-01-01", periods=n, freq="D"), "price": 100 + np.cumsum(rng.normal(0, 1, n))}
    )


def test_on_a_random_walk_the_forecaster_does_not_lose_to_repeat_last():
    lookback, horizon = 32, 8
    df = random_walk_frame(3000, seed=1)
    fc = LRUForecaster(lookback, horizon, train=tiny_train(), **TINY_MODEL).fit(df.iloc[:2000])
    fresh = fc.scaler.transform(df[["price"]].to_numpy()[2000:])
    out, y = blended_forecasts(fc.net, windows(fresh, lookback, horizon))
    mse = ((out[..., 0] - y) ** 2).mean().item()
    batch = windows(fresh, lookback, horizon).__getitems__(list(range(len(fresh) - lookback - horizon + 1)))
    repeat_last = ((batch.x[:, -1:] - y) ** 2).mean().item()
    # a random walk's best forecast is its last value: the blend may only match it, within sampling error
    assert mse <= 1.03 * repeat_last, (mse, repeat_last, fc.blend_info["weights"])


def test_a_flat_series_forecasts_its_constant():
    # a stuck sensor: no feature of a window varies, so every ridge penalty's unit was 0 and fit raised
    # LinAlgError; now every map is zero where there was nothing to fit and the forecast is the constant
    df = random_walk_frame(400, seed=0).assign(price=42.0)
    fc = LRUForecaster(32, 8, quantiles=[0.1, 0.9], train=tiny_train(), **TINY_MODEL).fit(df)
    out = fc.forecast_array()
    np.testing.assert_allclose(out, np.full_like(out, 42.0), atol=1e-4)
    assert fc.blend_info["weights"]["repeat_last"] == [1.0] * 8


def blend_of(kind: str) -> Blend:
    torch.manual_seed(0)
    cfg = ForecastNetConfig(12, 5, 3, segment=4).with_options({"d_model": 16, "d_state": 8})
    nets = {
        "anchor": lambda: LRUForecastNet(cfg),
        "revin": lambda: LRUForecastNet(cfg.with_options({"normalization": "revin"})),
        "ensemble": lambda: ForecastEnsemble([LRUForecastNet(cfg), LRUForecastNet(cfg.with_options({"segment": 3}))]),
    }
    blend = Blend(nets[kind]().eval().double(), 12, 5, 3, season=7, quantiles=[0.2, 0.8]).double()
    with torch.no_grad():  # weights and offsets that make every part count
        blend.weights.copy_(torch.tensor([0.3, 0.2, 0.2, 0.1, 0.1, 0.1]).expand(5, -1))
        torch.nn.init.normal_(blend.shared_map, std=0.1)
        torch.nn.init.normal_(blend.series_maps, std=0.1)
        torch.nn.init.normal_(blend.level_map, std=0.1)
        torch.nn.init.normal_(blend.offsets)
    return blend


@pytest.mark.parametrize("season", [0, 7])
@pytest.mark.parametrize("series_maps", [True, False])
def test_a_streams_folded_blend_equals_the_blend_of_its_candidates(season, series_maps, monkeypatch):
    # a stream's step blends with one affine map folded from the weights and linear maps; it must follow
    # weights written in place after its first use (fit_blend, loading)
    from lruts.forecasting import blend as blend_module

    monkeypatch.setattr(blend_module, "MAX_SERIES_MAPS", 3 if series_maps else 2)
    torch.manual_seed(0)
    net = LRUForecastNet(ForecastNetConfig(12, 5, 3, segment=4).with_options({"d_model": 8, "d_state": 4}))
    blend = Blend(net, 12, 5, 3, season=season, quantiles=[0.2, 0.8]).double()
    assert len(blend.series_maps) == (3 if series_maps else 0)
    values, network = torch.randn(2, 12, 3, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    for _ in range(2):
        with torch.no_grad():
            blend.weights.copy_(torch.softmax(torch.randn(5, len(CANDIDATES)), dim=-1))
            torch.nn.init.normal_(blend.shared_map, std=0.1)
            torch.nn.init.normal_(blend.series_maps, std=0.1)
            torch.nn.init.normal_(blend.level_map, std=0.1)
        folded = blend._stream_point(values, network)
        torch.testing.assert_close(folded, blend._point(blend.candidates(values, network)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["anchor", "revin", "ensemble"])
def test_blended_stream_equals_a_recompute_over_the_whole_history(kind):
    blend = blend_of(kind)
    blend.tracking_rate = 0.0  # the validation offsets held: a stream's tracker is the next test's
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    with torch.no_grad():
        out, state = blend.stream_from(x[:, :12])
        if kind != "ensemble":  # an ensemble's window pass gives each member its own last L steps
            torch.testing.assert_close(out, blend(x[:, :12]))
        for t in range(12, 30):
            out, state = blend.step(x[:, t], state)
            torch.testing.assert_close(out, blend.stream_from(x[:, : t + 1])[0])
    assert len(CANDIDATES) == blend.weights.shape[1]


@pytest.mark.parametrize("kind", ["anchor", "ensemble"])
def test_the_harness_replays_the_intervals_the_stream_issues(kind):
    blend, lookback, horizon = blend_of(kind), 12, 5
    x = torch.randn(40, 3, dtype=torch.float64)
    x[20, 1] = torch.nan  # a missing value updates nothing
    observed, filled = torch.isfinite(x), x.nan_to_num()
    origins = range(lookback, len(x) - horizon + 1)  # histories x[:t]: the value at t − 1 is the origin's
    with torch.no_grad():
        out, state = blend.stream_from(filled[None, :lookback])
        streamed = [out[0]]
        for t in origins[1:]:
            out, state = blend.step(filled[t - 1][None], state, mask_t=observed[t - 1][None])
            streamed.append(out[0])
        # what the harness has: each origin's forecast from its history with the validation offsets, its local
        # scale, and the targets after it
        fixed = torch.stack([blend.stream_from(filled[None, :t], mask=observed[None, :t])[0][0] for t in origins])
        scale = torch.cat([blend.local_scale(filled[None, :t], observed[None, :t]) for t in origins])
        y, y_observed = (torch.stack([v[t : t + horizon] for t in origins]) for v in (filled, observed))
        replayed = blend.replay(fixed, scale, y, y_observed)
    torch.testing.assert_close(replayed, torch.stack(streamed))
    torch.testing.assert_close(replayed[..., 0], fixed[..., 0])  # the point forecast is unchanged
    assert not torch.allclose(replayed[-1], fixed[-1])  # and the offsets did move


def test_two_streams_from_one_state_agree_and_a_state_stepped_past_is_refused():
    blend = blend_of("anchor")
    x = torch.randn(1, 30, 3, dtype=torch.float64)
    with torch.no_grad():
        _, start = blend.stream_from(x[:, :12])
        branches = [blend.step(x[:, 12], start)[1] for _ in range(2)]  # the second shares nothing it writes
        runs = [[], []]
        for t in range(13, 30):  # interleaved: each branch writes its tracker's ring in turn
            for k in range(2):
                y, branches[k] = blend.step(x[:, t], branches[k])
                runs[k].append(y)
        torch.testing.assert_close(torch.stack(runs[0]), torch.stack(runs[1]))
        assert torch.isfinite(torch.stack(runs[0])).all()
        with pytest.raises(ShapeError, match="stepped past"):  # its ring holds later forecasts now
            blend.step(x[:, 12], start)


def test_a_blended_forecaster_saves_loads_and_streams_like_the_original(tmp_path):
    df = random_walk_frame(700, seed=2)
    fc = LRUForecaster(32, 8, quantiles=[0.1, 0.9], train=tiny_train(), **TINY_MODEL).fit(df.iloc[:600])
    assert isinstance(fc.net, Blend) and set(fc.blend_info["weights"]) == set(CANDIDATES)
    fc.update(df.iloc[600:610])  # saved mid-stream: the quantile tracker has moved
    loaded = LRUForecaster.load(fc.save(tmp_path / "fc.lruts"))
    pd.testing.assert_frame_equal(loaded.predict(), fc.predict())
    pd.testing.assert_frame_equal(loaded.update(df.iloc[610:620]), fc.update(df.iloc[610:620]), rtol=1e-5, atol=1e-5)
    # a recompute from the history gives the same point forecast; its tracker restarts from validation
    recomputed = LRUForecaster.load_from(fc).set_history(df.iloc[:620])
    pd.testing.assert_frame_equal(fc.predict()[["date", "price"]], recomputed[["date", "price"]], rtol=1e-4, atol=1e-4)
    assert not np.allclose(fc.predict()["price_q0.9"], recomputed["price_q0.9"])


def test_a_blend_saved_before_the_choice_of_units_loads_with_raw_offsets():
    blend = blend_of("anchor")
    state = {k: v for k, v in blend.state_dict().items() if k != "adaptive"}
    fresh = blend_of("anchor")
    fresh.load_state_dict(state)
    assert not fresh.adaptive
    torch.testing.assert_close(fresh.local_scale(torch.randn(2, 12, 3, dtype=torch.float64)), torch.ones(2, 3).double())


def test_update_row_by_row_issues_the_intervals_the_harness_replays(tmp_path):
    from forecast_fixtures import synthetic_frame

    lookback, horizon = 48, 12
    df = synthetic_frame(1400)
    fc = LRUForecaster(lookback, horizon, quantiles=[0.1, 0.9], train=tiny_train(), **TINY_MODEL)
    fc.fit(df.iloc[:1200])
    streamed = [fc.forecast_array()]
    for i in range(1200, 1300):
        fc.update(df.iloc[i : i + 1])
        streamed.append(fc.forecast_array())
        if i == 1250:  # saved and loaded mid-stream: the tracker goes with it
            fc = LRUForecaster.load(fc.save(tmp_path / "mid.lruts"))
    # the stream's forecasts (origin, H, C, 1 + Q) on the scale the harness scores
    streamed = fc.scaler.transform(np.stack(streamed).swapaxes(2, 3)).swapaxes(2, 3)
    scaled = torch.from_numpy(fc.scaler.transform(df[fc.columns].to_numpy()).astype(np.float32))
    origins = range(1200, 1301)  # the histories' lengths
    scale = torch.cat([fc.net.local_scale(scaled[None, :t]) for t in origins])
    y = torch.stack([scaled[t : t + horizon] for t in origins])
    with torch.no_grad():
        replayed = fc.net.replay(torch.from_numpy(streamed).float(), scale, y, torch.ones_like(y, dtype=torch.bool))
        validation = torch.from_numpy(streamed[..., :1]).float() + scale[:, None, :, None] * fc.net.offsets
    np.testing.assert_allclose(replayed.numpy(), streamed, rtol=1e-4, atol=1e-4)
    assert not np.allclose(streamed[-1, ..., 1:], validation[-1].numpy(), atol=1e-3)  # the offsets moved


def test_a_panels_test_windows_replay_each_series_own_stream():
    """Windows of a panel come series by series: each series' intervals start from the validation offsets,
    as its own stream's do, and then move with its own values only."""
    from lruts.data import load_panel, panel_splits

    lookback, horizon = 24, 6
    rng = np.random.default_rng(5)
    frames = [
        pd.DataFrame(
            {
                "unique_id": f"s{k}",
                "ds": pd.date_range("2022-01-01", periods=n, freq="h"),
                "y": np.cumsum(rng.standard_normal(n)) * (1 + 2 * k),
            }
        )
        for k, n in enumerate([260, 300])
    ]
    df = pd.concat(frames, ignore_index=True)
    fc = LRUForecaster(lookback, horizon, quantiles=[0.1, 0.9], train=tiny_train(), **TINY_MODEL)
    fc.fit(df, id_col="unique_id")
    panel = load_panel(df, id_col="unique_id", time_col="ds", target_col="y")
    test = panel_splits(panel, lookback, horizon, val_fraction=0.1, test_fraction=0.2).test
    online = predict_windows(fc.net, test)
    fc.net.tracking_rate = 0.0
    fixed = predict_windows(fc.net, test)
    np.testing.assert_array_equal(online.pred[..., 0], fixed.pred[..., 0])  # the point forecasts are the same
    firsts = np.flatnonzero(np.diff(test.series_of(np.arange(len(test))), prepend=-1))
    assert len(firsts) == 2
    for first in firsts:  # each series' stream starts from the validation offsets
        np.testing.assert_allclose(online.pred[first], fixed.pred[first], rtol=1e-6)
        assert not np.allclose(online.pred[first + 40 : first + 45], fixed.pred[first + 40 : first + 45])  # then move

"""The encoder-forecaster network: the O(1) streaming step equals the window pass over the whole
history at every step, for every streamable option; a RevIN stream equals the window pass over the
last L observations."""

import pytest
import torch

from lruts import ShapeError
from lruts.forecasting.net import ForecastNetConfig, LRUForecastNet

SMALL = {"d_model": 8, "d_state": 8}  # the network's size, flat: every other setting is the forecaster's default


@pytest.mark.parametrize("linear_skip", [False, True])
@pytest.mark.parametrize("anchor", ["last", "patch_mean"])
@pytest.mark.parametrize("channel_independent", [True, False])
@pytest.mark.parametrize("normalization", ["anchor", "none"])
def test_stream_equals_window_pass_over_the_whole_history(anchor, channel_independent, normalization, linear_skip):
    cfg = ForecastNetConfig(
        12 if linear_skip else 40,  # the skip path reads the last L: histories below and above it
        5,
        3,
        normalization=normalization,
        anchor=anchor,
        segment=4,
        channel_independent=channel_independent,
        linear_skip=linear_skip,
        quantiles=[0.1, 0.9],
    ).with_options({"d_model": 16, "d_state": 8, "n_layers": 2})
    net = LRUForecastNet(cfg).eval().double()
    if linear_skip:  # it starts at zero; give it weights so that it counts
        torch.nn.init.normal_(net.skip.weight)
        torch.nn.init.normal_(net.skip.bias)
    x = torch.randn(2, 21, 3, dtype=torch.float64)
    with torch.no_grad():
        for start in (1, 6):  # a stream begun from histories of several lengths (patch size 4)
            forecast, state = net.stream_from(x[:, :start])
            torch.testing.assert_close(forecast, net(x[:, :start]), rtol=1e-10, atol=1e-10)
            for t in range(start, 21):
                forecast, state = net.step(x[:, t], state)
                torch.testing.assert_close(forecast, net(x[:, : t + 1]), rtol=1e-10, atol=1e-10)
        state = None
        for t in range(21):  # and from nothing
            forecast, state = net.step(x[:, t], state)
        torch.testing.assert_close(forecast, net(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("linear_skip", [False, True])
def test_revin_stream_equals_the_window_pass_over_the_last_lookback_steps(linear_skip):
    cfg = ForecastNetConfig(10, 4, 2, normalization="revin", segment=4, linear_skip=linear_skip).with_options(SMALL)
    net = LRUForecastNet(cfg).eval().double()
    x = torch.randn(3, 25, 2, dtype=torch.float64)
    with torch.no_grad():
        forecast, state = net.stream_from(x[:, :3])  # shorter than the lookback
        torch.testing.assert_close(forecast, net(x[:, :3]))
        for t in range(3, 25):
            forecast, state = net.step(x[:, t], state)
            torch.testing.assert_close(forecast, net(x[:, max(0, t + 1 - 10) : t + 1]))
        assert state.values.shape == (3, 10, 2)  # what it keeps does not grow with the history
        state = None
        for t in range(25):
            forecast, state = net.step(x[:, t], state)
        torch.testing.assert_close(forecast, net(x[:, -10:]))


@pytest.mark.parametrize("linear_skip", [False, True])
def test_anchor_normalisation_is_level_invariant(linear_skip):
    net = LRUForecastNet(
        ForecastNetConfig(32, 8, 2, segment=8, linear_skip=linear_skip).with_options({"d_model": 16, "d_state": 8})
    )
    net.eval()
    if linear_skip:
        torch.nn.init.normal_(net.skip.weight, std=0.1)
    x = torch.randn(3, 32, 2)
    with torch.no_grad():
        torch.testing.assert_close(net(x + 5.0), net(x) + 5.0, rtol=1e-5, atol=1e-5)


def test_output_shape_and_errors():
    net = LRUForecastNet(ForecastNetConfig(32, 8, 2, segment=8, quantiles=[0.9, 0.1]))
    assert net.cfg.quantiles == [0.1, 0.9]
    assert net(torch.randn(4, 32, 2)).shape == (4, 8, 2, 3)
    with pytest.raises(ShapeError, match=r"\(batch, lookback, n_channels\)"):
        net(torch.randn(4, 32, 3))
    revin = LRUForecastNet(ForecastNetConfig(32, 8, 2, normalization="revin", segment=8))
    assert revin(torch.randn(4, 32, 2)).shape == (4, 8, 2, 1)
    with pytest.raises(ValueError, match="quantiles"):
        ForecastNetConfig(32, 8, 2, quantiles=[1.5])


def test_config_refuses_a_point_loss_other_than_mse_or_mae():
    with pytest.raises(ValueError, match="loss must be"):
        ForecastNetConfig(32, 8, 2, loss="huber")


@pytest.mark.parametrize("normalization", ["anchor", "revin"])
def test_stream_refuses_an_observation_of_another_shape(normalization):
    net = LRUForecastNet(ForecastNetConfig(8, 4, 2, normalization=normalization, segment=4).with_options(SMALL))
    with torch.no_grad():
        _, state = net.step(torch.zeros(3, 2), None)
        with pytest.raises(ShapeError, match=r"observation \(1, 2\) does not match the stream's \(3, 2\)"):
            net.step(torch.zeros(1, 2), state)


def test_stream_refuses_the_state_of_another_network():
    small = LRUForecastNet(ForecastNetConfig(8, 4, 2, segment=4).with_options(SMALL)).eval()
    large = LRUForecastNet(ForecastNetConfig(16, 4, 2, segment=4).with_options(SMALL)).eval()
    with torch.no_grad():
        _, state = small.step(torch.zeros(1, 2), None)
        with pytest.raises(ShapeError, match="does not belong to this network"):
            large.step(torch.zeros(1, 2), state)

"""The fast path (lruts.fast) against the plain torch step it stands in for: the same numbers for every
architecture option it compiles, and the torch step itself wherever compiling would not be exact."""

import pytest
import torch

from lruts import DeepLRUConfig, LRUSequenceModel, ShapeError
from lruts.fast import COMPILED_MACS, CompiledStacks, StackStep, step_macs
from lruts.forecasting.net import ForecastEnsemble, ForecastNetConfig, LRUForecastNet


def trained_stats_stack(dtype, **kw):
    """A small stack whose BatchNorm running statistics are not the defaults, in eval mode."""
    cfg = DeepLRUConfig(d_input=3, d_model=8, d_state=12, n_layers=3, r_min=0.5, r_max=0.99, dropout=0.1, **kw)
    model = LRUSequenceModel(cfg, d_output=2).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 30, 3) * 2 + 1)
    return model.eval().to(dtype)


def forecast_net(dtype, **kw):
    cfg = ForecastNetConfig(12, 5, 3, segment=4).with_options(
        {"d_model": 16, "d_state": 8, "quantiles": [0.1, 0.9], **kw}
    )
    net = LRUForecastNet(cfg).eval().to(dtype)
    if cfg.linear_skip:  # it starts at zero; give it weights so that it counts
        torch.nn.init.normal_(net.skip.weight)
    return net


def stream_stack(model, u, stack_step):
    ys, states = [], None
    for t in range(u.shape[1]):
        h, states = model.body.step(u[:, t], states) if stack_step is None else stack_step(u[:, t], states)
        ys.append(model.decoder(h))
    return torch.stack(ys, 1), states


def stream_forecast(net, x, stack_step):
    outs, state = [], None
    for t in range(x.shape[1]):
        out, state = net.step(x[:, t], state, stack_step)
        outs.append(out)
    return torch.stack(outs, 1), state.lru if hasattr(state, "lru") else [m.lru for m in state.members]


STACKS = [
    dict(norm="batch", prenorm=True, glu="full"),
    dict(norm="layer", prenorm=True, glu="half"),
    dict(norm="batch", prenorm=False, glu="half"),
    dict(norm="layer", prenorm=False, glu="full"),
]
FORECASTERS = [
    dict(normalization="anchor", anchor="last"),
    dict(normalization="anchor", anchor="patch_mean", channel_independent=False),
    dict(normalization="none", linear_skip=False),
    "ensemble",
]
CASES = [("stack", kw) for kw in STACKS] + [("forecaster", kw) for kw in FORECASTERS]


def case_id(c):
    return c if isinstance(c, str) else "-".join(map(str, c.values()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("kind", "kw"), CASES, ids=case_id)
def test_compiled_step_equals_the_torch_step(kind, kw, dtype):
    torch.manual_seed(0)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        if kind == "stack":
            model = trained_stats_stack(dtype, **kw)
            step = StackStep(model.body)
            assert step._applies(torch.zeros(2, 3, dtype=dtype))  # it does run compiled here
            u = torch.randn(2, 40, 3, dtype=dtype)
            (y_plain, s_plain), (y_fast, s_fast) = stream_stack(model, u, None), stream_stack(model, u, step)
        else:
            if kw == "ensemble":
                net = ForecastEnsemble([forecast_net(dtype), forecast_net(dtype, normalization="none", segment=3)])
            else:
                net = forecast_net(dtype, **kw)
            steps = CompiledStacks(net)
            assert all(s.packed is not None for s in steps._steps.values())
            x = torch.randn(2, 23, 3, dtype=dtype)
            (y_plain, s_plain), (y_fast, s_fast) = stream_forecast(net, x, None), stream_forecast(net, x, steps)
    torch.testing.assert_close(y_fast, y_plain, **tol)
    torch.testing.assert_close(s_fast, s_plain, **tol)


def test_compiled_step_runs_only_where_it_is_exact_and_faster():
    model = trained_stats_stack(torch.float32)
    step, u = StackStep(model.body), torch.randn(2, 3)
    with torch.no_grad():
        assert step._applies(u)
        assert not step._applies(torch.randn(COMPILED_MACS // step_macs(model.body, 1) + 1, 3))  # BLAS wins
        assert not step._applies(u.double())  # input of another dtype than the weights
        model.train()
        assert not step._applies(u)  # dropout and BatchNorm's batch statistics
        model.eval()
    assert not step._applies(u)  # autograd
    with torch.no_grad():  # where it does not apply, it is the torch step
        big = torch.randn(COMPILED_MACS // step_macs(model.body, 1) + 1, 3)
        torch.testing.assert_close(step(big)[0], model.body.step(big)[0])


def test_compiled_step_checks_the_shapes_its_loops_do_not():
    model = trained_stats_stack(torch.float32)
    step = StackStep(model.body)
    with torch.no_grad():
        with pytest.raises(ShapeError, match=r"one complex LRU state of shape \(batch, d_state\) = \(2, 12\)"):
            step(torch.randn(2, 3), [torch.zeros(2, 7, dtype=torch.complex64)] * 3)
        with pytest.raises(ShapeError, match=r"expected \(batch, 3\)"):
            step(torch.randn(2, 4))

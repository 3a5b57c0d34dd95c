"""The LRU layer: the paper's parameters and initialisation, parallel = recurrent = a plain
float64 reference, chunking with a carried state, gradients, autocast and input checks."""

import math

import pytest
import torch
from scipy import stats

from lruts import LRU, DataError, ShapeError

from reference import reference_lru


def test_parameters_are_real_and_named_and_shaped_as_in_the_paper():
    layer = LRU(12, 20)
    shapes = {k: tuple(v.shape) for k, v in layer.named_parameters()}
    assert shapes == {
        "nu_log": (20,),
        "theta_log": (20,),
        "gamma_log": (20,),
        "B_re": (20, 12),
        "B_im": (20, 12),
        "C_re": (12, 20),
        "C_im": (12, 20),
        "D": (12,),
    }
    assert all(not p.is_complex() for p in layer.parameters())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_parallel_equals_float64_reference(scan_backend, bidirectional):
    layer = LRU(6, 10, r_min=0.5, r_max=0.99, bidirectional=bidirectional).double()
    u = torch.randn(3, 150, 6, dtype=torch.float64)
    x0 = torch.randn(3, 10, dtype=torch.complex128)
    y, state = layer(u, x0)
    y_ref, state_ref = reference_lru(layer, u, x0)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)  # float64 throughout
    torch.testing.assert_close(state, state_ref, rtol=1e-10, atol=1e-10)


def test_float32_parallel_close_to_reference():
    layer = LRU(8, 32, r_min=0.9, r_max=0.999)
    u = torch.randn(2, 500, 8)
    y, _ = layer(u)
    y_ref, _ = reference_lru(layer, u)
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-4, atol=1e-4)  # float32 rounding only


def test_step_by_step_equals_parallel_and_reference():
    layer = LRU(6, 10, r_min=0.5, r_max=0.99).double()
    u = torch.randn(3, 80, 6, dtype=torch.float64)
    state = None
    ys = []
    for t in range(u.shape[1]):
        y_t, state = layer.step(u[:, t], state)
        ys.append(y_t)
    y_par, state_par = layer(u)
    y_ref, _ = reference_lru(layer, u)
    torch.testing.assert_close(torch.stack(ys, 1), y_par, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(torch.stack(ys, 1), y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, state_par, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cuts", [[1], [37, 38, 200], [64, 128, 192], [5, 299]])
def test_chunked_with_carried_state_equals_one_pass(scan_backend, cuts):
    layer = LRU(5, 16, r_min=0.9, r_max=0.999)
    u = torch.randn(2, 300, 5)
    y_full, s_full = layer(u)
    pieces, state = [], None
    for a, b in zip([0, *cuts], [*cuts, 300], strict=True):
        y, state = layer(u[:, a:b], state)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), y_full, rtol=1e-5, atol=1e-5)  # float32
    torch.testing.assert_close(state, s_full, rtol=1e-5, atol=1e-5)


def test_gradients_of_parallel_path_equal_those_of_step_loop():
    layer = LRU(4, 8, r_min=0.5, r_max=0.99).double()
    u = torch.randn(2, 40, 4, dtype=torch.float64)
    target = torch.randn(2, 40, 4, dtype=torch.float64)

    def grads(y):
        layer.zero_grad()
        ((y - target) ** 2).mean().backward()
        return {k: v.grad.clone() for k, v in layer.named_parameters()}

    par = grads(layer(u)[0])
    state, ys = None, []
    for t in range(u.shape[1]):
        y_t, state = layer.step(u[:, t], state)
        ys.append(y_t)
    seq = grads(torch.stack(ys, 1))
    assert set(par) == set(seq)
    for k in par:
        torch.testing.assert_close(par[k], seq[k], rtol=1e-9, atol=1e-12, msg=k)


def test_ring_init_is_uniform_in_area_with_phases_in_range():
    r_min, r_max, max_phase = 0.4, 0.95, math.pi / 10
    layer = LRU(4, 4000, r_min=r_min, r_max=r_max, max_phase=max_phase)
    lam = layer.lam().detach().to(torch.complex128)
    r = lam.abs().numpy()
    assert r.min() >= r_min - 1e-6 and r.max() <= r_max + 1e-6
    # uniform in area ⇔ r² uniform on [r_min², r_max²]
    area = (r**2 - r_min**2) / (r_max**2 - r_min**2)
    assert stats.kstest(area, "uniform").pvalue > 1e-3
    # the same test rejects a ring that is uniform in radius, so it has the power to fail
    assert stats.kstest((r - r_min) / (r_max - r_min), "uniform").pvalue < 1e-6
    phase = torch.exp(layer.theta_log.detach()).numpy()
    assert phase.min() >= 0 and phase.max() <= max_phase * (1 + 1e-6)
    assert stats.kstest(phase / max_phase, "uniform").pvalue > 1e-3
    gamma = torch.exp(layer.gamma_log.detach()).double()
    torch.testing.assert_close(gamma, torch.sqrt(1 - lam.abs() ** 2), rtol=1e-5, atol=1e-6)


def recurrent_output_variance(layer, length=6000, keep=2000):
    u = torch.randn(4, length, layer.d_model)
    with torch.no_grad():
        y, _ = layer(u)
        y = y - layer.D * u  # the part that goes through the recurrence
    return y[:, -keep:].var().item()


def test_output_variance_at_init_is_one_with_gamma_and_much_larger_without():
    torch.manual_seed(1)
    layer = LRU(32, 256, r_min=0.9, r_max=0.999)
    with_gamma = recurrent_output_variance(layer)
    with torch.no_grad():
        layer.gamma_log.zero_()
    without = recurrent_output_variance(layer)
    assert 0.7 < with_gamma < 1.4
    assert without > 8 * with_gamma  # ≈24× in expectation on the ring [0.9, 0.999]


def test_recurrence_runs_in_float32_under_bf16_autocast():
    layer = LRU(8, 16, r_min=0.9, r_max=0.999)
    u = torch.randn(2, 64, 8)
    y32, _s32 = layer(u)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ac, s_ac = layer(u)
    assert s_ac.dtype == torch.complex64
    torch.testing.assert_close(y_ac, y32)  # not bf16-rounded: the whole layer stayed in float32


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((10, 4), r"\(batch, length, d_model\)"),
        ((2, 10, 5), r"\(batch, length, d_model\) with d_model=4"),
        ((1, 2, 10, 4), r"\(batch, length, d_model\)"),
    ],
)
def test_bad_shapes_raise_clear_errors(shape, match):
    with pytest.raises(ShapeError, match=match):
        LRU(4, 8)(torch.randn(*shape))


def test_step_bad_shape_and_bad_state():
    layer = LRU(4, 8)
    with pytest.raises(ShapeError, match=r"\(batch, d_model\)"):
        layer.step(torch.randn(2, 3, 4))
    with pytest.raises(ShapeError, match=r"\(batch, d_state\) = \(2, 8\)"):
        layer.step(torch.randn(2, 4), torch.zeros(2, 7, dtype=torch.complex64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_refused(bad):
    u = torch.randn(2, 10, 4)
    u[1, 3, 2] = bad
    with pytest.raises(DataError, match="NaN or inf"):
        LRU(4, 8)(u)


def test_bidirectional_has_no_step_and_invalid_ring_is_refused():
    with pytest.raises(RuntimeError, match="bidirectional"):
        LRU(4, 8, bidirectional=True).step(torch.randn(1, 4))
    with pytest.raises(ValueError, match="r_min"):
        LRU(4, 8, r_min=0.9, r_max=0.5)

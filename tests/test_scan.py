"""The scan kernel against a plain float64 recurrence, and its hand-written backward against
autograd's numerical gradient."""

import functools
import os

import pytest
import torch

from lruts.errors import ConfigError
from lruts.scan import backend_for, linear_scan


def reference(lam, b, h0, reverse):
    """x_t = λ x_{t∓1} + b_t written out step by step in complex128."""
    lam, b, h0 = lam.to(torch.complex128), b.to(torch.complex128), h0.to(torch.complex128)
    x, out = h0, torch.empty_like(b)
    for t in reversed(range(b.shape[1])) if reverse else range(b.shape[1]):
        x = lam * x + b[:, t]
        out[:, t] = x
    return out


def random_problem(batch=3, length=157, n=5, dtype=torch.complex128, r=0.999):
    modulus = torch.rand(n, dtype=torch.float64) * r
    lam = torch.polar(modulus, torch.rand(n, dtype=torch.float64) * 6.28).to(dtype)
    b = torch.randn(batch, length, n, dtype=dtype)
    h0 = torch.randn(batch, n, dtype=dtype)
    return lam, b, h0


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("length", [1, 63, 64, 65, 300])  # around the torch backend's 64-step chunks
def test_scan_equals_reference_recurrence_float64(scan_backend, reverse, length):
    lam, b, h0 = random_problem(length=length)
    x = linear_scan(lam, b, h0, reverse=reverse, backend=scan_backend)
    torch.testing.assert_close(x, reference(lam, b, h0, reverse), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_float32_close_to_float64_reference_over_long_sequences(scan_backend, reverse):
    lam, b, h0 = random_problem(length=2000, n=16, dtype=torch.complex64)
    x = linear_scan(lam, b, h0, reverse=reverse, backend=scan_backend)
    ref = reference(lam, b, h0, reverse)
    # states grow to ~1/sqrt(1-r²) ≈ 22; float32 accumulates ~1e-6 relative error per step at worst
    assert (x.to(torch.complex128) - ref).abs().max() < 1e-3 * ref.abs().max()


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_gradcheck_float64(scan_backend, reverse):
    lam, b, h0 = random_problem(batch=2, length=70, n=3)
    inputs = tuple(t.clone().requires_grad_() for t in (lam, b, h0))
    scan = functools.partial(linear_scan, reverse=reverse, backend=scan_backend)
    assert torch.autograd.gradcheck(scan, inputs)


def test_backends_agree_on_values_and_gradients():
    lam, b, h0 = random_problem(batch=4, length=333, n=8, dtype=torch.complex64)
    g = torch.randn_like(b)
    results = {}
    for backend in ("numba", "torch"):
        leaves = [t.clone().requires_grad_() for t in (lam, b, h0)]
        x = linear_scan(*leaves, backend=backend)
        x.backward(g)
        results[backend] = [x.detach()] + [t.grad for t in leaves]
    for a, c in zip(results["numba"], results["torch"], strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-4)


def test_scan_rejects_real_and_misshaped_inputs():
    lam, b, h0 = random_problem()
    with pytest.raises(TypeError, match="complex"):
        linear_scan(lam.real, b)
    with pytest.raises(ValueError, match=r"\(batch, L, N\)"):
        linear_scan(lam, b[0])
    with pytest.raises(ValueError, match="h0"):
        linear_scan(lam, b, h0[:, :2])


def test_scan_backend_argument_picks_the_backend_and_rejects_unknown_names():
    lam, b, _ = random_problem()
    assert backend_for(b) == "numba"  # CPU tensors with numba installed
    assert backend_for(b, "torch") == "torch"
    with pytest.raises(ConfigError, match=r"unknown backend 'cuda'.*'auto', 'numba', 'torch'"):
        linear_scan(lam, b, backend="cuda")


def test_numba_kernel_follows_torchs_thread_count_with_the_same_numbers():
    """One torch thread (torchrun's default per process) runs the serial kernel, which never starts
    numba's thread pool; more threads run the threaded kernel on as many threads. Same numbers."""
    numba = pytest.importorskip("numba")
    from lruts import scan

    lam, b, h0 = random_problem(length=300, n=7)
    lam, b, h0 = lam.requires_grad_(), b.requires_grad_(), h0.requires_grad_()
    before = torch.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert scan._use_threads() == (threads > 1)
            x = linear_scan(lam, b, h0, reverse=True)
            grads = torch.autograd.grad(x.abs().pow(2).sum(), (lam, b, h0))
            results[threads] = (x.detach(), *grads)
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(before)
    for serial, threaded in zip(results[1], results[2], strict=True):
        torch.testing.assert_close(serial, threaded, rtol=1e-12, atol=1e-12)


def test_first_scan_in_a_process_keeps_torchs_thread_count():
    """numba's OpenMP layer, started by the first kernel call, resets the thread count it shares with
    torch; the scan restores it (a fresh process, since the reset happens once per process)."""
    import subprocess
    import sys

    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from lruts.scan import linear_scan\n"
        "lam = torch.full((4,), 0.5, dtype=torch.complex64); b = torch.ones(2, 8, 4, dtype=torch.complex64)\n"
        "linear_scan(lam, b); print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_serial_and_threaded_kernels_are_cached_apart(tmp_path):
    """numba's disk cache keys code by function name: the serial kernel is its own function, so it
    never loads the threaded kernel's code (or the other way round, which ran the backward 2.5× slower)."""
    pytest.importorskip("numba")
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from lruts.scan import linear_scan\n"
        "lam = torch.full((4,), 0.5, dtype=torch.complex64); b = torch.ones(2, 8, 4, dtype=torch.complex64)\n"
        "torch.set_num_threads(2); linear_scan(lam, b, backend='numba')\n"
        "torch.set_num_threads(1); linear_scan(lam, b, backend='numba')\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    names = sorted(p.name.split("-")[0] for p in tmp_path.rglob("*.nbi"))
    assert names == ["scan._scan_kernel", "scan._scan_kernel_serial"]

"""The diagonal linear recurrence at the heart of the LRU, with its own autograd.

    x_t = λ ⊙ x_{t-1} + b_t          (forward direction, x_{-1} = h0)
    x_t = λ ⊙ x_{t+1} + b_t          (reverse direction, x_L  = h0)

Shapes: λ: (N,) complex; b: (batch, L, N) complex; h0: (batch, N) complex; x: like b.

The backward of a diagonal linear recurrence is the same recurrence run the other way with
conj(λ) over the incoming gradients (PyTorch's conjugate-Wirtinger convention):

    s_t = g_t + conj(λ) ⊙ s_{t+1}       →  ∂b_t = s_t,  ∂h0 = conj(λ) ⊙ s_0,
    ∂λ  = Σ_batch Σ_t s_t ⊙ conj(x_{t-1})

so one kernel serves both directions and both passes.

Backends, chosen per call (`backend="auto"`, or forced with `backend="numba"` / `"torch"`):
- CPU: a numba-compiled sequential kernel. On a CPU a sequential scan is memory-bound and a
  log-depth scan only adds work (torch-op Hillis–Steele/Blelloch scans do more memory traffic than
  one pass; docs/experiments.md, "Why these backends and settings"); numba gives a compiled loop that runs at
  memory bandwidth, installs from PyPI as a wheel, and needs no compiler on the user's machine.
  On this hardware the prefetcher only follows ascending streams, so scans that walk time
  backwards copy each block of `_STAGE` time steps into a cache-resident buffer first.
- Anything else (CUDA, or numba missing): a chunked closed form in torch ops — within a chunk
  x = M b with M[t, s] = λ^(t-s), across chunks a short sequential carry. That is the usual GPU
  trade-off (more flops, little sequential depth).
"""

from __future__ import annotations

import types
from typing import Literal

import torch

from lruts.errors import ConfigError

_CHUNK = 64  # time steps per chunk in the torch backend
_STAGE = 256  # time steps staged per block by the numba kernel when walking time backwards

try:  # numba is a hard dependency, but a broken install must not take the package down with it
    import numba as _nb
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only where numba cannot be installed
    _nb = None

__all__ = ["Backend", "backend_for", "linear_scan"]

Backend = Literal["auto", "numba", "torch"]
_BACKENDS = ("auto", "numba", "torch")


def backend_for(b: torch.Tensor, backend: Backend = "auto") -> str:
    """Name of the backend `linear_scan(..., backend=backend)` runs for a tensor like `b` ('numba' or 'torch').

    "auto" takes numba for CPU tensors when it is installed, torch otherwise."""
    if backend not in _BACKENDS:
        raise ConfigError(f"linear_scan: unknown backend {backend!r}; use one of {', '.join(map(repr, _BACKENDS))}")
    if backend == "auto":
        return "numba" if (_nb is not None and b.device.type == "cpu") else "torch"
    if backend == "numba" and (_nb is None or b.device.type != "cpu"):
        raise RuntimeError("linear_scan backend='numba' needs numba installed and CPU tensors; use backend='auto'")
    return backend


def linear_scan(
    lam: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reverse: bool = False,
    backend: Backend = "auto",
) -> torch.Tensor:
    """All states of x_t = λ x_{t∓1} + b_t. lam: (N,), b: (batch, L, N), h0: (batch, N); complex.

    backend: "auto" (numba on CPU, torch elsewhere), or "numba" / "torch" to force one; both passes use it."""
    if not (lam.is_complex() and b.is_complex()):
        raise TypeError(f"linear_scan needs complex tensors, got λ {lam.dtype} and b {b.dtype}")
    if b.dim() != 3 or lam.shape != (b.shape[-1],):
        raise ValueError(
            f"linear_scan: expected λ (N,) and b (batch, L, N), got {tuple(lam.shape)} and {tuple(b.shape)}"
        )
    dtype = torch.promote_types(lam.dtype, b.dtype)
    if h0 is None:
        h0 = torch.zeros(b.shape[0], b.shape[2], dtype=dtype, device=b.device)
    elif h0.shape != (b.shape[0], b.shape[2]):
        raise ValueError(f"linear_scan: expected h0 of shape {(b.shape[0], b.shape[2])}, got {tuple(h0.shape)}")
    return _LinearScan.apply(lam.to(dtype), b.to(dtype), h0.to(dtype), reverse, backend_for(b, backend))


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lam, b, h0, reverse, backend):
        x, _ = _run(lam, b, h0, reverse, backend)
        ctx.save_for_backward(lam, h0, x)
        ctx.reverse = reverse
        ctx.backend = backend
        return x

    @staticmethod
    def backward(ctx, g):
        lam, h0, x = ctx.saved_tensors
        lam_c = lam.conj()
        # adjoint: the recurrence in the other direction with conj(λ); the kernel also accumulates
        # s_t · conj(x_prev) where x_prev is the forward state one step earlier in forward order
        s, dlam = _run(lam_c, g, torch.zeros_like(h0), not ctx.reverse, ctx.backend, partner=x, partner_end=h0)
        first = -1 if ctx.reverse else 0  # the state that h0 feeds directly
        dh0 = lam_c * s[:, first]
        return dlam, s, dh0, None, None


def _run(lam, b, h0, reverse, backend, partner=None, partner_end=None):
    """Run the recurrence on `backend` ('numba' or 'torch'); with `partner`, also return
    Σ_batch Σ_t x_t ⊙ conj(partner_next(t))."""
    if backend == "numba":
        return _run_numba(lam, b, h0, reverse, partner, partner_end)
    return _run_torch(lam, b, h0, reverse, partner, partner_end)


# --------------------------------------------------------------------------- torch backend


def _run_torch(lam, b, h0, reverse, partner, partner_end):
    x = _chunked_scan(lam, b.flip(1), h0).flip(1) if reverse else _chunked_scan(lam, b, h0)
    dlam = None
    if partner is not None:
        # the partner of step t is the partner state one step further in this scan's order
        if reverse:
            nxt = torch.cat([partner_end[:, None], partner[:, :-1]], dim=1)
        else:
            nxt = torch.cat([partner[:, 1:], partner_end[:, None]], dim=1)
        dlam = (x * nxt.conj()).sum(dim=(0, 1))
    return x, dlam


def _chunked_scan(lam, b, h0):
    batch, length, n = b.shape
    t = min(_CHUNK, length)
    k = -(-length // t)
    pad = k * t - length
    if pad:
        b = torch.nn.functional.pad(b, (0, 0, 0, pad))
    bc = b.reshape(batch, k, t, n)
    steps = torch.arange(t, device=b.device)
    # powers λ^0 … λ^t as exp(p·log λ), exact for |λ| < 1 and free of repeated-multiply drift
    log_lam = torch.log(lam)
    pw = torch.exp(torch.arange(t + 1, device=b.device, dtype=lam.real.dtype)[:, None] * log_lam)  # (t+1, N)
    diff = steps[:, None] - steps[None, :]
    m = torch.where((diff >= 0)[..., None], pw[diff.clamp(min=0)], torch.zeros((), dtype=lam.dtype, device=b.device))
    local = torch.einsum("tsn,bksn->bktn", m, bc)  # within-chunk states from a zero start
    carries = []
    h = h0
    for j in range(k):  # sequential carry across chunks: L/_CHUNK steps
        carries.append(h)
        h = pw[t] * h + local[:, j, -1]
    carry = torch.stack(carries, dim=1)  # (batch, k, N): state entering each chunk
    x = local + pw[1:][None, None] * carry[:, :, None]
    return x.reshape(batch, k * t, n)[:, :length]


# --------------------------------------------------------------------------- numba backend


def _as_real(z: torch.Tensor) -> _np.ndarray:
    """A complex tensor as a real numpy view with re/im interleaved in the last axis."""
    r = torch.view_as_real(z.detach().contiguous())
    return r.reshape(*z.shape[:-1], 2 * z.shape[-1]).numpy()


def _run_numba(lam, b, h0, reverse, partner, partner_end):
    torch_threads = torch.get_num_threads()
    kernel = _scan_kernel if _use_threads() else _scan_kernel_serial
    real_dtype = lam.real.dtype
    lr = lam.real.detach().contiguous().numpy()
    li = lam.imag.detach().contiguous().numpy()
    x = torch.empty_like(b, memory_format=torch.contiguous_format)
    if partner is None:
        dummy3 = _np.empty((0, 0, 2 * b.shape[-1]), dtype=lr.dtype)
        dummy2 = _np.empty((0, 2 * b.shape[-1]), dtype=lr.dtype)
        p, pe = dummy3, dummy2
    else:
        p, pe = _as_real(partner), _as_real(partner_end)
    dl = _np.zeros((b.shape[0], 2 * b.shape[-1]), dtype=lr.dtype)
    kernel(lr, li, _as_real(b), _as_real(h0), reverse, _as_real_out(x), p, pe, dl, _STAGE)
    if torch.get_num_threads() != torch_threads:
        # numba's first call starts its OpenMP layer, which resets the OpenMP thread count that torch
        # shares with it (libgomp) to every core: give torch back the count it was set to
        torch.set_num_threads(torch_threads)
    dlam = None
    if partner is not None:
        d = torch.from_numpy(dl).to(real_dtype).reshape(b.shape[0], b.shape[-1], 2).sum(0)
        dlam = torch.view_as_complex(d.contiguous())
    return x, dlam


def _use_threads() -> bool:
    """Whether to run the threaded kernel, on as many threads as torch uses (one knob for both).

    With torch on one thread (torchrun's default per process, or a user's choice) the serial kernel
    runs, so no OpenMP team of more threads is started for it: thread pools spinning at barriers would
    take the cores another 1-thread trainer on the same machine needs.
    """
    threads = min(torch.get_num_threads(), _nb.config.NUMBA_NUM_THREADS)
    if threads <= 1:
        return False
    if _nb.get_num_threads() != threads:
        _nb.set_num_threads(threads)
    return True


def _as_real_out(x: torch.Tensor) -> _np.ndarray:
    r = torch.view_as_real(x)
    return r.reshape(*x.shape[:-1], 2 * x.shape[-1]).numpy()


if _nb is not None:

    @_nb.njit(parallel=True, cache=True, fastmath=True, nogil=True)
    def _scan_kernel(lr, li, b, h0, reverse, out, partner, partner_end, dlam, stage):  # pragma: no cover
        # b, out, partner: (batch, L, 2N) real, re/im interleaved; h0, partner_end, dlam: (batch, 2N)
        # Compiled code is invisible to coverage; its numbers are checked against the torch
        # backend and a float64 reference in tests/test_scan.py.
        nb_, length, n2 = b.shape
        n = n2 // 2
        acc = partner.shape[0] > 0
        for i in _nb.prange(nb_):
            xr = _np.empty(n, dtype=b.dtype)
            xi = _np.empty(n, dtype=b.dtype)
            gr = _np.zeros(n, dtype=b.dtype)
            gi = _np.zeros(n, dtype=b.dtype)
            for j in range(n):
                xr[j] = h0[i, 2 * j]
                xi[j] = h0[i, 2 * j + 1]
            if reverse:
                # the block's results overwrite its staged inputs (two buffers, not three, so that
                # they stay in a 1 MB L2; timed in turns with a separate output buffer: 0-6% faster)
                bb = _np.empty((stage, n2), dtype=b.dtype)
                pb = _np.empty((stage if acc else 0, n2), dtype=b.dtype)
                t1 = length
                while t1 > 0:
                    t0 = max(0, t1 - stage)
                    m = t1 - t0
                    # explicit element loops: numba compiles row slice assignment (bb[r, :] = b[i, t])
                    # to slower code than plain loops for these short copies
                    for r in range(m):  # stage inputs ascending
                        for k in range(n2):
                            bb[r, k] = b[i, t0 + r, k]
                        if acc:
                            if t0 + r == 0:
                                for k in range(n2):
                                    pb[r, k] = partner_end[i, k]
                            else:
                                for k in range(n2):
                                    pb[r, k] = partner[i, t0 + r - 1, k]
                    for k in range(m):
                        r = m - 1 - k
                        if acc:
                            _step_acc(lr, li, xr, xi, bb[r], bb[r], pb[r], gr, gi)
                        else:
                            _step(lr, li, xr, xi, bb[r], bb[r])
                    for r in range(m):  # write back ascending
                        for k in range(n2):
                            out[i, t0 + r, k] = bb[r, k]
                    t1 = t0
            else:
                for t in range(length):
                    if acc:
                        p = partner_end[i] if t == length - 1 else partner[i, t + 1]
                        _step_acc(lr, li, xr, xi, b[i, t], out[i, t], p, gr, gi)
                    else:
                        _step(lr, li, xr, xi, b[i, t], out[i, t])
            if acc:
                for j in range(n):
                    dlam[i, 2 * j] = gr[j]
                    dlam[i, 2 * j + 1] = gi[j]

    def _renamed(f, name):
        """A copy of function f under another name: numba's on-disk cache keys compiled code by the
        function's qualified name, so two dispatchers of one function would load each other's code."""
        g = types.FunctionType(f.__code__.replace(co_name=name), f.__globals__, name, f.__defaults__, f.__closure__)
        g.__qualname__ = name
        return g

    _scan_kernel_serial = _nb.njit(cache=True, fastmath=True, nogil=True)(
        _renamed(_scan_kernel.py_func, "_scan_kernel_serial")
    )

    @_nb.njit(inline="always", fastmath=True)
    def _step(lr, li, xr, xi, bt, ot):  # pragma: no cover - ot may be bt itself: each j is read before written
        for j in range(xr.shape[0]):
            a = lr[j] * xr[j] - li[j] * xi[j] + bt[2 * j]
            c = lr[j] * xi[j] + li[j] * xr[j] + bt[2 * j + 1]
            xr[j] = a
            xi[j] = c
            ot[2 * j] = a
            ot[2 * j + 1] = c

    @_nb.njit(inline="always", fastmath=True)
    def _step_acc(lr, li, xr, xi, bt, ot, p, gr, gi):  # pragma: no cover
        for j in range(xr.shape[0]):
            a = lr[j] * xr[j] - li[j] * xi[j] + bt[2 * j]
            c = lr[j] * xi[j] + li[j] * xr[j] + bt[2 * j + 1]
            xr[j] = a
            xi[j] = c
            ot[2 * j] = a
            ot[2 * j + 1] = c
            pr = p[2 * j]
            pi = p[2 * j + 1]
            gr[j] += a * pr + c * pi  # x · conj(p)
            gi[j] += c * pr - a * pi

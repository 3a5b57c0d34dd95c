"""The compiled stack step: one eval-mode recurrent step of a whole deep LRU stack as one numba call.

    u: (B, d_in) → encoder → n_layers × [norm → LRU step → GELU → GLU → + residual] → x: (B, d)

The same arithmetic as `DeepLRU.step` (lruts/network.py), where the maths is written; this is only its
fast form. A step of the stack is ~15 tensor ops per layer on vectors of a few hundred numbers, and in
PyTorch each op costs a few µs of dispatch for well under 1 µs of arithmetic: at small batch one compiled
function is an order of magnitude faster. numba is already the scan kernel's compiler: a wheel from PyPI,
no compiler on the user's machine, cached on disk.

Weights arrive packed per layer (lruts.fast.pack_stack), in the layer's own symbols:
  enc_w (d, d_in), enc_b (d,)
  norm_w, norm_b (L, d)       LayerNorm's affine, or eval BatchNorm as x·norm_w + norm_b
  w_in (L, 2N, d)             exp(γ)⊙B as real rows, re/im interleaved (LRU.io_weights)
  lam (L, N) complex          λ
  w_out (L, d, 2N)            Re(C x) on re/im-interleaved states
  d_skip (L, d)               D
  glu_w (L, k·d, d), glu_b (L, k·d)   k = 2 for the full GLU, 1 for the half GLU
  states (L, B, N) complex    the carried states; the new ones are returned
"""

from __future__ import annotations

import math

try:  # numba is a hard dependency; without it the torch step runs
    import numba as _nb
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only where numba cannot be installed
    _nb = None

__all__ = ["available", "stack_step"]

# reassociation (vectorised dot products) and fused multiply-adds, but not fastmath's "no NaN / no
# infinity" assumptions: a NaN or an overflowing exp must come out as the torch step's does
FASTMATH = {"reassoc", "contract", "nsz"}
_GELU_C = math.sqrt(2.0 / math.pi)  # tanh-approximate GELU, as the torch step (network.LRUBlock)


def available() -> bool:
    return _nb is not None


if _nb is not None:

    @_nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
    def _norm(x, w, b, layer_norm, eps, out):  # pragma: no cover - compiled
        d = x.shape[0]
        if layer_norm:
            m = x[0] * 0
            for i in range(d):
                m += x[i]
            m /= d
            v = x[0] * 0
            for i in range(d):
                v += (x[i] - m) * (x[i] - m)
            r = 1 / math.sqrt(v / d + eps)
            for i in range(d):
                out[i] = (x[i] - m) * r * w[i] + b[i]
        else:
            for i in range(d):
                out[i] = x[i] * w[i] + b[i]

    @_nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
    def stack_step(
        u, enc_w, enc_b, norm_w, norm_b, layer_norm, eps, prenorm, w_in, lam, w_out, d_skip, glu_w, glu_b, states
    ):  # pragma: no cover - compiled; tested against the torch step
        batch, d_in = u.shape
        d, n_layers, n = enc_w.shape[0], lam.shape[0], lam.shape[1]
        full_glu = glu_w.shape[1] == 2 * d
        x = _np.empty((batch, d), u.dtype)
        new = _np.empty_like(states)
        z = _np.empty(d, u.dtype)  # the LRU's input
        y = _np.empty(d, u.dtype)  # GELU(LRU output)
        g = _np.empty(glu_w.shape[1], u.dtype)
        bu = _np.empty(2 * n, u.dtype)
        s = _np.empty(2 * n, u.dtype)
        for bi in range(batch):
            for i in range(d):
                acc = enc_b[i]
                for j in range(d_in):
                    acc += enc_w[i, j] * u[bi, j]
                x[bi, i] = acc
            for layer in range(n_layers):
                xb = x[bi]
                if prenorm:
                    _norm(xb, norm_w[layer], norm_b[layer], layer_norm, eps, z)
                else:
                    z[:] = xb
                for k in range(2 * n):  # exp(γ)⊙(B z), re/im interleaved
                    acc = w_in[layer, k, 0] * z[0]
                    for i in range(1, d):
                        acc += w_in[layer, k, i] * z[i]
                    bu[k] = acc
                for k in range(n):  # x_k = λ ⊙ x_{k-1} + exp(γ)⊙(B u_k)
                    h = lam[layer, k] * states[layer, bi, k] + complex(bu[2 * k], bu[2 * k + 1])
                    new[layer, bi, k] = h
                    s[2 * k] = h.real
                    s[2 * k + 1] = h.imag
                for i in range(d):  # y = GELU(Re(C x) + D ⊙ z)
                    acc = d_skip[layer, i] * z[i]
                    for k in range(2 * n):
                        acc += w_out[layer, i, k] * s[k]
                    y[i] = 0.5 * acc * (1 + math.tanh(_GELU_C * (acc + 0.044715 * acc * acc * acc)))
                for k in range(g.shape[0]):
                    acc = glu_b[layer, k]
                    for i in range(d):
                        acc += glu_w[layer, k, i] * y[i]
                    g[k] = acc
                for i in range(d):  # full GLU: a·σ(b) of the two halves; half GLU: y·σ(W y)
                    gate = 1 / (1 + math.exp(-g[d + i if full_glu else i]))
                    xb[i] += (g[i] if full_glu else y[i]) * gate
                if not prenorm:
                    _norm(xb.copy(), norm_w[layer], norm_b[layer], layer_norm, eps, xb)
        return x, new

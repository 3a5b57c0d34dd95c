"""The paper's ablation (its §3, Table 1–2 and Fig. 1), as recurrent layers that take the LRU's
place inside each `LRUBlock` (same norm, GELU, GLU, dropout, skip, optimiser recipe):

    tanh_rnn          x_k = tanh(A x_{k−1} + B u_k),  y_k = C x_k + D ⊙ u_k     A dense real N×N
    linear_rnn        x_k = A x_{k−1} + B u_k                                   (the same, no tanh)
    complex_diagonal  x_k = λ ⊙ x_{k−1} + B u_k, λ ∈ C^N trained as (Re λ, Im λ), initialised
                      uniformly on the unit disk (the eigenvalues of a Glorot-initialised A);
                      no exponential parameterisation, no ring, no γ
    exp_ring          the LRU with λ = exp(−exp(ν_log) + i exp(θ_log)) and the ring init, γ fixed to 1
    lru               the LRU (+ γ normalisation)

A and λ, and B, are "recurrent" parameters (lr × factor, no weight decay), as ν, θ, γ, B of the LRU.
Dense A is Glorot-initialised (N(0, 1/N)) and scaled to spectral radius ≤ 0.99 if it exceeds it: a
Gaussian matrix's radius is ≈1 ± O(N^−½), and above 1 the untrained linear RNN overflows within the
1,024 steps of sCIFAR. This choice is ours; the paper does not say how it kept its dense RNN stable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lruts.errors import LrutsError
from lruts.lru import LRU, init_io, nu_init, theta_init
from lruts.optim import RECURRENT_ATTRIBUTE
from lruts.scan import linear_scan

VARIANTS = ("tanh_rnn", "linear_rnn", "complex_diagonal", "exp_ring", "lru")
TITLES = {
    "tanh_rnn": "tanh RNN (dense)",
    "linear_rnn": "linear RNN (dense)",
    "complex_diagonal": "complex diagonal",
    "exp_ring": "+ exponential parameterisation, ring init",
    "lru": "+ γ normalisation (LRU)",
}


def _recurrent(p: nn.Parameter) -> nn.Parameter:
    setattr(p, RECURRENT_ATTRIBUTE, True)
    return p


class DenseRNN(nn.Module):
    """Dense real recurrence, tanh or linear. u: (batch, L, H) → y: (batch, L, H), last state (batch, N)."""

    def __init__(self, d_model: int, d_state: int, *, tanh: bool, bidirectional: bool = False) -> None:
        super().__init__()
        self.tanh, self.bidirectional = tanh, bidirectional
        a = torch.randn(d_state, d_state) / math.sqrt(d_state)
        radius = torch.linalg.eigvals(a).abs().max().item()
        if radius > 0.99:
            a = a * (0.99 / radius)
        self.A = _recurrent(nn.Parameter(a))
        self.B = _recurrent(nn.Parameter(torch.randn(d_state, d_model) * math.sqrt(2 / (d_state + d_model))))
        self.C = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        if bidirectional:
            self.C_reverse = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.D = nn.Parameter(torch.randn(d_model))

    def _states(self, u: torch.Tensor, bu: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """All states (batch, L, N) from x0 (batch, N)."""
        if self.tanh:  # torch's fused RNN loop: x_k = tanh(B u_k + A x_{k−1})
            out, _ = torch.rnn_tanh(
                u, x0[None].contiguous(), [self.B, self.A], False, 1, 0.0, self.training, False, True
            )
            return out
        return _linear_states(self.A, bu, x0)

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None):
        u = u.float()
        bu = None if self.tanh else F.linear(u, self.B)
        x0 = state if state is not None else u.new_zeros(u.shape[0], self.A.shape[0])
        xs = self._states(u, bu, x0)
        y = F.linear(xs, self.C) + self.D * u
        if self.bidirectional:
            rev = self._states(u.flip(1), None if bu is None else bu.flip(1), u.new_zeros(x0.shape)).flip(1)
            y = y + F.linear(rev, self.C_reverse)
        return y, xs[:, -1]


def _linear_states(a: torch.Tensor, bu: torch.Tensor, x0: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """All states of x_k = A x_{k−1} + b_k for dense A (N, N), b: (batch, L, N), x0: (batch, N).

    Chunked: inside a chunk of T steps the states are b convolved with the powers A^0…A^{T−1} (one
    einsum with a block-Toeplitz tensor); only the chunk boundaries are carried one after another.
    """
    batch, length, n = bu.shape
    t = min(chunk, length)
    pad = (-length) % t
    b = F.pad(bu, (0, 0, 0, pad)).view(batch, -1, t, n)  # (batch, chunks, T, N)
    powers = [torch.eye(n, dtype=a.dtype, device=a.device)]
    for _ in range(t):
        powers.append(powers[-1] @ a.T)  # row-vector form: x_k = x_{k−1} Aᵀ + b_k
    p = torch.stack(powers)  # (T+1, N, N): p[m] = (Aᵀ)^m
    lag = torch.arange(t)[:, None] - torch.arange(t)[None, :]
    toeplitz = p[lag.clamp(min=0)] * (lag >= 0).to(a.dtype)[..., None, None]  # (T, T, N, N)
    intra = torch.einsum("bcjm,ijmn->bcin", b, toeplitz)
    carries, x = [], x0
    for c in range(b.shape[1]):
        carries.append(x)
        x = x @ p[t] + intra[:, c, -1]
    carry = torch.stack(carries, dim=1)  # state before each chunk: (batch, chunks, N)
    states = intra + torch.einsum("bcm,imn->bcin", carry, p[1:])
    return states.reshape(batch, -1, n)[:, :length]


class ComplexDiagonalRNN(nn.Module):
    """x_k = λ ⊙ x_{k−1} + B u_k with λ trained directly as (Re λ, Im λ); y_k = Re(C x_k) + D ⊙ u_k."""

    def __init__(self, d_model: int, d_state: int, *, bidirectional: bool = False) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        nu, theta = nu_init(d_state, 0.0, 1.0), theta_init(d_state, 2 * math.pi)  # uniform on the unit disk
        lam = torch.exp(torch.complex(-torch.exp(nu), torch.exp(theta)))
        self.lam_re = _recurrent(nn.Parameter(lam.real.float()))
        self.lam_im = _recurrent(nn.Parameter(lam.imag.float()))
        init_io(self, d_model, d_state, bidirectional)

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None):
        u = u.float()
        lam = torch.complex(self.lam_re, self.lam_im)
        bu = torch.complex(F.linear(u, self.B_re), F.linear(u, self.B_im))
        x = linear_scan(lam, bu, state)
        y = F.linear(x.real, self.C_re) - F.linear(x.imag, self.C_im) + self.D * u
        if self.bidirectional:
            xr = linear_scan(lam, bu, None, reverse=True)
            y = y + F.linear(xr.real, self.C_re_reverse) - F.linear(xr.imag, self.C_im_reverse)
        return y, x[:, -1]


def recurrent_layer(variant: str, lru: LRU) -> nn.Module:
    """The layer of `variant` with the sizes (and ring, phase) of the block's LRU `lru`."""
    h, n, bi = lru.d_model, lru.d_state, lru.bidirectional
    if variant == "lru":
        return lru
    if variant == "exp_ring":
        with torch.no_grad():
            lru.gamma_log.zero_()  # exp(γ_log) = 1: no normalisation
        lru.gamma_log.requires_grad_(False)
        return lru
    if variant == "complex_diagonal":
        return ComplexDiagonalRNN(h, n, bidirectional=bi)
    if variant in ("tanh_rnn", "linear_rnn"):
        return DenseRNN(h, n, tanh=variant == "tanh_rnn", bidirectional=bi)
    raise LrutsError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def apply_variant(body: nn.Module, variant: str) -> nn.Module:
    """Replace the LRU of every block of a DeepLRU `body` by the `variant` layer (in place)."""
    if variant not in VARIANTS:
        raise LrutsError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    for block in body.blocks:
        block.lru = recurrent_layer(variant, block.lru)
    return body

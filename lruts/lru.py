"""The Linear Recurrent Unit layer (Orvieto et al., ICML 2023), in the paper's symbols.

    λ   = exp(−exp(ν_log) + i·exp(θ_log))                  (N,)
    x_k = λ ⊙ x_{k−1} + exp(γ_log) ⊙ (B u_k)                B = B_re + i·B_im: (N, H)
    y_k = Re(C x_k) + D ⊙ u_k                               C = C_re + i·C_im: (H, N), D: (H,)

Parameters stay real (complex nn.Parameters break AMP and some optimisers). The recurrence runs in
float32 (float64 if the layer is float64) even under autocast.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from lruts.errors import DataError, ShapeError
from lruts.scan import linear_scan

__all__ = ["LRU", "autocast_enabled", "check_input", "gamma_log_init", "init_io", "nu_init", "theta_init"]


def nu_init(n: int, r_min: float, r_max: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """ν_log such that |λ| = exp(−exp(ν_log)) is uniform in area on the ring r_min ≤ |λ| ≤ r_max."""
    u1 = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2))


def theta_init(n: int, max_phase: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """θ_log such that the phase exp(θ_log) is uniform on [0, max_phase]."""
    u2 = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.log(max_phase * u2)


def init_io(module: nn.Module, d_model: int, d_state: int, bidirectional: bool) -> None:
    """The input and output maps of a diagonal complex recurrence, as the paper initialises them:
    B_re, B_im ~ N(0, 1/(2H)) (d_state, d_model); C_re, C_im ~ N(0, 1/N) (d_model, d_state), a second
    C for the reversed scan when bidirectional; D ~ N(0, 1) (d_model,)."""
    module.B_re = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(2 * d_model))
    module.B_im = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(2 * d_model))
    module.C_re = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
    module.C_im = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
    if bidirectional:
        module.C_re_reverse = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        module.C_im_reverse = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
    module.D = nn.Parameter(torch.randn(d_model))


def gamma_log_init(nu_log: torch.Tensor, theta_log: torch.Tensor) -> torch.Tensor:
    """γ_log = log sqrt(1 − |λ|²): normalises the state's variance for white-noise input."""
    modulus = torch.exp(-torch.exp(nu_log))
    return torch.log(torch.sqrt(1 - modulus**2))


class LRU(nn.Module):
    """One LRU layer. u: (batch, length, d_model) → y: (batch, length, d_model).

    `state` is the complex state x of the forward scan, (batch, d_state) complex64 (complex128 for a
    float64 layer). With `bidirectional=True` a second, reversed scan with its own C (`C_re_reverse`,
    `C_im_reverse`; λ, γ and B shared) is added to the output; the reversed scan looks at the future,
    so it always starts from zero at the end of each call and `step` is unavailable.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        bidirectional: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"need 0 ≤ r_min < r_max ≤ 1, got r_min={r_min}, r_max={r_max}")
        if not 0.0 < max_phase <= 2 * math.pi:
            raise ValueError(f"need 0 < max_phase ≤ 2π, got {max_phase}")
        self.d_model, self.d_state = d_model, d_state
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        self.bidirectional = bidirectional
        self.validate = validate  # off inside a network, which checks its own input once for all layers

        nu_log = nu_init(d_state, r_min, r_max)
        theta_log = theta_init(d_state, max_phase)
        self.nu_log = nn.Parameter(nu_log.float())
        self.theta_log = nn.Parameter(theta_log.float())
        self.gamma_log = nn.Parameter(gamma_log_init(nu_log, theta_log).float())
        init_io(self, d_model, d_state, bidirectional)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, r_min={self.r_min}, r_max={self.r_max}, "
            f"max_phase={self.max_phase:.4g}, bidirectional={self.bidirectional}"
        )

    # ------------------------------------------------------------------ the paper's quantities
    def lam(self) -> torch.Tensor:
        """λ: (d_state,) complex."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def io_weights(self) -> tuple[torch.Tensor, ...]:
        """(λ, W_in, W_out[, W_out_reverse]) as real matmul weights on re/im-interleaved states.

        W_in: (2N, H) maps u to exp(γ)⊙(B u); W_out: (H, 2N) maps the state to Re(C x)."""
        w_in = torch.stack([self.B_re, self.B_im], dim=1) * torch.exp(self.gamma_log)[:, None, None]
        out = [self.lam(), w_in.reshape(2 * self.d_state, self.d_model), _readout_weight(self.C_re, self.C_im)]
        if self.bidirectional:
            out.append(_readout_weight(self.C_re_reverse, self.C_im_reverse))
        return tuple(out)

    def _input(self, u: torch.Tensor, w_in: torch.Tensor) -> torch.Tensor:
        """exp(γ_log) ⊙ (B u) for u: (..., H) → (..., N) complex, with one real matmul."""
        return torch.view_as_complex(F.linear(u, w_in).unflatten(-1, (self.d_state, 2)))

    # ------------------------------------------------------------------ the two modes
    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Parallel mode. u: (batch, length, H); state: (batch, N) complex or None (zeros).

        Returns y: (batch, length, H) in u's dtype, and the final forward state (batch, N).
        """
        if self.validate:
            check_input(u, 3, self.d_model, "(batch, length, d_model)")
        with _full_precision(u):
            u32 = u.to(self.nu_log.dtype)
            state = self._check_state(state, u32)
            lam, w_in, w_out, *w_rev = self.io_weights()
            bu = self._input(u32, w_in)
            x = linear_scan(lam, bu, state)
            y = torch.addcmul(_readout(x, w_out), self.D, u32)
            if self.bidirectional:
                y = y + _readout(linear_scan(lam, bu, None, reverse=True), w_rev[0])
        # clone: a view of the last step would keep the whole (batch, length, N) scan output alive for as
        # long as the state is kept (a forecaster's stream state holds one per layer and patch alignment)
        return y.to(u.dtype), x[:, -1].clone()

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent mode, one time step. u_t: (batch, H); state: (batch, N) complex or None."""
        if self.bidirectional:
            raise RuntimeError("a bidirectional LRU reads the future; it has no one-step recurrent mode")
        if self.validate:
            check_input(u_t, 2, self.d_model, "(batch, d_model)")
        with _full_precision(u_t):
            u32 = _as_dtype(u_t, self.nu_log.dtype)
            state = self._check_state(state, u32)
            lam, w_in, w_out = self.io_weights()
            x = torch.addcmul(self._input(u32, w_in), lam, state)
            y = torch.addcmul(_readout(x, w_out), self.D, u32)
        return _as_dtype(y, u_t.dtype), x

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The zero state, (batch, N) complex."""
        return torch.zeros(batch, self.d_state, dtype=self._state_dtype(), device=device or self.nu_log.device)

    # ------------------------------------------------------------------ checks
    def _state_dtype(self) -> torch.dtype:
        return torch.complex128 if self.nu_log.dtype == torch.float64 else torch.complex64

    def _check_state(self, state: torch.Tensor | None, u: torch.Tensor) -> torch.Tensor:
        if state is None:
            return self.initial_state(u.shape[0], u.device)
        if not state.is_complex() or state.shape != (u.shape[0], self.d_state):
            raise ShapeError(
                f"LRU state must be complex of shape (batch, d_state) = "
                f"({u.shape[0]}, {self.d_state}), got {tuple(state.shape)} {state.dtype}"
            )
        return _as_dtype(state, self._state_dtype())


def _as_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """t in dtype, without the cost of a no-op `.to` call (a few µs, three per layer of a streaming step)."""
    return t if t.dtype == dtype else t.to(dtype)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for this device type (True when torch cannot say: torch < 2.4)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no per-device query
        return True


def _full_precision(u: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off for the layer (the recurrence must not run in bf16); free when it is off already."""
    on = autocast_enabled(u.device.type)
    return torch.autocast(u.device.type, enabled=False) if on else contextlib.nullcontext()


def _readout_weight(c_re: torch.Tensor, c_im: torch.Tensor) -> torch.Tensor:
    """(H, 2N) real weight with Re(C x) = view_as_real(x).flatten(-2) @ weight.T."""
    return torch.stack([c_re, -c_im], dim=-1).flatten(-2)


def _readout(x: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
    """Re(C x) for x: (..., N) complex → (..., H), with one real matmul."""
    return F.linear(torch.view_as_real(x).flatten(-2), w_out)


def check_input(u: torch.Tensor, rank: int, width: int, expected: str, what: str = "LRU input") -> None:
    """Raise ShapeError/DataError unless u is a finite real tensor of `rank` with last dim `width`.

    `expected` names the shape, e.g. "(batch, length, d_model)"; its last name is the width's name.
    """
    width_name = expected.strip("()").split(",")[-1].strip()
    if not isinstance(u, torch.Tensor):
        raise ShapeError(f"{what} must be a torch.Tensor of shape {expected}, got {type(u).__name__}")
    if u.dim() != rank or u.shape[-1] != width:
        raise ShapeError(f"{what} must have shape {expected} with {width_name}={width}, got {tuple(u.shape)}")
    if u.is_complex() or not u.is_floating_point():
        raise ShapeError(f"{what} must be a real floating-point tensor, got {u.dtype}")
    if not torch.isfinite(u).all():
        raise DataError(f"{what} {tuple(u.shape)} contains NaN or inf; clean or impute the series first")

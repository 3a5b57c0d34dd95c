"""Deep LRU networks (paper Fig. 1 and App. D): a linear encoder, a stack of residual LRU blocks,
and heads for sequence-to-sequence output and for classification.

    block(x) = x + dropout(GLU(dropout(GELU(LRU(norm(x))))))        (pre-norm; post-norm normalises
                                                                      after the residual instead)

Every module here has a parallel `forward` over a whole sequence and a streaming `step` over one
time step with the per-layer LRU states carried; in eval mode the two give the same numbers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lruts import step_kernel
from lruts.errors import ShapeError
from lruts.lru import LRU, autocast_enabled, check_input

__all__ = [
    "GLU",
    "DeepLRU",
    "DeepLRUConfig",
    "LRUBlock",
    "LRUClassifier",
    "LRUSequenceModel",
    "TimeSharedDropout",
    "masked_mean",
]

States = list[torch.Tensor]

# A streaming step runs as one compiled function (lruts.step_kernel) while batch · (4·N·H + 2·H²), its
# multiply-adds per layer, is at most this. The compiled loops do ≈ 10 G multiply-adds/s; the torch ops
# cost ≈ 0.07 ms of dispatch per layer and then run BLAS-fast, so they win at large batch. Measured
# crossover (benchmarks/stream.py, README): batch 4–8 for H=128 N=256, 4–16 for H=64 N=128; this
# budget switches at 3.7 and 14.6.
COMPILED_MACS = 600_000


class PackedStack(NamedTuple):
    """A stack's eval-mode weights in the order `step_kernel.stack_step` takes them (see there)."""

    enc_w: np.ndarray
    enc_b: np.ndarray
    norm_w: np.ndarray
    norm_b: np.ndarray
    layer_norm: bool
    eps: float
    prenorm: bool
    w_in: np.ndarray
    lam: np.ndarray
    w_out: np.ndarray
    d_skip: np.ndarray
    glu_w: np.ndarray
    glu_b: np.ndarray


_registrations = 0  # parameters, buffers and submodules (re)assigned on any module, ever


def _count_registration(*_args):
    global _registrations
    _registrations += 1


for _hook in ("parameter", "buffer", "module"):
    getattr(torch.nn.modules.module, f"register_module_{_hook}_registration_hook")(_count_registration)


def packed(module: nn.Module, build):
    """build(module) — a module's weights as a compiled kernel takes them — cached on the module until
    one of its tensors changes: in place (an optimiser step, load_state_dict), by `.data` assignment
    (`.to()`, `.double()`), or by assigning a parameter, buffer or submodule anywhere in it. The check
    costs ~5 µs instead of the ~35 µs of walking `module.parameters()`."""
    cache = module.__dict__.get("_packed_cache")
    if cache is not None and cache[0] == _registrations:
        key = tuple((t.data_ptr(), t._version) for d in cache[1] for t in d.values() if t is not None)
        if key == cache[2]:
            return cache[3]
    dicts = [d for m in module.modules() for d in (m._parameters, m._buffers)]
    key = tuple((t.data_ptr(), t._version) for d in dicts for t in d.values() if t is not None)
    with torch.no_grad():
        value = build(module)
    module.__dict__["_packed_cache"] = (_registrations, dicts, key, value)
    return value


@dataclass
class DeepLRUConfig:
    """Architecture of a deep LRU network. Defaults are the paper's (BatchNorm, pre-norm, full GLU)."""

    # width of the input; 0 until the model that owns the network fills it (LRUForecastNet: segment ×
    # series per sequence)
    d_input: int = 0
    d_model: int = 128  # H: width of every block
    d_state: int = 256  # N: complex states per LRU layer
    n_layers: int = 6  # LRU blocks
    r_min: float = 0.0  # inner radius of the ring the eigenvalues λ are drawn on
    r_max: float = 1.0  # outer radius: |λ| ≤ r_max bounds how long the recurrence remembers
    max_phase: float = 2 * math.pi  # the eigenvalues' phases are drawn on [0, max_phase]
    bidirectional: bool = False  # a second scan over the reversed sequence (not for streaming)
    norm: Literal["batch", "layer"] = "batch"  # the blocks' normalisation
    prenorm: bool = True  # normalise before the LRU (else after the residual sum)
    glu: Literal["full", "half"] = "full"  # output gate: full GLU of a 2H projection, or half: x · σ(Wx)
    dropout: float = 0.0  # dropout in every block, its mask shared over time

    def __post_init__(self) -> None:
        if self.norm not in ("batch", "layer"):
            raise ValueError(f"norm must be 'batch' or 'layer', got {self.norm!r}")
        if self.glu not in ("full", "half"):
            raise ValueError(f"glu must be 'full' or 'half', got {self.glu!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class TimeSharedDropout(nn.Module):
    """Dropout whose mask is drawn once per (sequence, channel) and shared over time.

    x: (batch, length, H) or (batch, H). In `step` use, each call is one time step, so the mask is
    drawn per call; streaming is meant for eval mode, where this is the identity.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0], 1, x.shape[-1]) if x.dim() == 3 else x.shape
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)


class GLU(nn.Module):
    """Full GLU: (W₁x)·σ(W₂x). Half GLU (Path-X): x·σ(Wx), no extra linear layer before it."""

    def __init__(self, d_model: int, kind: Literal["full", "half"] = "full") -> None:
        super().__init__()
        self.kind = kind
        self.proj = nn.Linear(d_model, 2 * d_model if kind == "full" else d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, self.proj.weight, self.proj.bias)
        return F.glu(z, dim=-1) if self.kind == "full" else x * torch.sigmoid(z)


class LRUBlock(nn.Module):
    """norm → LRU → GELU → dropout → GLU → dropout → + skip. x: (batch, length, H).

    Inputs are validated by the network that owns the block (`DeepLRU`), once, not per layer.
    """

    def __init__(self, cfg: DeepLRUConfig) -> None:
        super().__init__()
        h = cfg.d_model
        self.prenorm = cfg.prenorm
        self.norm = nn.BatchNorm1d(h) if cfg.norm == "batch" else nn.LayerNorm(h)
        self.lru = LRU(
            h, cfg.d_state, r_min=cfg.r_min, r_max=cfg.r_max, max_phase=cfg.max_phase, bidirectional=cfg.bidirectional
        )
        self.dropout = TimeSharedDropout(cfg.dropout)
        self.glu = GLU(h, cfg.glu)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm
        if isinstance(n, nn.BatchNorm1d):
            if not n.training and n.track_running_stats:  # eval: a per-channel affine map, any rank
                scale, shift = self._batchnorm_affine()
                return torch.addcmul(shift, x, scale)
            if x.dim() == 3:
                return n(x.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d wants (batch, H, length)
        return n(x)

    def _batchnorm_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval BatchNorm as x·scale + shift, cached until its statistics or parameters change: one op
        per streaming step instead of three (a step is dispatch-bound: ~60 ops of a few µs each)."""
        n = self.norm
        tensors = (n.running_mean, n.running_var, n.weight, n.bias)
        key = tuple((t.data_ptr(), t._version) for t in tensors if t is not None)
        if getattr(self, "_bn_key", None) != key or torch.is_grad_enabled():
            scale = torch.rsqrt(n.running_var + n.eps)
            if n.weight is not None:
                scale = scale * n.weight
            shift = -n.running_mean * scale
            if n.bias is not None:
                shift = shift + n.bias
            if torch.is_grad_enabled():  # gradients must flow to weight and bias: no cache
                return scale, shift
            self._bn_key, self._bn_affine = key, (scale, shift)
        return self._bn_affine

    def _norm_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The eval-mode norm's per-channel (weight, bias): LayerNorm's affine (applied after it
        standardises), or BatchNorm as the affine map it is in eval mode."""
        n = self.norm
        if isinstance(n, nn.BatchNorm1d):
            return self._batchnorm_affine()
        shape, dtype = n.normalized_shape, self.lru.D.dtype
        weight = torch.ones(shape, dtype=dtype) if n.weight is None else n.weight
        return weight, (torch.zeros(shape, dtype=dtype) if n.bias is None else n.bias)

    def _mix(self, h: torch.Tensor) -> torch.Tensor:
        # tanh-approximate GELU, as jax.nn.gelu's default in the paper's code (and ~5× cheaper per step)
        h = F.gelu(h, approximate="tanh")
        if not (self.training and self.dropout.p):  # skip identity calls: they cost ~3 µs each per step
            return self.glu(h)
        return self.dropout(self.glu(self.dropout(h)))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, state = self.lru.forward_unchecked(self._normalise(x) if self.prenorm else x, state)
        x = x + self._mix(h)
        return (x if self.prenorm else self._normalise(x)), state

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, state = self.lru.step_unchecked(self._normalise(x_t) if self.prenorm else x_t, state)
        x_t = x_t + self._mix(h)
        return (x_t if self.prenorm else self._normalise(x_t)), state


class DeepLRU(nn.Module):
    """Linear encoder + a stack of LRU blocks. u: (batch, length, d_input) → (batch, length, d_model)."""

    def __init__(self, cfg: DeepLRUConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Linear(cfg.d_input, cfg.d_model)
        self.blocks = nn.ModuleList(LRUBlock(cfg) for _ in range(cfg.n_layers))

    def forward(self, u: torch.Tensor, states: States | None = None) -> tuple[torch.Tensor, States]:
        """u: (batch, length, d_input); states: one (batch, d_state) complex per layer, or None."""
        check_input(u, 3, self.cfg.d_input, "(batch, length, d_input)", "network input")
        states = self._states(states, u.shape[0])
        x = self.encoder(u)
        out = []
        for block, s in zip(self.blocks, states, strict=True):
            x, s = block(x, s)
            out.append(s)
        return x, out

    def step(self, u_t: torch.Tensor, states: States | None = None) -> tuple[torch.Tensor, States]:
        """One streaming step. u_t: (batch, d_input) → (batch, d_model) and the new states."""
        check_input(u_t, 2, self.cfg.d_input, "(batch, d_input)", "network input")
        return self.step_unchecked(u_t, states)

    def step_unchecked(self, u_t: torch.Tensor, states: States | None = None) -> tuple[torch.Tensor, States]:
        """`step` without the input check, for callers that checked their input already."""
        states = self._states(states, u_t.shape[0])
        weights = compiled_weights(self, pack_stack, u_t, self.step_macs(u_t.shape[0]), self.encoder.weight.dtype)
        if weights is not None:
            return self._compiled_step(u_t, states, weights)
        x = self.encoder(u_t)
        out = []
        for block, s in zip(self.blocks, states, strict=True):
            x, s = block.step(x, s)
            out.append(s)
        return x, out

    def _compiled_step(
        self, u_t: torch.Tensor, states: list[torch.Tensor | None], weights: PackedStack
    ) -> tuple[torch.Tensor, States]:
        """The same step as one call of the compiled stack step (`lruts.step_kernel`); eval mode only."""
        if u_t.shape[1] != self.cfg.d_input:  # the compiled loops do not check bounds
            raise ShapeError(f"network input: expected (batch, {self.cfg.d_input}), got {tuple(u_t.shape)}")
        s = self.stacked_states(states, u_t.shape[0], weights.lam.dtype)
        x, new = step_kernel.stack_step(u_t.detach().contiguous().numpy(), *weights, s)
        return torch.from_numpy(x), list(torch.from_numpy(new).unbind(0))

    def stacked_states(self, states: list[torch.Tensor | None], batch: int, dtype: np.dtype) -> np.ndarray:
        """The per-layer states as one (n_layers, batch, N) complex array for the compiled step, checked:
        its loops do not check bounds."""
        lru = self.blocks[0].lru
        s = np.stack([lru.initial_state(batch).numpy() if st is None else st.numpy() for st in states])
        if s.shape != (len(self.blocks), batch, lru.d_state) or not np.iscomplexobj(s):
            raise ShapeError(
                f"expected one complex LRU state of shape (batch, d_state) = ({batch}, {lru.d_state}) per layer, "
                f"got {[tuple(st.shape) for st in states if st is not None]} {s.dtype}"
            )
        return s.astype(dtype, copy=False)  # in the weights' precision, as the torch step casts it

    def step_macs(self, batch: int) -> int:
        """Multiply-adds of one layer's streaming step for `batch` sequences: B, C and the GLU."""
        h, n = self.cfg.d_model, self.cfg.d_state
        return batch * (4 * n * h + 2 * h * h)

    def initial_state(self, batch: int) -> States:
        return [block.lru.initial_state(batch) for block in self.blocks]

    def _states(self, states: States | None, batch: int) -> list[torch.Tensor | None]:
        if states is None:
            return [None] * len(self.blocks)
        if len(states) != len(self.blocks):
            raise ShapeError(f"expected one state per layer ({len(self.blocks)}), got {len(states)}")
        return list(states)


def pack_stack(model: DeepLRU) -> PackedStack | None:
    blocks = model.blocks
    norm = blocks[0].norm if len(blocks) else None
    if (
        not step_kernel.available()
        or norm is None
        or model.encoder.weight.dtype not in (torch.float32, torch.float64)
        or model.encoder.weight.device.type != "cpu"  # a CPU step on CUDA weights: the torch ops copy
        or (isinstance(norm, nn.BatchNorm1d) and not norm.track_running_stats)
    ):
        return None
    weights = [b.lru._weights() for b in blocks]  # (λ, W_in, W_out) per layer
    norms = [b._norm_affine() for b in blocks]

    def stack(ts):
        return torch.stack(list(ts)).contiguous().numpy()

    return PackedStack(
        model.encoder.weight.detach().contiguous().numpy(),
        model.encoder.bias.detach().contiguous().numpy(),
        stack(n[0] for n in norms),
        stack(n[1] for n in norms),
        isinstance(norm, nn.LayerNorm),
        float(norm.eps),
        model.cfg.prenorm,
        stack(w[1] for w in weights),
        stack(w[0] for w in weights),
        stack(w[2] for w in weights),
        stack(b.lru.D for b in blocks),
        stack(b.glu.proj.weight for b in blocks),
        stack(b.glu.proj.bias for b in blocks),
    )


def compiled_weights(model: nn.Module, build, x: torch.Tensor, macs: int, weight_dtype: torch.dtype):
    """The packed weights (`packed(model, build)`) for a compiled streaming step of `model` on input x,
    or None: then the torch ops run. Compiled only where it gives the same numbers as the torch ops —
    CPU, eval mode, no autograd, no autocast, x of the weights' dtype, and what `build` accepts (it
    returns None otherwise) — and while it is faster: `macs` (DeepLRU.step_macs) ≤ COMPILED_MACS.
    LRUTS_STEP_BACKEND=torch or numba forces a backend (numba raises where it cannot run)."""
    forced = os.environ.get("LRUTS_STEP_BACKEND")
    weights = None
    if (
        forced != "torch"
        and not model.training
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == weight_dtype
        and (macs <= COMPILED_MACS or forced == "numba")
        and not autocast_enabled("cpu")
    ):
        weights = packed(model, build)
    if forced == "numba" and weights is None:
        raise RuntimeError("LRUTS_STEP_BACKEND=numba: this step cannot run compiled (see compiled_weights)")
    return weights


class LRUSequenceModel(nn.Module):
    """Sequence-to-sequence: DeepLRU + a linear decoder at every step. → (batch, length, d_output)."""

    def __init__(self, cfg: DeepLRUConfig, d_output: int) -> None:
        super().__init__()
        self.body = DeepLRU(cfg)
        self.decoder = nn.Linear(cfg.d_model, d_output)

    def forward(self, u: torch.Tensor, states: States | None = None) -> tuple[torch.Tensor, States]:
        h, states = self.body(u, states)
        return self.decoder(h), states

    def step(self, u_t: torch.Tensor, states: States | None = None) -> tuple[torch.Tensor, States]:
        h, states = self.body.step(u_t, states)
        return self.decoder(h), states

    def initial_state(self, batch: int) -> States:
        return self.body.initial_state(batch)


def masked_mean(h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over time of h: (batch, length, H), counting only steps where mask: (batch, length) is true."""
    if mask is None:
        return h.mean(dim=1)
    if mask.shape != h.shape[:2]:
        raise ShapeError(
            f"padding mask must have shape (batch, length) = {tuple(h.shape[:2])}, got {tuple(mask.shape)}"
        )
    m = mask.to(h.dtype)[..., None]
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class LRUClassifier(nn.Module):
    """Classification: DeepLRU → mean over the unpadded steps → linear. → logits (batch, n_classes)."""

    def __init__(self, cfg: DeepLRUConfig, n_classes: int) -> None:
        super().__init__()
        self.body = DeepLRU(cfg)
        self.head = nn.Linear(cfg.d_model, n_classes)

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """u: (batch, length, d_input); mask: (batch, length) bool, true where the input is real."""
        h, _ = self.body(u)
        return self.head(masked_mean(h, mask))

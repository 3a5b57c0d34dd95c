"""The fast path, as one seam: the deep LRU stack's streaming step run as one compiled call.

    steps = CompiledStacks(model)                  # packs every DeepLRU's eval-mode weights in `model`, once
    h, states = steps(model.body, u_t, states)     # = model.body.step(u_t, states), the same numbers

The maths lives in `lruts.network` (`DeepLRU.step`); this package only runs it faster (`kernels.stack_step`).
Callers that stream (the forecaster) take an optional `stack_step` and fall back to `DeepLRU.step`, so the
fast path is switched off by not passing it. It runs only where it is exact — CPU weights of float32/64,
eval mode, no autograd, no autocast, input of the weights' dtype — and while it is faster: torch's batched
matmuls win at large batch, so above `COMPILED_MACS` multiply-adds per layer the torch step runs.

The weights are packed when `CompiledStacks` is made: make a new one after the weights change.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from lruts.errors import ShapeError
from lruts.fast import kernels
from lruts.lru import autocast_enabled
from lruts.network import DeepLRU, States

__all__ = ["COMPILED_MACS", "CompiledStacks", "StackStep", "available", "step_macs"]

# The compiled loops do ≈ 10 G multiply-adds/s; a torch op costs ≈ 5 µs of dispatch and then runs
# BLAS-fast. With ≈ 15 ops per layer the two cross near this budget per layer and step.
COMPILED_MACS = 600_000


def available() -> bool:
    """Whether the compiled step can run at all (numba is installed)."""
    return kernels.available()


def step_macs(body: DeepLRU, batch: int) -> int:
    """Multiply-adds of one layer's streaming step for `batch` sequences: B, C and the GLU."""
    h, n = body.cfg.d_model, body.cfg.d_state
    return batch * (4 * n * h + 2 * h * h)


class PackedStack(NamedTuple):
    """A stack's eval-mode weights in the order `kernels.stack_step` takes them (see there)."""

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


class StackStep:
    """`body.step` as one compiled call where that is exact and faster; `body.step` itself elsewhere."""

    def __init__(self, body: DeepLRU) -> None:
        self.body = body
        self.dtype = body.encoder.weight.dtype
        self.packed = pack_stack(body) if available() else None

    def __call__(self, u_t: torch.Tensor, states: States | None = None) -> tuple[torch.Tensor, States]:
        if not self._applies(u_t):
            return self.body.step(u_t, states)
        d_in, batch = self.body.cfg.d_input, u_t.shape[0]
        if u_t.dim() != 2 or u_t.shape[1] != d_in:  # the compiled loops do not check bounds
            raise ShapeError(f"network input: expected (batch, {d_in}), got {tuple(u_t.shape)}")
        x, new = kernels.stack_step(u_t.contiguous().numpy(), *self.packed, self._stacked(states, batch))
        return torch.from_numpy(x), list(torch.from_numpy(new).unbind(0))

    def _applies(self, u_t: torch.Tensor) -> bool:
        return (
            self.packed is not None
            and not self.body.training
            and not torch.is_grad_enabled()
            and u_t.device.type == "cpu"
            and u_t.dtype == self.dtype
            and step_macs(self.body, u_t.shape[0]) <= COMPILED_MACS
            and not autocast_enabled("cpu")
        )

    def _stacked(self, states: States | None, batch: int) -> np.ndarray:
        """The per-layer states as one (n_layers, batch, N) complex array, checked: the loops do not."""
        n_layers, n = len(self.body.blocks), self.body.cfg.d_state
        if states is None:
            return np.zeros((n_layers, batch, n), self.packed.lam.dtype)
        s = np.stack([st.numpy() for st in states]) if len(states) else np.zeros((0,))
        if s.shape != (n_layers, batch, n) or not np.iscomplexobj(s):
            raise ShapeError(
                f"expected one complex LRU state of shape (batch, d_state) = ({batch}, {n}) per layer "
                f"({n_layers}), got {[tuple(st.shape) for st in states]} {s.dtype}"
            )
        return s.astype(self.packed.lam.dtype, copy=False)  # in the weights' precision, as the torch step


class CompiledStacks:
    """A StackStep for every DeepLRU inside `model` (one for a forecaster, one per member of an ensemble),
    called as `steps(body, u_t, states)`."""

    def __init__(self, model: nn.Module) -> None:
        self._steps = {id(m): StackStep(m) for m in model.modules() if isinstance(m, DeepLRU)}

    def __call__(self, body: DeepLRU, u_t: torch.Tensor, states: States | None) -> tuple[torch.Tensor, States]:
        return self._steps[id(body)](u_t, states)


def pack_stack(body: DeepLRU) -> PackedStack | None:
    """The stack's eval-mode weights for `kernels.stack_step`, or None where it cannot run them."""
    blocks = body.blocks
    norm = blocks[0].norm if len(blocks) else None
    if (
        norm is None
        or body.encoder.weight.dtype not in (torch.float32, torch.float64)
        or body.encoder.weight.device.type != "cpu"
        or (isinstance(norm, nn.BatchNorm1d) and not norm.track_running_stats)
        or body.cfg.bidirectional
    ):
        return None
    with torch.no_grad():
        weights = [b.lru.io_weights() for b in blocks]  # (λ, W_in, W_out) per layer
        norms = [_norm_affine(b.norm, body.encoder.weight.dtype) for b in blocks]

        def stack(ts):
            return torch.stack(list(ts)).contiguous().numpy()

        return PackedStack(
            body.encoder.weight.detach().contiguous().numpy(),
            body.encoder.bias.detach().contiguous().numpy(),
            stack(n[0] for n in norms),
            stack(n[1] for n in norms),
            isinstance(norm, nn.LayerNorm),
            float(norm.eps),
            body.cfg.prenorm,
            stack(w[1] for w in weights),
            stack(w[0] for w in weights),
            stack(w[2] for w in weights),
            stack(b.lru.D for b in blocks),
            stack(b.glu.proj.weight for b in blocks),
            stack(b.glu.proj.bias for b in blocks),
        )


def _norm_affine(norm: nn.Module, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode norm's per-channel (weight, bias): LayerNorm's affine (applied after it standardises),
    or BatchNorm as the affine map it is in eval mode."""
    if isinstance(norm, nn.BatchNorm1d):
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        return scale, (shift if norm.bias is None else shift + norm.bias)
    shape = norm.normalized_shape
    weight = torch.ones(shape, dtype=dtype) if norm.weight is None else norm.weight
    return weight, (torch.zeros(shape, dtype=dtype) if norm.bias is None else norm.bias)

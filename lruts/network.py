"""Deep LRU networks (paper Fig. 1 and App. D): a linear encoder, a stack of residual LRU blocks,
and heads for sequence-to-sequence output and for classification.

    block(x) = x + dropout(GLU(dropout(GELU(LRU(norm(x))))))        (pre-norm; post-norm normalises
                                                                      after the residual instead)

Every module here has a parallel `forward` over a whole sequence and a streaming `step` over one
time step with the per-layer LRU states carried; in eval mode the two give the same numbers. The step
here is the definition; `lruts.fast.StackStep` runs the same step compiled, for streaming at small batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lruts.errors import ShapeError
from lruts.lru import LRU, check_input

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
            h,
            cfg.d_state,
            r_min=cfg.r_min,
            r_max=cfg.r_max,
            max_phase=cfg.max_phase,
            bidirectional=cfg.bidirectional,
            validate=False,
        )
        self.dropout = TimeSharedDropout(cfg.dropout)
        self.glu = GLU(h, cfg.glu)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.norm, nn.BatchNorm1d) and x.dim() == 3:
            return self.norm(x.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d wants (batch, H, length)
        return self.norm(x)

    def _mix(self, h: torch.Tensor) -> torch.Tensor:
        # tanh-approximate GELU, as jax.nn.gelu's default in the paper's code
        h = F.gelu(h, approximate="tanh")
        return self.dropout(self.glu(self.dropout(h)))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, state = self.lru(self._normalise(x) if self.prenorm else x, state)
        x = x + self._mix(h)
        return (x if self.prenorm else self._normalise(x)), state

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, state = self.lru.step(self._normalise(x_t) if self.prenorm else x_t, state)
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
        x = self.encoder(u_t)
        out = []
        for block, s in zip(self.blocks, self._states(states, u_t.shape[0]), strict=True):
            x, s = block.step(x, s)
            out.append(s)
        return x, out

    def initial_state(self, batch: int) -> States:
        return [block.lru.initial_state(batch) for block in self.blocks]

    def _states(self, states: States | None, batch: int) -> list[torch.Tensor | None]:
        if states is None:
            return [None] * len(self.blocks)
        if len(states) != len(self.blocks):
            raise ShapeError(f"expected one state per layer ({len(self.blocks)}), got {len(states)}")
        return list(states)


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

"""The paper's optimisation recipe (App. D).

AdamW; ν_log, θ_log, γ_log and B (B_re, B_im) get lr × `lr_factor` and no weight decay; every other
parameter gets the base lr and weight decay. A parameter that carries the attribute
`lruts_recurrent = True` joins the recurrent group too (the dense and complex recurrences of the
LRA ablation variants in lruts/lra/ablation.py use it). Learning rate: linear warm-up from 1e-7 over the first
10% of steps, then cosine decay to 1e-7.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["RECURRENT_ATTRIBUTE", "RECURRENT_PARAMETERS", "epoch_decay", "make_optimizer", "warmup_cosine"]

RECURRENT_PARAMETERS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im")
RECURRENT_ATTRIBUTE = "lruts_recurrent"


def make_optimizer(
    model: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.05,
    lr_factor: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.AdamW:
    """AdamW with two groups: the recurrent parameters (lr × lr_factor, no decay) and the rest."""
    recurrent, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_recurrent = name.rsplit(".", 1)[-1] in RECURRENT_PARAMETERS or getattr(p, RECURRENT_ATTRIBUTE, False)
        (recurrent if is_recurrent else rest).append(p)
    groups = [
        {"params": recurrent, "lr": lr * lr_factor, "weight_decay": 0.0, "name": "recurrent"},
        {"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "other"},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], betas=betas)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, *, warmup_fraction: float = 0.1, min_lr: float = 1e-7
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up min_lr → lr over `warmup_fraction` of `total_steps`, then cosine to min_lr.

    Step the scheduler once per optimiser step.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be ≥ 1, got {total_steps}")
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(base_lr: float):
        floor = min(min_lr, base_lr)

        def f(step: int) -> float:
            if step < warmup:
                lr = floor + (base_lr - floor) * step / warmup
            else:
                progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
                lr = floor + (base_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
            return lr / base_lr

        return f

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(g["lr"]) for g in optimizer.param_groups])


def epoch_decay(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, *, decay: float, hold_epochs: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """The lr as set for `hold_epochs` epochs, then × `decay` per epoch: the step schedules of the
    forecasting baselines' own scripts, whose adjust_learning_rate runs after each epoch (PatchTST's
    "type3": lr through epoch 4, then × 0.9 per epoch, so decay 0.9 after 4; DLinear's "type1": 0.5 after 2).
    Step the scheduler once per optimiser step."""
    if steps_per_epoch < 1 or not 0 < decay <= 1:
        raise ValueError(f"need steps_per_epoch ≥ 1 and 0 < decay ≤ 1, got {steps_per_epoch}, {decay}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: decay ** max(0, step // steps_per_epoch - hold_epochs + 1)
    )

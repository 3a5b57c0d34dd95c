"""LRA models: a classifier (embedding or linear encoder → deep LRU → masked mean → linear) and the
two-tower Retrieval model (one shared encoder for both documents; head on [z1, z2, z1 − z2, z1 ⊙ z2]).

Token inputs are embedded (d_model wide) before DeepLRU's linear encoder; pixel inputs go straight
into it. `variant` swaps the recurrent layer for one of the ablation variants (lruts/lra/ablation.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lruts.lra.ablation import apply_variant
from lruts.network import DeepLRU, DeepLRUConfig, LRUClassifier, masked_mean


class LRAClassifier(nn.Module):
    """x: (B, L) int64 tokens (vocab_size given) or (B, L, d_input) float; mask: (B, L) bool → (B, n_classes)."""

    def __init__(self, cfg: DeepLRUConfig, n_classes: int, *, vocab_size: int | None = None, variant: str = "lru"):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_input, padding_idx=0) if vocab_size else None
        self.net = LRUClassifier(cfg, n_classes)
        apply_variant(self.net.body, variant)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.embed(x) if self.embed is not None else x, mask)


class RetrievalClassifier(nn.Module):
    """Two documents through one encoder: x1, x2: (B, L1|L2) int64 with masks → logits (B, n_classes)."""

    def __init__(self, cfg: DeepLRUConfig, vocab_size: int, n_classes: int = 2, *, variant: str = "lru"):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_input, padding_idx=0)
        self.body = DeepLRU(cfg)
        apply_variant(self.body, variant)
        h = cfg.d_model
        self.head = nn.Sequential(nn.Linear(4 * h, h), nn.GELU(approximate="tanh"), nn.Linear(h, n_classes))

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens → (B, H): the masked mean of the deep LRU's outputs."""
        h, _ = self.body(self.embed(x))
        return masked_mean(h, mask)

    def forward(self, x1: torch.Tensor, mask1: torch.Tensor, x2: torch.Tensor, mask2: torch.Tensor) -> torch.Tensor:
        # both towers in one batch (one pass, and BatchNorm sees both documents' statistics)
        length = max(x1.shape[1], x2.shape[1])
        x = torch.cat([F.pad(x1, (0, length - x1.shape[1])), F.pad(x2, (0, length - x2.shape[1]))])
        mask = torch.cat([F.pad(mask1, (0, length - mask1.shape[1])), F.pad(mask2, (0, length - mask2.shape[1]))])
        z1, z2 = self.encode(x, mask).chunk(2)
        return self.head(torch.cat([z1, z2, z1 - z2, z1 * z2], dim=-1))


class ClassificationLoss:
    """loss_fn for the Trainer: mean cross-entropy. In eval mode it also counts correct predictions,
    so the trainer's own validation pass yields the accuracy too (`take_accuracy`)."""

    def __init__(self) -> None:
        self.correct = 0
        self.count = 0

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        inputs = {k: v for k, v in batch.items() if k != "y"}
        logits = model(**inputs).float()
        y = batch["y"]
        if not model.training:
            self.correct += int((logits.argmax(-1) == y).sum())
            self.count += len(y)
        return F.cross_entropy(logits, y), len(y)

    def take_accuracy(self) -> float:
        """Accuracy over everything evaluated since the last call (all ranks under DDP); resets."""
        import torch.distributed as dist

        counts = torch.tensor([self.correct, self.count], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            if dist.get_backend() == "nccl":
                counts = counts.cuda()
            dist.all_reduce(counts)
        self.correct = self.count = 0
        return (counts[0] / counts[1]).item() if counts[1] > 0 else float("nan")

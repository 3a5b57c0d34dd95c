"""LRA models: padding masks honoured in pooling, the two-tower retrieval head, the ablation
variants (numbers against plain loops) and their optimiser groups."""

from __future__ import annotations

import math

import pytest
import torch

from lruts.lra.ablation import VARIANTS, ComplexDiagonalRNN, DenseRNN, _linear_states
from lruts.lra.models import ClassificationLoss, LRAClassifier, RetrievalClassifier
from lruts.network import DeepLRUConfig
from lruts.optim import make_optimizer


def cfg(**kw) -> DeepLRUConfig:
    base = dict(d_input=8, d_model=8, d_state=6, n_layers=2, r_min=0.5, r_max=0.9)
    return DeepLRUConfig(**{**base, **kw})


def test_padding_is_left_out_of_the_pooled_output():
    model = LRAClassifier(cfg(), 3, vocab_size=20).eval()
    x = torch.randint(1, 20, (2, 10))
    padded = torch.cat([x, torch.randint(1, 20, (2, 25))], dim=1)  # garbage after the end
    mask = torch.zeros(2, 35, dtype=torch.bool)
    mask[:, :10] = True
    with torch.no_grad():
        ref = model(x)
        out = model(padded, mask)
        unmasked = model(padded)
    torch.testing.assert_close(out, ref)
    assert not torch.allclose(unmasked, ref, atol=1e-4)  # the test can see padding when it is not masked


def test_padding_of_different_lengths_in_one_batch():
    model = LRAClassifier(cfg(), 3, vocab_size=20).eval()
    a, b = torch.randint(1, 20, (1, 7)), torch.randint(1, 20, (1, 12))
    x = torch.zeros(2, 12, dtype=torch.int64)
    x[0, :7], x[1] = a[0], b[0]
    mask = x != 0
    with torch.no_grad():
        both = model(x, mask)
        torch.testing.assert_close(both[0], model(a)[0])
        torch.testing.assert_close(both[1], model(b)[0])


def test_retrieval_head_reads_z1_z2_difference_and_product():
    model = RetrievalClassifier(cfg(), vocab_size=20).eval()
    x1, x2 = torch.randint(1, 20, (3, 9)), torch.randint(1, 20, (3, 14))
    m1, m2 = torch.ones_like(x1, dtype=torch.bool), torch.ones_like(x2, dtype=torch.bool)
    with torch.no_grad():
        logits = model(x1, m1, x2, m2)
        z1, z2 = model.encode(x1, m1), model.encode(x2, m2)  # one shared encoder
        manual = model.head(torch.cat([z1, z2, z1 - z2, z1 * z2], dim=-1))
        swapped = model(x2, m2, x1, m1)
    assert model.head[0].in_features == 4 * 8
    torch.testing.assert_close(logits, manual)
    assert not torch.allclose(logits, swapped)  # [z1, z2, z1 − z2, …] is ordered


def test_linear_rnn_chunked_states_equal_the_sequential_loop():
    torch.manual_seed(1)
    a = torch.randn(5, 5, dtype=torch.float64) / 3
    b, x0 = torch.randn(2, 23, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    xs, x = [], x0
    for k in range(23):
        x = x @ a.T + b[:, k]
        xs.append(x)
    torch.testing.assert_close(_linear_states(a, b, x0, chunk=4), torch.stack(xs, dim=1))


@pytest.mark.parametrize("tanh", [True, False])
def test_dense_rnn_equals_its_equations(tanh):
    layer = DenseRNN(4, 6, tanh=tanh)
    assert torch.linalg.eigvals(layer.A).abs().max() <= 0.99 + 1e-6
    u = torch.randn(2, 15, 4)
    y, last = layer(u)
    x, ys = torch.zeros(2, 6), []
    for k in range(15):
        x = x @ layer.A.T + u[:, k] @ layer.B.T
        x = torch.tanh(x) if tanh else x
        ys.append(x @ layer.C.T + layer.D * u[:, k])
    torch.testing.assert_close(y, torch.stack(ys, dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last, x, atol=1e-5, rtol=1e-5)


def test_complex_diagonal_rnn_equals_its_equations():
    layer = ComplexDiagonalRNN(4, 6)
    lam = torch.complex(layer.lam_re, layer.lam_im)
    assert lam.abs().max() < 1  # initialised inside the unit disk
    u = torch.randn(2, 15, 4)
    y, _ = layer(u)
    b = torch.complex(layer.B_re, layer.B_im)
    c = torch.complex(layer.C_re, layer.C_im)
    x, ys = torch.zeros(2, 6, dtype=torch.complex64), []
    for k in range(15):
        x = lam * x + u[:, k].to(torch.complex64) @ b.T
        ys.append((x @ c.T).real + layer.D * u[:, k])
    torch.testing.assert_close(y, torch.stack(ys, dim=1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_inside_the_same_network(variant):
    model = LRAClassifier(cfg(d_input=1, bidirectional=variant != "tanh_rnn"), 4, variant=variant)
    opt = make_optimizer(model, 1e-2, weight_decay=0.05, lr_factor=0.25)
    batch = {"x": torch.randn(3, 16, 1), "y": torch.tensor([0, 1, 2])}
    before = [p.detach().clone() for p in model.parameters()]
    loss, n = ClassificationLoss()(model.train(), batch)
    loss.backward()
    opt.step()
    assert n == 3 and math.isfinite(loss.item())
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True) if p.requires_grad]
    assert all(changed)


def test_variant_recurrent_parameters_get_the_recurrent_group():
    dense = LRAClassifier(cfg(d_input=1), 2, variant="linear_rnn")
    groups = {g["name"]: g for g in make_optimizer(dense, 1e-3, weight_decay=0.05, lr_factor=0.25).param_groups}
    ids = {id(p) for p in groups["recurrent"]["params"]}
    for block in dense.net.body.blocks:
        assert id(block.lru.A) in ids and id(block.lru.B) in ids and id(block.lru.C) not in ids
    assert groups["recurrent"]["lr"] == pytest.approx(0.25e-3) and groups["recurrent"]["weight_decay"] == 0.0


def test_exp_ring_variant_is_the_lru_without_gamma():
    model = LRAClassifier(cfg(d_input=1), 2, variant="exp_ring")
    opt_params = {id(p) for g in make_optimizer(model, 1e-3).param_groups for p in g["params"]}
    for block in model.net.body.blocks:
        assert torch.all(block.lru.gamma_log == 0) and not block.lru.gamma_log.requires_grad
        assert id(block.lru.gamma_log) not in opt_params
        assert block.lru.r_min == 0.5  # ring init kept


def test_classification_loss_counts_accuracy_in_eval_mode_only():
    model = LRAClassifier(cfg(d_input=1), 2)
    loss = ClassificationLoss()
    batch = {"x": torch.randn(4, 5, 1), "y": torch.tensor([0, 1, 0, 1])}
    loss(model.train(), batch)
    assert loss.count == 0
    with torch.no_grad():
        loss(model.eval(), batch)
        pred = model(batch["x"]).argmax(-1)
    assert loss.take_accuracy() == pytest.approx((pred == batch["y"]).float().mean().item())
    assert loss.count == 0

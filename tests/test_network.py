"""Deep LRU networks: parallel = streaming = a float64 reference for the whole stack, chunking,
padding-aware pooling, time-shared dropout, and the paper's optimiser recipe."""

import itertools
import math

import pytest
import torch

from lruts import DeepLRUConfig, LRUClassifier, LRUSequenceModel, ShapeError, make_optimizer, masked_mean
from lruts.network import TimeSharedDropout
from lruts.optim import RECURRENT_PARAMETERS, epoch_decay, warmup_cosine

from reference import reference_stack


def trained_stats_model(**kw):
    """A small stack whose BatchNorm running statistics are not the defaults, in eval mode."""
    cfg = DeepLRUConfig(d_input=3, d_model=8, d_state=12, n_layers=3, r_min=0.5, r_max=0.99, dropout=0.1, **kw)
    model = LRUSequenceModel(cfg, d_output=2)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 30, 3) * 2 + 1)
    return model.eval()


CONFIGS = [
    dict(norm="batch", prenorm=True, glu="full"),
    dict(norm="layer", prenorm=True, glu="half"),
    dict(norm="batch", prenorm=False, glu="half"),
    dict(norm="layer", prenorm=False, glu="full"),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_stack_parallel_equals_streaming_equals_float64_reference(kw):
    model = trained_stats_model(**kw).double()
    u = torch.randn(2, 50, 3, dtype=torch.float64)
    with torch.no_grad():
        y_par, states_par = model(u)
        states, ys = None, []
        for t in range(u.shape[1]):
            y_t, states = model.step(u[:, t], states)
            ys.append(y_t)
        y_ref = reference_stack(model, u)
    torch.testing.assert_close(y_par, y_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(torch.stack(ys, 1), y_par, rtol=1e-9, atol=1e-9)
    for a, b in zip(states, states_par, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_stack_chunked_with_carried_states_equals_one_pass():
    model = trained_stats_model()
    u = torch.randn(2, 120, 3)
    with torch.no_grad():
        y_full, _ = model(u)
        states, parts = None, []
        for a, b in [(0, 7), (7, 64), (64, 65), (65, 120)]:
            y, states = model(u[:, a:b], states)
            parts.append(y)
    torch.testing.assert_close(torch.cat(parts, 1), y_full, rtol=1e-5, atol=1e-5)


def test_stack_rejects_wrong_input_width_and_state_count():
    model = trained_stats_model()
    with pytest.raises(ShapeError, match=r"\(batch, length, d_input\) with d_input=3"):
        model(torch.randn(2, 10, 4))
    with pytest.raises(ShapeError, match="one state per layer"):
        model.step(torch.randn(2, 3), [None])


def test_masked_mean_ignores_padding_whatever_it_contains():
    torch.manual_seed(0)
    cfg = DeepLRUConfig(d_input=1, d_model=8, d_state=8, n_layers=2)
    clf = LRUClassifier(cfg, n_classes=3).eval()
    x = torch.randn(2, 20, 1)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[0, 12:] = False
    junk = x.clone()
    junk[0, 12:] = 1e3  # padding content must not reach the logits of sequence 0 (causal model)
    with torch.no_grad():
        torch.testing.assert_close(clf(x, mask)[0], clf(junk, mask)[0])
        assert not torch.allclose(clf(x)[0], clf(junk)[0])  # without the mask it does
    h = torch.arange(6.0).reshape(1, 6, 1)
    m = torch.tensor([[True, True, True, False, False, False]])
    assert masked_mean(h, m).item() == 1.0
    with pytest.raises(ShapeError, match="padding mask"):
        masked_mean(h, m[:, :3])


def test_dropout_mask_is_shared_over_time():
    drop = TimeSharedDropout(0.5).train()
    y = drop(torch.ones(4, 50, 16))
    zeros = y == 0
    assert zeros.any() and (~zeros).any()
    assert (zeros == zeros[:, :1]).all()  # the same channels are dropped at every step
    assert torch.equal(drop.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))


def test_optimizer_groups_follow_the_paper():
    model = trained_stats_model()
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.05, lr_factor=0.25)
    names = {id(p): n for n, p in model.named_parameters()}
    recurrent, other = opt.param_groups
    assert {names[id(p)].rsplit(".", 1)[-1] for p in recurrent["params"]} == set(RECURRENT_PARAMETERS)
    assert recurrent["lr"] == pytest.approx(2.5e-4) and recurrent["weight_decay"] == 0.0
    assert other["lr"] == pytest.approx(1e-3) and other["weight_decay"] == 0.05
    assert all(names[id(p)].rsplit(".", 1)[-1] not in RECURRENT_PARAMETERS for p in other["params"])
    assert len(recurrent["params"]) + len(other["params"]) == len(list(model.parameters()))


def test_warmup_then_cosine_schedule():
    model = trained_stats_model()
    opt = make_optimizer(model, lr=1e-3, lr_factor=0.5)
    sched = warmup_cosine(opt, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    lrs.append([g["lr"] for g in opt.param_groups])
    assert lrs[0] == pytest.approx([1e-7, 1e-7])
    assert lrs[5] == pytest.approx([1e-7 + (5e-4 - 1e-7) * 0.5, 1e-7 + (1e-3 - 1e-7) * 0.5])
    assert lrs[10] == pytest.approx([5e-4, 1e-3])  # peak at the end of the 10 % warm-up
    mid = 10 + 45
    assert lrs[mid][1] == pytest.approx(1e-7 + (1e-3 - 1e-7) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[100] == pytest.approx([1e-7, 1e-7])
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(lrs[10:]))  # decays after warm-up


def test_epoch_decay_holds_then_multiplies_per_epoch():
    """PatchTST's type3 with 3 steps per epoch: 1e-4 through epoch 4, then 0.9× per epoch."""
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1e-4)
    sched = epoch_decay(opt, steps_per_epoch=3, decay=0.9, hold_epochs=4)
    lrs = []
    for _ in range(21):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    per_epoch = lrs[::3]
    assert per_epoch == pytest.approx([1e-4, 1e-4, 1e-4, 1e-4, 0.9e-4, 0.81e-4, 0.729e-4])
    assert all(len(set(lrs[i : i + 3])) == 1 for i in range(0, 21, 3))  # constant within an epoch
    with pytest.raises(ValueError, match="decay"):
        epoch_decay(opt, steps_per_epoch=3, decay=1.5)
